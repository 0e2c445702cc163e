"""A scan that begins or ends on a peak: leave the cut peak out.

A window that starts or stops inside a reflection shows only its falling (or
rising) half at the edge. Background removal pins the scan's ends to the
background, so that half peak becomes a narrow spike no reference has, and
the phase analysis pulls every candidate's shift to its bound to reach it,
or adds a phase to explain it. Its reflection is not measured either way:
the points from the edge to where the peak has fallen are left out, as if
the scan began (ended) there. A scan that starts at low angle on the direct
beam's steep tail is trimmed the same way: BEADS follows it poorly.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import uniform_filter1d

from xrdid.noise import noise_sigma
from xrdid.pattern import MIN_POINTS, Pattern

# A peak cut by the edge has its top within this much of it…
TOP_WITHIN_DEG = 0.15
# …and falls to the background within this much (peaks' FWHM are ≤ ~0.5°;
# backgrounds vary over degrees).
FALL_WITHIN_DEG = 0.6
# It must fall by this many noise σ, and by this share of the scan's range,
# to be a peak and not noise or a gentle slope.
MIN_FALL_NOISE = 10.0
MIN_FALL_SHARE = 0.03
# Past the fall, the scan may go on falling by at most this share of it: a
# peak's tail (or the direct beam's, at low angle) flattens, a linear slope or
# a broad hump does not.
LEVEL_SHARE = 0.6
# The edge is read on means over this much 2θ, so that noise makes no top.
SMOOTH_DEG = 0.06
# The cut ends where the peak has come down to within this share of its fall.
TAIL_SHARE = 0.1


def cut_peak_points(
    two_theta_deg: NDArray[np.float64], intensity: NDArray[np.float64], sigma: float
) -> int:
    """How many points from the start of the scan belong to a peak cut by
    it (0: the scan does not begin on one)."""
    offset = two_theta_deg - two_theta_deg[0]
    window = np.flatnonzero(offset <= FALL_WITHIN_DEG)
    head = np.flatnonzero(offset <= TOP_WITHIN_DEG)
    if window.size < 5 or head.size == 0:
        return 0
    step = float(np.median(np.diff(two_theta_deg[: 4 * window.size])))
    y = uniform_filter1d(intensity, max(1, round(SMOOTH_DEG / step)), mode="nearest")
    # The window's highest point must be at the edge: a peak whose top lies
    # further in is whole (its far side is measured), whatever its tail does.
    top_index = int(window[np.argmax(y[window])])
    if top_index > head[-1]:
        return 0
    floor = float(y[window].min())
    fall = float(y[top_index]) - floor
    spread = float(intensity.max() - intensity.min())
    if fall <= MIN_FALL_NOISE * sigma or fall <= MIN_FALL_SHARE * spread:
        return 0
    # …and then level off: a slope that goes on falling as steeply is a broad
    # hump or the background, which BEADS follows.
    beyond = (offset > FALL_WITHIN_DEG) & (offset <= 2 * FALL_WITHIN_DEG)
    if np.any(beyond) and float(y[beyond].min()) < floor - LEVEL_SHARE * fall:
        return 0
    after = window[window > top_index]
    down = after[y[after] <= floor + TAIL_SHARE * fall]
    return int(down[0]) if down.size else 0


def without_cut_peaks(pattern: Pattern) -> tuple[Pattern, tuple[str, ...]]:
    """``pattern`` less the peaks its ends cut, and a note for each end trimmed."""
    x, y = pattern.two_theta_deg, pattern.intensity
    sigma = noise_sigma(y)
    start = cut_peak_points(x, y, sigma)
    # The end, read backwards: 2θ measured from the last point.
    end = cut_peak_points(x[-1] - x[::-1], y[::-1], sigma)
    if start == 0 and end == 0:
        return pattern, ()
    if x.size - start - end < MIN_POINTS:
        return pattern, ()
    keep = slice(start, x.size - end)
    notes = []
    if start:
        notes.append(
            "the scan begins on a steep fall (a peak its range cuts, or the direct beam's "
            f"tail): {x[0]:.2f}–{x[start]:.2f}° 2θ is left out of the comparison"
        )
    if end:
        notes.append(
            "the scan ends on a steep rise (a peak its range cuts): "
            f"{x[-end - 1]:.2f}–{x[-1]:.2f}° 2θ is left out of the comparison"
        )
    trimmed = replace(
        pattern,
        two_theta_deg=x[keep],
        intensity=y[keep],
        sigma=None if pattern.sigma is None else pattern.sigma[keep],
    )
    return trimmed, tuple(notes)
