"""Fluorescence backgrounds of Raman spectra, for synthetic spectra.

Used by the preprocessing benchmark (a known background to remove) and the
training pack (spectra with a background, then preprocessed as uploads are).
What real spectra show: a broad fluorescence band (hundreds to thousands of
cm⁻¹ wide, its centre often beyond the measured range, so a rise or a fall),
a slow polynomial drift, and a level from a tenth to many times the
strongest Raman band. numpy only.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def random_fluorescence(
    rng: np.random.Generator, shift_cm1: NDArray[np.float64], level: float
) -> NDArray[np.float64]:
    """A random background whose mean height is about ``level`` (units of the
    strongest band)."""
    x = np.asarray(shift_cm1, dtype=np.float64)
    t = (x - x[0]) / max(float(x[-1] - x[0]), 1e-9)
    centre = rng.uniform(x[0] - 1500.0, x[-1] + 2500.0)
    width = rng.uniform(800.0, 5000.0)  # FWHM, cm⁻¹
    band = 1.0 / (1.0 + ((x - centre) / (width / 2.0)) ** 2)  # Lorentzian
    band /= band.mean() + 1e-12
    drift = np.polynomial.polynomial.polyval(t, rng.uniform(-0.3, 0.3, 3))
    shape = np.maximum(band * rng.uniform(0.5, 1.0) + drift + rng.uniform(0.0, 0.5), 0.0)
    return level * shape / (shape.mean() + 1e-12)


def poisson_counts(
    rng: np.random.Generator, expected: NDArray[np.float64], peak_counts: float
) -> NDArray[np.float64]:
    """Shot noise of a detector whose strongest band collects ``peak_counts``."""
    return rng.poisson(np.maximum(expected, 0.0) * peak_counts).astype(np.float64)


def add_spikes(
    rng: np.random.Generator, counts: NDArray[np.float64], n_spikes: int
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Cosmic rays: ``n_spikes`` one- or two-point spikes of 10–200% of the
    range; returns the spectrum and the spikes' first points."""
    out = counts.copy()
    starts = rng.choice(np.arange(5, counts.size - 6), size=n_spikes, replace=False)
    span = float(np.ptp(counts)) or 1.0
    for start in starts:
        out[start : start + int(rng.integers(1, 3))] += span * rng.uniform(0.1, 2.0)
    return out, np.sort(starts)
