"""Backgrounds and counting noise of real measurements, for synthetic patterns.

Used by the preprocessing benchmark (a known background to remove) and by
training augmentation. The three shapes are what lab scans show: a slowly
varying polynomial (sample holder, fluorescence), a decay at low angle (air
scatter and the direct beam's tail) and a broad amorphous hump (glass, binder,
poorly crystalline matter).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class Background:
    """One synthetic background, in units of the strongest peak (= 1)."""

    polynomial: tuple[float, ...]  # coefficients in t = (2θ − start) / span, from t⁰
    decay_amplitude: float
    decay_scale_deg: float
    hump_amplitude: float
    hump_center_deg: float
    hump_fwhm_deg: float

    def evaluate(self, two_theta_deg: NDArray[np.float64]) -> NDArray[np.float64]:
        x = two_theta_deg
        t = (x - x[0]) / max(x[-1] - x[0], 1e-9)
        poly = np.polynomial.polynomial.polyval(t, self.polynomial)
        decay = self.decay_amplitude * np.exp(-(x - x[0]) / self.decay_scale_deg)
        hump = self.hump_amplitude * np.exp(
            -4.0 * np.log(2.0) * ((x - self.hump_center_deg) / self.hump_fwhm_deg) ** 2
        )
        return np.maximum(poly + decay + hump, 0.0)


def random_background(
    rng: np.random.Generator, level: float, two_theta_range_deg: tuple[float, float]
) -> Background:
    """A random background whose mean height is about ``level``.

    Each component is present with some probability, so training and tests see
    flat, decaying, humped and mixed backgrounds.
    """
    lo, hi = two_theta_range_deg
    polynomial = (
        level * rng.uniform(0.2, 1.0),
        level * rng.uniform(-0.5, 0.5),
        level * rng.uniform(-0.3, 0.3),
    )
    decay = level * rng.uniform(0.5, 4.0) if rng.random() < 0.6 else 0.0
    hump = level * rng.uniform(0.3, 1.5) if rng.random() < 0.5 else 0.0
    return Background(
        polynomial=polynomial,
        decay_amplitude=decay,
        decay_scale_deg=rng.uniform(2.0, 10.0),
        hump_amplitude=hump,
        hump_center_deg=rng.uniform(lo + 0.15 * (hi - lo), lo + 0.6 * (hi - lo)),
        hump_fwhm_deg=rng.uniform(5.0, 15.0),
    )


def poisson_counts(
    rng: np.random.Generator, expected: NDArray[np.float64], peak_counts: float
) -> NDArray[np.float64]:
    """Counting statistics of a detector whose strongest peak collects
    ``peak_counts`` counts: a Poisson draw around ``expected × peak_counts``."""
    return rng.poisson(np.maximum(expected, 0.0) * peak_counts).astype(np.float64)
