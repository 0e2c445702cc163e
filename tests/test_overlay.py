"""The overlay's d-spacing axis: round values, spaced so their labels do not crowd."""

from __future__ import annotations

import numpy as np
import pytest

from xrdid.grid import d_to_two_theta
from xrdid.overlay import d_ticks

CU = 1.54056


@pytest.mark.parametrize(("lo", "hi"), [(5.0, 90.0), (5.0, 70.0), (18.2, 63.9), (2.5, 40.0)])
def test_d_ticks_are_spread_over_the_axis_without_crowding(lo: float, hi: float) -> None:
    ticks = d_ticks(lo, hi, CU)
    angles = np.array([float(d_to_two_theta(d, CU)) for d in ticks])
    assert len(ticks) >= 5
    assert np.all((angles >= lo) & (angles <= hi))
    # Low angle, where d changes fastest, too: 10, 12, 14 and 16 Å lie within
    # 3.4° of each other at Cu Kα.
    assert np.all(np.diff(angles) >= 0.045 * (hi - lo) - 1e-9)
    assert angles[0] - lo < 0.15 * (hi - lo) and hi - angles[-1] < 0.15 * (hi - lo)


def test_d_ticks_stop_where_the_radiation_cannot_reach() -> None:
    """At Cu Kα no d below λ/2 = 0.77 Å diffracts."""
    assert min(d_ticks(5.0, 179.0, CU)) > CU / 2.0
