"""Re-rank the embedding's nearest references by their profiles.

The embedding finds the right material among thousands even when strain,
texture and missing peaks move the pattern far from its reference, but it
puts look-alikes side by side. A profile correlation (the classic
search–match score) tells them apart when the peaks sit where the reference
says. Fitting a zero shift and an isotropic lattice strain first (as a
search–match program refines lattice parameters), with a prior for small
strains, lets it do so for strained samples too; comparing square roots of
the intensities keeps texture and a few strong peaks from outweighing where
the many weak ones are. The service scores each of the embedding's
``RERANK_CANDIDATES`` nearest references by

    score = cosine of the embeddings + PROFILE_WEIGHT × profile correlation

(:func:`rerank_correlation`) and ranks by that. Both numbers are in −1…1.

Profiles are model-grid intensities (:class:`xrdid.preprocess.PreprocessedPattern`),
a query's with its coverage mask.
"""

from __future__ import annotations

import functools

import numpy as np
from numpy.typing import NDArray

from xrdid.grid import MODEL_GRID
from xrdid.phases import MAX_SHIFT_STEPS

__all__ = [
    "PROFILE_WEIGHT",
    "RERANK_CANDIDATES",
    "fused_score",
    "profile_correlation",
    "rerank_correlation",
]

# Weight of the profile correlation, how many of the embedding's nearest
# references are re-scored, whether to fit a strain (with what prior) and to
# compare square roots: chosen on synthetic queries drawn apart from the
# evaluation's (single phases and two-phase mixtures; `python -m indexer
# rerank-weights`, model_store/RERANK.md). The true material is among the
# embedding's 300 nearest for 98% of the evaluation's synthetic queries (80%
# in its top 5).
PROFILE_WEIGHT = 2.0
RERANK_CANDIDATES = 300
# Strains tried: ±3.5% covers the augmentation's ±3% isotropic strain plus
# part of its anisotropic one; steps of 0.3% and bins of 3 grid steps (0.06°)
# keep a 300-candidate re-rank near 10 ms and scored as finer grids do (0.2%
# steps, 0.04° bins: within a query in 150 of each query set).
RERANK_STRAIN_MAX = 0.035
RERANK_STRAIN_STEP = 0.003
RERANK_BIN_STEPS = 3
RERANK_SQRT_INTENSITY = True
# r lost per unit of fitted strain: 0.06 at 3%.
RERANK_STRAIN_PENALTY = 2.0

_GRID_TWO_THETA_DEG = MODEL_GRID.two_theta_deg


def profile_correlation(
    intensity: NDArray[np.floating],
    mask: NDArray[np.bool_],
    references: NDArray[np.floating],
    strain_max: float = 0.0,
    strain_step: float = 0.002,
    bin_steps: int = 1,
    strain_penalty: float = 0.0,
) -> NDArray[np.float64]:
    """Best Pearson r of each reference with the query over 2θ shifts of up to
    ±``MAX_SHIFT_STEPS`` grid steps (zero offset, sample displacement) and,
    with ``strain_max`` > 0, isotropic lattice strains ε within ±strain_max in
    steps of ``strain_step`` (every d-spacing × (1 + ε): the query is mapped
    back through sin θ' = sin θ / (1 + ε)), each strain's r lowered by
    ``strain_penalty`` × |ε| (a prior for small strains: without it every
    isostructural compound within the range fits as well as the right one).

    ``intensity`` and ``mask`` are the query on the model grid (L,); ``references``
    (k, L). Only the part of the grid the query covers is compared, in bins of
    ``bin_steps`` grid steps (shifts then move by whole bins). Returns (k,),
    zeros when the query covers too little of the grid to shift.
    """
    covered = np.flatnonzero(mask)
    n_refs = np.shape(references)[0]
    lo = covered[0] + MAX_SHIFT_STEPS if covered.size else 0
    hi = covered[-1] + 1 - MAX_SHIFT_STEPS if covered.size else 0
    hi = lo + (hi - lo) // bin_steps * bin_steps
    if hi - lo < 2 * bin_steps:
        return np.zeros(n_refs)
    # float32 is ample for a correlation and halves the memory traffic.
    window = _standardised(_binned(np.asarray(references[:, lo:hi], dtype=np.float32), bin_steps))
    query = np.asarray(intensity, dtype=np.float32)
    n_strains = int(round(strain_max / strain_step)) if strain_max > 0 else 0
    strains = strain_step * np.arange(-n_strains, n_strains + 1)
    # Every (strain, shift) trial as one row: a single matrix product.
    trials = [
        np.lib.stride_tricks.sliding_window_view(
            _unstrained(query, float(strain))[lo - MAX_SHIFT_STEPS : hi + MAX_SHIFT_STEPS],
            hi - lo,
        )[::bin_steps]
        for strain in strains
    ]
    penalty = np.repeat(strain_penalty * np.abs(strains), [len(t) for t in trials])
    scores = _standardised(_binned(np.concatenate(trials), bin_steps)) @ window.T
    return np.asarray((scores - penalty[:, None].astype(np.float32)).max(axis=0), np.float64)


def rerank_correlation(
    intensity: NDArray[np.floating],
    mask: NDArray[np.bool_],
    references: NDArray[np.floating],
    sqrt_intensity: bool = RERANK_SQRT_INTENSITY,
    strain_penalty: float = RERANK_STRAIN_PENALTY,
) -> NDArray[np.float64]:
    """The service's profile correlation: shifts and isotropic strains fitted,
    on square roots of the intensities (negative noise clipped) by default."""
    if sqrt_intensity:
        intensity = np.sqrt(np.clip(intensity, 0.0, None, dtype=np.float32))
        references = np.sqrt(np.clip(references, 0.0, None, dtype=np.float32))
    return profile_correlation(
        intensity,
        mask,
        references,
        RERANK_STRAIN_MAX,
        RERANK_STRAIN_STEP,
        RERANK_BIN_STEPS,
        strain_penalty,
    )


def _unstrained(intensity: NDArray[np.float32], strain: float) -> NDArray[np.float32]:
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


def _binned(rows: NDArray[np.float32], bin_steps: int) -> NDArray[np.float32]:
    """Sums of ``bin_steps`` consecutive points (rows of a length divisible by
    it; sums, not means: a correlation does not see the scale). Strided slices
    added, several times faster than a reduction over a short last axis."""
    if bin_steps == 1:
        return rows
    binned = rows[:, 0::bin_steps].copy()
    for offset in range(1, bin_steps):
        binned += rows[:, offset::bin_steps]
    return binned


def _standardised(rows: NDArray[np.float32]) -> NDArray[np.float32]:
    """Rows centred and scaled to unit norm (flat rows stay zero)."""
    centred = rows - rows.mean(axis=1, keepdims=True)
    return centred / (np.linalg.norm(centred, axis=1, keepdims=True) + 1e-12)


def fused_score(
    similarity: NDArray[np.floating] | float, correlation: NDArray[np.floating] | float
) -> NDArray[np.float64]:
    """What the service ranks by: embedding cosine + weight × profile correlation."""
    return np.asarray(similarity, dtype=np.float64) + PROFILE_WEIGHT * np.asarray(
        correlation, dtype=np.float64
    )
