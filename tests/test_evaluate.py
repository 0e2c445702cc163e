"""The evaluation's synthetic query sets and its scoring."""

from __future__ import annotations

import numpy as np
import pytest

from indexer.evaluate import score, synthetic_rows
from indexer.training_set import TrainingSet


@pytest.fixture(scope="module")
def data(rock_salt_classes) -> TrainingSet:
    return TrainingSet(
        train=rock_salt_classes[:4], held_out=rock_salt_classes[4:], rejected={}, seed=0
    )


def test_query_sets_are_paired_and_cached(data, tmp_path):
    lib, sets = synthetic_rows(data, n_closed=3, per_held_out=2, seed=5, cache_dir=tmp_path)
    assert lib.labels == ["c0", "c1", "c2", "c3", "c4"]
    assert lib.inputs.shape[:2] == (5, 2)
    (closed, open_set), (closed_low, open_low) = sets["full augmentation"], sets["low strain"]
    assert closed.truths == closed_low.truths and len(closed.truths) == 3
    assert open_set.truths == open_low.truths == [{"c4"}, {"c4"}]
    # Same materials and seeds, other strain: the queries differ.
    assert not np.allclose(closed.inputs, closed_low.inputs)

    assert not list(tmp_path.glob("*.partial*"))  # caches are renamed into place
    again_lib, again = synthetic_rows(data, n_closed=3, per_held_out=2, seed=5, cache_dir=tmp_path)
    np.testing.assert_array_equal(again_lib.inputs, lib.inputs)
    np.testing.assert_array_equal(again["low strain"][0].inputs, closed_low.inputs)


def test_score_single_phase_and_mixtures():
    ranked = [["a", "b", "c"], ["x", "a", "y"]]
    assert score(ranked, [{"a"}, {"a"}], mixture=False) == (0.5, 1.0)
    # Mixtures: top-1 is a phase; top-5 is the share of the phases found.
    assert score(ranked, [{"a", "z"}, {"y", "q"}], mixture=True) == (0.5, 0.5)


def test_miss_breakdown_sorts_misses_by_cause(rock_salt_classes):
    """Rock-salt cells of a = 3.9, 4.4, 5.0, 5.6, 6.1 Å (all Fm-3m) and one
    query per cell: a hit, a look-alike miss, a miss outside the candidates."""
    from dataclasses import replace

    from indexer.evaluate import RERANK_CANDIDATES, Library, Queries, miss_breakdown

    classes = rock_salt_classes[:4] + [replace(rock_salt_classes[4], space_group_number=221)]
    lib = Library(
        np.zeros((5, 2, 4)),
        [c.key for c in classes],
        [c.sticks[0] for c in classes],
        [c.space_group_number for c in classes],
    )
    queries = Queries(np.zeros((4, 2, 4)), [{"c0"}, {"c1"}, {"c2"}, {"c3"}])
    ranked = [[0, 1], [4, 2], [4], [4]]  # c1: c2 (same group, 5.0 vs 4.4 Å) ranks first
    misses = miss_breakdown(lib, queries, ranked, [0, 3, RERANK_CANDIDATES, 7])
    assert (misses.queries, misses.missed) == (4, 3)
    assert misses.outside_candidates == 1  # c2
    assert misses.isostructural == 1  # c1; c3 met only c4, of another space group
    assert misses.cell_edge_differences == pytest.approx([5.0 / 4.4 - 1.0], rel=1e-3)
    assert "3 of 4 missed" in misses.describe()
