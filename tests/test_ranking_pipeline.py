"""The ranking's entry point: candidates, fits and order, over any reference source."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tests.test_library import FakeEmbedder, fill, new_ref, sticks, unit
from tests.test_ranking_profile_search import EVERYWHERE, bragg_peaks, library
from xrdid.library import ElementFilter, Library, model_view
from xrdid.ranking import SERVED, ArraySource, Query, candidates, rank


def test_candidates_add_the_profile_search_to_the_embeddings() -> None:
    """The embedding's nearest, then what the profile search finds beyond
    them (here the query's own material, ranked last by cosine)."""
    profiles, spacings = library(30, seed=6)
    # Embeddings whose cosines with the query fall from 0 to 29: 12 is far down.
    angles = np.linspace(0.0, np.pi / 2, 30)
    embeddings = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)
    source = ArraySource(profiles, embeddings)
    query = Query(bragg_peaks(spacings[12], 0.02), EVERYWHERE, np.array([1.0, 0.0], np.float32))
    (hits,) = source.nearest(query.embedding[None], 3)
    ids, similarity = candidates(query, hits, source.profile_rows(SERVED.profile_search_resolution))
    assert ids[:3].tolist() == [0, 1, 2]
    assert 12 in ids[3:] and len(set(ids.tolist())) == len(ids) <= 13
    np.testing.assert_allclose(similarity, embeddings[ids] @ query.embedding, atol=1e-6)


def test_the_library_and_arrays_rank_alike(tmp_path: Path) -> None:
    """The service ranks through the library (SQLite + FAISS), the evaluation
    through arrays: the same references give the same order and scores."""
    embedder = FakeEmbedder()
    with Library.open(tmp_path / "lib.sqlite", embedder) as lib:
        fill(lib, 40)
        lib.add(new_ref(500, unit(np.random.default_rng(9)), elements=("Fe", "O")))
        ids = lib._index.ids
        with lib.reading() as source:
            profiles = source.profiles(ids)  # as stored (companded)
        embeddings = lib._index.reconstruct(ids)
        seeds = {entry.id: int(entry.info.source_id) for entry in lib.page(limit=100).entries}
        arrays = ArraySource(profiles, embeddings, [sticks(seeds[int(i)]) for i in ids])
        views = [model_view(sticks(s)) for s in (3, 17, 500)]
        queries = [
            Query(v.intensity, v.mask, e) for v, e in zip(views, embedder.embed(views), strict=True)
        ]
        few = replace(SERVED, rerank_candidates=10, profile_search_candidates=3)
        with lib.reading() as source:
            served = rank(queries, source, 5, few)
        evaluated = rank(queries, arrays, 5, few)
        for a, b in zip(served, evaluated, strict=True):
            assert [r.reference_id for r in a.best] == [int(ids[r.reference_id]) for r in b.best]
            assert [r.score for r in a.best] == pytest.approx([r.score for r in b.best], abs=1e-6)
        # An element filter restricts both the embedding's and the profile search's candidates.
        with lib.reading(ElementFilter.parse(all_of="Fe")) as source:
            (only_fe,) = rank(queries[2:], source, 5, few)
        assert [lib.get(r.reference_id).info.name for r in only_fe.best] == ["ref 500"]


def test_reordered_rescores_without_fitting_again() -> None:
    profiles, spacings = library(60, seed=3)
    embeddings = np.eye(60, 8, dtype=np.float32)
    embeddings /= np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-9)
    embeddings[8:] = 1 / np.sqrt(8)
    source = ArraySource(profiles, embeddings)
    query = Query(bragg_peaks(spacings[30], 0.01), EVERYWHERE, embeddings[0])
    (ranking,) = rank([query], source, 5)
    assert ranking.reordered(5, SERVED) == ranking.best
    assert ranking.best[0].reference_id == 30
    # Weight 0: the embedding alone decides, so its nearest comes first.
    assert ranking.reordered(1, replace(SERVED, profile_weight=0.0))[0].reference_id == 0


def test_no_eligible_reference_gives_an_empty_ranking() -> None:
    profiles, _ = library(5)
    source = ArraySource(profiles, np.eye(5, dtype=np.float32), eligible=np.zeros(5, bool))
    query = Query(profiles[0], EVERYWHERE, np.eye(5, dtype=np.float32)[0])
    (ranking,) = rank([query], source, 5)
    assert ranking.best == [] and ranking.ids.size == 0
