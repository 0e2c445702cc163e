"""The reference library: storage, exact search, filters, crash consistency."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from xrdid.errors import InputError
from xrdid.grid import MODEL_GRID
from xrdid.library import (
    DuplicateReferenceError,
    ElementFilter,
    Library,
    Match,
    MeasuredProfile,
    NewReference,
    ReferenceInfo,
    ReferenceKind,
    ReferenceNotFoundError,
    decode_pattern,
    decode_profile,
    encode_pattern,
    encode_profile,
    index_path_for,
    model_view,
    parse_elements,
)
from xrdid.preprocess import BaselineMethod, PreprocessedPattern
from xrdid.ranking import SERVED, Query, RankingConfig, rank
from xrdid.sticks import StickPattern
from xrdid.technique import Technique
from xrdid.wavelengths import CU_KALPHA, anode

DIM = 16


class FakeEmbedder:
    """A stand-in model: a fixed random projection of the preprocessed
    intensity, different per version (so a version change changes vectors)."""

    technique = Technique.XRD

    def __init__(self, version: str = "fake-a", dim: int = DIM) -> None:
        self.version = version
        self.dim = dim
        seed = sum(version.encode())
        self._projection = (
            np.random.default_rng(seed).standard_normal((4251, dim)).astype(np.float32)
        )
        self.calls = 0

    def embed(self, patterns: Sequence[PreprocessedPattern]) -> np.ndarray:
        self.calls += len(patterns)
        x = np.stack([p.intensity for p in patterns]).astype(np.float32) @ self._projection
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def sticks(seed: int, n: int = 12) -> StickPattern:
    """A small random stick pattern (cubic-ish cell) — cheap to store and render."""
    rng = np.random.default_rng(seed)
    d = np.sort(rng.uniform(1.2, 8.0, n))[::-1]
    return StickPattern(
        d_angstrom=d,
        structure_factor=rng.uniform(0.05, 1.0, n),
        hkl=rng.integers(-4, 5, (n, 3)),
        reciprocal_lattice=np.eye(3) / 5.0,
    )


def unit(rng: np.random.Generator, dim: int = DIM) -> np.ndarray:
    v = rng.standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def new_ref(
    i: int,
    embedding: np.ndarray,
    elements: tuple[str, ...] = ("O", "Si"),
    version: str = "fake-a",
    source: str = "test",
) -> NewReference:
    return NewReference(
        info=ReferenceInfo(
            name=f"ref {i}",
            source=source,
            source_id=str(i),
            formula="".join(elements) if elements else None,
            elements=elements,
            space_group_symbol="P1",
            space_group_number=1,
            crystal_system="triclinic",
        ),
        pattern=sticks(i),
        embedding=embedding,
        model_version=version,
    )


@pytest.fixture()
def lib_path(tmp_path: Path) -> Path:
    return tmp_path / "lib.sqlite"


def fill(lib: Library, n: int, seed: int = 0, start: int = 0) -> dict[int, np.ndarray]:
    rng = np.random.default_rng(seed)
    vectors = {}
    for i in range(start, start + n):
        v = unit(rng)
        entry = lib.add(new_ref(i, v))
        vectors[entry.id] = v
    return vectors


def assert_consistent(lib: Library) -> None:
    missing, extra = lib.verify()
    assert missing.size == 0 and extra.size == 0, (missing, extra)


# ----------------------------------------------------------------- basics


def test_add_get_search_roundtrip(lib_path: Path) -> None:
    with Library.open(lib_path, FakeEmbedder()) as lib:
        vectors = fill(lib, 20)
        rid, v = next(iter(vectors.items()))
        entry = lib.get(rid)
        assert entry.info.name == "ref 0" and entry.kind is ReferenceKind.CALCULATED
        assert entry.info.elements == ("O", "Si")
        (matches,) = lib.search(v, 3)
        assert [m.rank for m in matches] == [1, 2, 3]
        assert matches[0].entry.id == rid
        assert matches[0].similarity == pytest.approx(1.0, abs=1e-5)
        assert matches[0].similarity >= matches[1].similarity >= matches[2].similarity
        status = lib.status()
        assert status.size == 20 and status.version == f"g{status.generation}-n20"


def test_search_results_are_exact(lib_path: Path) -> None:
    rng = np.random.default_rng(3)
    with Library.open(lib_path, FakeEmbedder()) as lib:
        vectors = fill(lib, 200, seed=3)
        ids = np.array(list(vectors))
        matrix = np.stack(list(vectors.values()))
        for _ in range(5):
            q = unit(rng)
            (matches,) = lib.search(q, 10)
            expected = ids[np.argsort(-(matrix @ q))[:10]]
            assert [m.entry.id for m in matches] == expected.tolist()


def test_k_larger_than_library_returns_all(lib_path: Path) -> None:
    with Library.open(lib_path, FakeEmbedder()) as lib:
        assert lib.search(unit(np.random.default_rng(0)), 5) == [()]
        fill(lib, 3)
        (matches,) = lib.search(unit(np.random.default_rng(1)), 50)
        assert len(matches) == 3


def test_duplicate_source_id_is_refused(lib_path: Path) -> None:
    rng = np.random.default_rng(0)
    with Library.open(lib_path, FakeEmbedder()) as lib:
        first = lib.add(new_ref(1, unit(rng)))
        with pytest.raises(DuplicateReferenceError) as caught:
            lib.add(new_ref(1, unit(rng)))
        assert caught.value.existing_id == first.id
        assert "already has source 'test' and source id '1'" in str(caught.value)
        # all or nothing: a batch with a duplicate stores none of it
        with pytest.raises(DuplicateReferenceError):
            lib.add_many([new_ref(2, unit(rng)), new_ref(1, unit(rng))])
        assert lib.find("test", "2") is None
        results = lib.add_many([new_ref(2, unit(rng)), new_ref(1, unit(rng))], skip_existing=True)
        assert results[0] is not None and results[1] is None
        assert lib.status().size == 2
        assert_consistent(lib)


def test_wrong_model_or_dimension_is_refused(lib_path: Path) -> None:
    rng = np.random.default_rng(0)
    with Library.open(lib_path, FakeEmbedder()) as lib:
        with pytest.raises(InputError, match="embedded by model fake-b"):
            lib.add(new_ref(1, unit(rng), version="fake-b"))
        with pytest.raises(InputError, match="finite 16-vector"):
            lib.add(new_ref(1, np.ones(8, dtype=np.float32) / np.sqrt(8)))
        with pytest.raises(InputError, match="norm"):
            lib.add(new_ref(1, np.ones(DIM, dtype=np.float32)))
        assert lib.status().size == 0


def test_delete_removes_from_database_and_index(lib_path: Path) -> None:
    with Library.open(lib_path, FakeEmbedder()) as lib:
        vectors = fill(lib, 10)
        rid, v = next(iter(vectors.items()))
        generation = lib.status().generation
        lib.delete(rid)
        assert lib.status().generation == generation + 1
        with pytest.raises(ReferenceNotFoundError):
            lib.get(rid)
        with pytest.raises(ReferenceNotFoundError):
            lib.delete(rid)
        (matches,) = lib.search(v, 10)
        assert rid not in {m.entry.id for m in matches} and len(matches) == 9
        assert lib.find("test", "0") is None
        assert lib._profiles([rid]) == {}  # its profile went with it
        others = [i for i in vectors if i != rid]
        assert set(lib.entries([rid, *others[:2], others[0]])) == set(others[:2])
        assert lib.entries([]) == {}
        assert set(lib._profiles(list(vectors))) == set(vectors) - {rid}
        # ids are never reused
        assert lib.add(new_ref(0, v)).id > max(vectors)
        assert_consistent(lib)
    with Library.open(lib_path, FakeEmbedder()) as lib:
        assert lib.status().size == 10
        assert_consistent(lib)


def test_patterns_roundtrip() -> None:
    stick = sticks(7)
    back = decode_pattern(encode_pattern(stick))
    assert isinstance(back, StickPattern)
    np.testing.assert_allclose(back.d_angstrom, stick.d_angstrom, rtol=1e-6)
    np.testing.assert_allclose(back.structure_factor, stick.structure_factor, rtol=1e-6)
    np.testing.assert_array_equal(back.hkl, stick.hkl)
    np.testing.assert_array_equal(back.reciprocal_lattice, stick.reciprocal_lattice)
    profile = MeasuredProfile(
        two_theta_deg=np.linspace(5, 80, 3751),
        intensity=np.random.default_rng(0).uniform(10, 1000, 3751),
        wavelength=anode("Co"),
        baseline=BaselineMethod.SNIP,
    )
    back_profile = decode_pattern(encode_pattern(profile))
    assert isinstance(back_profile, MeasuredProfile)
    np.testing.assert_array_equal(back_profile.two_theta_deg, profile.two_theta_deg)
    np.testing.assert_allclose(back_profile.intensity, profile.intensity, rtol=1e-6)
    assert back_profile.wavelength == anode("Co")
    assert back_profile.baseline is BaselineMethod.SNIP


# ----------------------------------------------------------------- element filters


def test_parse_elements() -> None:
    assert parse_elements("Fe, o ,SI") == {"Fe", "O", "Si"}
    assert parse_elements(None) == frozenset()
    with pytest.raises(InputError, match="'Xx' is not an element symbol"):
        parse_elements("Fe,Xx", "elements_all")
    with pytest.raises(InputError, match="cannot be both required"):
        ElementFilter.parse(all_of="Fe", none_of="Fe")
    with pytest.raises(InputError, match="not in the allowed set"):
        ElementFilter.parse(all_of="Fe", only_from="O")
    assert not ElementFilter.parse().active


ELEMENT_SETS = [("O", "Si"), ("Fe", "O"), ("Al", "O", "Si"), ("Ca", "C", "O"), ("Fe", "S"), ()]


def test_filtered_search_is_exact_and_returns_k(lib_path: Path) -> None:
    """Eligible references far from the query still fill all k places, in
    exactly the order a brute-force search over the eligible ones gives."""
    rng = np.random.default_rng(5)
    query = unit(rng)
    with Library.open(lib_path, FakeEmbedder()) as lib:
        vectors: dict[int, np.ndarray] = {}
        elements: dict[int, tuple[str, ...]] = {}
        for i in range(300):
            elems = ELEMENT_SETS[i % len(ELEMENT_SETS)]
            v = unit(rng)
            if elems == ("Fe", "S"):  # make the eligible ones the least similar
                v = -query + 0.3 * unit(rng)
                v /= np.linalg.norm(v)
            entry = lib.add(new_ref(i, v.astype(np.float32), elements=elems))
            vectors[entry.id], elements[entry.id] = v, elems
        filters = [
            ElementFilter.parse(all_of="S"),
            ElementFilter.parse(all_of="Fe"),
            ElementFilter.parse(none_of="O"),
            ElementFilter.parse(only_from="Si,O,Al"),
            ElementFilter.parse(all_of="O", none_of="Si,Fe"),
        ]
        for f in filters:
            eligible = [rid for rid, e in elements.items() if f.matches(e)]
            assert eligible
            (matches,) = lib.search(query, 10, f)
            expected = sorted(eligible, key=lambda r: -float(vectors[r] @ query))[:10]
            assert [m.entry.id for m in matches] == expected, f
            assert all(f.matches(m.entry.info.elements) for m in matches)
            page = lib.page(elements=f, limit=500)
            assert sorted(e.id for e in page.entries) == sorted(eligible)
            assert page.total == len(eligible)
        # unknown composition never matches a filter, but is found without one
        unknown = [rid for rid, e in elements.items() if not e]
        (everything,) = lib.search(vectors[unknown[0]], 1)
        assert everything[0].entry.id == unknown[0]
        assert lib.search(query, 5, ElementFilter.parse(all_of="Au")) == [()]


def test_filters_follow_adds_and_deletes(lib_path: Path) -> None:
    rng = np.random.default_rng(0)
    with Library.open(lib_path, FakeEmbedder()) as lib:
        fill(lib, 5)
        gold = lib.add(new_ref(99, unit(rng), elements=("Au",)))
        f = ElementFilter.parse(all_of="Au")
        (matches,) = lib.search(unit(rng), 5, f)
        assert [m.entry.id for m in matches] == [gold.id]
        lib.delete(gold.id)
        assert lib.search(unit(rng), 5, f) == [()]


def test_page_pagination_and_name_filter(lib_path: Path) -> None:
    with Library.open(lib_path, FakeEmbedder()) as lib:
        fill(lib, 23)
        seen: list[int] = []
        after = 0
        while True:
            page = lib.page(after=after, limit=10)
            assert page.total == 23
            seen.extend(e.id for e in page.entries)
            if page.next_after is None:
                break
            after = page.next_after
        assert len(seen) == 23 == len(set(seen)) and seen == sorted(seen)
        assert {e.info.name for e in lib.page(name_contains="REF 1").entries} == {
            "ref 1",
            *(f"ref {i}" for i in range(10, 20)),
        }
        assert lib.page(name_contains="100%_").total == 0
        with pytest.raises(InputError):
            lib.page(limit=0)


@pytest.mark.parametrize("bad_id", [0, -1, 2**63, -(2**63) - 1, 10**30])
def test_ids_outside_sqlite_range_are_not_found_not_overflow(lib_path: Path, bad_id: int) -> None:
    """SQLite stores signed 64-bit integers; larger ids must not reach the driver."""
    with Library.open(lib_path, FakeEmbedder()) as lib:
        fill(lib, 3)
        for method in (lib.get, lib.get_pattern, lib.delete):
            with pytest.raises(ReferenceNotFoundError):
                method(bad_id)
        assert lib.page(after=2**63 + 5).entries == ()
        assert lib.page(after=2**63 - 1).total == 3
        with pytest.raises(InputError, match="negative"):
            lib.page(after=-(2**63) - 1)
        assert_consistent(lib)


# ----------------------------------------------------------------- crash consistency


def test_crash_between_commit_and_index_save(lib_path: Path) -> None:
    """Adds committed after the last index save (the process died before
    saving) are found after reopening: the index is patched from the database."""
    lib = Library.open(lib_path, FakeEmbedder())
    fill(lib, 10)
    lib.close()  # saves the index
    lib = Library.open(lib_path, FakeEmbedder())
    later = fill(lib, 5, seed=1, start=10)
    lib.close(save=False)  # crash: the index file still holds 10 vectors
    with Library.open(lib_path, FakeEmbedder()) as reopened:
        assert reopened.status().size == 15
        assert_consistent(reopened)
        for rid, v in later.items():
            assert reopened.search(v, 1)[0][0].entry.id == rid


def test_crash_after_delete_before_index_save(lib_path: Path) -> None:
    lib = Library.open(lib_path, FakeEmbedder())
    vectors = fill(lib, 10)
    lib.save_index()
    victim = next(iter(vectors))
    lib.delete(victim)
    lib.close(save=False)  # the saved index still holds the deleted id
    with Library.open(lib_path, FakeEmbedder()) as reopened:
        assert reopened.status().size == 9
        assert_consistent(reopened)
        (matches,) = reopened.search(vectors[victim], 10)
        assert victim not in {m.entry.id for m in matches}


def test_crash_between_commit_and_index_update(
    lib_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure after the commit but before the in-memory index update: the
    add is durable and appears after reopening."""
    lib = Library.open(lib_path, FakeEmbedder())
    fill(lib, 3)

    class Boom(RuntimeError):
        pass

    def explode(*args: object) -> None:
        raise Boom

    monkeypatch.setattr(lib._index, "add", explode)
    with pytest.raises(Boom):
        lib.add(new_ref(50, unit(np.random.default_rng(9))))
    lib.close(save=False)
    with Library.open(lib_path, FakeEmbedder()) as reopened:
        assert reopened.find("test", "50") is not None
        assert reopened.status().size == 4
        assert_consistent(reopened)


def test_interrupted_index_save_keeps_old_file(
    lib_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lib = Library.open(lib_path, FakeEmbedder())
    fill(lib, 4)
    lib.save_index()
    before = index_path_for(lib_path).read_bytes()
    fill(lib, 2, seed=1, start=4)

    def crash(*args: object) -> None:
        raise OSError("disk pulled")

    monkeypatch.setattr("xrdid.files.os.replace", crash)
    with pytest.raises(OSError):
        lib.save_index()
    monkeypatch.undo()
    assert index_path_for(lib_path).read_bytes() == before
    assert not list(lib_path.parent.glob("*.tmp-*"))
    lib.close(save=False)
    with Library.open(lib_path, FakeEmbedder()) as reopened:
        assert reopened.status().size == 6
        assert_consistent(reopened)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "foreign"])
def test_damaged_or_foreign_index_is_rebuilt(lib_path: Path, tmp_path: Path, damage: str) -> None:
    with Library.open(lib_path, FakeEmbedder()) as lib:
        vectors = fill(lib, 8)
    index_file = index_path_for(lib_path)
    if damage == "truncate":
        index_file.write_bytes(index_file.read_bytes()[:100])
    elif damage == "garbage":
        index_file.write_bytes(b"\x00" * 500)
    else:  # the index of another library with the same model
        other = tmp_path / "other.sqlite"
        with Library.open(other, FakeEmbedder()) as lib:
            fill(lib, 3, seed=7)
        index_file.write_bytes(index_path_for(other).read_bytes())
    with Library.open(lib_path, FakeEmbedder()) as reopened:
        assert reopened.status().size == 8
        assert_consistent(reopened)
        rid, v = next(iter(vectors.items()))
        assert reopened.search(v, 1)[0][0].entry.id == rid


def test_model_version_change_reembeds_and_rebuilds(lib_path: Path) -> None:
    """Opening with another model recomputes every embedding from the stored
    patterns (calculated and measured) and rebuilds the index."""
    old = FakeEmbedder("fake-a")
    profile = MeasuredProfile(
        two_theta_deg=np.arange(10.0, 70.0, 0.02),
        intensity=100 + 900 * np.exp(-(((np.arange(10.0, 70.0, 0.02) - 26.6) / 0.1) ** 2)),
        wavelength=CU_KALPHA,
    )
    patterns = [sticks(1), sticks(2), sticks(3), profile]
    with Library.open(lib_path, old) as lib:
        for i, pattern in enumerate(patterns):
            view = model_view(pattern)
            lib.add(
                NewReference(
                    info=ReferenceInfo(name=f"p{i}", source="t", source_id=str(i)),
                    pattern=pattern,
                    embedding=old.embed([view])[0],
                    model_version=old.version,
                )
            )
    new = FakeEmbedder("fake-b")
    with Library.open(lib_path, new) as lib:
        assert new.calls == len(patterns)
        assert lib.model_version == "fake-b" and lib.status().size == len(patterns)
        assert_consistent(lib)
        for i, pattern in enumerate(patterns):
            query = new.embed([model_view(pattern)])
            (matches,) = lib.search(query, 1)
            assert matches[0].entry.info.name == f"p{i}"
            assert matches[0].similarity == pytest.approx(1.0, abs=1e-4)
            assert matches[0].entry.model_version == "fake-b"
    again = FakeEmbedder("fake-b")
    with Library.open(lib_path, again):
        assert again.calls == 0  # nothing left to re-embed


# ----------------------------------------------------------------- re-rank


def test_profiles_roundtrip_and_refuse_wrong_shapes() -> None:
    values = np.random.default_rng(0).uniform(0.0, 1.0, MODEL_GRID.n_points)
    back = decode_profile(encode_profile(values))
    assert back.dtype == np.float32
    # 8 bits of the square root: half a step there, at most
    np.testing.assert_allclose(np.sqrt(back), np.sqrt(values), atol=0.5 / 255 + 1e-6)
    assert decode_profile(encode_profile(np.zeros(MODEL_GRID.n_points))).max() == 0.0
    with pytest.raises(InputError, match="model grid"):
        encode_profile(values[:-1])
    with pytest.raises(InputError, match="model grid"):
        encode_profile(np.full(MODEL_GRID.n_points, np.nan))
    with pytest.raises(InputError, match="unknown encoding"):
        decode_profile(encode_pattern(sticks(1)))
    with pytest.raises(InputError, match="corrupt"):
        decode_profile(encode_profile(values)[:-10])


def ranked(
    lib: Library,
    embedding: np.ndarray,
    k: int,
    view: PreprocessedPattern,
    elements: ElementFilter | None = None,
    config: RankingConfig = SERVED,
) -> tuple[Match, ...]:
    """``k`` matches of one query as the service ranks them, over the library's source."""
    with lib.reading(elements) as source:
        (ranking,) = rank([Query(view.intensity, view.mask, embedding)], source, k, config)
        (matches,) = lib.matches([ranking.best])
    return matches


def same_embedding_refs(lib: Library) -> list[int]:
    """Three references with one embedding and different profiles."""
    vector = unit(np.random.default_rng(5))
    return [lib.add(new_ref(i, vector)).id for i in range(3)]


def test_search_with_views_ranks_by_profile_among_equal_embeddings(lib_path: Path) -> None:
    with Library.open(lib_path, FakeEmbedder()) as lib:
        ids = same_embedding_refs(lib)
        fill(lib, 10, start=100)
        for target in (2, 0, 1):
            view = model_view(sticks(target))
            matches = ranked(lib, unit(np.random.default_rng(5)), 3, view)
            assert [m.rank for m in matches] == [1, 2, 3]
            assert matches[0].entry.id == ids[target]
            assert matches[0].profile_correlation == pytest.approx(1.0, abs=1e-3)
            assert matches[0].score == pytest.approx(
                matches[0].similarity + SERVED.profile_weight * matches[0].profile_correlation
            )
            assert matches[0].score >= matches[1].score >= matches[2].score
        (plain,) = lib.search(unit(np.random.default_rng(5)), 3)
        assert all(m.profile_correlation is None and m.score == m.similarity for m in plain)


def test_rerank_respects_filters_and_k(lib_path: Path) -> None:
    with Library.open(lib_path, FakeEmbedder()) as lib:
        fill(lib, 30)
        lib.add(new_ref(500, unit(np.random.default_rng(9)), elements=("Fe", "O")))
        view = model_view(sticks(500))
        query = unit(np.random.default_rng(3))
        matches = ranked(lib, query, 4, view)
        assert len(matches) == 4
        only_fe = ranked(lib, query, 4, view, ElementFilter.parse(all_of="Fe"))
        assert [m.entry.info.name for m in only_fe] == ["ref 500"]
        assert only_fe[0].profile_correlation == pytest.approx(1.0, abs=1e-3)


def test_profile_cache_is_bounded_and_changes_no_result(
    lib_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import xrdid.library

    monkeypatch.setattr(xrdid.library, "PROFILE_CACHE_SIZE", 5)
    with Library.open(lib_path, FakeEmbedder()) as lib:
        fill(lib, 12)
        query, view = unit(np.random.default_rng(3)), model_view(sticks(4))
        first = ranked(lib, query, 8, view)  # reads every profile
        assert len(lib._profile_cache) == 5
        again = ranked(lib, query, 8, view)  # partly from the cache
        assert [(m.entry.id, m.profile_correlation) for m in again] == [
            (m.entry.id, m.profile_correlation) for m in first
        ]
        assert len(lib._profile_cache) == 5


def test_schema_1_library_is_upgraded_with_profiles(lib_path: Path) -> None:
    """A library written before profiles were stored gets them on open,
    from its stored patterns; nothing else changes."""
    import sqlite3

    with Library.open(lib_path, FakeEmbedder()) as lib:
        ids = same_embedding_refs(lib)
    connection = sqlite3.connect(lib_path)
    with connection:
        connection.execute("DROP TABLE reference_profile")
        connection.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    connection.close()
    embedder = FakeEmbedder()
    with Library.open(lib_path, embedder) as lib:
        assert embedder.calls == 3  # recomputed once
        assert lib.status().size == 3
        matches = ranked(lib, unit(np.random.default_rng(5)), 1, model_view(sticks(1)))
        assert matches[0].entry.id == ids[1]
        assert matches[0].profile_correlation == pytest.approx(1.0, abs=1e-3)
    again = FakeEmbedder()
    with Library.open(lib_path, again):
        assert again.calls == 0


def test_unknown_schema_is_refused(lib_path: Path) -> None:
    import sqlite3

    Library.open(lib_path, FakeEmbedder()).close()
    connection = sqlite3.connect(lib_path)
    with connection:
        connection.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    connection.close()
    with pytest.raises(InputError, match="schema 99"):
        Library.open(lib_path, FakeEmbedder())


# ----------------------------------------------------------------- concurrency


def test_concurrent_adds_and_searches(lib_path: Path) -> None:
    errors: list[BaseException] = []
    added: list[int] = []
    lock = threading.Lock()
    with Library.open(lib_path, FakeEmbedder()) as lib:
        fill(lib, 20)

        def writer(worker: int) -> None:
            rng = np.random.default_rng(worker)
            try:
                for i in range(25):
                    entry = lib.add(new_ref(1000 * (worker + 1) + i, unit(rng)))
                    with lock:
                        added.append(entry.id)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        def reader(worker: int) -> None:
            rng = np.random.default_rng(100 + worker)
            try:
                for _ in range(60):
                    (matches,) = lib.search(unit(rng), 5, ElementFilter.parse(all_of="Si"))
                    assert len(matches) == 5
                    lib.page(limit=5)
            except BaseException as exc:  # pragma: no cover
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(3)]
        threads += [threading.Thread(target=reader, args=(w,)) for w in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        assert len(added) == 75 == len(set(added))
        assert lib.status().size == 95
        assert_consistent(lib)


def test_shipped_library_matches_the_shipped_model() -> None:
    """model_store/library.sqlite must be rebuilt whenever the checkpoint
    changes (`make library`); otherwise every service start re-embeds it."""
    import sqlite3

    from xrdid.checkpoints import content_version
    from xrdid.data_paths import PROJECT_ROOT

    model = PROJECT_ROOT / "model_store" / "regnet1d.pt"
    library = PROJECT_ROOT / "model_store" / "library.sqlite"
    if not (model.is_file() and library.is_file()):
        pytest.skip("no shipped model and library yet")
    connection = sqlite3.connect(f"file:{library}?mode=ro", uri=True)
    try:
        (stored,) = connection.execute(
            "SELECT value FROM meta WHERE key = 'model_version'"
        ).fetchone()
        (stale,) = connection.execute(
            "SELECT COUNT(*) FROM reference WHERE model_version != ?", (stored,)
        ).fetchone()
        (no_profile,) = connection.execute(
            "SELECT COUNT(*) FROM reference "
            "WHERE id NOT IN (SELECT reference_id FROM reference_profile)"
        ).fetchone()
        profiles = [
            bytes(r[0]) for r in connection.execute("SELECT profile FROM reference_profile")
        ]
    finally:
        connection.close()
    assert stored == content_version(model.read_bytes()), (
        "rebuild the default library: make library"
    )
    assert stale == 0 and no_profile == 0
    assert all(decode_profile(p).shape == (MODEL_GRID.n_points,) for p in profiles)


def test_search_fits_strain_tensors_to_calculated_references(lib_path: Path) -> None:
    """An anisotropically strained scan of a calculated reference: the search
    reads its stick pattern and fits the strain no isotropic one matches."""
    from tests.test_ranking_strain_tensor import ANISOTROPIC, REFERENCE, strained
    from xrdid.ranking.correlation import rerank_correlation

    with Library.open(lib_path, FakeEmbedder()) as lib:
        vector = unit(np.random.default_rng(7))
        entry = lib.add(replace(new_ref(0, vector), pattern=REFERENCE))
        fill(lib, 5, start=10)
        view = model_view(strained(REFERENCE, ANISOTROPIC))
        isotropic = rerank_correlation(
            view.intensity, view.mask, model_view(REFERENCE).intensity[None]
        )[0]
        matches = ranked(lib, vector, 1, view)
        assert matches[0].entry.id == entry.id
        assert matches[0].profile_correlation > isotropic + 0.1
        assert entry.id in lib._basis_cache.get_many([entry.id], lambda ids: {})


def test_profile_search_brings_in_a_reference_the_embedding_ranks_far_down(
    lib_path: Path,
) -> None:
    """With the embedding's shortlist cut to 3, a reference whose embedding
    is orthogonal to the query's is still found by its profile, with its
    true cosine; filters, deletes and reopening keep the coarse profiles in
    step with the index."""
    three = replace(SERVED, rerank_candidates=3)
    query = unit(np.random.default_rng(5))
    orthogonal = unit(np.random.default_rng(6))
    orthogonal -= (orthogonal @ query) * query
    view = model_view(sticks(500))
    with Library.open(lib_path, FakeEmbedder()) as lib:
        fill(lib, 20)
        target = lib.add(new_ref(500, orthogonal / np.linalg.norm(orthogonal), ("Fe", "O")))
        matches = ranked(lib, query, 2, view, config=three)
        assert matches[0].entry.id == target.id
        assert matches[0].similarity == pytest.approx(0.0, abs=1e-5)
        assert matches[0].profile_correlation == pytest.approx(1.0, abs=1e-3)
        (plain,) = lib.search(query, 3)
        assert target.id not in [m.entry.id for m in plain]
        no_iron = ranked(lib, query, 2, view, ElementFilter.parse(none_of="Fe"), three)
        assert target.id not in [m.entry.id for m in no_iron]
    with Library.open(lib_path, FakeEmbedder()) as lib:  # coarse profiles read back
        assert lib._index.rows.shape[0] == len(lib._index.ids) == 21
        matches = ranked(lib, query, 2, view, config=three)
        assert matches[0].entry.id == target.id
        lib.delete(target.id)
        assert lib._index.rows.shape[0] == len(lib._index.ids) == 20
        matches = ranked(lib, query, 2, view, config=three)
        assert target.id not in [m.entry.id for m in matches]


def test_an_empty_library_set_to_approximate_search_is_searched_exactly_until_it_has_references(
    lib_path: Path,
) -> None:
    """Approximate search learns its lists and axes from the references: an
    empty library set to it opens (exact) and takes adds; reopened with
    enough references it is approximate."""
    from xrdid.library import SearchSettings

    settings = SearchSettings(mode="approximate", probe=4, profile_shortlist=0.05)
    rng = np.random.default_rng(5)
    with Library.open(lib_path, FakeEmbedder(), search=settings) as lib:
        assert not lib._index.approximate and lib.status().size == 0
        v = unit(rng)
        added = lib.add(new_ref(1, v)).id
        assert lib.search(v, 1)[0][0].entry.id == added
        fill(lib, 299, seed=6, start=2)
    with Library.open(lib_path, FakeEmbedder(), search=settings) as lib:
        assert lib._index.approximate and lib.status().size == 300
        assert lib.search(v, 1)[0][0].entry.id == added


def test_a_saved_approximate_index_takes_todays_probes_and_rebuilds_for_another_sketch_size(
    lib_path: Path,
) -> None:
    """How widely a query looks is read at every open; the sketches' size is
    built in, so another one rebuilds them."""
    from xrdid.library import SearchSettings

    with Library.open(lib_path, FakeEmbedder()) as lib:
        fill(lib, 300, seed=3)
    first = SearchSettings(mode="approximate", probe=4, profile_shortlist=0.05, sketch_dims=32)
    with Library.open(lib_path, FakeEmbedder(), search=first) as lib:
        assert lib._index.rows.sketches.shape[1] == 32 and lib._index.rows.shortlist == 0.05
    wider = SearchSettings(mode="approximate", probe=8, profile_shortlist=0.2, sketch_dims=32)
    with Library.open(lib_path, FakeEmbedder(), search=wider) as lib:
        assert lib._index.probe == 8 and lib._index.rows.shortlist == 0.2
        assert lib._index.rows.sketches.shape[1] == 32
    more = SearchSettings(mode="approximate", probe=8, profile_shortlist=0.2, sketch_dims=48)
    with Library.open(lib_path, FakeEmbedder(), search=more) as lib:
        assert lib._index.rows.sketches.shape[1] == 48
        assert_consistent(lib)


def test_approximate_search_follows_adds_deletes_and_reopens(lib_path: Path) -> None:
    """The approximate index (IVF lists, sketched 8-bit profile rows): an added
    reference is found by its own embedding, a deleted one is gone, filters
    hold, and the saved index is reloaded and patched like the exact one."""
    from xrdid.library import SearchSettings
    from xrdid.ranking.profile_search import CompressedRows

    settings = SearchSettings(mode="approximate", probe=4, profile_shortlist=0.05)
    rng = np.random.default_rng(11)
    with Library.open(lib_path, FakeEmbedder()) as lib:
        vectors = fill(lib, 300, seed=3)
    with Library.open(lib_path, FakeEmbedder(), search=settings) as lib:
        assert lib._index.approximate and isinstance(lib._index.rows, CompressedRows)
        for rid in list(vectors)[:20]:
            assert lib.search(vectors[rid], 1)[0][0].entry.id == rid
        v = unit(rng)
        added = lib.add(new_ref(1000, v, elements=("Fe",))).id
        assert lib.search(v, 1)[0][0].entry.id == added
        only_fe = lib.search(unit(rng), 3, ElementFilter(all_of=frozenset({"Fe"})))[0]
        assert [m.entry.id for m in only_fe] == [added]
        lib.delete(added)
        assert lib.search(v, 1)[0][0].entry.id != added
        assert_consistent(lib)
        with lib.reading() as source:
            query = Query(np.asarray(model_view(sticks(5)).intensity), np.ones(4251, bool), v)
            (ranking,) = rank([query], source, 5)
            assert len(ranking.best) == 5
    with Library.open(lib_path, FakeEmbedder(), search=settings) as lib:
        assert lib._index.approximate and lib.status().size == 300
        assert_consistent(lib)
    # Exact again when the setting says so: the index is rebuilt exact.
    with Library.open(lib_path, FakeEmbedder()) as lib:
        assert not lib._index.approximate and lib.status().size == 300
