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
from scipy import sparse

from xrdid.grid import MODEL_GRID
from xrdid.ranking.config import MAX_SHIFT_STEPS

_Float = TypeVar("_Float", np.float32, np.float64)
_GRID_TWO_THETA_DEG = MODEL_GRID.two_theta_deg


def square_roots(intensity: NDArray[np.floating]) -> NDArray[np.float32]:
    """Square roots (negative noise clipped): weak peaks count, strong ones less so."""
    return np.sqrt(np.clip(intensity, 0.0, None, dtype=np.float32))


def grid_segments(angles: NDArray[np.float64]) -> tuple[NDArray[np.intp], NDArray[np.bool_]]:
    """For each angle, the model-grid point at or below it, as np.interp
    finds it (within the grid's last segment), and whether the angle lies
    on the grid at all. The grid is uniform, so arithmetic puts each angle
    within a point of its segment, and two compares settle it."""
    grid = _GRID_TWO_THETA_DEG
    last = grid.size - 2
    # Clipped first, truncation is the floor.
    guess = np.subtract(angles, grid[0])
    guess *= 1.0 / MODEL_GRID.step_deg
    segment = np.clip(guess, 0, last, out=guess).astype(np.intp)
    segment += angles >= grid[segment + 1]
    segment -= angles < grid[segment]
    return np.clip(segment, 0, last, out=segment), (angles >= grid[0]) & (angles <= grid[-1])


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
    reader = _strained_bins(start, stop, tuple(round(float(s), 9) for s in strains), bin_steps)
    sums = (reader @ np.asarray(query, dtype=np.float64)).reshape(len(strains), -1)
    windows = np.lib.stride_tricks.sliding_window_view(sums.astype(np.float32), bins, axis=1)
    # Standardised from each window's sums: the windows overlap, so
    # standardising them one by one would read every bin once per shift.
    total, total_squares = _window_sums(sums, bins), _window_sums(sums * sums, bins)
    mean = total / bins
    spread = np.sqrt(np.maximum(total_squares - total * mean, 0.0))
    # A flat window (no peaks: its spread is rounding) stays zero.
    flat = spread <= 1e-6 * np.sqrt(total_squares) + 1e-12
    out = windows - mean.astype(np.float32)[..., None]
    out *= np.where(flat, 0.0, 1.0 / np.where(flat, 1.0, spread)).astype(np.float32)[..., None]
    return out.reshape(-1, bins)


def _window_sums(rows: NDArray[np.float64], width: int) -> NDArray[np.float64]:
    """Sums of each row's windows of ``width`` (a window a step further
    along drops the row's next point at its head and takes one at its tail)."""
    windows = rows.shape[1] - width + 1
    whole = rows.sum(axis=1, keepdims=True)
    before = np.zeros((rows.shape[0], windows))
    np.cumsum(rows[:, : windows - 1], axis=1, out=before[:, 1:])
    after = np.zeros((rows.shape[0], windows))
    np.cumsum(rows[:, : width - 1 : -1], axis=1, out=after[:, -2::-1])
    return whole - before - after


# A map is about 1.6 MB (the re-rank's 25 strains over the whole grid); a
# scan's coverage needs three (the re-rank's, the profile search's, its sketches').
@functools.lru_cache(maxsize=16)
def _strained_bins(
    start: int, stop: int, strains: tuple[float, ...], bin_steps: int
) -> sparse.csr_matrix:
    """The linear map from a query to its strained scans' bin sums over grid
    points ``start:stop``, strain after strain: each strained point is read
    by linear interpolation between two grid points (zero beyond the grid).
    One sparse product replaces an interpolation per strain, and a query's
    window and strains recur call after call."""
    grid = _GRID_TWO_THETA_DEG
    points = np.arange(start, stop)
    per_strain = (stop - start) // bin_steps
    rows, columns, weights = [], [], []
    for index, strain in enumerate(strains):
        row = index * per_strain + (points - start) // bin_steps
        if strain == 0.0:
            rows.append(row)
            columns.append(points)
            weights.append(np.ones(points.size))
            continue
        # The peak of d-spacing d·(1 + ε) is read back at the angle of d.
        read_at = _strained_two_theta_deg(strain)[start:stop]
        left, inside = grid_segments(read_at)
        right_share = (read_at - grid[left]) / (grid[left + 1] - grid[left])
        rows += [row, row]
        columns += [left, left + 1]
        weights += [np.where(inside, 1.0 - right_share, 0.0), np.where(inside, right_share, 0.0)]
    reader = sparse.csr_matrix(
        (np.concatenate(weights), (np.concatenate(rows), np.concatenate(columns))),
        shape=(len(strains) * per_strain, grid.size),
    )
    reader.sum_duplicates()
    reader.eliminate_zeros()
    return reader


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
