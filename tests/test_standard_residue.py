"""An internal standard's residue in a measured reference: found where its
lines all show, removed without taking the reference's own peaks."""

from __future__ import annotations

import numpy as np
import pytest

from xrdid.data_paths import shared_data_dir
from xrdid.pattern import make_pattern
from xrdid.readers import read_pattern_table
from xrdid.standard_residue import NONE, standard_residue, table_without_standard

X = np.arange(5.0, 65.0, 0.02)
# Corundum's six strongest lines (2θ, Cu Kα) and their relative heights.
LINES = ((43.4, 1.0), (35.2, 0.96), (57.56, 0.8), (25.62, 0.69), (52.6, 0.42), (37.82, 0.41))


def _peaks(lines: tuple[tuple[float, float], ...], width: float = 0.06) -> np.ndarray:
    return sum(h * np.exp(-0.5 * ((X - c) / width) ** 2) for c, h in lines)


STANDARD = 100.0 + 10_000.0 * _peaks(LINES)
MINERAL_LINES = ((18.6, 1.0), (38.0, 0.8), (50.8, 0.3), (58.6, 0.2))


def _mineral(rng: np.random.Generator, extra: tuple[tuple[float, float], ...] = ()) -> np.ndarray:
    clean = 200.0 + 8_000.0 * _peaks(MINERAL_LINES + extra)
    return rng.poisson(clean).astype(np.float64)


def _height_at(y: np.ndarray, angle: float) -> float:
    """A peak's height above the neighbourhood's floor."""
    near = np.abs(X - angle) <= 0.06
    around = np.abs(X - angle) <= 0.6
    return float(y[near].max() - np.percentile(y[around], 10))


def test_a_residue_of_the_standard_is_found_and_taken_away() -> None:
    rng = np.random.default_rng(0)
    measured = _mineral(rng) + 0.05 * (STANDARD - 100.0)
    residue = standard_residue(X, measured, STANDARD)
    assert residue.scale == pytest.approx(0.05, rel=0.15)
    table = {"STD": make_pattern(X, STANDARD), "MIN": make_pattern(X, measured)}
    cleaned, removed = table_without_standard(table, "STD")
    assert set(removed) == {"MIN"}
    assert removed["MIN"] == pytest.approx(500.0 / 8_000.0, rel=0.3)  # of its strongest point
    for angle, _ in LINES[:-1]:  # 37.82° is on the mineral's 38.0° peak's flank
        assert _height_at(measured, angle) > 200.0
        assert abs(_height_at(cleaned["MIN"].intensity, angle)) < 120.0  # counting noise
    assert _height_at(cleaned["MIN"].intensity, 18.6) == pytest.approx(8_000.0, rel=0.05)
    assert cleaned["STD"] is table["STD"]


def test_a_pattern_without_the_standard_is_left_as_it_is() -> None:
    """Its own peak on one of the standard's lines is not a residue: the
    others are not there."""
    rng = np.random.default_rng(1)
    measured = _mineral(rng, extra=((35.2, 0.5),))
    assert standard_residue(X, measured, STANDARD) is NONE
    table = {"STD": make_pattern(X, STANDARD), "MIN": make_pattern(X, measured)}
    cleaned, removed = table_without_standard(table, "STD")
    assert removed == {} and cleaned["MIN"] is table["MIN"]


def test_the_patterns_own_peak_on_a_line_of_the_standard_is_kept() -> None:
    """A residue at 3% and the pattern's own strong peak on corundum's 25.6°
    line: the residue goes, the peak stays (its line's removal is held to
    twice the least line's)."""
    rng = np.random.default_rng(2)
    measured = _mineral(rng, extra=((25.62, 0.6),)) + 0.03 * (STANDARD - 100.0)
    table = {"STD": make_pattern(X, STANDARD), "MIN": make_pattern(X, measured)}
    cleaned, _ = table_without_standard(table, "STD")
    own = 0.6 * 8_000.0
    assert _height_at(cleaned["MIN"].intensity, 25.62) > 0.9 * own
    assert abs(_height_at(cleaned["MIN"].intensity, 43.4)) < 120.0


def test_rockjock_brucite_loses_its_corundum_and_quartz_has_none() -> None:
    table = read_pattern_table(
        shared_data_dir() / "patterns" / "rockjock" / "rockjock_xrd.csv", skip_invalid=True
    )
    cleaned, removed = table_without_standard(
        {k: table[k] for k in ("CORUNDUM", "BRUCITE", "QUARTZ")}, "CORUNDUM"
    )
    assert set(removed) == {"BRUCITE"}
    x = table["BRUCITE"].two_theta_deg
    for angle in (25.6, 35.15, 43.35):
        window = np.abs(x - angle) <= 0.1
        around = np.abs(x - angle) <= 0.6
        before = table["BRUCITE"].intensity
        after = cleaned["BRUCITE"].intensity
        rise_before = before[window].max() - np.percentile(before[around], 10)
        rise_after = after[window].max() - np.percentile(after[around], 10)
        assert rise_after < 0.35 * rise_before
    strongest = np.argmax(table["BRUCITE"].intensity)
    assert cleaned["BRUCITE"].intensity[strongest] == pytest.approx(
        table["BRUCITE"].intensity[strongest], rel=1e-3
    )
