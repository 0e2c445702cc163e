"""Put a measured pattern onto the model grid.

2θ is converted to the grid's wavelength through d-spacing, then intensities
are averaged into grid bins where the scan is finer than the grid (so noise
averages out instead of being point-sampled) and linearly interpolated where
it is coarser. The grid points the scan covers form the mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from xrdid.errors import InputError
from xrdid.grid import MODEL_GRID, Grid, convert_two_theta
from xrdid.pattern import Pattern
from xrdid.wavelengths import Wavelength

# A scan must cover at least this much of the grid (in degrees 2θ) to be
# compared: less holds too few reflections for any identification.
MIN_COVERAGE_DEG = 5.0


@dataclass(frozen=True)
class GriddedPattern:
    """Intensities on the grid; zero and ``mask == False`` outside the scan."""

    intensity: NDArray[np.float64]
    mask: NDArray[np.bool_]
    covered_two_theta_deg: tuple[float, float]


def to_grid(pattern: Pattern, wavelength: Wavelength, grid: Grid = MODEL_GRID) -> GriddedPattern:
    """Resample ``pattern`` (measured with ``wavelength``) onto ``grid``."""
    two_theta = convert_two_theta(
        pattern.two_theta_deg, wavelength.kalpha1_angstrom, grid.wavelength_angstrom
    )
    reachable = np.isfinite(two_theta)
    two_theta, intensity = two_theta[reachable], pattern.intensity[reachable]
    lo = max(two_theta[0] if two_theta.size else np.inf, grid.start_deg)
    hi = min(two_theta[-1] if two_theta.size else -np.inf, grid.stop_deg)
    if hi - lo < MIN_COVERAGE_DEG:
        measured = pattern.two_theta_range_deg
        raise InputError(
            f"the scan ({measured[0]:.2f}–{measured[1]:.2f}° 2θ at "
            f"{wavelength.label}) covers {max(hi - lo, 0):.1f}° of the model range "
            f"{grid.start_deg:g}–{grid.stop_deg:g}° 2θ at Cu Kα1; at least "
            f"{MIN_COVERAGE_DEG:g}° is needed. Check the wavelength: a wrong anode "
            "moves the whole pattern."
        )
    grid_x = grid.two_theta_deg
    mask = (grid_x >= lo - 1e-9) & (grid_x <= hi + 1e-9)
    values = np.interp(grid_x, two_theta, intensity)
    if np.median(np.diff(two_theta)) < grid.step_deg:
        binned = _bin_means(two_theta, intensity, grid_x, grid.step_deg)
        values = np.where(np.isfinite(binned), binned, values)
    values[~mask] = 0.0
    return GriddedPattern(intensity=values, mask=mask, covered_two_theta_deg=(lo, hi))


def _bin_means(
    x: NDArray[np.float64], y: NDArray[np.float64], centers: NDArray[np.float64], step: float
) -> NDArray[np.float64]:
    """Mean of y in each bin [c − step/2, c + step/2); NaN for empty bins."""
    edges = np.concatenate([centers - step / 2.0, [centers[-1] + step / 2.0]])
    index = np.searchsorted(x, edges)
    counts = np.diff(index)
    cumulative = np.concatenate([[0.0], np.cumsum(y)])
    sums = cumulative[index[1:]] - cumulative[index[:-1]]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
