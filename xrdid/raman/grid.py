"""The one Raman-shift grid the Raman model sees, and resampling onto it.

Choice: 100–1,800 cm⁻¹ in steps of 1 cm⁻¹ → 1,701 points (measured on the
RRUFF archive, ``docs/raman-science.md``):

- 98% of the archive's spectra start at or below 200 cm⁻¹ and 98% reach
  1,200 cm⁻¹; 43% go past 1,300 and 7% past 1,500 (carbonate, organic and
  carbon bands up to ~1,600 cm⁻¹). Below 100 cm⁻¹ only a fifth have data,
  above 1,800 a few in a thousand; O–H stretching (3,000–3,700 cm⁻¹) is left
  out for that reason.
- The strong bands' FWHM is 1.7 / 4.6 / 16.5 cm⁻¹ at the 1st / 5th / 50th
  percentile, so 1 cm⁻¹ keeps all but the narrowest percent at three or more
  points; the archive samples at 0.48 (532 nm) and ~1.3 cm⁻¹ (780/785 nm).

A spectrum is averaged into grid bins where it is finer than the grid and
interpolated where it is coarser; the grid points it covers form the mask.
numpy only, so the training job can import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from xrdid.errors import InputError
from xrdid.resample import _bin_means

RAMAN_START_CM1 = 100.0
RAMAN_STOP_CM1 = 1800.0
RAMAN_STEP_CM1 = 1.0

# A spectrum must cover this much of the grid to be compared: fewer bands than
# that (a few hundred cm⁻¹) do not tell minerals apart.
MIN_COVERAGE_CM1 = 200.0


@dataclass(frozen=True)
class RamanGrid:
    """A uniform Raman-shift grid."""

    start_cm1: float = RAMAN_START_CM1
    stop_cm1: float = RAMAN_STOP_CM1
    step_cm1: float = RAMAN_STEP_CM1

    def __post_init__(self) -> None:
        if not (self.start_cm1 < self.stop_cm1 and self.step_cm1 > 0):
            raise InputError(
                f"invalid Raman grid {self.start_cm1}–{self.stop_cm1} cm⁻¹ step {self.step_cm1}"
            )

    @property
    def n_points(self) -> int:
        return int(round((self.stop_cm1 - self.start_cm1) / self.step_cm1)) + 1

    @cached_property
    def shift_cm1(self) -> NDArray[np.float64]:
        return self.start_cm1 + self.step_cm1 * np.arange(self.n_points, dtype=np.float64)

    def describe(self) -> dict[str, float | int]:
        return {
            "shift_start_cm1": self.start_cm1,
            "shift_stop_cm1": self.stop_cm1,
            "shift_step_cm1": self.step_cm1,
            "n_points": self.n_points,
        }


RAMAN_GRID = RamanGrid()


@dataclass(frozen=True)
class GriddedSpectrum:
    """Intensities on the grid; zero and ``mask == False`` outside the spectrum."""

    intensity: NDArray[np.float64]
    mask: NDArray[np.bool_]
    covered_cm1: tuple[float, float]


def to_raman_grid(
    shift_cm1: NDArray[np.float64],
    intensity: NDArray[np.float64],
    grid: RamanGrid = RAMAN_GRID,
) -> GriddedSpectrum:
    """Resample a spectrum (shift strictly increasing) onto ``grid``."""
    lo = max(float(shift_cm1[0]), grid.start_cm1)
    hi = min(float(shift_cm1[-1]), grid.stop_cm1)
    if hi - lo < MIN_COVERAGE_CM1:
        raise InputError(
            f"the spectrum ({shift_cm1[0]:.0f}–{shift_cm1[-1]:.0f} cm⁻¹) covers "
            f"{max(hi - lo, 0):.0f} cm⁻¹ of the compared range {grid.start_cm1:g}–"
            f"{grid.stop_cm1:g} cm⁻¹; at least {MIN_COVERAGE_CM1:g} cm⁻¹ is needed. Is the "
            "axis Raman shift (not absolute wavenumber or nm)?"
        )
    x = grid.shift_cm1
    mask = (x >= lo - 1e-9) & (x <= hi + 1e-9)
    values = np.interp(x, shift_cm1, intensity)
    if np.median(np.diff(shift_cm1)) < grid.step_cm1:
        binned = _bin_means(shift_cm1, intensity, x, grid.step_cm1)
        values = np.where(np.isfinite(binned), binned, values)
    values[~mask] = 0.0
    return GriddedSpectrum(intensity=values, mask=mask, covered_cm1=(lo, hi))
