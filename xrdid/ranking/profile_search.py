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
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from xrdid.ranking.config import MAX_SHIFT_STEPS, SERVED, RankingConfig, SearchResolution
from xrdid.ranking.rows import (
    binned,
    query_trials,
    square_roots,
    trial_penalties,
    trial_strains,
)

__all__ = ["coarse_rows", "profile_search"]


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
    rows: NDArray[np.float32],
    eligible: NDArray[np.bool_] | None = None,
    config: RankingConfig = SERVED,
    k: int | None = None,
) -> NDArray[np.int64]:
    """Indices of the (at most) ``k`` (default ``config.profile_search_candidates``)
    rows of :func:`coarse_rows` (made at ``config.profile_search_resolution``)
    whose profiles correlate best with the query's, best first; only
    ``eligible`` rows (a mask over them) when given. A flat reference, or a
    query that covers too little of the grid to shift, gives none."""
    k = config.profile_search_candidates if k is None else k
    resolution = config.profile_search_resolution
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
    best = scores.max(axis=0)
    best[flat] = -np.inf
    if eligible is not None:
        best[~eligible] = -np.inf
    k = min(k, int(np.count_nonzero(np.isfinite(best))))
    if k == 0:
        return none
    top = np.argpartition(-best, k - 1)[:k]
    return top[np.argsort(-best[top], kind="stable")].astype(np.int64)
