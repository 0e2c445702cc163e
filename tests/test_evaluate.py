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


def test_another_split_of_the_same_size_does_not_read_the_first_ones_caches(
    data, rock_salt_classes, tmp_path
):
    lib, _ = synthetic_rows(data, n_closed=3, per_held_out=2, seed=5, cache_dir=tmp_path)
    moved = TrainingSet(
        train=[*rock_salt_classes[:3], rock_salt_classes[4]],
        held_out=[rock_salt_classes[3]],
        rejected={},
        seed=0,
    )
    other, sets = synthetic_rows(moved, n_closed=3, per_held_out=2, seed=5, cache_dir=tmp_path)
    assert other.labels == ["c0", "c1", "c2", "c4", "c3"]
    np.testing.assert_array_equal(other.inputs[3], lib.inputs[4])  # c4's reference
    np.testing.assert_array_equal(other.inputs[4], lib.inputs[3])
    assert sets["low strain"][1].truths == [{"c3"}, {"c3"}]


def test_score_single_phase_and_mixtures():
    ranked = [["a", "b", "c"], ["x", "a", "y"]]
    assert score(ranked, [{"a"}, {"a"}], mixture=False) == (0.5, 1.0)
    # Mixtures: top-1 is a phase; top-5 is the share of the phases found.
    assert score(ranked, [{"a", "z"}, {"y", "q"}], mixture=True) == (0.5, 0.5)


def test_miss_breakdown_sorts_misses_by_cause(rock_salt_classes):
    """Rock-salt cells of a = 3.9, 4.4, 5.0, 5.6, 6.1 Å (all Fm-3m) and one
    query per cell: a hit, a look-alike miss, a miss outside the candidates."""
    from dataclasses import replace

    from indexer.evaluate import Library, Queries, miss_breakdown

    classes = rock_salt_classes[:4] + [replace(rock_salt_classes[4], space_group_number=221)]
    lib = Library(
        np.zeros((5, 2, 4)),
        [c.key for c in classes],
        [c.sticks[0] for c in classes],
        [c.space_group_number for c in classes],
    )
    queries = Queries(np.zeros((4, 2, 4)), [{"c0"}, {"c1"}, {"c2"}, {"c3"}])
    ranked = [[0, 1], [4, 2], [4], [4]]  # c1: c2 (same group, 5.0 vs 4.4 Å) ranks first
    misses = miss_breakdown(lib, queries, ranked, [True, True, False, True])
    assert (misses.queries, misses.missed) == (4, 3)
    assert misses.outside_candidates == 1  # c2
    assert misses.isostructural == 1  # c1; c3 met only c4, of another space group
    assert misses.cell_edge_differences == pytest.approx([5.0 / 4.4 - 1.0], rel=1e-3)
    assert "3 of 4 missed" in misses.describe()


def test_within_reach_counts_misses_beside_a_near_twin(rock_salt_classes):
    """A rock salt of 3.92 Å is within any augmentation's reach of the 3.9 Å
    one (a strain of 0.5%); one of 6.1 Å is not of the 4.4 Å one."""
    from pymatgen.core import Lattice, Structure

    from indexer.evaluate import (
        Library,
        Misses,
        Queries,
        Reach,
        _reference_job,
        closeness_to_truth,
        within_reach,
    )
    from xrdid.sticks import simulate_sticks

    twin = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(3.92), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )
    sticks = [c.sticks[0] for c in rock_salt_classes] + [simulate_sticks(twin)]
    lib = Library(
        np.stack([_reference_job(s) for s in sticks]), ["c0", "c1", "c2", "c3", "c4", "twin"]
    )
    queries = Queries(lib.inputs[[0, 1, 2]], [{"c0"}, {"c1"}, {"c2"}])
    # Unaugmented queries are their own reference, shifts and strains aside.
    np.testing.assert_allclose(closeness_to_truth(lib, queries), 1.0, atol=1e-3)

    closeness = np.array([0.5, 0.6, 0.7, 0.8, 0.9, 0.95])  # 90% quantile: 0.925
    ranked = [[5, 2], [4, 3], [2, 5]]  # c0 behind its twin, c1 behind strangers, c2 found
    reach = within_reach(lib, queries, ranked, closeness)
    assert reach.threshold == pytest.approx(0.925)
    assert reach.median == pytest.approx(0.75)
    assert reach.misses == 1

    misses = Misses(3, 2, 0, 0, [], Reach(0.75, 0.925, 1))
    assert "1 of the misses" in misses.describe()
    assert "top-5 would be 66.7%" in misses.describe()  # 1 found + 1 within reach, of 3
