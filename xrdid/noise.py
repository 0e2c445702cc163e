"""The noise level of a scan or spectrum."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def noise_sigma(intensity: NDArray[np.floating]) -> float:
    """Robust σ of point-to-point noise: the median absolute second
    difference (peaks span many points, so few differences fall on them)."""
    y = np.asarray(intensity, dtype=np.float64)
    if y.size < 5:
        return 0.0
    second = y[2:] - 2.0 * y[1:-1] + y[:-2]
    # Clipped or background-free scans hold runs of equal values: use the rest.
    second = second[np.abs(second) > 0]
    if second.size == 0:
        return 0.0
    return float(1.4826 * np.median(np.abs(second)) / np.sqrt(6.0))
