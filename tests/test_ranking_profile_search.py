"""The whole-library profile search that adds candidates to the re-rank."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from xrdid.grid import MODEL_GRID
from xrdid.ranking import SERVED, SearchResolution
from xrdid.ranking.config import MAX_SHIFT_STEPS
from xrdid.ranking.correlation import profile_correlation
from xrdid.ranking.profile_search import (
    coarse_rows,
    profile_search,
)
from xrdid.ranking.rows import square_roots

L = MODEL_GRID.n_points
EVERYWHERE = np.ones(L, dtype=bool)
BINS = SERVED.profile_search_resolution.bin_steps


def bragg_peaks(d_angstrom: np.ndarray, strain: float = 0.0, shift_deg: float = 0.0) -> np.ndarray:
    """Unit peaks of these d-spacings, scaled by 1 + strain, on the model grid."""
    d = np.asarray(d_angstrom) * (1.0 + strain)
    centres = 2.0 * np.degrees(np.arcsin(MODEL_GRID.wavelength_angstrom / (2.0 * d))) + shift_deg
    return np.exp(-0.5 * ((MODEL_GRID.two_theta_deg[:, None] - centres) / 0.06) ** 2).sum(axis=1)


def library(n: int, seed: int = 0) -> tuple[np.ndarray, list[np.ndarray]]:
    """``n`` random 'materials' (8–14 d-spacings between 1.1 and 8 Å) as profiles."""
    rng = np.random.default_rng(seed)
    spacings = [rng.uniform(1.1, 8.0, int(rng.integers(8, 15))) for _ in range(n)]
    return np.stack([bragg_peaks(d) for d in spacings]), spacings


def test_a_strained_shifted_query_finds_its_material_first() -> None:
    profiles, spacings = library(400)
    rows = coarse_rows(profiles)
    assert rows.shape == (400, L // BINS)
    for target, strain, shift in ((17, 0.025, 0.1), (230, -0.018, -0.2), (399, 0.0, 0.0)):
        query = 5.0 * bragg_peaks(spacings[target], strain, shift)  # scale does not matter
        found = profile_search(query, EVERYWHERE, rows, k=10)
        assert found[0] == target
        assert len(found) == 10 and len(set(found.tolist())) == 10


@pytest.mark.parametrize(
    "resolution",
    [SERVED.profile_search_resolution, SearchResolution(bin_steps=6, strain_step=0.006)],
)
def test_it_ranks_as_the_rerank_correlation_at_its_resolution(
    resolution: SearchResolution,
) -> None:
    """Where its bins line up with the re-rank's window it computes the very
    same correlations: precomputed rows, the window's mean taken out through
    the standardised trials."""
    profiles, spacings = library(300, seed=1)
    bins = resolution.bin_steps
    start = -MAX_SHIFT_STEPS % bins  # start + the shift margin: a whole bin
    mask = np.zeros(L, dtype=bool)
    mask[start : L - 40] = True
    query = np.where(mask, bragg_peaks(spacings[5], 0.012) + 0.5 * bragg_peaks(spacings[9]), 0.0)
    expected = profile_correlation(
        square_roots(query),
        mask,
        square_roots(profiles),
        SERVED.strain_max,
        resolution.strain_step,
        bins,
        SERVED.strain_penalty,
    )
    rows = coarse_rows(profiles, resolution)
    assert rows.shape == (300, L // bins)
    config = replace(SERVED, profile_search_resolution=resolution)
    found = profile_search(query, mask, rows, config=config, k=20)
    np.testing.assert_array_equal(found, np.argsort(-expected, kind="stable")[:20])
    assert set(found[:2].tolist()) == {5, 9}


def test_only_the_covered_range_counts() -> None:
    profiles, spacings = library(200, seed=2)
    mask = np.zeros(L, dtype=bool)
    mask[1000:3000] = True
    # Another material's peaks where the query has no data change nothing.
    query = np.where(mask, bragg_peaks(spacings[42]), 0.0)
    twin = np.where(mask, profiles[42], profiles[7])
    rows = coarse_rows(np.concatenate([profiles, twin[None]]))
    found = profile_search(query, mask, rows, k=2)
    assert set(found.tolist()) == {42, 200}


def test_eligible_flat_and_edge_cases() -> None:
    profiles, spacings = library(50, seed=3)
    profiles[10] = 0.0  # a reference without a profile yet
    profiles[11] = 2.0  # a flat one
    rows = coarse_rows(profiles)
    query = bragg_peaks(spacings[4])
    eligible = np.ones(50, dtype=bool)
    eligible[4] = False
    assert 4 not in profile_search(query, EVERYWHERE, rows, k=50, eligible=eligible)
    everything = profile_search(query, EVERYWHERE, rows, k=100)
    assert len(everything) == 48 and not {10, 11} & set(everything.tolist())
    assert profile_search(query, EVERYWHERE, rows, k=0).size == 0
    assert profile_search(query, EVERYWHERE, rows[:0]).size == 0
    assert profile_search(query, np.zeros(L, dtype=bool), rows).size == 0
    narrow = np.zeros(L, dtype=bool)
    narrow[2000 : 2000 + 2 * MAX_SHIFT_STEPS + 6] = True  # too little to shift and correlate
    assert profile_search(query, narrow, rows).size == 0
    none = np.zeros(50, dtype=bool)
    assert profile_search(query, EVERYWHERE, rows, eligible=none).size == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rows_are_float32_whatever_the_profiles(dtype: type) -> None:
    profiles, _ = library(3, seed=4)
    assert coarse_rows(profiles.astype(dtype)).dtype == np.float32
    assert coarse_rows(profiles[0]).shape == (1, L // BINS)


# --------------------------------------------------------------------------- compressed rows


def test_compressed_rows_find_the_same_material_and_shortlisting_every_row_is_exact() -> None:
    """8-bit rows with sketches: with every row shortlisted, a strained,
    shifted query finds what the float rows find (quantising changes no top 3
    here); with a 5% shortlist, strained and shifted queries still find their
    material first, filters hold, and rows leave and join."""
    from xrdid.ranking.profile_search import CompressedRows

    profiles, spacings = library(600, seed=3)
    rows = coarse_rows(profiles)
    compressed = CompressedRows.train(rows, dims=64, shortlist=0.05).append(rows)
    assert compressed.codes.dtype == np.uint8 and compressed.shape == rows.shape
    assert compressed.codes.nbytes * 4 == rows.nbytes
    assert compressed.sketches.shape == (600, 64)
    every = replace(compressed, shortlist=1.0)
    cases = ((17, 0.02, 0.1), (444, -0.015, -0.2), (599, 0.0, 0.0), (5, 0.03, -0.25))
    for target, strain, shift in cases:
        query = bragg_peaks(spacings[target], strain, shift)
        exact = profile_search(query, EVERYWHERE, rows, k=3).tolist()
        assert exact[0] == target
        assert profile_search(query, EVERYWHERE, every, k=3).tolist() == exact
        assert profile_search(query, EVERYWHERE, compressed, k=3)[0] == target
    # 5% of 600 rows compared in full, never fewer than the candidates asked for.
    query = bragg_peaks(spacings[5], 0.01, 0.0)
    assert len(compressed.shortlisted(query, EVERYWHERE, None, SERVED)) == 30
    eligible = np.zeros(600, dtype=bool)
    eligible[::7] = True
    shortlist = compressed.shortlisted(query, EVERYWHERE, eligible, SERVED)
    assert len(shortlist) == SERVED.profile_search_candidates and eligible[shortlist].all()
    found = profile_search(query, EVERYWHERE, compressed, eligible, k=10)
    assert len(found) == 10 and eligible[found].all()
    # Rows leave and join: take() and append() keep codes and sketches aligned.
    kept = compressed.take(np.arange(600) != 250).append(rows[250:251])
    query = bragg_peaks(spacings[250], 0.0, 0.0)
    assert profile_search(query, EVERYWHERE, kept, k=1).tolist() == [599]


@pytest.mark.parametrize(("bin_steps", "n_shifts"), [(3, 11), (15, 3), (30, 1)])
def test_trials_shift_by_whole_bins_with_the_unshifted_one_among_them(
    bin_steps: int, n_shifts: int
) -> None:
    """Shifts are the whole bins within the range (0 alone for a bin wider
    than it: the sketches' bins), and each trial is the query shifted so."""
    from xrdid.ranking.rows import binned, query_trials, standardised, trial_shifts

    shifts = trial_shifts(bin_steps)
    assert len(shifts) == n_shifts and 0 in shifts and (np.diff(shifts) == bin_steps).all()
    assert (shifts == -shifts[::-1]).all() and np.abs(shifts).max() <= MAX_SHIFT_STEPS
    query = np.random.default_rng(0).random(L).astype(np.float32)
    lo, hi = 300, 300 + 40 * bin_steps
    trials = query_trials(query, lo, hi, np.zeros(1), bin_steps)
    assert trials.shape == (len(shifts), 40)
    for trial, shift in zip(trials, shifts, strict=True):
        expected = standardised(binned(query[None, lo + shift : hi + shift], bin_steps))[0]
        np.testing.assert_allclose(trial, expected, atol=1e-5)


def test_a_strained_trial_reads_the_query_where_the_strain_moved_its_peaks() -> None:
    """Strained trials read the window of the whole strained scan: the peak
    of d·(1 + ε) at the angle of d."""
    from xrdid.grid import MODEL_GRID
    from xrdid.ranking.rows import binned, query_trials, standardised, trial_shifts

    query = np.random.default_rng(1).random(L).astype(np.float32)
    lo, hi, strain = 600, 600 + 300, 0.02
    trials = query_trials(query, lo, hi, np.array([0.0, strain]), 3)
    grid = MODEL_GRID.two_theta_deg
    read_at = 2 * np.degrees(np.arcsin(np.sin(np.radians(grid / 2)) / (1 + strain)))
    strained = np.interp(read_at, grid, query)
    unshifted = len(trial_shifts(3)) + len(trial_shifts(3)) // 2  # the strain's shift 0
    expected = standardised(binned(strained[None, lo:hi].astype(np.float32), 3))[0]
    np.testing.assert_allclose(trials[unshifted], expected, atol=1e-5)


def test_every_trial_is_standardised_and_a_window_without_peaks_stays_zero() -> None:
    """Each trial row has mean 0 and norm 1 (its dot product with a
    standardised row is a Pearson r), as standardising it alone gives; a
    window the query is flat over (nothing measured there, or a plateau)
    gives a zero row, not rounding blown up."""
    from xrdid.ranking.rows import binned, query_trials, standardised, trial_shifts, trial_strains

    query = np.random.default_rng(2).random(L).astype(np.float32)
    strains = trial_strains(0.035, 0.003)
    lo, hi = 300, 300 + 300 * 3
    trials = query_trials(query, lo, hi, strains, 3)
    np.testing.assert_allclose(trials.mean(axis=1), 0.0, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(trials, axis=1), 1.0, atol=1e-5)
    unshifted = standardised(binned(query[None, lo:hi], 3))[0]
    middle = len(strains) // 2 * len(trial_shifts(3)) + len(trial_shifts(3)) // 2
    np.testing.assert_allclose(trials[middle], unshifted, atol=1e-5)

    for flat in (np.zeros(L, dtype=np.float32), np.full(L, 0.7, dtype=np.float32)):
        assert not query_trials(flat, lo, hi, strains, 3).any()
