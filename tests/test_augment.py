from dataclasses import replace

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from xrdid.augment import (
    FULL_AUGMENTATION,
    AugmentConfig,
    _strained_d,
    _texture,
    augmented_input,
    augmented_sample,
    phase_fractions,
    reference_input,
    simulate_measurement,
)
from xrdid.grid import MODEL_GRID
from xrdid.sticks import simulate_sticks

# Everything off: a clean Cu Kα1 scan on a 0.02° grid with a flat background.
NONE = AugmentConfig(
    strain_max=0,
    anisotropic_strain_max=0,
    zero_offset_max_deg=0,
    displacement_max_mm=0,
    march_dollase_probability=0,
    texture_sigma=0,
    drop_probability=0,
    size_nm_range=(200, 200.001),
    instrument_jitter=(1, 1.000001),
    kalpha2_probability=0,
    other_anode_probability=0,
    step_choices_deg=(0.02,),
    background_range=(0.01, 0.0100001),
    peak_counts_range=(1e6, 1e6 + 1),
    impurity_probability=0,
    mixture_probability=0,
    truncate_probability=0,
    clean_probability=0,
)


@pytest.fixture(scope="module")
def rutile(rutile):
    return simulate_sticks(rutile)


@pytest.fixture(scope="module")
def silicon():
    return simulate_sticks(
        Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.4309), ["Si"], [[0, 0, 0]])
    )


def _peak_position(sample, lo, hi):
    x = MODEL_GRID.two_theta_deg
    window = (x > lo) & (x < hi)
    return x[window][np.argmax(sample.intensity[window])]


def test_output_is_what_the_model_expects(rutile):
    rng = np.random.default_rng(0)
    for _ in range(20):
        sample = augmented_input(rutile, rng, FULL_AUGMENTATION, impurity=rutile)
        assert sample.intensity.shape == (MODEL_GRID.n_points,)
        assert np.all(np.isfinite(sample.intensity))
        assert sample.intensity.min() >= 0 and sample.intensity.max() == pytest.approx(1.0)
        assert np.all(sample.intensity[~sample.mask] == 0)


def test_same_seed_same_sample(rutile):
    a = augmented_input(rutile, np.random.default_rng(5))
    b = augmented_input(rutile, np.random.default_rng(5))
    assert np.array_equal(a.intensity, b.intensity)


def test_clean_settings_reproduce_the_reference(rutile):
    sample = augmented_input(rutile, np.random.default_rng(1), NONE)
    ref = reference_input(rutile)
    assert _peak_position(sample, 27, 28) == pytest.approx(_peak_position(ref, 27, 28), abs=0.021)
    assert np.corrcoef(sample.intensity, ref.intensity)[0, 1] > 0.9


def test_strain_moves_peaks_both_ways_up_to_three_percent(silicon):
    cfg = replace(NONE, strain_max=0.03)
    rng = np.random.default_rng(2)
    ratios = np.array(
        [_strained_d(silicon, rng, cfg)[0] / silicon.d_angstrom[0] for _ in range(400)]
    )
    assert ratios.min() < 0.98 and ratios.max() > 1.02
    assert np.all(np.abs(ratios - 1) <= 0.0301)


def test_low_strain_setting_strains_most_samples_only_slightly(silicon):
    cfg = replace(NONE, strain_max=0.03, strain_sigma=0.005, large_strain_probability=0.2)
    rng = np.random.default_rng(4)
    strains = np.abs(
        np.array([_strained_d(silicon, rng, cfg)[0] / silicon.d_angstrom[0] for _ in range(2000)])
        - 1
    )
    assert np.median(strains) < 0.006
    assert 0.1 < np.mean(strains > 0.015) < 0.25  # the uniform share reaches the bounds


def test_anisotropic_strain_changes_d_ratios_between_reflections(rutile):
    cfg = replace(NONE, anisotropic_strain_max=0.01)
    d = _strained_d(rutile, np.random.default_rng(3), cfg)
    ratio = d / rutile.d_angstrom
    assert ratio.std() > 1e-4


def test_zero_offset_shifts_both_directions(silicon):
    cfg = replace(NONE, zero_offset_max_deg=0.15)
    rng = np.random.default_rng(4)
    shifts = [_peak_position(augmented_input(silicon, rng, cfg), 28, 29) - 28.44 for _ in range(30)]
    assert min(shifts) < -0.05 and max(shifts) > 0.05


def test_texture_factors_above_and_below_one_and_drops(rutile):
    cfg = replace(NONE, texture_sigma=0.35, drop_probability=1.0, drop_max_fraction=0.5)
    factors = np.concatenate([_texture(rutile, np.random.default_rng(i), cfg) for i in range(20)])
    assert (factors > 1.2).any() and ((factors > 0) & (factors < 0.8)).any()
    assert (factors == 0).any()


def test_truncated_range_is_masked(rutile):
    cfg = replace(NONE, truncate_probability=1.0)
    rng = np.random.default_rng(6)
    coverage = [augmented_input(rutile, rng, cfg).mask.mean() for _ in range(10)]
    assert min(coverage) < 0.9


def test_other_anodes_map_back_to_the_grid(silicon):
    cfg = replace(NONE, other_anode_probability=1.0)
    rng = np.random.default_rng(8)
    for _ in range(5):
        grid, radiation, _ = simulate_measurement(silicon, rng, cfg)
        assert radiation.anode != "Cu"
        sample = augmented_input(silicon, np.random.default_rng(9), cfg)
        assert _peak_position(sample, 28, 29) == pytest.approx(28.44, abs=0.05)


def test_other_anodes_are_drawn_from_the_ones_named(silicon):
    cfg = replace(NONE, other_anode_probability=1.0, other_anodes=("Ag",))
    rng = np.random.default_rng(8)
    anodes = {simulate_measurement(silicon, rng, cfg)[1].anode for _ in range(5)}
    assert anodes == {"Ag"}


def test_phase_fractions_cover_pure_impure_and_comparable_mixtures():
    rng = np.random.default_rng(3)
    draws = [phase_fractions(2, rng) for _ in range(2000)]
    for fractions in draws:
        assert fractions.sum() == pytest.approx(1.0)
        assert fractions[0] == fractions.max()  # the main phase is the largest
    sizes = np.bincount([len(f) for f in draws])
    assert sizes[1] > 0 and sizes[2] > 0 and sizes[3] > 0
    impure = [f for f in draws if len(f) == 2 and f[1] <= FULL_AUGMENTATION.impurity_max_fraction]
    comparable = [f for f in draws if len(f) >= 2 and f[1] > 0.35]
    assert impure and comparable
    assert all(len(phase_fractions(0, rng)) == 1 for _ in range(50))


def test_mixture_sample_shows_every_phase_it_reports(rutile, silicon):
    cfg = replace(NONE, mixture_probability=1.0)
    for seed in range(20):
        sample, fractions = augmented_sample(rutile, np.random.default_rng(seed), cfg, [silicon])
        assert len(fractions) == 2
        si_111 = sample.intensity[
            (MODEL_GRID.two_theta_deg > 28.2) & (MODEL_GRID.two_theta_deg < 28.7)
        ]
        rutile_110 = sample.intensity[
            (MODEL_GRID.two_theta_deg > 27.2) & (MODEL_GRID.two_theta_deg < 27.7)
        ]
        # Each strongest peak is there in proportion to its phase's fraction.
        ratio = si_111.max() / rutile_110.max()
        assert ratio == pytest.approx(fractions[1] / fractions[0], rel=0.2, abs=0.02)
