"""A second route to the re-rank's candidates: the query's profile correlated
with every reference's, coarsely.

The re-rank (:mod:`xrdid.rerank`) scores the embedding's nearest references
only. For about 2% of synthetic queries the true material is not among them,
although its profile, strain and shift fitted, often correlates with the
query better than any other reference's: the embedding was thrown by what
the query lost (its strongest reflections, part of its range) or gained (an
impurity). This search finds such references so that the re-rank can score
them too. It is the re-rank's own isotropic correlation (square roots, 2θ
shift and isotropic strain fitted, the same prior for small strains) on
the bins and strain steps of ``PROFILE_SEARCH_RESOLUTION``, over rows binned once per reference
(:func:`coarse_rows`): one matrix product per query. On the evaluation's
synthetic queries its candidates served a top-5 within 0.1 point of what
the full-resolution correlation of every reference served.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from xrdid.phases import MAX_SHIFT_STEPS
from xrdid.profile_rows import binned, query_trials, square_roots, trial_penalties, trial_strains
from xrdid.rerank import RERANK_STRAIN_MAX, RERANK_STRAIN_PENALTY

__all__ = [
    "PROFILE_SEARCH_CANDIDATES",
    "PROFILE_SEARCH_RESOLUTION",
    "SearchResolution",
    "coarse_rows",
    "profile_search",
]

# How many references the search adds to the embedding's (at most; those
# already among them add nothing), and how coarsely it compares: chosen on
# the queries `python -m indexer rerank-weights` tunes the re-rank on (600
# closed-set materials, seed 8; model_store/RERANK.md). Adding 10 moved top-1
# / top-5 from 82.5 / 93.3 to 82.3 / 93.5 (full augmentation), 85.7 / 95.8 to
# 85.7 / 96.0 (low strain) and 81.2 / 54.4 to 82.2 / 57.0 (two-phase
# mixtures); bins of 6, 10 or 15 grid steps with strain steps of 0.6–1%, and
# 20 added, all scored within 0.1 of that. So the fewest and coarsest: 0.3°
# bins, strains up to ±4% (the re-rank's ±3.5% rounded to whole steps) in
# steps of 1%, shifts of 0 and ±0.3°: 27 trials, a seventh of the arithmetic
# per reference of bins of 6 steps and strain steps of 0.6%.
PROFILE_SEARCH_CANDIDATES = 10


@dataclass(frozen=True)
class SearchResolution:
    """How coarsely the search compares: bins of ``bin_steps`` grid steps
    (a divisor of 2 × MAX_SHIFT_STEPS, so the shifts tried are symmetric) and
    isotropic strains in steps of ``strain_step`` up to about the re-rank's."""

    bin_steps: int
    strain_step: float

    @functools.cached_property
    def strains(self) -> NDArray[np.floating]:
        return trial_strains(RERANK_STRAIN_MAX, self.strain_step)

    @functools.cached_property
    def penalty(self) -> NDArray[np.float32]:
        """Each (strain, shift) trial's prior, in :func:`query_trials` order."""
        return trial_penalties(self.strains, RERANK_STRAIN_PENALTY, self.bin_steps)


PROFILE_SEARCH_RESOLUTION = SearchResolution(bin_steps=15, strain_step=0.01)


def coarse_rows(
    profiles: NDArray[np.floating], resolution: SearchResolution = PROFILE_SEARCH_RESOLUTION
) -> NDArray[np.float32]:
    """References' model-grid profiles (n, L) as the search compares them:
    square roots summed in bins from the grid's start, (n, L // bin)."""
    return binned(square_roots(np.atleast_2d(profiles)), resolution.bin_steps)


def profile_search(
    intensity: NDArray[np.floating],
    mask: NDArray[np.bool_],
    rows: NDArray[np.float32],
    k: int = PROFILE_SEARCH_CANDIDATES,
    eligible: NDArray[np.bool_] | None = None,
    resolution: SearchResolution = PROFILE_SEARCH_RESOLUTION,
) -> NDArray[np.int64]:
    """Indices of the (at most) ``k`` rows of :func:`coarse_rows` (made at
    the same ``resolution``) whose profiles correlate best with the query's,
    best first; only ``eligible`` rows (a mask over them) when given. A flat
    reference, or a query that covers too little of the grid to shift,
    gives none."""
    none = np.empty(0, dtype=np.int64)
    covered = np.flatnonzero(mask)
    if covered.size == 0 or rows.shape[0] == 0 or k < 1:
        return none
    bin_steps = resolution.bin_steps
    # The whole bins inside the range every shift keeps covered (as the re-rank's window).
    first = -(-(int(covered[0]) + MAX_SHIFT_STEPS) // bin_steps)
    last = (int(covered[-1]) + 1 - MAX_SHIFT_STEPS) // bin_steps
    if last - first < 2:
        return none
    window = rows[:, first:last]
    query = square_roots(intensity)
    trials = query_trials(query, first * bin_steps, last * bin_steps, resolution.strains, bin_steps)
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
    scores -= resolution.penalty[:, None]
    best = scores.max(axis=0)
    best[flat] = -np.inf
    if eligible is not None:
        best[~eligible] = -np.inf
    k = min(k, int(np.count_nonzero(np.isfinite(best))))
    if k == 0:
        return none
    top = np.argpartition(-best, k - 1)[:k]
    return top[np.argsort(-best[top], kind="stable")].astype(np.int64)
