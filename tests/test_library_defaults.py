"""A working library against the default library a later version ships:
what it lacks, ``python -m indexer update-library`` adding it, and the
warning the service logs at start."""

from __future__ import annotations

import hashlib
import logging
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from app.core.state import copy_default_library, warn_if_behind_default
from indexer.update_library import main
from tests.test_library import FakeEmbedder, new_ref, unit
from xrdid.data_paths import PROJECT_ROOT
from xrdid.embedder import Embedder
from xrdid.errors import InputError
from xrdid.library import Library, NewReference
from xrdid.library.defaults import compare, open_default, update
from xrdid.library.store import SqliteStore

MODEL = PROJECT_ROOT / "model_store" / "regnet1d.pt"
SHIPPED = PROJECT_ROOT / "model_store" / "library.sqlite"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder.load(MODEL, device="cpu")


@pytest.fixture()
def behind(tmp_path: Path, embedder: Embedder) -> tuple[Path, Path, dict[str, int]]:
    """The shipped default library (a copy, as a later version ships it) and
    a working library copied from it, then made as an earlier version's copy
    would be: two references missing, one held in an earlier version (another
    pattern under its source and source id), and one a lab added."""
    default = tmp_path / "model_store" / "library.sqlite"
    default.parent.mkdir()
    shutil.copyfile(SHIPPED, default)
    working = tmp_path / "data" / "library.sqlite"
    copy_default_library(working, default, "make library")
    with Library.open(working, embedder) as library:
        ids = sorted(library.source_ids().values())
        for gone in ids[:2]:
            library.delete(gone)
        earlier, other = library.get(ids[2]), library.get(ids[3])
        library.delete(earlier.id)
        # The earlier version: the same reference's identity over another pattern.
        _, (vector,) = library.store.embeddings([other.id], library.dim)
        library.add(
            replace(
                _stored(library, other.id),
                info=earlier.info,
                embedding=vector,
            )
        )
        lab = library.add(
            replace(
                _stored(library, other.id),
                info=replace(other.info, source="lab", source_id="sample 17"),
                embedding=vector,
            )
        )
    return default, working, {"lab": lab.id, "earlier": ids[2]}


def _stored(library: Library, reference_id: int) -> NewReference:
    """A stored reference as a NewReference (pattern and embedding)."""
    entry = library.get(reference_id)
    _, (vector,) = library.store.embeddings([reference_id], library.dim)
    return NewReference(
        info=entry.info,
        pattern=library.get_pattern(reference_id),
        embedding=vector,
        model_version=entry.model_version,
        content_hash=entry.content_hash,
    )


def test_a_copy_of_the_default_library_is_up_to_date(tmp_path: Path, embedder: Embedder) -> None:
    working = tmp_path / "library.sqlite"
    copy_default_library(working, SHIPPED, "make library")
    default = open_default(SHIPPED)
    try:
        with Library.open(working, embedder) as library:
            comparison = compare(library, default)
    finally:
        default.close()
    assert comparison.up_to_date and comparison.default_size == 2067


def test_update_adds_what_is_missing_and_replaces_earlier_versions(
    behind: tuple[Path, Path, dict[str, int]], embedder: Embedder
) -> None:
    default_path, working, ids = behind
    before = _digest(default_path)
    default = open_default(default_path)
    try:
        with Library.open(working, embedder) as library:
            comparison = compare(library, default)
            assert len(comparison.missing) == 2 and len(comparison.outdated) == 1
            assert comparison.outdated[0][1] == ids["earlier"]
            assert "lacks 2 of the default library's 2067 references" in comparison.describe()
            update(library, default, batch=2)
            assert compare(library, default).up_to_date
            # The lab's reference is kept; the earlier version is replaced.
            assert library.get(ids["lab"]).info.source == "lab"
            replaced = library.find(*_key(default, ids["earlier"]))
            assert replaced is not None and replaced.id > ids["lab"]
            (now,) = library.versions([replaced.id]).values()
            assert now.same_as(default.versions([ids["earlier"]])[ids["earlier"]])
            assert library.status().size == 2067 + 1
            # Searchable at once: its own embedding finds it first.
            _, (vector,) = library.store.embeddings([replaced.id], library.dim)
            assert library.search(vector, 1)[0][0].entry.id == replaced.id
        # Reopened: the database holds it all (the index agrees).
        with Library.open(working, embedder) as library:
            assert compare(library, default).up_to_date
            assert library.status().size == 2067 + 1
    finally:
        default.close()
    # The default library is only read: unchanged, nothing written beside it.
    assert _digest(default_path) == before
    assert [p.name for p in default_path.parent.iterdir()] == ["library.sqlite"]


def _key(default: SqliteStore, reference_id: int) -> tuple[str, str]:
    info = default.get(reference_id).info
    return info.source, info.source_id


def test_the_command_checks_updates_and_is_idempotent(
    behind: tuple[Path, Path, dict[str, int]], capsys: pytest.CaptureFixture[str]
) -> None:
    default, working, _ = behind
    argv = ["--library", str(working), "--default", str(default)]
    assert main([*argv, "--check"]) == 1
    report = capsys.readouterr().out
    assert "holds an earlier version of 1" in report
    assert report.count("  missing: ") == 2 and report.count("  earlier version: ") == 1
    assert main(argv) == 0
    assert "added 2, replaced 1" in capsys.readouterr().out
    assert main([*argv, "--check"]) == 0
    assert main(argv) == 0  # nothing left to do


def test_the_service_warns_at_start_when_behind(
    behind: tuple[Path, Path, dict[str, int]],
    embedder: Embedder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    default, working, _ = behind
    with Library.open(working, embedder) as library, caplog.at_level(logging.WARNING):
        warn_if_behind_default(library, default)
        assert "python -m indexer update-library --library" in caplog.text
        assert "lacks 2 of the default library's 2067 references" in caplog.text
        caplog.clear()
        warn_if_behind_default(library, default.with_name("none.sqlite"))
        update_quietly(library, default)
        warn_if_behind_default(library, default)
    assert caplog.text == ""


def update_quietly(library: Library, default_path: Path) -> None:
    default = open_default(default_path)
    try:
        update(library, default)
    finally:
        default.close()


def test_a_default_library_of_another_model_is_refused(tmp_path: Path) -> None:
    default_path = tmp_path / "default.sqlite"
    rng = np.random.default_rng(0)
    with Library.open(default_path, FakeEmbedder("fake-b")) as other:
        other.add(new_ref(1, unit(rng), version="fake-b"))
    default = open_default(default_path)
    try:
        with Library.open(tmp_path / "working.sqlite", FakeEmbedder("fake-a")) as library:
            assert not compare(library, default).up_to_date
            with pytest.raises(InputError, match="model fake-b"):
                update(library, default)
    finally:
        default.close()


def test_versions_tell_a_rebuilt_reference_from_float_noise(tmp_path: Path) -> None:
    """Two builds of one file differ in a last digit of the RIR and a
    profile point a level apart: the same version. Another profile, or
    another RIR, is another version."""
    rng = np.random.default_rng(1)
    profile = np.zeros(4251)
    profile[1000:1010] = np.linspace(0.2, 1.0, 10)
    base = replace(new_ref(1, unit(rng)), profile=profile)
    base = replace(base, info=replace(base.info, rir=2.5))
    noisy = replace(
        base,
        info=replace(base.info, source_id="2", rir=2.5 + 1e-12),
        profile=profile + np.where(np.arange(4251) == 1005, 6e-3, 0.0),  # a level of √
    )
    rebuilt = replace(base, info=replace(base.info, source_id="3"), profile=np.roll(profile, 40))
    other_rir = replace(base, info=replace(base.info, source_id="4", rir=3.1))
    with Library.open(tmp_path / "library.sqlite", FakeEmbedder()) as library:
        ids = [library.add(r).id for r in (base, noisy, rebuilt, other_rir)]
        versions = library.versions(ids)
    assert versions[ids[0]].same_as(versions[ids[1]])
    assert not versions[ids[0]].same_as(versions[ids[2]])
    assert not versions[ids[0]].same_as(versions[ids[3]])


def test_a_library_on_postgresql_is_updated_from_a_sqlite_default(
    tmp_path: Path, database_url: str
) -> None:
    """Versions compare across backends: a PostgreSQL library seeded from the
    default is up to date; one reference gone and one rebuilt are found and
    taken from the SQLite file."""
    from indexer.migrate_to_postgres import migrate_library

    default_path = tmp_path / "default.sqlite"
    rng = np.random.default_rng(3)
    with Library.open(default_path, FakeEmbedder()) as built:
        added = built.add_many(
            [replace(new_ref(i, unit(rng)), info=replace(new_ref(i, unit(rng)).info, rir=1.7))
             for i in range(4)]
        )  # fmt: skip
    migrate_library(default_path, database_url, progress=False)
    default = open_default(default_path)
    try:
        with Library.open(database_url, FakeEmbedder()) as library:
            assert compare(library, default).up_to_date
            first, second = (e.id for e in added[:2] if e is not None)
            library.delete(first)
            rebuilt = library.get(second)
            library.delete(second)
            library.add(replace(new_ref(9, unit(rng)), info=rebuilt.info))
            comparison = compare(library, default)
            assert comparison.missing == (first,) and len(comparison.outdated) == 1
            update(library, default)
            assert compare(library, default).up_to_date and library.status().size == 4
    finally:
        default.close()


def test_a_default_library_of_another_technique_is_refused(tmp_path: Path) -> None:
    raman_default = PROJECT_ROOT / "model_store" / "raman_library.sqlite"
    if not raman_default.is_file():
        pytest.skip("no shipped Raman library (make install builds it)")
    default = open_default(raman_default)
    try:
        with Library.open(tmp_path / "working.sqlite", FakeEmbedder()) as library:
            with pytest.raises(InputError, match="is a Raman library; this is the XRD library"):
                update(library, default)
    finally:
        default.close()
