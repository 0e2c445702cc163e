"""``python -m indexer migrate-to-postgres``: a SQLite library copied into a
real PostgreSQL database, ids and everything stored kept; a second run resumes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from indexer.migrate_to_postgres import main, migrate_library
from tests.test_library import FakeEmbedder, new_ref, unit
from xrdid.library import DatabaseEncodingError, Library, MeasuredProfile
from xrdid.wavelengths import CU_KALPHA


def test_a_sqlite_library_is_copied_with_its_ids(tmp_path: Path, database_url: str) -> None:
    path = tmp_path / "library.sqlite"
    rng = np.random.default_rng(0)
    with Library.open(path, FakeEmbedder()) as lib:
        ids = [lib.add(new_ref(i, unit(rng), elements=("Fe", "O"))).id for i in range(5)]
        lib.delete(ids[1])  # a gap in the ids
        measured = new_ref(9, unit(rng), elements=())
        x = np.linspace(10, 80, 500)
        profile = MeasuredProfile(x, np.exp(-((x - 30) ** 2)) + 0.1, CU_KALPHA)
        from dataclasses import replace

        ids.append(lib.add(replace(measured, pattern=profile)).id)
        query = unit(rng)
        expected = [(m.entry, m.similarity) for m in lib.search(query, 5)[0]]
    assert main(["--library", str(path), "--database-url", database_url, "--batch", "2"]) == 0
    with Library.open(database_url, FakeEmbedder()) as copy:
        assert copy.status().size == 5
        got = [(m.entry, m.similarity) for m in copy.search(query, 5)[0]]
        assert [e.id for e, _ in got] == [e.id for e, _ in expected]
        assert [e.info for e, _ in got] == [e.info for e, _ in expected]
        assert np.allclose([s for _, s in got], [s for _, s in expected], atol=1e-6)
        pattern = copy.get_pattern(ids[-1])
        assert isinstance(pattern, MeasuredProfile) and np.allclose(pattern.two_theta_deg, x)
        # New references get ids after the copied ones.
        assert copy.add(new_ref(20, unit(rng))).id > max(ids)
    assert migrate_library(path, database_url, progress=False) == (0, 6)


def test_the_database_can_be_named_by_the_setting(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "library.sqlite"
    with Library.open(path, FakeEmbedder()) as lib:
        lib.add(new_ref(0, unit(np.random.default_rng(2))))
    monkeypatch.delenv("XRDID_DATABASE_URL", raising=False)
    with pytest.raises(SystemExit):
        main(["--library", str(path)])
    monkeypatch.setenv("XRDID_DATABASE_URL", database_url)
    assert main(["--library", str(path)]) == 0
    with Library.open(database_url, FakeEmbedder()) as copy:
        assert copy.status().size == 1


def test_seeding_leaves_a_database_with_references_alone(tmp_path: Path, database_url: str) -> None:
    rng = np.random.default_rng(1)
    first, second = tmp_path / "a.sqlite", tmp_path / "b.sqlite"
    for path, start in ((first, 0), (second, 100)):
        with Library.open(path, FakeEmbedder()) as lib:
            lib.add_many([new_ref(start + i, unit(rng)) for i in range(3)])
    assert migrate_library(first, database_url, progress=False, if_empty=True) == (3, 3)
    assert migrate_library(second, database_url, progress=False, if_empty=True) == (0, 3)


def test_the_xrd_and_the_raman_library_are_copied_each_into_its_own(
    tmp_path: Path, database_url: str
) -> None:
    """One command copies both of a service's libraries: each into the
    database's library of its technique (the Raman one in its own schema),
    Raman ids above 10⁹ kept, spectra intact; new Raman references get ids
    after the copied ones."""
    from tests.test_library_techniques import FakeRamanEmbedder, raman_ref
    from xrdid.library import RAMAN_FIRST_ID, RamanProfile
    from xrdid.technique import Technique

    rng = np.random.default_rng(3)
    xrd_path, raman_path = tmp_path / "library.sqlite", tmp_path / "raman_library.sqlite"
    with Library.open(xrd_path, FakeEmbedder()) as lib:
        xrd_ids = [lib.add(new_ref(i, unit(rng))).id for i in range(3)]
    embedder = FakeRamanEmbedder()
    with Library.open(raman_path, embedder) as lib:
        raman_ids = [lib.add(raman_ref(seed, embedder)).id for seed in range(4)]
        lib.delete(raman_ids[0])
        stored = lib.get_pattern(raman_ids[1])
        expected = lib.get(raman_ids[1])
    argv = ["--library", str(xrd_path), str(raman_path), "--database-url", database_url]
    assert main([*argv, "--batch", "2"]) == 0
    with Library.open(database_url, FakeEmbedder()) as xrd:
        assert sorted(xrd._index.ids.tolist()) == xrd_ids
    with Library.open(database_url, FakeRamanEmbedder()) as raman:
        assert sorted(raman._index.ids.tolist()) == raman_ids[1:]
        assert all(rid > RAMAN_FIRST_ID for rid in raman_ids)
        entry = raman.get(raman_ids[1])
        assert (entry.info, entry.technique) == (expected.info, Technique.RAMAN)
        pattern = raman.get_pattern(raman_ids[1])
        assert isinstance(pattern, RamanProfile) and isinstance(stored, RamanProfile)
        assert np.array_equal(pattern.intensity, stored.intensity)
        assert raman.search(raman_ref(2, embedder).embedding, 1)[0][0].entry.id == raman_ids[2]
        assert raman.add(raman_ref(9, embedder)).id > max(raman_ids)
    # A second run (and seeding) copies nothing; two libraries of one technique are refused.
    assert main(argv) == 0
    assert migrate_library(raman_path, database_url, progress=False, if_empty=True) == (0, 4)
    with pytest.raises(SystemExit):
        main(["--library", str(xrd_path), str(xrd_path), "--database-url", database_url])


def test_a_database_that_does_not_store_utf8_is_refused_with_how_to_fix_it(
    tmp_path: Path, postgres_server
) -> None:
    """A cluster made by initdb without a UTF-8 locale stores SQL_ASCII; its
    text reads back as bytes (SQLAlchemy failed on it with a TypeError)."""
    path = tmp_path / "library.sqlite"
    with Library.open(path, FakeEmbedder()) as lib:
        lib.add(new_ref(0, unit(np.random.default_rng(3))))
    ascii_url = postgres_server.create_database(encoding="SQL_ASCII")
    with pytest.raises(SystemExit, match="stores text as SQL_ASCII, not UTF8.*ENCODING 'UTF8'"):
        main(["--library", str(path), "--database-url", ascii_url])
    with pytest.raises(DatabaseEncodingError):
        Library.open(ascii_url, FakeEmbedder())
