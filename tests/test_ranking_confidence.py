"""Calibrated confidences: the logistic model, its reliability, its file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from indexer.calibrate import FALSE_NO_MATCH, Labelled, calibrate
from xrdid.errors import InputError
from xrdid.ranking.confidence import (
    CANDIDATE_FEATURES,
    MATCH_FEATURES,
    PHASE_FEATURES,
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
    calibration = Calibration("abc", model, model, model, 0.2, model, 0.1)
    calibration.save(tmp_path / "c.json")
    loaded = Calibration.load(tmp_path / "c.json")
    assert loaded == calibration
    # Fitted on other features than this version computes: every model is named.
    assert loaded.stale_models() == ["candidate", "phase", "match", "match_without_phases"]
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(InputError, match="not a readable calibration"):
        Calibration.load(tmp_path / "bad.json")


def test_the_match_models_read_their_features_and_keep_five_percent_of_present_scans_above(
    tmp_path: Path,
) -> None:
    """``indexer calibrate``'s fit: the match model reads the strongest phase's
    evidence as well, the one for phases=false the first answer's alone, and
    each threshold leaves at most 5% of the scans of materials in the library below."""
    rng = np.random.default_rng(3)
    kinds = ["in library", "not in library", "mixtures"] * 100
    present = np.array([kind != "not in library" for kind in kinds])

    def rows(n_features: int) -> list[list[float]]:
        return (rng.normal(size=(300, n_features)) + present[:, None]).tolist()

    data = Labelled(
        candidate_rows=rows(len(CANDIDATE_FEATURES)),
        candidate_labels=list(present),
        phase_rows=rows(len(PHASE_FEATURES)),
        phase_labels=list(present),
        match_rows=list(zip(kinds, rows(len(MATCH_FEATURES)), strict=True)),
        match_rows_without_phases=rows(len(CANDIDATE_FEATURES)),
    )
    calibration = calibrate(data, "v1")
    assert calibration.stale_models() == []
    for model, threshold, features in (
        (calibration.match, calibration.no_match_below, [f for _, f in data.match_rows]),
        (
            calibration.match_without_phases,
            calibration.no_match_below_without_phases,
            data.match_rows_without_phases,
        ),
    ):
        p = model.probability(np.array(features))
        assert np.mean(p[present] < threshold) <= FALSE_NO_MATCH
        assert np.mean(p[~present] < threshold) > 0.3  # the signal is there to find
    calibration.save(tmp_path / "c.json")
    assert Calibration.load(tmp_path / "c.json") == calibration


def test_the_service_omits_a_calibration_fitted_on_other_features(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from app.core.state import load_calibration

    model = fit_logistic(np.zeros((4, 1)), np.array([True, False, True, False]), ("score",))
    Calibration("v1", model, model, model, 0.2, model, 0.1).save(tmp_path / "old.json")
    assert load_calibration(tmp_path / "old.json", "v1") is None
    assert "other features" in caplog.text and "indexer calibrate" in caplog.text
