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
scale, so each row is scaled to its maximum), grouped into lists around
centroids (an inverted file). A query is correlated with the centroids first,
the same way, and then with the rows of its best lists only, until they hold
``probe`` lists' worth of eligible rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import faiss
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
# Rows quantised or assigned to lists per step (bounds the float copies).
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
    :class:`CompressedRows`, only the rows of the query's best lists are
    compared."""
    k = config.profile_search_candidates if k is None else k
    if isinstance(rows, CompressedRows):
        scores = _scores(intensity, mask, rows.centroids, config)
        if scores is None or k < 1:
            return np.empty(0, dtype=np.int64)
        candidates = rows.probed(scores, eligible)
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
    covered = np.flatnonzero(mask)
    if covered.size == 0 or rows.shape[0] == 0:
        return None
    bin_steps = resolution.bin_steps
    # The whole bins inside the range every shift keeps covered (as the re-rank's window).
    first = -(-(int(covered[0]) + MAX_SHIFT_STEPS) // bin_steps)
    last = (int(covered[-1]) + 1 - MAX_SHIFT_STEPS) // bin_steps
    if last - first < 2:
        return None
    window = rows[:, first:last]
    query = square_roots(intensity)
    strains = trial_strains(config.strain_max, resolution.strain_step)
    trials = query_trials(query, first * bin_steps, last * bin_steps, strains, bin_steps)
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
    scores -= trial_penalties(strains, config.strain_penalty, bin_steps)[:, None]
    best: NDArray[np.float32] = scores.max(axis=0)
    best[flat] = -np.inf
    return best


def _quantised(rows: NDArray[np.float32]) -> NDArray[np.uint8]:
    """8-bit codes of non-negative rows, each scaled to its maximum."""
    peak = rows.max(axis=1, keepdims=True, initial=0.0)
    scale = np.where(peak > 0, _CODE_LEVELS / np.where(peak > 0, peak, 1.0), 0.0)
    return np.rint(rows * scale).astype(np.uint8)


@dataclass(frozen=True)
class CompressedRows:
    """Coarse rows as 8-bit codes, each in the list of its nearest centroid
    (Pearson r over the whole grid); searched through :func:`profile_search`.
    Immutable: :meth:`append` and :meth:`take` return new rows."""

    codes: NDArray[np.uint8]  # (n, bins)
    lists: NDArray[np.int32]  # (n,) each row's list
    centroids: NDArray[np.float32]  # (lists, bins), standardised
    probe: int  # lists' worth of rows compared per query

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.codes.shape[0]), int(self.codes.shape[1]))

    @classmethod
    def train(
        cls, sample: NDArray[np.float32], n_lists: int, probe: int, seed: int = 0
    ) -> CompressedRows:
        """No rows yet, with ``n_lists`` centroids k-means found in a sample of coarse rows."""
        points = np.ascontiguousarray(standardised(sample.astype(np.float32)))
        n_lists = max(1, min(n_lists, points.shape[0]))
        kmeans = faiss.Kmeans(
            points.shape[1], n_lists, niter=20, spherical=True, seed=seed, verbose=False
        )
        kmeans.train(points)
        trained: NDArray[np.float32] = np.asarray(kmeans.centroids, dtype=np.float32)
        centroids = np.ascontiguousarray(standardised(trained))
        return cls(
            np.empty((0, points.shape[1]), dtype=np.uint8),
            np.empty(0, dtype=np.int32),
            centroids,
            probe,
        )

    def _assigned(self, rows: NDArray[np.float32]) -> NDArray[np.int32]:
        out = [np.empty(0, dtype=np.int32)]
        for start in range(0, rows.shape[0], _BLOCK):
            block = standardised(rows[start : start + _BLOCK].astype(np.float32))
            out.append(np.argmax(block @ self.centroids.T, axis=1).astype(np.int32))
        return np.concatenate(out)

    def append(self, rows: NDArray[np.float32]) -> CompressedRows:
        """These rows with ``rows`` (float coarse rows) after them."""
        return self.joined([self.encoded(rows)])

    def encoded(self, rows: NDArray[np.float32]) -> tuple[NDArray[np.uint8], NDArray[np.int32]]:
        """(codes, lists) of float coarse rows, for :meth:`joined`."""
        codes = [np.empty((0, self.codes.shape[1]), dtype=np.uint8)]
        for start in range(0, rows.shape[0], _BLOCK):
            codes.append(_quantised(rows[start : start + _BLOCK]))
        return np.concatenate(codes), self._assigned(rows)

    def joined(self, parts: list[tuple[NDArray[np.uint8], NDArray[np.int32]]]) -> CompressedRows:
        """These rows with encoded parts after them (one copy for all parts)."""
        return CompressedRows(
            np.concatenate([self.codes, *(p[0] for p in parts)]),
            np.concatenate([self.lists, *(p[1] for p in parts)]),
            self.centroids,
            self.probe,
        )

    def take(self, keep: NDArray[np.bool_]) -> CompressedRows:
        return CompressedRows(self.codes[keep], self.lists[keep], self.centroids, self.probe)

    def rows(self, indices: NDArray[np.int64]) -> NDArray[np.float32]:
        """Those rows as floats (each scaled to a maximum of 255)."""
        return self.codes[indices].astype(np.float32)

    def probed(
        self,
        centroid_scores: NDArray[np.float32],
        eligible: NDArray[np.bool_] | None,
    ) -> NDArray[np.int64]:
        """Indices of the eligible rows in the best-scoring lists, taking lists
        until they hold ``probe`` lists' worth of eligible rows."""
        n_lists = self.centroids.shape[0]
        members = self.lists if eligible is None else self.lists[eligible]
        sizes = np.bincount(members, minlength=n_lists)
        order = np.argsort(-centroid_scores, kind="stable")
        wanted = self.probe * max(1.0, members.size / n_lists)
        taken = int(np.searchsorted(np.cumsum(sizes[order]), wanted)) + 1
        chosen = np.zeros(n_lists, dtype=bool)
        chosen[order[:taken]] = True
        selected = chosen[self.lists]
        if eligible is not None:
            selected &= eligible
        return np.flatnonzero(selected).astype(np.int64)
