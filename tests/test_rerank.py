"""The profile re-rank: shift-tolerant correlation and the fused score."""

from __future__ import annotations

import numpy as np
import pytest

from indexer import rerank_weights
from indexer.rerank_weights import best
from xrdid.grid import MODEL_GRID
from xrdid.phases import MAX_SHIFT_STEPS
from xrdid.rerank import (
    PROFILE_WEIGHT,
    RERANK_STRAIN_PENALTY,
    fused_score,
    profile_correlation,
    rerank_correlation,
)

L = MODEL_GRID.n_points


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
        assert rerank_correlation(query, EVERYWHERE, reference, strain_penalty=0.0)[0] > 0.99
        # the prior for small strains lowers the fit by penalty × |strain|
        assert rerank_correlation(query, EVERYWHERE, reference)[0] == pytest.approx(
            1.0 - RERANK_STRAIN_PENALTY * abs(strain), abs=0.01
        )
        assert profile_correlation(query, EVERYWHERE, reference)[0] < 0.5
    for strain in (-0.0075, 0.0165):  # halfway between: narrow peaks half overlap
        query = bragg_peaks(d, strain)
        assert rerank_correlation(query, EVERYWHERE, reference, strain_penalty=0.0)[0] > 0.8
    other = bragg_peaks([4.0, 3.1, 2.7, 2.0, 1.7, 1.45])[None]
    assert rerank_correlation(bragg_peaks(d, 0.02), EVERYWHERE, other)[0] < 0.5


def test_strain_penalty_prefers_the_unstrained_isostructural_match() -> None:
    """Two cubic cells 2.1% apart: without the prior both fit a scan of the
    first equally; with it the one that needs no strain wins."""
    d = np.array([4.26, 3.34, 2.46, 2.28, 1.82, 1.54, 1.38, 1.18])
    # the scan is the second cell strained by −2.1%, a strain on the grid tried
    refs = np.stack([bragg_peaks(list(d)), bragg_peaks(list(d / (1.0 - 0.021)))])
    query = bragg_peaks(list(d))
    flat = rerank_correlation(query, EVERYWHERE, refs, strain_penalty=0.0)
    assert flat[0] == pytest.approx(flat[1], abs=0.01)
    penalised = rerank_correlation(query, EVERYWHERE, refs)
    assert penalised[0] - penalised[1] == pytest.approx(RERANK_STRAIN_PENALTY * 0.021, abs=0.01)


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
        fused_score(similarity, correlation), similarity + PROFILE_WEIGHT * correlation
    )


def test_rerank_weights_pick_the_best_mean_of_top1_and_top5_ties_small() -> None:
    rows = [
        {"queries": q, "correlation": c, "candidates": k, "weight": w, "top1": t1, "top5": t5}
        for q, c, k, w, t1, t5 in [
            ("a", "shifts", 50, 0.0, 0.6, 0.80),
            ("b", "shifts", 50, 0.0, 0.6, 0.80),
            ("a", "shifts", 50, 0.5, 0.7, 0.90),
            ("b", "shifts", 50, 0.5, 0.7, 0.86),
            ("a", "shifts", 300, 0.5, 0.7, 0.90),
            ("b", "shifts", 300, 0.5, 0.7, 0.86),
            ("a", "shifts", 300, 1.0, 0.7, 0.95),
            ("b", "shifts", 300, 1.0, 0.7, 0.70),
            ("a", "strain", 300, 2.0, 0.6, 0.92),  # best top-5, worse top-1
            ("b", "strain", 300, 2.0, 0.6, 0.86),
        ]
    ]
    assert best(rows) == ("shifts", 50, 0.5)


def test_rerank_weights_command_sweeps_every_setting(run_study) -> None:
    text, rows = run_study(rerank_weights.main)
    isotropic = [r for r in rows if "correlation" in r]
    settings = {(r["queries"], r["correlation"], r["candidates"], r["weight"]) for r in isotropic}
    assert (
        len(settings)
        == len(isotropic)
        == (
            len(rerank_weights.TUNING_SETS)
            * len(rerank_weights.CORRELATIONS)
            * len(rerank_weights.CANDIDATES)
            * len(rerank_weights.WEIGHTS)
        )
    )
    tensor = {
        (r["queries"], r["strain_fit_candidates"], r["anisotropic_penalty"])
        for r in rows
        if "strain_fit_candidates" in r
    }
    assert len(tensor) == (
        len(rerank_weights.TUNING_SETS)
        * len(rerank_weights.STRAIN_FIT_CANDIDATES)
        * len(rerank_weights.ANISOTROPIC_PENALTIES)
    )
    search = {
        (r["queries"], r["profile_search_added"], r["bin_steps"], r["strain_step"])
        for r in rows
        if "profile_search_added" in r
    }
    added = len(rerank_weights.PROFILE_SEARCH_ADDED) - 1  # 0 added: one row, not per resolution
    assert len(search) == len(rows) - len(isotropic) - len(tensor)
    assert len(search) == len(rerank_weights.TUNING_SETS) * (
        1 + added * len(rerank_weights.PROFILE_SEARCH_RESOLUTIONS)
    )
    assert all(0.0 <= r["top1"] <= 1.0 and 0.0 <= r["top5"] <= 1.0 for r in rows)
    assert "{}, {} candidates, weight {:.2f}".format(*best(rows)) in text
    assert "{} candidates, prior {:g}".format(*rerank_weights.best_strain_fit(rows)) in text
    assert "{} added, bins of {} steps".format(*rerank_weights.best_profile_search(rows)) in text


def test_best_profile_search_is_the_cheapest_within_the_tolerance() -> None:
    rows = [
        {
            "queries": q,
            "profile_search_added": n,
            "bin_steps": b,
            "strain_step": e,
            "top1": t1,
            "top5": t5,
        }
        for q, n, b, e, t1, t5 in [
            ("a", 0, 6, 0.006, 0.800, 0.900),
            ("a", 10, 6, 0.006, 0.810, 0.925),  # the best
            ("a", 10, 15, 0.01, 0.810, 0.923),  # within 0.1 point: coarser, so chosen
            ("a", 20, 15, 0.01, 0.810, 0.925),  # as good, but adds more
            ("a", 10, 10, 0.008, 0.805, 0.915),  # 0.75 point worse
        ]
    ]
    assert rerank_weights.best_profile_search(rows) == (10, 15, 0.01)
    rows[2]["top5"] = 0.915  # now 0.5 point worse than the best
    assert rerank_weights.best_profile_search(rows) == (10, 6, 0.006)


def test_rerank_weights_correlations_use_the_prior_their_name_says() -> None:
    from functools import partial

    for name, correlate in rerank_weights.CORRELATIONS.items():
        if isinstance(correlate, partial):
            named = float(name.split("penalty ")[1]) if "penalty" in name else 0.0
            assert correlate.keywords["strain_penalty"] == named, name


def test_best_strain_fit_ties_go_to_fewer_candidates_then_the_stronger_prior() -> None:
    rows = [
        {"queries": q, "strain_fit_candidates": n, "anisotropic_penalty": p, "top1": t1, "top5": t5}
        for q, n, p, t1, t5 in [
            ("a", 0, 1.0, 0.80, 0.90),
            ("a", 5, 1.0, 0.82, 0.92),
            ("a", 5, 2.0, 0.82, 0.92),
            ("a", 10, 2.0, 0.82, 0.92),
        ]
    ]
    assert rerank_weights.best_strain_fit(rows) == (5, 2.0)
    rows.append({**rows[-1], "top5": 0.95})
    rows = [r for r in rows if not (r["strain_fit_candidates"] == 10 and r["top5"] == 0.92)]
    assert rerank_weights.best_strain_fit(rows) == (10, 2.0)
