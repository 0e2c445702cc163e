"""Cosmic-ray spikes out of a Raman spectrum.

A cosmic ray hits one to three CCD pixels: a point far above its neighbours
whose excess a 5-point running median does not explain. A Raman band, even
the narrowest, spans three or more points, so the median follows most of its
height. A point is a spike when its excess over the running median is both
``SPIKE_NOISE_SIGMAS`` times the noise (robust and local: the median absolute
excess of the 51 points around it; at least 5% of the spectrum's range) and over
``SPIKE_SHARE`` of its height above the window's floor; spikes (and one point either side) are replaced by linear
interpolation from the points around them. Runs on the spectrum's own
sampling, before resampling, where a spike is still one or two points.

Whitaker & Hayes (Chemom. Intell. Lab. Syst. 179, 82, 2018) flag spikes by
z-scores of first differences; that also flags strong sharp bands, which the
share-of-height test here leaves alone (``benchmarks/raman_preprocessing.py``
measures both: spikes removed, band area kept on real spectra). Hand-written:
pybaselines has no despiking, and the Raman packages that do (ramanspy) pull
in far more than these few lines.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import binary_dilation, median_filter, minimum_filter1d

WINDOW_POINTS = 5  # running median: wider than a spike (≤ 2 points)
NOISE_WINDOW_POINTS = 51  # local noise: a few bands wide
SPIKE_NOISE_SIGMAS = 10.0
SPIKE_SHARE = 0.6  # of the point's height above the window floor
# Excesses below this share of the spectrum's range are left: after
# normalisation they are noise-sized, and flat or smoothed exports (zeros
# outside the measured range) would otherwise give a noise of zero.
MIN_SPIKE_OF_RANGE = 0.05


def spike_mask(intensity: NDArray[np.floating]) -> NDArray[np.bool_]:
    """Points that belong to cosmic-ray spikes (with one neighbour either side)."""
    y = np.asarray(intensity, dtype=np.float64)
    if y.size < 2 * WINDOW_POINTS:
        return np.zeros(y.size, dtype=bool)
    excess = y - median_filter(y, size=WINDOW_POINTS, mode="nearest")
    height = y - minimum_filter1d(y, size=WINDOW_POINTS, mode="nearest")
    # Noise varies along a spectrum (shot noise grows with the signal): a
    # local robust estimate, the median absolute excess around each point.
    noise = 1.4826 * median_filter(np.abs(excess), size=NOISE_WINDOW_POINTS, mode="nearest")
    floor = np.maximum(SPIKE_NOISE_SIGMAS * noise, MIN_SPIKE_OF_RANGE * float(np.ptp(y)))
    spikes = (excess > floor) & (excess > SPIKE_SHARE * height)
    if not spikes.any():
        return spikes
    return binary_dilation(spikes, iterations=1)


def remove_spikes(intensity: NDArray[np.floating]) -> tuple[NDArray[np.float64], int]:
    """The spectrum with spikes interpolated over, and how many spikes there were."""
    y = np.asarray(intensity, dtype=np.float64).copy()
    spikes = spike_mask(y)
    if not spikes.any() or spikes.all():
        return y, 0
    index = np.arange(y.size)
    y[spikes] = np.interp(index[spikes], index[~spikes], y[~spikes])
    # Count runs, not points: one cosmic ray, one spike.
    count = int(np.count_nonzero(np.diff(spikes.astype(np.int8)) == 1) + spikes[0])
    return y, count
