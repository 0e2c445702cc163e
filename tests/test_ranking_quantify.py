"""Weight percents from fitted scales and reference intensity ratios."""

from __future__ import annotations

import pytest

from xrdid.ranking.quantify import weight_percents


def test_weight_is_scale_over_rir_and_they_sum_to_100() -> None:
    # 1:1 by weight with corundum (RIR 1) shows quartz (RIR 3.5) 3.5× as strong.
    result = weight_percents(["quartz", "corundum"], [3.5, 1.0], [0.0, 0.0], [3.5, 1.0])
    assert result.percent == pytest.approx((50.0, 50.0))
    assert result.amorphous_percent is None and result.notes == (None, None)
    three = weight_percents(["a", "b", "c"], [2.0, 1.0, 1.0], [0.0] * 3, [2.0, 1.0, 0.5])
    assert three.percent == pytest.approx((25.0, 25.0, 50.0))


def test_deviations_propagate_from_the_scales() -> None:
    exact = weight_percents(["a", "b"], [1.0, 1.0], [0.0, 0.0], [1.0, 1.0])
    noisy = weight_percents(["a", "b"], [1.0, 1.0], [0.1, 0.0], [1.0, 1.0])
    assert exact.sd == pytest.approx((0.0, 0.0))
    # ∂w_a/∂a = b/(a+b)² = 0.25 → 0.1 × 0.25 × 100 = 2.5; b moves as much the other way.
    assert noisy.sd == pytest.approx((2.5, 2.5))


def test_an_internal_standard_makes_percents_absolute_and_leaves_the_amorphous() -> None:
    # Corundum added at 20 wt%; the crystalline phases found sum to less than 100.
    result = weight_percents(
        ["quartz", "corundum"], [3.5, 1.0], [0.0, 0.0], [3.5, 1.0], standard=(1, 20.0)
    )
    assert result.percent == pytest.approx((20.0, 20.0))
    assert result.amorphous_percent == pytest.approx(60.0)


def test_a_phase_without_rir_is_named_and_the_rest_say_so() -> None:
    result = weight_percents(["quartz", "kerogen"], [1.0, 0.5], [0.0, 0.0], [3.5, None])
    assert result.percent[1] is None
    assert "kerogen has no reference intensity ratio" in (result.notes[1] or "")
    assert result.percent[0] == pytest.approx(100.0)
    assert "relative to the phases with a reference intensity ratio" in (result.notes[0] or "")


def test_a_standard_without_rir_gives_no_absolute_percents() -> None:
    result = weight_percents(["quartz", "corundum"], [1.0, 1.0], [0.0, 0.0], [3.5, None], (1, 20.0))
    assert result.percent == (None, None) and result.amorphous_percent is None
    assert "internal standard" in (result.notes[0] or "")
