"""Measured Raman spectrum → what the Raman model sees: despike, resample onto
the grid, remove the fluorescence baseline, normalise.

The baseline comes from pybaselines (maintained; the project's XRD baseline
library too). Its method and parameters were chosen on synthetic spectra
(real RRUFF spectra + fluorescence backgrounds of known shape) by
``benchmarks/raman_preprocessing.py``, which scores background removed and
band area kept for every method side by side.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import NDArray
from pybaselines import Baseline

from xrdid.pattern import READER_WARNING
from xrdid.preprocess import normalised_on_grid
from xrdid.raman.despike import remove_spikes
from xrdid.raman.grid import RAMAN_GRID, RamanGrid, to_raman_grid
from xrdid.raman.spectrum import RamanSpectrum

# Below this share of the grid covered, say which part was compared (the
# archive's references cover ~70%: 135–1,300 of 100–1,800 cm⁻¹).
PARTIAL_COVERAGE_WARNING = 0.4


class RamanBaseline(StrEnum):
    """How the fluorescence background is removed."""

    BEADS = "beads"  # baseline estimation and denoising with sparsity (default)
    IARPLS = "iarpls"  # improved asymmetrically reweighted PLS: 5× faster, a little less exact
    ARPLS = "arpls"  # asymmetrically reweighted PLS, for comparison
    IMODPOLY = "imodpoly"  # iterative polynomial, the classic Raman choice
    SNIP = "snip"  # clipping filter
    NONE = "none"  # the spectrum is already baseline-corrected


@dataclass(frozen=True)
class BaselineSettings:
    """Parameters on the 1 cm⁻¹ grid, spectra scaled to 0…1.

    BEADS: ``beads_freq_cutoff`` (cycles per point) puts the background in
    periods of ≥ 330 cm⁻¹ and bands below; small λ's so weak bands are not
    shrunk into the baseline; ``beads_asymmetry`` > 1 because Raman signal
    lies above the background. Chosen on synthetic spectra by
    ``benchmarks/raman_preprocessing.py --sweep``: the best joint score of
    background removed and band area kept (97.5 / 97.3% there, against
    98.7 / 95.0% for iarPLS and 94 / 99% for SNIP). The other fields are the
    comparison methods' best settings in the same sweep.
    """

    beads_freq_cutoff: float = 0.003
    beads_lam: float = 0.0003
    beads_asymmetry: float = 4.0
    lam: float = 10**6.5  # iarPLS / arPLS smoothness (points²)
    poly_order: int = 3  # imodpoly
    snip_half_window: int = 40  # points: wider than a band cluster


DEFAULT_BASELINE = RamanBaseline.BEADS
DEFAULT_SETTINGS = BaselineSettings()


@dataclass(frozen=True)
class PreprocessedSpectrum:
    """A measured spectrum as the Raman model sees it.

    ``intensity`` is baseline-free, ≥ 0, max 1 and 0 outside ``mask``;
    ``baseline`` the removed background on the scale of ``resampled`` (the
    despiked spectrum on the grid, scaled to 0…1).
    """

    intensity: NDArray[np.float64]
    mask: NDArray[np.bool_]
    baseline: NDArray[np.float64]
    resampled: NDArray[np.float64]
    covered_cm1: tuple[float, float]
    spikes_removed: int
    method: RamanBaseline
    warnings: tuple[str, ...]


def remove_baseline(
    values: NDArray[np.float64],
    method: RamanBaseline = DEFAULT_BASELINE,
    settings: BaselineSettings = DEFAULT_SETTINGS,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Split ``values`` (on the grid, scaled to max ≈ 1) into (signal, baseline)."""
    if method is RamanBaseline.NONE:
        floor = np.full_like(values, values.min())
        return values - floor, floor
    fitter = Baseline(np.arange(values.size, dtype=np.float64))
    if method is RamanBaseline.BEADS:
        lam = settings.beads_lam
        baseline, _ = fitter.beads(
            values,
            freq_cutoff=settings.beads_freq_cutoff,
            lam_0=lam,
            lam_1=lam,
            lam_2=lam,
            asymmetry=settings.beads_asymmetry,
        )
    elif method is RamanBaseline.IARPLS:
        baseline, _ = fitter.iarpls(values, lam=settings.lam)
    elif method is RamanBaseline.ARPLS:
        baseline, _ = fitter.arpls(values, lam=settings.lam)
    elif method is RamanBaseline.IMODPOLY:
        baseline, _ = fitter.imodpoly(values, poly_order=settings.poly_order)
    else:
        baseline, _ = fitter.snip(
            values, max_half_window=settings.snip_half_window, decreasing=True
        )
    baseline = np.asarray(baseline, dtype=np.float64)
    return values - baseline, baseline


def preprocess_spectrum(
    spectrum: RamanSpectrum,
    *,
    method: RamanBaseline = DEFAULT_BASELINE,
    settings: BaselineSettings = DEFAULT_SETTINGS,
    grid: RamanGrid = RAMAN_GRID,
    despike: bool = True,
) -> PreprocessedSpectrum:
    """Despike, resample, remove the baseline and normalise a Raman spectrum."""
    notes: list[str] = []
    if READER_WARNING in spectrum.metadata:
        notes.append(spectrum.metadata[READER_WARNING])
    intensity, spikes = remove_spikes(spectrum.intensity) if despike else (spectrum.intensity, 0)
    gridded = to_raman_grid(spectrum.shift_cm1, intensity, grid)
    covered = gridded.mask
    out, full_baseline, resampled = normalised_on_grid(
        gridded.intensity, covered, lambda scaled: remove_baseline(scaled, method, settings)
    )
    lo, hi = gridded.covered_cm1
    if covered.mean() < PARTIAL_COVERAGE_WARNING:
        notes.append(
            f"the spectrum covers only {lo:.0f}–{hi:.0f} cm⁻¹ of the compared range "
            f"{grid.start_cm1:g}–{grid.stop_cm1:g} cm⁻¹; only that part is compared"
        )
    return PreprocessedSpectrum(
        intensity=out,
        mask=covered,
        baseline=full_baseline,
        resampled=resampled,
        covered_cm1=(lo, hi),
        spikes_removed=spikes,
        method=method,
        warnings=tuple(notes),
    )


def compact_spectrum(spectrum: RamanSpectrum, grid: RamanGrid = RAMAN_GRID) -> RamanSpectrum:
    """The spectrum despiked and binned to the grid's step over its whole
    measured range (on the grid's points): what the default library keeps of
    a reference. Its preprocessing (with ``despike=False``) gives what the
    spectrum's own gives, in about half the bytes of a 0.5 cm⁻¹ spectrum.
    """
    intensity, _ = remove_spikes(spectrum.intensity)
    first = np.ceil((spectrum.shift_cm1[0] - grid.start_cm1) / grid.step_cm1)
    last = np.floor((spectrum.shift_cm1[-1] - grid.start_cm1) / grid.step_cm1)
    own = RamanGrid(
        grid.start_cm1 + first * grid.step_cm1, grid.start_cm1 + last * grid.step_cm1, grid.step_cm1
    )
    binned = to_raman_grid(spectrum.shift_cm1, intensity, own)
    return RamanSpectrum(
        shift_cm1=own.shift_cm1,
        intensity=binned.intensity,
        laser_wavelength_nm=spectrum.laser_wavelength_nm,
        metadata=spectrum.metadata,
    )
