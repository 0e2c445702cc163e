"""How `python -m indexer rerank-weights` sweeps the ranking's settings and picks them."""

from __future__ import annotations

from indexer import rerank_weights
from indexer.rerank_weights import best


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


def test_rerank_weights_correlations_use_the_prior_and_scale_their_name_says() -> None:
    for name, config in rerank_weights.CORRELATIONS.items():
        named = float(name.split("penalty ")[1]) if "penalty" in name else 0.0
        assert config.strain_penalty == named, name
        assert config.sqrt_intensity == ("√intensity" in name), name
        assert (config.strain_max > 0) == ("strain" in name), name


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
