"""Rows of profiles made ready for a Pearson correlation: square-rooted,
strained, shifted, binned, standardised.

Shared by the isotropic correlation (:mod:`xrdid.ranking.correlation`), the
strain tensor fit (:mod:`xrdid.ranking.strain_tensor`) and the whole-library
profile search (:mod:`xrdid.ranking.profile_search`), so all correlate
exactly the same way.
"""

from __future__ import annotations

import functools
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from xrdid.grid import MODEL_GRID
from xrdid.ranking.config import MAX_SHIFT_STEPS

_Float = TypeVar("_Float", np.float32, np.float64)
_GRID_TWO_THETA_DEG = MODEL_GRID.two_theta_deg


def square_roots(intensity: NDArray[np.floating]) -> NDArray[np.float32]:
    """Square roots (negative noise clipped): weak peaks count, strong ones less so."""
    return np.sqrt(np.clip(intensity, 0.0, None, dtype=np.float32))


def unstrained(intensity: NDArray[np.float32], strain: float) -> NDArray[np.float32]:
    """A scan of a sample strained by ``strain``, on the unstrained grid: the
    peak of d-spacing d·(1 + ε) is read back at the angle of d."""
    if strain == 0.0:
        return intensity
    two_theta = _strained_two_theta_deg(round(strain, 9))
    return np.interp(two_theta, _GRID_TWO_THETA_DEG, intensity, left=0.0, right=0.0).astype(
        np.float32
    )


@functools.lru_cache(maxsize=256)
def _strained_two_theta_deg(strain: float) -> NDArray[np.float64]:
    """Where each grid angle's d-spacing lies once strained (the same for every query)."""
    sin_theta = np.sin(np.radians(_GRID_TWO_THETA_DEG / 2.0)) / (1.0 + strain)
    two_theta = 2.0 * np.degrees(np.arcsin(np.clip(sin_theta, -1.0, 1.0)))
    two_theta.setflags(write=False)  # shared by every call
    return two_theta


def query_trials(
    query: NDArray[np.float32], lo: int, hi: int, strains: NDArray[np.floating], bin_steps: int
) -> NDArray[np.float32]:
    """Every (strain, shift) trial of the query over grid points ``lo:hi`` as one
    standardised row, strain-major, shifts as :func:`trial_shifts`. Needs
    ``MAX_SHIFT_STEPS`` ≤ lo and hi + ``MAX_SHIFT_STEPS`` ≤ the grid's length."""
    shifts = trial_shifts(bin_steps)
    bins = (hi - lo) // bin_steps
    start = lo + int(shifts[0])
    stop = start + bin_steps * (bins + shifts.size - 1)
    # Shifts are whole bins: each strain's query is binned once and every
    # shift is a window of its bins (the same sums as binning each shifted row).
    trials = [
        np.lib.stride_tricks.sliding_window_view(
            binned(unstrained(query, float(strain))[None, start:stop], bin_steps)[0], bins
        )
        for strain in strains
    ]
    return standardised(np.concatenate(trials))


def trial_shifts(bin_steps: int) -> NDArray[np.int64]:
    """The shifts of :func:`query_trials`, in grid steps: the multiples of a
    bin within ±``MAX_SHIFT_STEPS`` (0 alone for a bin wider than that: its
    sums tolerate the shift)."""
    reach = MAX_SHIFT_STEPS // bin_steps * bin_steps
    return np.arange(-reach, reach + 1, bin_steps)


def trial_strains(strain_max: float, strain_step: float) -> NDArray[np.float64]:
    """Isotropic strains within ±``strain_max`` in steps of ``strain_step``
    (0 alone when ``strain_max`` is 0)."""
    n = int(round(strain_max / strain_step)) if strain_max > 0 else 0
    return strain_step * np.arange(-n, n + 1, dtype=np.float64)


def trial_penalties(
    strains: NDArray[np.floating], strain_penalty: float, bin_steps: int
) -> NDArray[np.float32]:
    """Each (strain, shift) trial's prior for small strains, ``strain_penalty``
    × |ε|, in :func:`query_trials` order."""
    shifts = len(trial_shifts(bin_steps))
    return np.repeat(strain_penalty * np.abs(strains), shifts).astype(np.float32)


def binned(rows: NDArray[_Float], bin_steps: int) -> NDArray[_Float]:
    """Sums of ``bin_steps`` consecutive points from each row's start (a
    partial last bin dropped; sums, not means: a correlation does not see the
    scale). Strided slices added, several times faster than a reduction over
    a short last axis."""
    if bin_steps == 1:
        return rows
    n = rows.shape[1] // bin_steps * bin_steps
    out = rows[:, 0:n:bin_steps].copy()
    for offset in range(1, bin_steps):
        out += rows[:, offset:n:bin_steps]
    return out


def standardised(rows: NDArray[_Float]) -> NDArray[_Float]:
    """Rows centred and scaled to unit norm (flat rows stay zero): the dot
    product of two such rows is their Pearson r."""
    centred = rows - rows.mean(axis=1, keepdims=True)
    return centred / (np.linalg.norm(centred, axis=1, keepdims=True) + 1e-12)
