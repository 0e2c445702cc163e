"""Physics-informed augmentation: a stick pattern → a plausible measurement.

Everything that distorts real scans is applied to the sticks (cheap), then
the measurement is profiled on its own 2θ grid at its own radiation, given a
background and counting noise, and finally sent through exactly the
preprocessing the service applies to uploads (:func:`xrdid.preprocess.preprocess`).

Distortions (each drawn per sample, in both directions where it has a sign):
lattice strain (isotropic and anisotropic), zero offset and sample
displacement, texture (March–Dollase and per-reflection factors above and
below 1), missing reflections, crystallite-size broadening on a jittered
instrument profile, Kα2 doublet, other anodes, backgrounds (polynomial,
low-angle decay, amorphous hump), Poisson noise over counts from tens to
10⁵, an impurity phase up to ~30% or a mixture of 2–3 phases in comparable
fractions, a truncated 2θ range.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from xrdid.backgrounds import poisson_counts, random_background
from xrdid.grid import MODEL_GRID, Grid, d_to_two_theta
from xrdid.pattern import make_pattern
from xrdid.preprocess import BaselineMethod, PreprocessedPattern, preprocess
from xrdid.profiles import (
    DEFAULT_INSTRUMENT,
    InstrumentProfile,
    render_peaks,
    render_sticks,
    scherrer_fwhm_deg,
    tch_pseudo_voigt_params,
)
from xrdid.sticks import StickPattern
from xrdid.wavelengths import CU_KALPHA, Wavelength, anode


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of every distortion; defaults are the 'full augmentation'."""

    # Lattice strain: each sample is strained anywhere within the bounds with
    # probability large_strain_probability, else by a normal few tenths of a
    # percent (as lab scans of catalogued phases are). The default strains
    # every sample within the bounds. Training with 1 in 5 (model dbbef207,
    # 95 min) was tried to make the model rely more on exact peak positions;
    # it scored lower on both kinds of queries, so it was not shipped.
    strain_max: float = 0.03  # isotropic, ± bound
    anisotropic_strain_max: float = 0.01  # per strain-tensor component, ± bound
    large_strain_probability: float = 1.0
    strain_sigma: float = 0.005  # isotropic, the other samples (normal, clipped)
    anisotropic_strain_sigma: float = 0.002  # per component, the other samples
    zero_offset_max_deg: float = 0.15  # ±
    displacement_max_mm: float = 0.25  # ± sample height error
    goniometer_radius_mm: float = 240.0
    march_dollase_probability: float = 0.5
    march_dollase_range: tuple[float, float] = (0.6, 1.5)  # r < 1 plates, > 1 needles
    texture_sigma: float = 0.35  # log-normal per-reflection factors
    drop_probability: float = 0.5
    drop_max_fraction: float = 0.2  # of reflections removed
    size_nm_range: tuple[float, float] = (8.0, 300.0)  # log-uniform
    instrument_jitter: tuple[float, float] = (0.5, 2.5)  # × Caglioti U and W
    kalpha2_probability: float = 0.8
    other_anode_probability: float = 0.1  # one of other_anodes instead of Cu
    other_anodes: tuple[str, ...] = ("Mo", "Co", "Cr", "Fe", "Ag")
    step_choices_deg: tuple[float, ...] = (0.01, 0.015, 0.02, 0.03, 0.05)
    background_range: tuple[float, float] = (0.01, 0.5)  # mean level / strongest peak
    peak_counts_range: tuple[float, float] = (30.0, 1e5)  # log-uniform
    impurity_probability: float = 0.3
    impurity_max_fraction: float = 0.3
    # Real samples are often mixtures of comparable parts (precursors, rocks):
    # 2–3 phases with Dirichlet(1) fractions, the largest being "the" phase.
    mixture_probability: float = 0.2
    mixture_max_phases: int = 3
    truncate_probability: float = 0.3
    clean_probability: float = 0.05  # untouched reference-like samples


FULL_AUGMENTATION = AugmentConfig()


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _strained_d(
    sticks: StickPattern, rng: np.random.Generator, cfg: AugmentConfig
) -> NDArray[np.float64]:
    """d-spacings of the cell deformed by a random small strain tensor."""
    iso_max, shear_max = cfg.strain_max, cfg.anisotropic_strain_max
    if rng.random() < cfg.large_strain_probability:
        isotropic = rng.uniform(-iso_max, iso_max)
        shear = rng.uniform(-shear_max, shear_max, (3, 3))
    else:
        isotropic = np.clip(rng.normal(0.0, cfg.strain_sigma), -iso_max, iso_max)
        shear = np.clip(
            rng.normal(0.0, cfg.anisotropic_strain_sigma, (3, 3)), -shear_max, shear_max
        )
    strain = np.eye(3) * isotropic + (shear + shear.T) / 2.0
    # Real-space deformation (I + E) maps reciprocal vectors by (I + E)^-T.
    g = sticks.hkl @ sticks.reciprocal_lattice  # (n, 3) Cartesian, |g| = 1/d
    g_strained = g @ np.linalg.inv(np.eye(3) + strain)
    norm = np.linalg.norm(g_strained, axis=1)
    # hkl = 0 rows cannot occur, but keep the division safe for odd inputs.
    return np.where(norm > 0, 1.0 / np.maximum(norm, 1e-12), sticks.d_angstrom)


def _texture(
    sticks: StickPattern, rng: np.random.Generator, cfg: AugmentConfig
) -> NDArray[np.float64]:
    """Per-reflection intensity factors (mean ≈ 1, above and below 1)."""
    factors = np.exp(rng.normal(0.0, cfg.texture_sigma, sticks.n_reflections))
    if rng.random() < cfg.march_dollase_probability:
        # March–Dollase for a random preferred-orientation direction.
        r = rng.uniform(*cfg.march_dollase_range)
        direction = rng.normal(size=3)
        g = sticks.hkl @ sticks.reciprocal_lattice
        cos_alpha = (g @ direction) / (
            np.linalg.norm(g, axis=1) * np.linalg.norm(direction) + 1e-12
        )
        sin2 = 1.0 - cos_alpha**2
        factors *= (r**2 * cos_alpha**2 + sin2 / r) ** -1.5
    if rng.random() < cfg.drop_probability:
        n_drop = int(rng.uniform(0, cfg.drop_max_fraction) * sticks.n_reflections)
        factors[rng.choice(sticks.n_reflections, size=n_drop, replace=False)] = 0.0
    return factors


def _radiation(rng: np.random.Generator, cfg: AugmentConfig) -> Wavelength:
    if rng.random() < cfg.other_anode_probability:
        symbol = str(rng.choice(list(cfg.other_anodes)))
    else:
        symbol = "Cu"
    return anode(symbol, with_kalpha2=rng.random() < cfg.kalpha2_probability)


def _measurement_grid(radiation: Wavelength, rng: np.random.Generator, cfg: AugmentConfig) -> Grid:
    """The scan's own 2θ grid: the model grid's d-range seen at this radiation,
    sometimes truncated, at a random step."""
    d_min, d_max = MODEL_GRID.d_range_angstrom
    lam = radiation.kalpha1_angstrom
    lo = float(d_to_two_theta(d_max, lam))
    hi_d = max(d_min, lam / 2.0 / np.sin(np.radians(80.0)))  # stay below 160° 2θ
    hi = float(d_to_two_theta(hi_d, lam))
    if rng.random() < cfg.truncate_probability:
        span = hi - lo
        lo = lo + rng.uniform(0.0, 0.2) * span
        hi = hi - rng.uniform(0.0, 0.5) * span
    step = float(rng.choice(cfg.step_choices_deg))
    return Grid(wavelength_angstrom=lam, start_deg=lo, stop_deg=hi, step_deg=step)


def _peaks(
    sticks: StickPattern,
    weight: float,
    radiation: Wavelength,
    rng: np.random.Generator,
    cfg: AugmentConfig,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Centres (measurement 2θ, before instrument shifts) and areas of one phase."""
    d = _strained_d(sticks, rng, cfg)
    base = sticks.intensities(radiation.kalpha1_angstrom) * _texture(sticks, rng, cfg)
    base = base / max(base.max(), 1e-12) * weight
    centers = [d_to_two_theta(d, radiation.kalpha1_angstrom)]
    areas = [base]
    if radiation.kalpha2_angstrom is not None:
        centers.append(d_to_two_theta(d, radiation.kalpha2_angstrom))
        areas.append(base * radiation.kalpha2_ratio)
    return np.concatenate(centers), np.concatenate(areas)


def phase_fractions(
    n_others: int, rng: np.random.Generator, cfg: AugmentConfig = FULL_AUGMENTATION
) -> NDArray[np.float64]:
    """Fractions of the main phase and of the first few of ``n_others``
    candidate phases (main first and largest; they sum to 1). A fraction
    scales a phase's strongest peak, as in a reference intensity ratio."""
    if n_others and rng.random() < cfg.mixture_probability:
        n = int(rng.integers(1, min(n_others, cfg.mixture_max_phases - 1) + 1))
        return np.sort(rng.dirichlet(np.ones(n + 1)))[::-1]
    if n_others and rng.random() < cfg.impurity_probability:
        fraction = rng.uniform(0.03, cfg.impurity_max_fraction)
        return np.array([1.0 - fraction, fraction])
    return np.ones(1)


def simulate_measurement(
    sticks: StickPattern,
    rng: np.random.Generator,
    cfg: AugmentConfig = FULL_AUGMENTATION,
    mixed_with: Sequence[tuple[StickPattern, float]] = (),
) -> tuple[Grid, Wavelength, NDArray[np.float64]]:
    """A distorted scan of ``sticks`` mixed with other phases given as
    (sticks, fraction); the main phase has the rest. Returns (its grid, its
    radiation, counts)."""
    radiation = _radiation(rng, cfg)
    grid = _measurement_grid(radiation, rng, cfg)
    main_fraction = 1.0 - sum(f for _, f in mixed_with)
    centers, areas = _peaks(sticks, 1.0, radiation, rng, cfg)
    for other, fraction in mixed_with:
        c2, a2 = _peaks(other, fraction / main_fraction, radiation, rng, cfg)
        centers, areas = np.concatenate([centers, c2]), np.concatenate([areas, a2])
    # Instrument shifts in the measurement's own 2θ: zero offset (constant)
    # and sample displacement (−2s·cosθ/R, largest at low angle).
    theta = np.radians(np.nan_to_num(centers, nan=90.0) / 2.0)
    displacement = rng.uniform(-cfg.displacement_max_mm, cfg.displacement_max_mm)
    centers = (
        centers
        + rng.uniform(-cfg.zero_offset_max_deg, cfg.zero_offset_max_deg)
        + np.degrees(-2.0 * displacement * np.cos(theta) / cfg.goniometer_radius_mm)
    )
    jitter = cfg.instrument_jitter
    instrument = InstrumentProfile(
        u_deg2=DEFAULT_INSTRUMENT.u_deg2 * rng.uniform(*jitter),
        v_deg2=DEFAULT_INSTRUMENT.v_deg2,
        w_deg2=DEFAULT_INSTRUMENT.w_deg2 * rng.uniform(*jitter),
    )
    # Reflections the shifts pushed past 2θ = 180° do not exist (NaN like
    # unreachable ones; render_peaks skips both).
    centers = np.where(centers < 180.0, centers, np.nan)
    safe = np.nan_to_num(centers, nan=90.0)
    size_nm = _log_uniform(rng, *cfg.size_nm_range)
    fwhm, eta = tch_pseudo_voigt_params(
        instrument.fwhm_deg(safe),
        scherrer_fwhm_deg(safe, radiation.kalpha1_angstrom, size_nm),
    )
    peaks = render_peaks(centers, areas, fwhm, eta, grid)
    peaks /= max(peaks.max(), 1e-12)
    level = _log_uniform(rng, *cfg.background_range)
    x = grid.two_theta_deg
    background = random_background(rng, level, (float(x[0]), float(x[-1]))).evaluate(x)
    counts = poisson_counts(rng, peaks + background, _log_uniform(rng, *cfg.peak_counts_range))
    return grid, radiation, counts


def augmented_input(
    sticks: StickPattern,
    rng: np.random.Generator,
    cfg: AugmentConfig = FULL_AUGMENTATION,
    impurity: StickPattern | None = None,
) -> PreprocessedPattern:
    """One sample of ``sticks``, perhaps with ``impurity`` mixed in, as
    :func:`augmented_sample` makes it."""
    return augmented_sample(sticks, rng, cfg, (impurity,) if impurity is not None else ())[0]


def augmented_sample(
    sticks: StickPattern,
    rng: np.random.Generator,
    cfg: AugmentConfig = FULL_AUGMENTATION,
    candidates: Sequence[StickPattern] = (),
) -> tuple[PreprocessedPattern, NDArray[np.float64]]:
    """One training sample: a simulated measurement of ``sticks``, maybe mixed
    with some of ``candidates`` (see :func:`phase_fractions`), preprocessed as
    uploads are. Returns it and the fractions of the phases it holds (main
    phase first, then the candidates used, in order)."""
    if rng.random() < cfg.clean_probability:
        return reference_input(sticks), np.ones(1)
    fractions = phase_fractions(len(candidates), rng, cfg)
    mixed_with = list(zip(candidates, fractions[1:], strict=False))
    grid, radiation, counts = simulate_measurement(sticks, rng, cfg, mixed_with)
    if np.ptp(counts) == 0:  # a hopelessly weak scan: fall back to a clean one
        return reference_input(sticks), np.ones(1)
    pattern = make_pattern(grid.two_theta_deg, counts)
    return preprocess(pattern, wavelength=radiation, method=BaselineMethod.BEADS), fractions


def reference_input(sticks: StickPattern, grid: Grid = MODEL_GRID) -> PreprocessedPattern:
    """The library's view of a calculated reference: a clean Cu Kα scan on
    the model grid, preprocessed like any upload (so both sides of a
    comparison went through the same steps)."""
    profile = render_sticks(sticks, grid, wavelength=CU_KALPHA)
    pattern = make_pattern(grid.two_theta_deg, profile)
    return preprocess(pattern, wavelength=CU_KALPHA, method=BaselineMethod.BEADS, grid=grid)
