"""The ranking's shift- and strain-fitted profile correlation and the fused score."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from xrdid.grid import MODEL_GRID
from xrdid.ranking import SERVED, correlation
from xrdid.ranking.config import MAX_SHIFT_STEPS
from xrdid.ranking.correlation import (
    CorrelationRows,
    StoredReferences,
    isotropic_fit,
    profile_correlation,
    rerank_correlation,
    rerank_fits,
)
from xrdid.ranking.memory import ArraySource

L = MODEL_GRID.n_points
NO_PRIOR = replace(SERVED, strain_penalty=0.0)


def peaks(positions: list[int], width: float = 3.0) -> np.ndarray:
    x = np.arange(L)
    return sum(np.exp(-0.5 * ((x - p) / width) ** 2) for p in positions)


QUERY = peaks([800, 1500, 2300, 3100])
EVERYWHERE = np.ones(L, dtype=bool)


def test_same_profile_scaled_or_shifted_within_the_window_correlates_fully() -> None:
    refs = np.stack([QUERY, 3.0 * QUERY, np.roll(QUERY, MAX_SHIFT_STEPS)])
    np.testing.assert_allclose(profile_correlation(QUERY, EVERYWHERE, refs), 1.0, atol=1e-5)


def test_shift_beyond_the_window_and_other_peaks_score_lower() -> None:
    refs = np.stack([QUERY, np.roll(QUERY, 3 * MAX_SHIFT_STEPS), peaks([600, 1900, 2700])])
    r = profile_correlation(QUERY, EVERYWHERE, refs)
    assert r[0] == pytest.approx(1.0, abs=1e-5)
    assert r[1] < 0.2 and r[2] < 0.2


def test_only_the_covered_part_is_compared() -> None:
    mask = np.zeros(L, dtype=bool)
    mask[500:2000] = True
    query = np.where(mask, QUERY, 0.0)
    other_outside = QUERY + peaks([2600, 3500])  # differs only where the query has no data
    r = profile_correlation(query, mask, np.stack([QUERY, other_outside]))
    np.testing.assert_allclose(r, 1.0, atol=1e-5)


def bragg_peaks(d_angstrom: list[float], strain: float = 0.0) -> np.ndarray:
    """Peaks of these d-spacings, all scaled by 1 + strain, on the model grid."""
    two_theta = MODEL_GRID.two_theta_deg
    d = np.array(d_angstrom) * (1.0 + strain)
    centres = 2.0 * np.degrees(np.arcsin(MODEL_GRID.wavelength_angstrom / (2.0 * d)))
    return sum(np.exp(-0.5 * ((two_theta - c) / 0.05) ** 2) for c in centres)


def test_strain_is_fitted_by_the_rerank_correlation_only() -> None:
    d = [4.26, 3.34, 2.46, 2.28, 1.82, 1.54, 1.38, 1.18]
    reference = bragg_peaks(d)[None]
    for strain in (-0.03, -0.012, 0.021, 0.03):  # on the 0.3% grid of strains tried
        query = bragg_peaks(d, strain)
        assert rerank_correlation(query, EVERYWHERE, reference, NO_PRIOR)[0] > 0.99
        # the prior for small strains lowers the fit by penalty × |strain|
        assert rerank_correlation(query, EVERYWHERE, reference)[0] == pytest.approx(
            1.0 - SERVED.strain_penalty * abs(strain), abs=0.01
        )
        assert profile_correlation(query, EVERYWHERE, reference)[0] < 0.5
    for strain in (-0.0075, 0.0165):  # halfway between: narrow peaks half overlap
        query = bragg_peaks(d, strain)
        assert rerank_correlation(query, EVERYWHERE, reference, NO_PRIOR)[0] > 0.8
    other = bragg_peaks([4.0, 3.1, 2.7, 2.0, 1.7, 1.45])[None]
    assert rerank_correlation(bragg_peaks(d, 0.02), EVERYWHERE, other)[0] < 0.5


def test_strain_penalty_prefers_the_unstrained_isostructural_match() -> None:
    """Two cubic cells 2.1% apart: without the prior both fit a scan of the
    first equally; with it the one that needs no strain wins."""
    d = np.array([4.26, 3.34, 2.46, 2.28, 1.82, 1.54, 1.38, 1.18])
    # the scan is the second cell strained by −2.1%, a strain on the grid tried
    refs = np.stack([bragg_peaks(list(d)), bragg_peaks(list(d / (1.0 - 0.021)))])
    query = bragg_peaks(list(d))
    flat = rerank_correlation(query, EVERYWHERE, refs, NO_PRIOR)
    assert flat[0] == pytest.approx(flat[1], abs=0.01)
    penalised = rerank_correlation(query, EVERYWHERE, refs)
    assert penalised[0] - penalised[1] == pytest.approx(SERVED.strain_penalty * 0.021, abs=0.01)


def test_too_little_coverage_gives_zeros_not_nan() -> None:
    mask = np.zeros(L, dtype=bool)
    assert profile_correlation(QUERY, mask, np.stack([QUERY])).tolist() == [0.0]
    mask[100 : 100 + 2 * MAX_SHIFT_STEPS + 1] = True
    assert profile_correlation(QUERY, mask, np.stack([QUERY, QUERY])).tolist() == [0.0, 0.0]
    flat = np.zeros((1, L))
    assert np.isfinite(profile_correlation(QUERY, EVERYWHERE, flat)).all()


def test_fused_score_adds_the_weighted_correlation() -> None:
    similarity, correlation = np.array([0.9, 0.2]), np.array([0.1, 1.0])
    np.testing.assert_allclose(
        SERVED.fused_score(similarity, correlation),
        similarity + SERVED.profile_weight * correlation,
    )


def _stored_source(profiles: np.ndarray) -> ArraySource:
    embeddings = np.eye(len(profiles), 8, dtype=np.float32)
    return ArraySource(profiles.astype(np.float32), embeddings)


def test_references_by_id_fit_exactly_as_their_profiles() -> None:
    """The isotropic fit and the re-rank's fits read references by id through
    their source's cached rows: the same numbers as from the profiles, for
    repeated ids, other windows, and on the second reading (from the cache)."""
    profiles = np.stack(
        [peaks([790, 1510, 2300, 3090]), 2.0 * QUERY, peaks([600, 1900, 2700]), QUERY**2]
    )
    source = _stored_source(profiles)
    ids = np.array([2, 0, 3, 0, 1], dtype=np.int64)
    inner = (MODEL_GRID.two_theta_deg > 20) & (MODEL_GRID.two_theta_deg < 70)
    for mask in (EVERYWHERE, inner, EVERYWHERE):
        for config in (SERVED, replace(SERVED, sqrt_intensity=False)):
            direct = isotropic_fit(QUERY, mask, source.profiles(ids), config)
            stored = isotropic_fit(QUERY, mask, StoredReferences(source, ids), config)
            for field in ("correlation", "strain", "shift_deg"):
                np.testing.assert_array_equal(getattr(stored, field), getattr(direct, field))
    similarity = np.linspace(0.9, 0.5, ids.size)
    direct_fits = rerank_fits(QUERY, EVERYWHERE, similarity, source.profiles(ids), None)
    stored_fits = rerank_fits(QUERY, EVERYWHERE, similarity, StoredReferences(source, ids), None)
    np.testing.assert_array_equal(stored_fits.correlation(), direct_fits.correlation())
    none = isotropic_fit(QUERY, EVERYWHERE, StoredReferences(source, ids[:0]))
    assert none.correlation.shape == (0,)


def test_correlation_rows_are_made_once_and_kept_within_their_bound(monkeypatch) -> None:
    profiles = np.stack([peaks([700 + 100 * k, 2000 + 50 * k]) for k in range(6)])
    read: list[list[int]] = []
    source = _stored_source(profiles)

    def counted(ids: np.ndarray) -> np.ndarray:
        read.append(ids.tolist())
        return source.profiles(ids)

    rows = CorrelationRows(counted)
    first = rows.rows(np.array([0, 1, 1, 2]), 30, 3030, 3, True)
    again = rows.rows(np.array([2, 0]), 30, 3030, 3, True)
    assert read == [[0, 1, 2]]  # each made once, repeats and all
    np.testing.assert_array_equal(again, first[[3, 0]])
    rows.rows(np.array([0]), 60, 3030, 3, True)  # another window is another row
    assert read[-1] == [0]
    monkeypatch.setattr(correlation, "_CACHED_ROWS", 3)
    rows.rows(np.array([3, 4, 5]), 30, 3030, 3, True)  # the oldest go: 1, 2 and 0's
    rows.rows(np.array([3]), 30, 3030, 3, True)  # 3 used again …
    rows.rows(np.array([1]), 30, 3030, 3, True)  # … so 4 goes for 1
    assert read[-2:] == [[3, 4, 5], [1]]
    rows.rows(np.array([3, 5]), 30, 3030, 3, True)
    assert read[-1] == [1]  # both still there
    rows.rows(np.array([4]), 30, 3030, 3, True)
    assert read[-1] == [4]
