from dataclasses import replace

import numpy as np
import pytest

from xrdid.backgrounds import poisson_counts, random_background
from xrdid.errors import InputError
from xrdid.grid import MODEL_GRID, Grid
from xrdid.pattern import make_pattern
from xrdid.preprocess import DEFAULT_BEADS, BaselineMethod, preprocess, remove_background
from xrdid.profiles import render_sticks
from xrdid.readers import read_pattern
from xrdid.sticks import simulate_sticks
from xrdid.wavelengths import anode


@pytest.fixture(scope="module")
def rutile_profile(rutile):
    return simulate_sticks(rutile)


def _scan(sticks, rng, level=0.2, counts=2e4, grid=MODEL_GRID, wavelength=None):
    peaks = render_sticks(sticks, grid, wavelength=wavelength or anode("Cu"))
    x = grid.two_theta_deg
    background = random_background(rng, level, (x[0], x[-1])).evaluate(x)
    measured = poisson_counts(rng, peaks + background, counts)
    # The best any background remover can give: the counts less the true background.
    ideal = np.clip(measured - background * counts, 0, None)
    return make_pattern(x, measured), ideal / ideal.max()


def test_background_is_removed_and_peaks_kept(rutile_profile):
    rng = np.random.default_rng(0)
    correlations = []
    for _ in range(5):
        pattern, truth = _scan(rutile_profile, rng)
        out = preprocess(pattern, wavelength=anode("Cu"))
        assert out.intensity.max() == pytest.approx(1.0)
        assert out.intensity.min() >= 0.0
        correlations.append(np.corrcoef(out.intensity, truth)[0, 1])
        # Away from peaks almost nothing of the background is left.
        flat = truth < 0.01
        assert np.median(out.intensity[flat]) < 0.02
    # Steep low-angle decays (scale 2–3°) are faster than BEADS' cutoff and
    # leave a residue at 5–10° (these five: 0.83–1.00, median 0.92).
    assert np.median(correlations) > 0.9 and min(correlations) > 0.8


def test_input_pattern_is_not_mutated(rutile_profile):
    pattern, _ = _scan(rutile_profile, np.random.default_rng(1))
    before = pattern.intensity.copy()
    preprocess(pattern, wavelength=anode("Cu"))
    assert np.array_equal(before, pattern.intensity)


def test_mo_scan_lands_where_cu_scan_does(rutile_profile):
    rng = np.random.default_rng(2)
    mo_grid = Grid(wavelength_angstrom=0.7093, start_deg=2.5, stop_deg=40.0, step_deg=0.01)
    mo_pattern, _ = _scan(rutile_profile, rng, grid=mo_grid, wavelength=anode("MoKa1"))
    cu_pattern, _ = _scan(rutile_profile, rng, wavelength=anode("CuKa1"))
    mo = preprocess(mo_pattern, wavelength=anode("MoKa1"))
    cu = preprocess(cu_pattern, wavelength=anode("CuKa1"))
    x = MODEL_GRID.two_theta_deg
    assert x[np.argmax(mo.intensity)] == pytest.approx(x[np.argmax(cu.intensity)], abs=0.03)
    assert mo.mask.mean() > 0.9
    both = mo.mask & cu.mask
    assert np.corrcoef(mo.intensity[both], cu.intensity[both])[0, 1] > 0.9


def test_partial_range_is_masked_and_reported(rutile_profile):
    grid = Grid(start_deg=20.0, stop_deg=45.0)
    pattern, _ = _scan(rutile_profile, np.random.default_rng(3), grid=grid)
    out = preprocess(pattern)
    assert out.mask.sum() == pytest.approx(25 / 0.02 + 1, abs=2)
    assert np.all(out.intensity[~out.mask] == 0)
    assert any("covers only 20.0–45.0°" in w for w in out.warnings)
    assert any("Cu Kα assumed" in w for w in out.warnings)


def test_scan_outside_the_grid_is_refused_with_a_hint(rutile_profile):
    x = np.linspace(100, 140, 500)
    pattern = make_pattern(x, 1 + np.sin(x))
    with pytest.raises(InputError, match="Check the wavelength"):
        preprocess(pattern)


@pytest.mark.parametrize("method", list(BaselineMethod))
def test_every_baseline_method_gives_model_ready_output(rutile_profile, method):
    pattern, truth = _scan(rutile_profile, np.random.default_rng(4))
    out = preprocess(pattern, method=method)
    assert out.method is method
    assert np.all(np.isfinite(out.intensity)) and out.intensity.max() == pytest.approx(1.0)


@pytest.mark.parametrize(
    "relative",
    [
        "xrd_autoanalyzer/Mn2O3.xy",
        "dara/other/GeO2-ZnO_700C_60min.xrdml",
        "bruker_d5000/RAW/D5000_1.RAW",
        "powdr_minerals/quartz.xy",
    ],
)
def test_real_files_of_every_kind_preprocess(patterns_dir, relative):
    pattern = read_pattern(patterns_dir / relative)
    out = preprocess(pattern)
    assert out.intensity.max() == pytest.approx(1.0)
    assert out.mask.sum() > 1000


def test_bruker_cobalt_scan_is_mapped_through_d_spacing(patterns_dir):
    """The D5000 files were measured with a Co tube: the header says so and the
    scan lands on the Cu grid at smaller 2θ."""
    pattern = read_pattern(patterns_dir / "bruker_d5000/RAW/D5000_1.RAW")
    assert pattern.wavelength is not None and pattern.wavelength.kalpha1_angstrom > 1.7
    out = preprocess(pattern)
    lo, hi = out.covered_two_theta_deg
    assert hi < pattern.two_theta_range_deg[1]


def _steep_fall_scan(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A scan scaled to 0–1: a background falling from 0.8 to 0.1 over the
    first degrees (air scatter, the beam's tail), one weak peak at 9° (a
    layered phase's first reflection) and one strong at 30°; with the
    background and the peaks."""
    x = MODEL_GRID.two_theta_deg
    background = 0.1 + 0.7 * np.exp(-(x - x[0]) / 1.0)
    peaks = 0.06 * np.exp(-0.5 * ((x - 9.0) / 0.08) ** 2) + np.exp(-0.5 * ((x - 30.0) / 0.05) ** 2)
    counts = poisson_counts(rng, background + peaks, 2e4) / 2e4
    return counts, background, peaks


def test_a_baseline_that_overshoots_a_steep_fall_is_lowered() -> None:
    """BEADS alone cannot fall over 1° and sits above the scan for degrees
    after, cutting the weak 9° peak away; lowered where the scan shows it
    too high, the baseline keeps that peak."""
    values, background, peaks = _steep_fall_scan(np.random.default_rng(3))
    near = np.abs(MODEL_GRID.two_theta_deg - 9.0) < 0.3
    unchecked = replace(DEFAULT_BEADS, overshoot_noise_sigmas=float("inf"))
    kept = {}
    for name, beads in (("checked", DEFAULT_BEADS), ("unchecked", unchecked)):
        signal, baseline = remove_background(values, beads=beads)
        eaten = np.minimum(np.clip(baseline - background, 0.0, None), peaks)
        kept[name] = 1.0 - eaten[near].sum() / peaks[near].sum()
    # Measured: none and 0.62 (what stays cut is within the check's 3 noise σ).
    assert kept["unchecked"] < 0.3  # the peak is under BEADS' own baseline
    assert kept["checked"] > 0.5


def test_the_overshoot_check_only_lowers_a_baseline_towards_the_background(
    rutile_profile,
) -> None:
    """On the training's backgrounds the check never raises BEADS' baseline,
    and where it lowers it, it ends no further from the true background."""
    rng = np.random.default_rng(4)
    x = MODEL_GRID.two_theta_deg
    peaks = render_sticks(rutile_profile, MODEL_GRID, wavelength=anode("Cu"))
    unchecked = replace(DEFAULT_BEADS, overshoot_noise_sigmas=float("inf"))
    lowered = 0
    for _ in range(20):
        background = random_background(rng, 0.2, (x[0], x[-1])).evaluate(x)
        counts = poisson_counts(rng, peaks + background, 2e4)
        lo, scale = counts.min(), np.ptp(counts)
        values, truth = (counts - lo) / scale, (background * 2e4 - lo) / scale
        _, checked = remove_background(values)
        _, plain = remove_background(values, beads=unchecked)
        assert np.all(checked <= plain + 1e-12)
        if np.max(plain - checked) > 1e-9:
            lowered += 1
            assert np.abs(checked - truth).mean() <= np.abs(plain - truth).mean() + 1e-4
    assert lowered >= 1  # these backgrounds hold falls BEADS overshoots too
