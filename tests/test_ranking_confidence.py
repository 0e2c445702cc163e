"""Calibrated confidences: the logistic model, its reliability, its file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from xrdid.errors import InputError
from xrdid.ranking.confidence import (
    Calibration,
    expected_calibration_error,
    fit_logistic,
    reliability,
)


def test_logistic_fit_recovers_a_known_relation_and_is_calibrated() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 2))
    truth = 1.0 / (1.0 + np.exp(-(2.0 * x[:, 0] - 1.0 * x[:, 1] + 0.5)))
    y = rng.random(4000) < truth
    model = fit_logistic(x, y, ("a", "b"))
    p = model.probability(x)
    assert np.corrcoef(p, truth)[0, 1] > 0.99
    assert expected_calibration_error(p, y) < 0.03
    # A constant guess is badly calibrated wherever the truth is not 0.5.
    assert expected_calibration_error(np.full(4000, 0.9), y) > 0.2


def test_reliability_bins_count_every_prediction() -> None:
    p = np.array([0.05, 0.15, 0.15, 0.95])
    y = np.array([False, True, False, True])
    table = reliability(p, y)
    assert sum(count for *_, count in table) == 4
    assert table[1][1:] == pytest.approx((0.15, 0.5, 2))


def test_calibration_round_trips_and_refuses_bad_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    model = fit_logistic(rng.normal(size=(50, 1)), rng.random(50) < 0.5, ("score",))
    calibration = Calibration("abc", model, model, model, 0.2)
    calibration.save(tmp_path / "c.json")
    loaded = Calibration.load(tmp_path / "c.json")
    assert loaded == calibration
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(InputError, match="not a readable calibration"):
        Calibration.load(tmp_path / "bad.json")
