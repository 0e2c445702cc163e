"""A second route to the re-rank's candidates: the query's profile correlated
with every reference's, coarsely.

The re-rank (:mod:`xrdid.ranking.correlation`) scores the embedding's nearest
references only. For about 2% of synthetic queries the true material is not
among them, although its profile, strain and shift fitted, often correlates
with the query better than any other reference's: the embedding was thrown
by what the query lost (its strongest reflections, part of its range) or
gained (an impurity). This search finds such references so that the re-rank
can score them too. It is the re-rank's own isotropic correlation (square
roots, 2θ shift and isotropic strain fitted, the same prior for small
strains) on the bins and strain steps of
``RankingConfig.profile_search_resolution``, over rows binned once per
reference (:func:`coarse_rows`): one matrix product per query.

A library of a million references keeps its rows as :class:`CompressedRows`:
8-bit codes (a quarter of the memory; a Pearson r does not see a row's
scale, so each row is scaled to its maximum), each with a sketch: the row in
bins twice as wide, standardised and projected on the principal axes of the
library's rows (64 numbers instead of 283). A query is correlated with every
sketch first, at ``RankingConfig.profile_sketch_resolution`` (one unshifted
trial per strain: the wider bins absorb the shifts; each trial projected
on the same axes), and then in full with only the rows whose sketches
scored best: a share of the eligible rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from xrdid.ranking.config import MAX_SHIFT_STEPS, SERVED, RankingConfig, SearchResolution
from xrdid.ranking.rows import (
    binned,
    query_trials,
    square_roots,
    standardised,
    trial_penalties,
    trial_strains,
)

__all__ = ["CompressedRows", "coarse_rows", "profile_search"]

_CODE_LEVELS = 255
# Rows encoded per step (bounds the float copies).
_BLOCK = 65_536


def coarse_rows(
    profiles: NDArray[np.floating],
    resolution: SearchResolution = SERVED.profile_search_resolution,
) -> NDArray[np.float32]:
    """References' model-grid profiles (n, L) as the search compares them:
    square roots summed in bins from the grid's start, (n, L // bin)."""
    return binned(square_roots(np.atleast_2d(profiles)), resolution.bin_steps)


def profile_search(
    intensity: NDArray[np.floating],
    mask: NDArray[np.bool_],
    rows: NDArray[np.float32] | CompressedRows,
    eligible: NDArray[np.bool_] | None = None,
    config: RankingConfig = SERVED,
    k: int | None = None,
) -> NDArray[np.int64]:
    """Indices of the (at most) ``k`` (default ``config.profile_search_candidates``)
    rows of :func:`coarse_rows` (made at ``config.profile_search_resolution``)
    whose profiles correlate best with the query's, best first; only
    ``eligible`` rows (a mask over them) when given. A flat reference, or a
    query that covers too little of the grid to shift, gives none. With
    :class:`CompressedRows`, only the rows whose sketches score best are
    compared in full."""
    k = config.profile_search_candidates if k is None else k
    if isinstance(rows, CompressedRows):
        if k < 1:
            return np.empty(0, dtype=np.int64)
        candidates = rows.shortlisted(intensity, mask, eligible, config)
        found = _best(_scores(intensity, mask, rows.rows(candidates), config), None, k)
        return candidates[found]
    if k < 1:
        return np.empty(0, dtype=np.int64)
    return _best(_scores(intensity, mask, rows, config), eligible, k)


def _best(
    scores: NDArray[np.float32] | None, eligible: NDArray[np.bool_] | None, k: int
) -> NDArray[np.int64]:
    """Indices of the ``k`` best finite scores, best first."""
    if scores is None:
        return np.empty(0, dtype=np.int64)
    if eligible is not None:
        scores[~eligible] = -np.inf
    k = min(k, int(np.count_nonzero(np.isfinite(scores))))
    if k == 0:
        return np.empty(0, dtype=np.int64)
    top = np.argpartition(-scores, k - 1)[:k]
    return top[np.argsort(-scores[top], kind="stable")].astype(np.int64)


def _scores(
    intensity: NDArray[np.floating],
    mask: NDArray[np.bool_],
    rows: NDArray[np.float32],
    config: RankingConfig,
) -> NDArray[np.float32] | None:
    """Each row's best correlation with the query over the trials, less the
    strain prior (−inf for a flat row); None when the query covers too little."""
    resolution = config.profile_search_resolution
    bins = _window(mask, resolution.bin_steps)
    if bins is None or rows.shape[0] == 0:
        return None
    first, last = bins
    window = rows[:, first:last]
    trials = _trials(intensity, first, last, resolution, config.strain_max)
    # One product gives each trial's dot product with each window and, through
    # a row of ones, each window's sum.
    ones = np.ones((1, last - first), dtype=np.float32)
    products = np.concatenate([trials, ones]) @ window.T
    # Pearson r = trial · window / ‖window − its mean‖: the trials are
    # standardised, so their zero mean takes the window's mean out already.
    sums = products[-1].astype(np.float64)
    squares = np.einsum("ij,ij->i", window, window).astype(np.float64)
    spread = np.sqrt(np.maximum(squares - sums * sums / (last - first), 0.0))
    flat = spread <= 1e-3 * np.sqrt(squares) + 1e-12  # no peaks to correlate
    scores = products[:-1]
    scores *= (1.0 / np.where(flat, 1.0, spread)).astype(np.float32)[None, :]
    scores -= _penalties(resolution, config)[:, None]
    best: NDArray[np.float32] = scores.max(axis=0)
    best[flat] = -np.inf
    return best


def _window(mask: NDArray[np.bool_], bin_steps: int) -> tuple[int, int] | None:
    """The whole bins inside the range every shift keeps covered (as the
    re-rank's window); None when fewer than 2."""
    covered = np.flatnonzero(mask)
    if covered.size == 0:
        return None
    first = -(-(int(covered[0]) + MAX_SHIFT_STEPS) // bin_steps)
    last = (int(covered[-1]) + 1 - MAX_SHIFT_STEPS) // bin_steps
    return (first, last) if last - first >= 2 else None


def _trials(
    intensity: NDArray[np.floating],
    first: int,
    last: int,
    resolution: SearchResolution,
    strain_max: float,
) -> NDArray[np.float32]:
    """The query's standardised (strain, shift) trials over bins ``first:last``."""
    strains = trial_strains(strain_max, resolution.strain_step)
    step = resolution.bin_steps
    return query_trials(square_roots(intensity), first * step, last * step, strains, step)


def _penalties(resolution: SearchResolution, config: RankingConfig) -> NDArray[np.float32]:
    strains = trial_strains(config.strain_max, resolution.strain_step)
    return trial_penalties(strains, config.strain_penalty, resolution.bin_steps)


def _quantised(rows: NDArray[np.float32]) -> NDArray[np.uint8]:
    """8-bit codes of non-negative rows, each scaled to its maximum."""
    peak = rows.max(axis=1, keepdims=True, initial=0.0)
    scale = np.where(peak > 0, _CODE_LEVELS / np.where(peak > 0, peak, 1.0), 0.0)
    return np.rint(rows * scale).astype(np.uint8)


def _sketch_bins(config: RankingConfig) -> int:
    """Coarse-row bins summed into one sketch bin."""
    coarse = config.profile_search_resolution.bin_steps
    sketch = config.profile_sketch_resolution.bin_steps
    if sketch % coarse:
        raise ValueError("sketch bins must be whole numbers of the coarse rows' bins")
    return sketch // coarse


@dataclass(frozen=True)
class CompressedRows:
    """Coarse rows as 8-bit codes, each with its sketch (see the module
    docstring); searched through :func:`profile_search`. Immutable:
    :meth:`append` and :meth:`take` return new rows."""

    codes: NDArray[np.uint8]  # (n, bins)
    sketches: NDArray[np.float32]  # (n, dims)
    axes: NDArray[np.float32]  # (dims, bins // sketch_bins): the projection
    sketch_bins: int  # coarse-row bins summed into a sketch's bin
    shortlist: float  # share of the eligible rows compared in full per query

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.codes.shape[0]), int(self.codes.shape[1]))

    @classmethod
    def train(
        cls,
        sample: NDArray[np.float32],
        dims: int,
        shortlist: float,
        config: RankingConfig = SERVED,
    ) -> CompressedRows:
        """No rows yet, with the ``dims`` principal axes of a sample of coarse
        rows' sketch-binned, standardised forms (they hold most of what tells
        the rows apart)."""
        sketch_bins = _sketch_bins(config)
        points = standardised(binned(sample.astype(np.float32), sketch_bins))
        _, _, axes = np.linalg.svd(points.astype(np.float64), full_matrices=False)
        return cls(
            np.empty((0, sample.shape[1]), dtype=np.uint8),
            np.empty((0, min(dims, axes.shape[0])), dtype=np.float32),
            np.ascontiguousarray(axes[:dims], dtype=np.float32),
            sketch_bins,
            shortlist,
        )

    def append(self, rows: NDArray[np.float32]) -> CompressedRows:
        """These rows with ``rows`` (float coarse rows) after them."""
        return self.joined([self.encoded(rows)])

    def encoded(self, rows: NDArray[np.float32]) -> tuple[NDArray[np.uint8], NDArray[np.float32]]:
        """(codes, sketches) of float coarse rows, for :meth:`joined`."""
        codes = [np.empty((0, self.codes.shape[1]), dtype=np.uint8)]
        sketches = [np.empty((0, self.axes.shape[0]), dtype=np.float32)]
        for start in range(0, rows.shape[0], _BLOCK):
            block = rows[start : start + _BLOCK].astype(np.float32)
            codes.append(_quantised(block))
            sketches.append(standardised(binned(block, self.sketch_bins)) @ self.axes.T)
        return np.concatenate(codes), np.concatenate(sketches)

    def joined(self, parts: list[tuple[NDArray[np.uint8], NDArray[np.float32]]]) -> CompressedRows:
        """These rows with encoded parts after them (one copy for all parts)."""
        return CompressedRows(
            np.concatenate([self.codes, *(p[0] for p in parts)]),
            np.concatenate([self.sketches, *(p[1] for p in parts)]),
            self.axes,
            self.sketch_bins,
            self.shortlist,
        )

    def take(self, keep: NDArray[np.bool_]) -> CompressedRows:
        return CompressedRows(
            self.codes[keep], self.sketches[keep], self.axes, self.sketch_bins, self.shortlist
        )

    def rows(self, indices: NDArray[np.int64]) -> NDArray[np.float32]:
        """Those rows as floats (each scaled to a maximum of 255)."""
        return self.codes[indices].astype(np.float32)

    def shortlisted(
        self,
        intensity: NDArray[np.floating],
        mask: NDArray[np.bool_],
        eligible: NDArray[np.bool_] | None,
        config: RankingConfig,
    ) -> NDArray[np.int64]:
        """Indices of the eligible rows whose sketches correlate best with the
        query: ``shortlist`` of them, at least ``profile_search_candidates``."""
        resolution = config.profile_sketch_resolution
        bins = _window(mask, resolution.bin_steps)
        if bins is None or self.codes.shape[0] == 0:
            return np.empty(0, dtype=np.int64)
        first, last = bins
        window = _trials(intensity, first, last, resolution, config.strain_max)
        trials = np.zeros((window.shape[0], self.axes.shape[1]), dtype=np.float32)
        # Zero outside the window: a sketch covers the whole grid.
        trials[:, first:last] = window
        scores = (trials @ self.axes.T) @ self.sketches.T
        scores -= _penalties(resolution, config)[:, None]
        best = scores.max(axis=0)
        n_eligible = best.size if eligible is None else int(np.count_nonzero(eligible))
        wanted = max(config.profile_search_candidates, math.ceil(self.shortlist * n_eligible))
        return _best(best, eligible, wanted)
