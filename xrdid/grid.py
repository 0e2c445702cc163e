"""The one fixed 2θ grid everything the model sees lives on.

Choice: Cu Kα1 (1.54056 Å), 2θ 5–90°, step 0.02° → 4,251 points.

- Cu Kα is what most lab diffractometers use, so most uploads need no mapping.
- 5–90° covers d = 17.7 Å … 1.09 Å: the low-angle peaks of clays and layered
  phases and the dense high-angle region where most labs stop scanning.
- 0.02° is the most common lab step; peaks (FWHM 0.05–0.3°) span 3–15 points,
  so neighbouring reflections stay apart.

Measurements at another wavelength are mapped through d-spacing
(λ = 2 d sin θ), and the part of the grid they cover is kept as a mask.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from xrdid.errors import InputError

GRID_WAVELENGTH_ANGSTROM = 1.54056  # Cu Kα1
GRID_START_DEG = 5.0
GRID_STOP_DEG = 90.0
GRID_STEP_DEG = 0.02


@dataclass(frozen=True)
class Grid:
    """A uniform 2θ grid at one wavelength."""

    wavelength_angstrom: float = GRID_WAVELENGTH_ANGSTROM
    start_deg: float = GRID_START_DEG
    stop_deg: float = GRID_STOP_DEG
    step_deg: float = GRID_STEP_DEG

    def __post_init__(self) -> None:
        if not (0 < self.start_deg < self.stop_deg < 180 and self.step_deg > 0):
            raise InputError(
                f"invalid grid {self.start_deg}–{self.stop_deg}° step {self.step_deg}°"
            )

    @property
    def n_points(self) -> int:
        return int(round((self.stop_deg - self.start_deg) / self.step_deg)) + 1

    @cached_property
    def two_theta_deg(self) -> NDArray[np.float64]:
        return self.start_deg + self.step_deg * np.arange(self.n_points, dtype=np.float64)

    @property
    def d_range_angstrom(self) -> tuple[float, float]:
        """(d_min, d_max) the grid can show."""
        return (
            two_theta_to_d(self.stop_deg, self.wavelength_angstrom),
            two_theta_to_d(self.start_deg, self.wavelength_angstrom),
        )

    def describe(self) -> dict[str, float | int]:
        return {
            "wavelength_angstrom": self.wavelength_angstrom,
            "two_theta_start_deg": self.start_deg,
            "two_theta_stop_deg": self.stop_deg,
            "two_theta_step_deg": self.step_deg,
            "n_points": self.n_points,
        }


MODEL_GRID = Grid()


def two_theta_to_d(two_theta_deg: NDArray[np.float64] | float, wavelength_angstrom: float):
    """Bragg's law: d = λ / (2 sin θ)."""
    return wavelength_angstrom / (2.0 * np.sin(np.radians(np.asarray(two_theta_deg) / 2.0)))


def d_to_two_theta(d_angstrom: NDArray[np.float64] | float, wavelength_angstrom: float):
    """Bragg's law inverted; NaN where the reflection is not reachable (λ > 2d)."""
    ratio = wavelength_angstrom / (2.0 * np.asarray(d_angstrom, dtype=np.float64))
    with np.errstate(invalid="ignore"):
        return np.where(ratio <= 1.0, 2.0 * np.degrees(np.arcsin(np.minimum(ratio, 1.0))), np.nan)


def convert_two_theta(
    two_theta_deg: NDArray[np.float64], from_angstrom: float, to_angstrom: float
) -> NDArray[np.float64]:
    """Map 2θ measured at one wavelength to 2θ at another through d-spacing."""
    if from_angstrom == to_angstrom:
        return np.asarray(two_theta_deg, dtype=np.float64)
    return d_to_two_theta(two_theta_to_d(two_theta_deg, from_angstrom), to_angstrom)
