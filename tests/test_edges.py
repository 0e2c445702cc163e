import numpy as np
import pytest

from xrdid.edges import without_cut_peaks
from xrdid.pattern import make_pattern
from xrdid.preprocess import preprocess
from xrdid.readers import read_pattern_table


def _peaks(x: np.ndarray, centres: list[float], rng: np.random.Generator) -> np.ndarray:
    """Counts of Gaussian peaks (FWHM 0.15°) on a flat background, with Poisson noise."""
    y = np.full_like(x, 200.0)
    for centre in centres:
        y += 5000.0 * np.exp(-0.5 * ((x - centre) / 0.064) ** 2)
    return rng.poisson(y).astype(np.float64)


def test_a_peak_cut_by_the_start_is_left_out_to_where_it_has_fallen() -> None:
    x = np.arange(27.40, 50.0, 0.02)  # starts on the top of a peak at 27.42°
    pattern = make_pattern(x, _peaks(x, [27.42, 36.1, 41.2], np.random.default_rng(0)))
    trimmed, notes = without_cut_peaks(pattern)
    start = trimmed.two_theta_deg[0]
    assert 27.5 < start < 27.7  # its tail, ~2 σ past the top, and no further
    assert trimmed.two_theta_deg[-1] == pytest.approx(x[-1])
    assert len(notes) == 1 and "begins on a steep fall" in notes[0]


def test_a_peak_cut_by_the_end_is_left_out_too() -> None:
    x = np.arange(20.0, 41.25, 0.02)  # ends on the rising side of a peak at 41.3°
    pattern = make_pattern(x, _peaks(x, [27.42, 36.1, 41.3], np.random.default_rng(1)))
    trimmed, notes = without_cut_peaks(pattern)
    assert trimmed.two_theta_deg[0] == pytest.approx(20.0)
    assert 40.9 < trimmed.two_theta_deg[-1] < 41.2  # the tail, 2.5 σ from the top
    assert len(notes) == 1 and "ends on a steep rise" in notes[0]


# The whole peak; its top and far side; its tail rising to a top 0.17° in (at
# the edge its intensity is high, but the peak is measured on both sides).
@pytest.mark.parametrize("start", [26.8, 27.0, 27.25])
def test_a_whole_peak_near_the_edge_and_a_flat_start_are_kept(start: float) -> None:
    x = np.arange(start, 50.0, 0.02)
    pattern = make_pattern(x, _peaks(x, [27.42, 36.1], np.random.default_rng(2)))
    trimmed, notes = without_cut_peaks(pattern)
    assert trimmed is pattern and notes == ()


def test_noise_alone_is_never_trimmed() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        x = np.arange(10.0, 30.0, 0.02)
        pattern = make_pattern(x, rng.poisson(np.full_like(x, 300.0)).astype(np.float64))
        assert without_cut_peaks(pattern)[1] == ()


def test_a_real_scan_cut_on_its_strongest_peak_leaves_it_out(patterns_dir) -> None:
    """The powdR kaolinite scan cut at 24.75°, on its 001 reflection (24.87°):
    before, the half peak at the edge pulled every candidate's shift to its
    bound and the analysis added dickite to explain it."""
    scan = read_pattern_table(patterns_dir / "powdr_minerals" / "minerals_xrd.csv")["KAO"]
    keep = (scan.two_theta_deg >= 24.75) & (scan.two_theta_deg <= 53.8)
    cut = make_pattern(scan.two_theta_deg[keep], scan.intensity[keep])
    view = preprocess(cut)
    assert view.covered_two_theta_deg[0] > 25.0
    assert any("begins on a steep fall" in note for note in view.warnings)
