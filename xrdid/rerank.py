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
``RERANK_CANDIDATES`` nearest references (and the few whose profiles
correlate best with the query's, :mod:`xrdid.profile_search`) by

    score = cosine of the embeddings + PROFILE_WEIGHT × profile correlation

and ranks by that. Both numbers are in −1…1. The ``STRAIN_FIT_CANDIDATES``
best by that score that are calculated references then get a strain tensor
fitted (:mod:`xrdid.strain_fit`: each reflection moves by its own strain, as
in an anisotropically strained sample), keeping the better correlation, and
all are ranked again (:func:`rerank_scores`).

Profiles are model-grid intensities (:class:`xrdid.preprocess.PreprocessedPattern`),
a query's with its coverage mask.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from xrdid.grid import MODEL_GRID
from xrdid.phases import MAX_SHIFT_STEPS
from xrdid.profile_rows import (
    binned,
    query_trials,
    square_roots,
    standardised,
    trial_penalties,
    trial_shifts,
    trial_strains,
)
from xrdid.strain_fit import ANISOTROPIC_STRAIN_PENALTY, StrainFit, fit_strain_tensors

__all__ = [
    "PROFILE_WEIGHT",
    "RERANK_CANDIDATES",
    "STRAIN_FIT_CANDIDATES",
    "RerankFits",
    "StrainBasis",
    "fused_score",
    "profile_correlation",
    "rerank_correlation",
    "rerank_fits",
    "rerank_scores",
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
# How many of the best by the fused score get a strain tensor fitted too
# (10 scored as 20 did, at half the cost: about 1 ms a candidate).
STRAIN_FIT_CANDIDATES = 10

# A calculated reference's :func:`xrdid.strain_fit.strain_basis`.
StrainBasis = NDArray[np.float32]


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
    return _isotropic_fit(
        intensity, mask, references, strain_max, strain_step, bin_steps, strain_penalty
    ).correlation


@dataclass(frozen=True)
class _IsotropicFit:
    """Per reference: the best r (prior included) and the strain and shift that gave it."""

    correlation: NDArray[np.float64]
    strain: NDArray[np.float64]
    shift_deg: NDArray[np.float64]


def _isotropic_fit(
    intensity: NDArray[np.floating],
    mask: NDArray[np.bool_],
    references: NDArray[np.floating],
    strain_max: float,
    strain_step: float,
    bin_steps: int,
    strain_penalty: float,
) -> _IsotropicFit:
    covered = np.flatnonzero(mask)
    n_refs = np.shape(references)[0]
    lo = covered[0] + MAX_SHIFT_STEPS if covered.size else 0
    hi = covered[-1] + 1 - MAX_SHIFT_STEPS if covered.size else 0
    hi = lo + (hi - lo) // bin_steps * bin_steps
    if hi - lo < 2 * bin_steps:
        return _IsotropicFit(np.zeros(n_refs), np.zeros(n_refs), np.zeros(n_refs))
    # float32 is ample for a correlation and halves the memory traffic.
    window = standardised(binned(np.asarray(references[:, lo:hi], dtype=np.float32), bin_steps))
    query = np.asarray(intensity, dtype=np.float32)
    strains = trial_strains(strain_max, strain_step)
    # Every (strain, shift) trial as one row: a single matrix product.
    shifts = trial_shifts(bin_steps)
    scores = query_trials(query, lo, hi, strains, bin_steps) @ window.T
    scores -= trial_penalties(strains, strain_penalty, bin_steps)[:, None]
    best = scores.argmax(axis=0)
    return _IsotropicFit(
        correlation=np.asarray(scores[best, np.arange(n_refs)], np.float64),
        strain=strains[best // len(shifts)],
        # The query is read ``shift`` steps further up than the reference.
        shift_deg=shifts[best % len(shifts)] * MODEL_GRID.step_deg,
    )


def rerank_correlation(
    intensity: NDArray[np.floating],
    mask: NDArray[np.bool_],
    references: NDArray[np.floating],
    sqrt_intensity: bool = RERANK_SQRT_INTENSITY,
    strain_penalty: float = RERANK_STRAIN_PENALTY,
) -> NDArray[np.float64]:
    """The service's isotropic profile correlation: shifts and isotropic
    strains fitted, on square roots of the intensities (negative noise
    clipped) by default."""
    if sqrt_intensity:
        intensity, references = square_roots(intensity), square_roots(references)
    return profile_correlation(
        intensity,
        mask,
        references,
        RERANK_STRAIN_MAX,
        RERANK_STRAIN_STEP,
        RERANK_BIN_STEPS,
        strain_penalty,
    )


@dataclass(frozen=True)
class RerankFits:
    """The re-rank's fits for one query's candidates: the isotropic
    correlation of each, and the strain tensors fitted to the best few."""

    isotropic: NDArray[np.float64]  # (k,) correlation, prior included
    fitted: NDArray[np.int64]  # candidates given a tensor, in fused-score order
    fitted_rank: NDArray[np.int64]  # each one's place in that order (0 = best)
    tensors: StrainFit

    def correlation(
        self,
        candidates: int = STRAIN_FIT_CANDIDATES,
        anisotropic_penalty: float = ANISOTROPIC_STRAIN_PENALTY,
    ) -> NDArray[np.float64]:
        """(k,) correlations, the better of the two fits for the ``candidates``
        best that have a tensor: rank by :func:`fused_score`."""
        tensor = self.tensors.correlation(RERANK_STRAIN_PENALTY, anisotropic_penalty)
        use = self.fitted_rank < candidates
        correlation = self.isotropic.copy()
        correlation[self.fitted[use]] = np.maximum(correlation[self.fitted[use]], tensor[use])
        return correlation


def rerank_fits(
    intensity: NDArray[np.floating],
    mask: NDArray[np.bool_],
    similarity: NDArray[np.floating],
    references: NDArray[np.floating],
    bases_of: Callable[[NDArray[np.int64]], Sequence[StrainBasis | None]] | None,
    strain_fit_candidates: int = STRAIN_FIT_CANDIDATES,
) -> RerankFits:
    """Every candidate gets the isotropic fit (as :func:`rerank_correlation`);
    the ``strain_fit_candidates`` best by the fused score that are calculated
    references get a strain tensor fitted too (:mod:`xrdid.strain_fit`).
    ``bases_of(indices)`` gives those candidates'
    :func:`~xrdid.strain_fit.strain_basis` (None for a measured reference);
    ``bases_of=None`` fits no tensor."""
    query, refs = square_roots(intensity), square_roots(references)
    fit = _isotropic_fit(
        query,
        mask,
        refs,
        RERANK_STRAIN_MAX,
        RERANK_STRAIN_STEP,
        RERANK_BIN_STEPS,
        RERANK_STRAIN_PENALTY,
    )
    best = np.argsort(-fused_score(similarity, fit.correlation), kind="stable")
    best = best[: strain_fit_candidates if bases_of is not None else 0]
    bases = list(bases_of(best)) if bases_of is not None and best.size else []
    calculated = np.array([b is not None for b in bases], dtype=bool)
    fitted = best[calculated]
    tensors = fit_strain_tensors(
        query,
        mask,
        refs[fitted],
        [b for b in bases if b is not None],
        fit.strain[fitted],
        fit.shift_deg[fitted],
    )
    return RerankFits(fit.correlation, fitted, np.flatnonzero(calculated), tensors)


def rerank_scores(
    intensity: NDArray[np.floating],
    mask: NDArray[np.bool_],
    similarity: NDArray[np.floating],
    references: NDArray[np.floating],
    bases_of: Callable[[NDArray[np.int64]], Sequence[StrainBasis | None]] | None = None,
) -> NDArray[np.float64]:
    """The profile correlation the service fuses with each candidate's cosine
    (:func:`rerank_fits` with the service's settings): rank by :func:`fused_score`."""
    return rerank_fits(intensity, mask, similarity, references, bases_of).correlation()


def fused_score(
    similarity: NDArray[np.floating] | float, correlation: NDArray[np.floating] | float
) -> NDArray[np.float64]:
    """What the service ranks by: embedding cosine + weight × profile correlation."""
    return np.asarray(similarity, dtype=np.float64) + PROFILE_WEIGHT * np.asarray(
        correlation, dtype=np.float64
    )
