"""One contract for every library backend: the same tests on SQLite and on a
real PostgreSQL server (skipped with a message where none can run), for the
XRD library and the Raman library beside it."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tests.test_library import FakeEmbedder, new_ref, unit
from tests.test_library_techniques import FakeRamanEmbedder, raman_ref
from xrdid.errors import InputError
from xrdid.library import (
    RAMAN_FIRST_ID,
    DuplicateReferenceError,
    ElementFilter,
    Library,
    MeasuredProfile,
    RamanProfile,
    ReferenceKind,
    ReferenceNotFoundError,
)
from xrdid.library.follow import LibraryFollower
from xrdid.technique import Technique
from xrdid.wavelengths import CU_KALPHA


@pytest.fixture(params=["sqlite", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str | Path:
    """Where a fresh library lives: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return tmp_path / "library.sqlite"
    return str(request.getfixturevalue("database_url"))


def _index_path(location: str | Path) -> Path | None:
    # Two libraries on one SQLite file must not share one index file.
    return None if isinstance(location, str) else Path(f"{location}.{time.monotonic_ns()}.faiss")


def open_library(location: str | Path, version: str = "fake-a") -> Library:
    return Library.open(location, FakeEmbedder(version), index_path=_index_path(location))


def open_raman(location: str | Path) -> Library:
    """The Raman library beside ``location``'s XRD one: a SQLite file of its
    own, or the same database (its own schema)."""
    if isinstance(location, Path):
        location = location.with_name("raman_library.sqlite")
    return Library.open(location, FakeRamanEmbedder(), index_path=_index_path(location))


def test_add_get_find_page_delete(location: str | Path) -> None:
    rng = np.random.default_rng(0)
    with open_library(location) as lib:
        added = lib.add_many([new_ref(i, unit(rng), elements=("Fe", "O")) for i in range(3)])
        assert [e.id for e in added if e] == sorted(e.id for e in added if e)
        first = added[0]
        assert first is not None
        assert lib.get(first.id).info == first.info
        assert lib.get(first.id).kind is ReferenceKind.CALCULATED
        assert lib.find("test", "1") == lib.get(first.id + 1)
        assert lib.find("test", "nope") is None
        assert lib.source_keys() == {("test", "0"), ("test", "1"), ("test", "2")}
        pattern = lib.get_pattern(first.id)
        assert np.allclose(pattern.d_angstrom, new_ref(0, unit(rng)).pattern.d_angstrom, rtol=1e-6)
        with pytest.raises(DuplicateReferenceError) as taken:
            lib.add(new_ref(1, unit(rng)))
        assert taken.value.existing_id == first.id + 1
        skipped = lib.add_many([new_ref(1, unit(rng)), new_ref(7, unit(rng))], skip_existing=True)
        assert skipped[0] is None and skipped[1] is not None
        page = lib.page(limit=2, elements=ElementFilter(all_of=frozenset({"Fe"})))
        assert page.total == 3 and len(page.entries) == 2 and page.next_after is not None
        rest = lib.page(after=page.next_after, limit=2)
        assert [e.id for e in rest.entries] == [first.id + 2, skipped[1].id]
        assert lib.page(name_contains="ref 7").total == 1
        assert lib.page(elements=ElementFilter(none_of=frozenset({"Fe"}))).total == 1
        assert lib.page(elements=ElementFilter(only_from=frozenset({"Fe", "O"}))).total == 3
        assert lib.page(kind=ReferenceKind.MEASURED).total == 0
        lib.delete(first.id)
        with pytest.raises(ReferenceNotFoundError):
            lib.get(first.id)
        with pytest.raises(ReferenceNotFoundError):
            lib.delete(first.id)
        assert lib.database_size() == 3 and lib.status().size == 3


@pytest.mark.parametrize("bad_id", [0, -1, 2**63, 10**30])
def test_ids_outside_64_bits_are_not_found(location: str | Path, bad_id: int) -> None:
    """Both databases store signed 64-bit ids: others never reach the driver."""
    rng = np.random.default_rng(2)
    with open_library(location) as lib:
        lib.add_many([new_ref(i, unit(rng)) for i in range(3)])
        for method in (lib.get, lib.get_pattern, lib.delete):
            with pytest.raises(ReferenceNotFoundError):
                method(bad_id)
        assert lib.page(after=2**63 + 5).entries == ()
        assert lib.page(after=2**63 - 1).total == 3
        with pytest.raises(InputError, match="negative"):
            lib.page(after=-1)


def test_search_is_exact_and_filters_apply(location: str | Path) -> None:
    rng = np.random.default_rng(1)
    with open_library(location) as lib:
        vectors = {}
        for i in range(30):
            v = unit(rng)
            entry = lib.add(new_ref(i, v, elements=("Si", "O") if i % 2 else ("Fe", "O")))
            vectors[entry.id] = v
        query = unit(rng)
        expected = sorted(vectors, key=lambda rid: -float(vectors[rid] @ query))[:5]
        assert [m.entry.id for m in lib.search(query, 5)[0]] == expected
        only_fe = lib.search(query, 5, ElementFilter(all_of=frozenset({"Fe"})))[0]
        assert len(only_fe) == 5 and all("Fe" in m.entry.info.elements for m in only_fe)


def test_generations_and_the_change_log(location: str | Path) -> None:
    rng = np.random.default_rng(2)
    with open_library(location) as lib:
        store = lib.store
        start = store.generation()
        a, b = (e.id for e in lib.add_many([new_ref(0, unit(rng)), new_ref(1, unit(rng))]) if e)
        c = lib.add(new_ref(2, unit(rng))).id
        lib.delete(a)
        assert store.generation() == start + 3
        changes = store.changes_since(start)
        assert changes is not None and changes.generation == start + 3
        # a was added and deleted since: neither
        assert changes.added == (b, c) and changes.deleted == ()
        later = store.changes_since(start + 2)
        assert later is not None and later.added == () and later.deleted == (a,)
        assert store.changes_since(store.generation()) == type(changes)(start + 3, (), ())
        # Ahead of the database (restored from an older backup): reload everything.
        assert store.changes_since(start + 4) is None


def test_a_second_library_on_the_same_store_follows_writes(location: str | Path) -> None:
    """Two processes' libraries on one database: each sees the other's writes."""
    rng = np.random.default_rng(3)
    with open_library(location) as one, open_library(location) as two:
        follower = LibraryFollower(two, interval_s=0.2).start()
        try:
            v = unit(rng)
            added = one.add(new_ref(0, v)).id
            deadline = time.monotonic() + 5
            while two.status().size < 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert [m.entry.id for m in two.search(v, 1)[0]] == [added]
            two.delete(added)
            assert one.sync()
            assert one.status().size == 0 and one.search(v, 1)[0] == ()
            # Writes of both, interleaved: each index ends with all of them.
            ids = [one.add(new_ref(1, unit(rng))).id, two.add(new_ref(2, unit(rng))).id]
            ids.append(one.add(new_ref(3, unit(rng))).id)
            one.sync()
            deadline = time.monotonic() + 5
            while two.status().size < 3 and time.monotonic() < deadline:
                time.sleep(0.01)
            for lib in (one, two):
                assert sorted(lib._index.ids.tolist()) == sorted(ids)
                assert lib.status().generation == lib.store.generation()
        finally:
            follower.stop()


def test_concurrent_writers_on_two_libraries_lose_nothing(location: str | Path) -> None:
    rng = np.random.default_rng(4)
    vectors = [unit(rng) for _ in range(40)]
    with open_library(location) as one, open_library(location) as two:

        def write(lib: Library, start: int) -> None:
            for i in range(start, start + 20):
                lib.add(new_ref(i, vectors[i]))

        threads = [
            threading.Thread(target=write, args=(one, 0)),
            threading.Thread(target=write, args=(two, 20)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        one.sync()
        two.sync()
        for lib in (one, two):
            assert lib.status().size == 40
            missing, extra = lib.verify()
            assert missing.size == 0 and extra.size == 0


def test_reopen_keeps_everything_and_a_new_model_reembeds(location: str | Path) -> None:
    rng = np.random.default_rng(5)
    with open_library(location) as lib:
        ids = [lib.add(new_ref(i, unit(rng))).id for i in range(4)]
    with open_library(location) as again:
        assert again.status().size == 4
        assert sorted(again._index.ids.tolist()) == ids
    embedder = FakeEmbedder("fake-b")
    with Library.open(location, embedder, index_path=None) as other:
        assert other.status().size == 4 and other.model_version == "fake-b"
        assert embedder.calls == 4
        stored = other.store.embeddings(ids, other.dim)[1]
        assert np.allclose(np.linalg.norm(stored, axis=1), 1.0, atol=1e-5)


def test_exported_rows_import_with_their_ids(location: str | Path, tmp_path: Path) -> None:
    """A library copied row by row (as encoded) into another store: same ids,
    entries and search results; importing again adds nothing."""
    from xrdid.library.store import SqliteStore

    rng = np.random.default_rng(6)
    source_path = tmp_path / "source.sqlite"
    with Library.open(source_path, FakeEmbedder()) as source:
        refs = [new_ref(i, unit(rng), elements=("Ca", "O")) for i in range(6)]
        refs[0] = replace(refs[0], info=replace(refs[0].info, rir=1.75))
        ids = [source.add(ref).id for ref in refs]
        source.delete(ids[2])
        query = unit(rng)
        expected = [(m.entry, m.similarity) for m in source.search(query, 3)[0]]
        store = source.store
        assert isinstance(store, SqliteStore)
        rows = store.export_rows(0, 100)
    with open_library(location) as target:
        assert target.store.import_rows(rows) == 5
        assert target.store.import_rows(rows) == 0
        target.sync()
        got = [(m.entry, m.similarity) for m in target.search(query, 3)[0]]
        assert [(e.id, e.info) for e, _ in got] == [(e.id, e.info) for e, _ in expected]
        assert target.page(elements=ElementFilter(all_of=frozenset({"Ca"}))).total == 5
        copied = target.get(ids[0])
        assert copied.info.rir == 1.75 and copied.technique is Technique.XRD
        assert target.add(new_ref(99, unit(rng))).id > max(ids)


def test_reference_intensity_ratios_and_techniques_are_stored(location: str | Path) -> None:
    """A measured RIR (and none) and the technique come back from every read."""
    rng = np.random.default_rng(7)
    x = np.linspace(10, 80, 400)
    measured = new_ref(0, unit(rng))
    measured = replace(
        measured,
        info=replace(measured.info, rir=3.25),
        pattern=MeasuredProfile(x, np.exp(-((x - 40) ** 2)) + 0.1, CU_KALPHA),
    )
    with open_library(location) as lib:
        first = lib.add(measured)
        second = lib.add(new_ref(1, unit(rng)))
        assert (first.info.rir, first.technique) == (3.25, Technique.XRD)
        for entry in (lib.get(first.id), lib.find("test", "0"), lib.page().entries[0]):
            assert entry is not None and entry.info.rir == 3.25
            assert entry.technique is Technique.XRD and entry.kind is ReferenceKind.MEASURED
        assert lib.get(second.id).info.rir is None
        assert lib.search(measured.embedding, 1)[0][0].entry.info.rir == 3.25
    with open_library(location) as again:
        assert again.get(first.id).info.rir == 3.25 and again.status().technique is Technique.XRD


def test_a_raman_library_beside_the_xrd_one(location: str | Path) -> None:
    """Each technique's library on the same backend: ids above 10⁹ for Raman,
    sizes, generations and change logs of their own, the technique on every
    entry, and each refusing the other's references."""
    rng = np.random.default_rng(8)
    embedder = FakeRamanEmbedder()
    with open_library(location) as xrd, open_raman(location) as raman:
        assert raman.technique is Technique.RAMAN and raman.status().technique is Technique.RAMAN
        x = xrd.add(new_ref(0, unit(rng)))
        xrd_generation = xrd.store.generation()
        spectra = raman.add_many([raman_ref(seed, embedder) for seed in range(3)])
        ids = [e.id for e in spectra if e is not None]
        assert ids == [RAMAN_FIRST_ID + 1, RAMAN_FIRST_ID + 2, RAMAN_FIRST_ID + 3]
        assert x.id < RAMAN_FIRST_ID
        assert xrd.store.generation() == xrd_generation  # the Raman write is not XRD's
        assert (xrd.status().size, raman.status().size) == (1, 3)
        assert xrd.database_size() == 1 and raman.database_size() == 3
        entry = raman.get(ids[1])
        assert entry.technique is Technique.RAMAN and entry.info.source_id == "R000001"
        assert isinstance(raman.get_pattern(ids[1]), RamanProfile)
        with pytest.raises(ReferenceNotFoundError):
            xrd.get(ids[1])
        with pytest.raises(ReferenceNotFoundError):
            raman.get(x.id)
        # The same (source, source id) may name an XRD and a Raman reference.
        same_key = replace(new_ref(1, unit(rng)), info=replace(raman_ref(0, embedder).info))
        assert xrd.add(same_key).info.source_id == "R000000"
        with pytest.raises(DuplicateReferenceError):
            raman.add(raman_ref(0, embedder))
        with pytest.raises(InputError, match="is an XRD pattern; this is the Raman library"):
            raman.add(new_ref(9, unit(rng), version=embedder.version))
        with raman.reading() as source:  # whole profiles, exact search
            assert source.rows().rows.shape[0] == 3 and not raman._index.approximate
        assert raman.search(raman_ref(2, embedder).embedding, 1)[0][0].entry.id == ids[2]
    with open_raman(location) as again:
        assert again.status().size == 3 and sorted(again._index.ids.tolist()) == ids
        assert again.add(raman_ref(5, embedder)).id == RAMAN_FIRST_ID + 4


def test_a_raman_library_follows_writes_like_the_xrd_one(location: str | Path) -> None:
    """Two replicas' Raman libraries on one backend: an add on one is found on the other."""
    embedder = FakeRamanEmbedder()
    with open_raman(location) as one, open_raman(location) as two:
        follower = LibraryFollower(two, interval_s=0.2).start()
        try:
            new = raman_ref(4, embedder)
            added = one.add(new)
            deadline = time.monotonic() + 5
            while two.status().size < 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert [m.entry.id for m in two.search(new.embedding, 1)[0]] == [added.id]
            two.delete(added.id)
            assert one.sync() and one.status().size == 0
        finally:
            follower.stop()
