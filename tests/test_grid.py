import numpy as np
import pytest

from xrdid.grid import MODEL_GRID, convert_two_theta, d_to_two_theta, two_theta_to_d


def test_model_grid_is_cu_5_to_90_step_002():
    x = MODEL_GRID.two_theta_deg
    assert MODEL_GRID.n_points == 4251 == x.size
    assert x[0] == pytest.approx(5.0) and x[-1] == pytest.approx(90.0)
    assert np.allclose(np.diff(x), 0.02)
    d_min, d_max = MODEL_GRID.d_range_angstrom
    assert d_min == pytest.approx(1.0893, abs=1e-3) and d_max == pytest.approx(17.66, abs=0.01)


def test_bragg_round_trip_and_unreachable():
    two_theta = np.array([10.0, 45.0, 120.0])
    d = two_theta_to_d(two_theta, 1.54056)
    assert np.allclose(d_to_two_theta(d, 1.54056), two_theta)
    # Mo Kα1 → Cu Kα1: Si(111) d=3.1356 Å sits at 13.00° with Mo and 28.44° with Cu.
    assert convert_two_theta(np.array([12.997]), 0.7093, 1.54056)[0] == pytest.approx(
        28.44, abs=0.02
    )
    assert np.isnan(d_to_two_theta(0.5, 1.54056))
