"""Measured pattern → what the model sees: resample onto the grid, remove the
background (and noise) and normalise.

Background removal uses pybaselines (maintained; its BEADS is the published
algorithm with banded solvers, ~0.1 s at 4,251 points, instead of pybeads'
dense N×N matrices). BEADS parameters are tuned for XRD on synthetic patterns
with known backgrounds (``benchmarks/preprocessing.py``), not taken from the
chromatography example.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray
from pybaselines import misc, smooth
from scipy.ndimage import median_filter, uniform_filter1d

from xrdid.edges import without_cut_peaks
from xrdid.grid import MODEL_GRID, Grid
from xrdid.noise import noise_sigma
from xrdid.pattern import READER_WARNING, Pattern
from xrdid.resample import to_grid
from xrdid.wavelengths import CU_KALPHA, Wavelength

# Below this share of the grid covered, identification loses reflections:
# tell the user which part was compared.
PARTIAL_COVERAGE_WARNING = 0.8


class BaselineMethod(StrEnum):
    """How the background is removed."""

    BEADS = "beads"  # baseline + denoising by sparsity (default)
    SNIP = "snip"  # classic clipping filter, for comparison
    NONE = "none"  # the file is already background-subtracted


@dataclass(frozen=True)
class BeadsSettings:
    """BEADS parameters for patterns scaled to max 1 on the 0.02° grid.

    BEADS runs on 0.04° samples (see ``decimation``): ``freq_cutoff``
    (cycles/sample) separates the background (periods of ≥ 200 samples = 8°)
    from peaks (FWHM 1–8 samples); the λ's penalise the
    signal and its derivatives relative to that unit scale, small so that
    peaks are not shrunk into the baseline; ``asymmetry`` > 1 because XRD
    signal lies above the background. Chosen by the grid search in
    ``benchmarks/preprocessing.py --sweep`` as the best joint score of
    background removed and peak area kept.
    """

    freq_cutoff: float = 0.005
    lam_0: float = 0.0003
    lam_1: float = 0.0015
    lam_2: float = 0.0015
    asymmetry: float = 3.0
    max_iter: int = 50
    tol: float = 1e-2
    decimation: int = 2  # BEADS runs on means of this many points
    # The overshoot check (:func:`without_overshoot`): the window over which
    # what lies above the baseline should centre on zero, and how many noise
    # σ below zero it may centre before the baseline is lowered there.
    overshoot_window_deg: float = 2.0
    overshoot_noise_sigmas: float = 3.0


DEFAULT_BEADS = BeadsSettings()

# SNIP half window in degrees: wider than any peak cluster, narrower than the
# background's curvature.
SNIP_HALF_WINDOW_DEG = 1.5


@dataclass(frozen=True)
class PreprocessedPattern:
    """A measured pattern as the model sees it.

    ``intensity`` is background-free, ≥ 0, max 1 and 0 outside ``mask``;
    ``baseline`` is the removed background on the same scale (before the final
    normalisation) for plots and diagnostics.
    """

    intensity: NDArray[np.float64]
    mask: NDArray[np.bool_]
    baseline: NDArray[np.float64]
    resampled: NDArray[np.float64]
    covered_two_theta_deg: tuple[float, float]
    wavelength: Wavelength
    method: BaselineMethod
    warnings: tuple[str, ...]


def remove_background(
    values: NDArray[np.float64],
    method: BaselineMethod = BaselineMethod.BEADS,
    *,
    step_deg: float = MODEL_GRID.step_deg,
    beads: BeadsSettings = DEFAULT_BEADS,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Split ``values`` (scaled to max ≈ 1) into (signal, baseline)."""
    if method is BaselineMethod.NONE:
        return values - values.min(), np.full_like(values, values.min())
    if method is BaselineMethod.SNIP:
        half_window = max(int(SNIP_HALF_WINDOW_DEG / step_deg), 3)
        baseline, _ = smooth.snip(values, max_half_window=half_window, decreasing=True)
        return values - baseline, baseline
    # The background varies over degrees, so BEADS runs on 2-point means
    # (0.04°) and its baseline is interpolated back: half the cost, the same
    # baseline. The signal is what lies above it (BEADS' own sparse signal
    # shrinks weak peaks).
    n = values.size // beads.decimation * beads.decimation
    coarse = values[:n].reshape(-1, beads.decimation).mean(axis=1)
    coarse_baseline, _ = misc.beads(
        coarse,
        freq_cutoff=beads.freq_cutoff,
        lam_0=beads.lam_0,
        lam_1=beads.lam_1,
        lam_2=beads.lam_2,
        asymmetry=beads.asymmetry,
        max_iter=beads.max_iter,
        tol=beads.tol,
    )
    index = np.arange(values.size, dtype=np.float64)
    centers = np.arange(coarse.size) * beads.decimation + (beads.decimation - 1) / 2.0
    baseline = np.interp(index, centers, np.asarray(coarse_baseline))
    baseline = without_overshoot(values, baseline, step_deg, beads)
    return values - baseline, baseline


def without_overshoot(
    values: NDArray[np.float64],
    baseline: NDArray[np.float64],
    step_deg: float,
    beads: BeadsSettings = DEFAULT_BEADS,
) -> NDArray[np.float64]:
    """``baseline`` lowered where it runs above the background. BEADS' baseline
    varies over no less than its cutoff's period (8°), so a steeper fall (air
    scatter and the direct beam's tail below ~10°, a decay over 1–2°) leaves
    it above the scan for degrees after, where weak peaks are cut away (a
    layered phase's first reflection, a clay's 001). Off the peaks, what lies
    above a right baseline is noise centred on zero: where its running median
    (over a window wider than peaks) sits more than a few noise σ below zero,
    the baseline is lowered by that much, smoothed over the same window. It
    is never raised, and a baseline within the noise is left as it is."""
    window = max(int(round(beads.overshoot_window_deg / step_deg)), 3)
    tolerance = beads.overshoot_noise_sigmas * noise_sigma(values)
    centre = median_filter(values - baseline, size=window, mode="nearest")
    excess = np.minimum(centre + tolerance, 0.0)
    lowered: NDArray[np.float64] = baseline + uniform_filter1d(excess, size=window, mode="nearest")
    return lowered


def normalised_on_grid(
    intensity: NDArray[np.floating],
    covered: NDArray[np.bool_],
    remove: Callable[[NDArray[np.float64]], tuple[NDArray[np.float64], NDArray[np.float64]]],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """The covered part of a profile on a grid scaled to 0–1, its background
    removed by ``remove`` (→ signal, baseline) and its highest point set to
    1: (signal, baseline, scaled) over the whole grid, zero where not
    covered. XRD patterns and Raman spectra are both normalised so."""
    region = intensity[covered]
    scale = float(region.max() - region.min()) or 1.0
    scaled = (region - region.min()) / scale
    signal, baseline = remove(scaled)
    signal = np.clip(signal, 0.0, None)
    peak = float(signal.max())
    out = np.zeros(intensity.size)
    full_baseline = np.zeros(intensity.size)
    resampled = np.zeros(intensity.size)
    if peak > 0:
        out[covered] = signal / peak
    full_baseline[covered] = baseline
    resampled[covered] = scaled
    return out, full_baseline, resampled


def preprocess(
    pattern: Pattern,
    *,
    wavelength: Wavelength | None = None,
    method: BaselineMethod = BaselineMethod.BEADS,
    grid: Grid = MODEL_GRID,
    beads: BeadsSettings = DEFAULT_BEADS,
) -> PreprocessedPattern:
    """Resample, remove background and normalise a measured pattern.

    The wavelength is, in order: the one given, the file's, Cu Kα.
    """
    notes: list[str] = []
    if READER_WARNING in pattern.metadata:
        notes.append(pattern.metadata[READER_WARNING])
    radiation = wavelength or pattern.wavelength
    if radiation is None:
        radiation = CU_KALPHA
        notes.append("the file states no wavelength; Cu Kα assumed")
    pattern, trimmed = without_cut_peaks(pattern)
    notes.extend(trimmed)
    gridded = to_grid(pattern, radiation, grid)
    covered = gridded.mask
    intensity, full_baseline, resampled = normalised_on_grid(
        gridded.intensity,
        covered,
        lambda scaled: remove_background(scaled, method, step_deg=grid.step_deg, beads=beads),
    )
    lo, hi = gridded.covered_two_theta_deg
    if covered.mean() < PARTIAL_COVERAGE_WARNING:
        notes.append(
            f"the scan covers only {lo:.1f}–{hi:.1f}° of the model range "
            f"{grid.start_deg:g}–{grid.stop_deg:g}° 2θ (Cu Kα1); only that part is compared"
        )
    return PreprocessedPattern(
        intensity=intensity,
        mask=covered,
        baseline=full_baseline,
        resampled=resampled,
        covered_two_theta_deg=(lo, hi),
        wavelength=radiation,
        method=method,
        warnings=tuple(notes),
    )
