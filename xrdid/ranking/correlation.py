"""Score candidates by their profiles: the correlation fused with the embedding's cosine.

The embedding finds the right material among thousands even when strain,
texture and missing peaks move the pattern far from its reference, but it
puts look-alikes side by side. A profile correlation (the classic
search–match score) tells them apart when the peaks sit where the reference
says. Fitting a zero shift and an isotropic lattice strain first (as a
search–match program refines lattice parameters), with a prior for small
strains, lets it do so for strained samples too; comparing square roots of
the intensities keeps texture and a few strong peaks from outweighing where
the many weak ones are. Candidates are ranked by
:meth:`~xrdid.ranking.config.RankingConfig.fused_score`; the best few that are
calculated references then get a strain tensor fitted
(:mod:`xrdid.ranking.strain_tensor`: each reflection moves by its own strain,
as in an anisotropically strained sample), keeping the better correlation,
and all are ranked again (:func:`rerank_scores`).

Profiles are model-grid intensities (:class:`xrdid.preprocess.PreprocessedPattern`),
a query's with its coverage mask.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from xrdid.grid import MODEL_GRID
from xrdid.ranking.config import MAX_SHIFT_STEPS, SERVED, RankingConfig
from xrdid.ranking.rows import (
    binned,
    query_trials,
    square_roots,
    standardised,
    trial_penalties,
    trial_shifts,
    trial_strains,
)
from xrdid.ranking.strain_tensor import StrainBasis, StrainFit, fit_strain_tensors

__all__ = [
    "CorrelationRows",
    "IsotropicFit",
    "RerankFits",
    "StoredReferences",
    "isotropic_fit",
    "profile_correlation",
    "rerank_correlation",
    "rerank_fits",
    "rerank_scores",
]

# Gives the strain bases of candidates by their positions (None: measured reference).
BasesOf = Callable[[NDArray[np.int64]], Sequence[StrainBasis | None]]

# Rows a view of a library keeps (about 5.7 kB each at the re-rank's bins:
# 23 MB; a swap's look-alikes, at the grid's own steps, take 17 kB each).
_CACHED_ROWS = 4096


class CorrelationRows:
    """References' rows as the isotropic fit compares them (on the ranking's
    intensity scale, over a window of the grid, binned and standardised), by
    id, each made once: a phase analysis correlates the same references with
    the scan, its residuals and its phases round after round. A row depends
    on its reference and window only, so it is the same whichever others it
    is made beside. One per view of a library (a source); the least recently
    used rows go first beyond ``_CACHED_ROWS``."""

    def __init__(self, profiles: Callable[[NDArray[np.int64]], NDArray[np.floating]]) -> None:
        self._profiles = profiles
        self._windows: dict[tuple[int, int, int, bool], int] = {}  # a number for each window
        self._rows: OrderedDict[tuple[int, int], NDArray[np.float32]] = OrderedDict()

    def rows(
        self, ids: NDArray[np.int64], lo: int, hi: int, bin_steps: int, sqrt: bool
    ) -> NDArray[np.float32]:
        """(len(ids), (hi − lo) // bin_steps) rows of these references over grid points lo:hi."""
        window = (int(lo), int(hi), int(bin_steps), bool(sqrt))
        number = self._windows.setdefault(window, len(self._windows))
        keys = [(number, i) for i in np.asarray(ids, dtype=np.int64).tolist()]
        if not keys:
            return np.empty((0, (hi - lo) // bin_steps), dtype=np.float32)
        wanted = dict.fromkeys(keys)
        missing = [key for key in wanted if key not in self._rows]
        if len(missing) < len(wanted):  # those made before are now the most recently used
            for key in wanted:
                if key in self._rows:
                    self._rows.move_to_end(key)
        if not missing:
            return np.stack([self._rows[key] for key in keys])
        profiles = self._profiles(np.array([key[1] for key in missing], dtype=np.int64))
        made = _window_rows(profiles, lo, hi, bin_steps, sqrt)
        made.setflags(write=False)  # its rows are the cache's
        self._rows.update(zip(missing, made, strict=True))
        # All new (a ranking's first candidates): the rows just made, in order.
        out = made if len(missing) == len(keys) else np.stack([self._rows[key] for key in keys])
        while len(self._rows) > _CACHED_ROWS:
            self._rows.popitem(last=False)
        return out


class ProfileSource(Protocol):
    """Where stored references come from (a :class:`~xrdid.ranking.ReferenceSource`)."""

    correlation_rows: CorrelationRows

    def profiles(self, ids: NDArray[np.int64]) -> NDArray[np.float32]: ...


@dataclass(frozen=True)
class StoredReferences:
    """References by id in a source: the isotropic fit reads their rows from
    the source's :class:`CorrelationRows`, and only the few that get a strain
    tensor are read whole."""

    source: ProfileSource
    ids: NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.ids.size)


# Reference profiles (k, L), or references by id in a source.
References = NDArray[np.floating] | StoredReferences


def _window_rows(
    references: NDArray[np.floating], lo: int, hi: int, bin_steps: int, sqrt: bool
) -> NDArray[np.float32]:
    """Profiles over grid points lo:hi as the isotropic fit compares them."""
    window = references[:, lo:hi]
    # float32 is ample for a correlation and halves the memory traffic.
    scaled = square_roots(window) if sqrt else np.asarray(window, dtype=np.float32)
    return standardised(binned(scaled, bin_steps))


def _rows(
    references: References, lo: int, hi: int, bin_steps: int, sqrt: bool
) -> NDArray[np.float32]:
    if isinstance(references, StoredReferences):
        return references.source.correlation_rows.rows(references.ids, lo, hi, bin_steps, sqrt)
    return _window_rows(references, lo, hi, bin_steps, sqrt)


def _profiles(references: References, indices: NDArray[np.int64]) -> NDArray[np.floating]:
    """The profiles of the references at ``indices``."""
    if isinstance(references, StoredReferences):
        return references.source.profiles(references.ids[indices])
    return references[indices]


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
        intensity, mask, references, strain_max, strain_step, bin_steps, strain_penalty, sqrt=False
    ).correlation


@dataclass(frozen=True)
class IsotropicFit:
    """Per reference: the best r (prior included) and the strain and shift that gave it."""

    correlation: NDArray[np.float64]
    strain: NDArray[np.float64]
    shift_deg: NDArray[np.float64]


def _isotropic_fit(
    intensity: NDArray[np.floating],
    mask: NDArray[np.bool_],
    references: References,
    strain_max: float,
    strain_step: float,
    bin_steps: int,
    strain_penalty: float,
    sqrt: bool,
) -> IsotropicFit:
    """The fit of ``references``, read on square roots with ``sqrt``, to the
    query (``intensity``, already on that scale)."""
    covered = np.flatnonzero(mask)
    n_refs = len(references)
    lo = covered[0] + MAX_SHIFT_STEPS if covered.size else 0
    hi = covered[-1] + 1 - MAX_SHIFT_STEPS if covered.size else 0
    hi = lo + (hi - lo) // bin_steps * bin_steps
    if hi - lo < 2 * bin_steps:
        return IsotropicFit(np.zeros(n_refs), np.zeros(n_refs), np.zeros(n_refs))
    window = _rows(references, lo, hi, bin_steps, sqrt)
    query = np.asarray(intensity, dtype=np.float32)
    strains = trial_strains(strain_max, strain_step)
    # Every (strain, shift) trial as one row: a single matrix product.
    shifts = trial_shifts(bin_steps)
    scores = query_trials(query, lo, hi, strains, bin_steps) @ window.T
    scores -= trial_penalties(strains, strain_penalty, bin_steps)[:, None]
    best = scores.argmax(axis=0)
    return IsotropicFit(
        correlation=np.asarray(scores[best, np.arange(n_refs)], np.float64),
        strain=strains[best // len(shifts)],
        # The query is read ``shift`` steps further up than the reference.
        shift_deg=shifts[best % len(shifts)] * MODEL_GRID.step_deg,
    )


def isotropic_fit(
    intensity: NDArray[np.floating],
    mask: NDArray[np.bool_],
    references: References,
    config: RankingConfig = SERVED,
) -> IsotropicFit:
    """The ranking's isotropic fit of each reference (shifts and isotropic
    strains, with ``config``'s range, steps, bins, prior and intensity scale)."""
    return _configured_fit(_scaled(intensity, config), mask, references, config)


def _scaled(intensity: NDArray[np.floating], config: RankingConfig) -> NDArray[np.floating]:
    """Profiles on the intensity scale the ranking compares."""
    return square_roots(intensity) if config.sqrt_intensity else intensity


def _configured_fit(
    query: NDArray[np.floating],
    mask: NDArray[np.bool_],
    references: References,
    config: RankingConfig,
) -> IsotropicFit:
    return _isotropic_fit(
        query,
        mask,
        references,
        config.strain_max,
        config.strain_step,
        config.bin_steps,
        config.strain_penalty,
        config.sqrt_intensity,
    )


def rerank_correlation(
    intensity: NDArray[np.floating],
    mask: NDArray[np.bool_],
    references: References,
    config: RankingConfig = SERVED,
) -> NDArray[np.float64]:
    """The ranking's isotropic profile correlation of each reference (:func:`isotropic_fit`)."""
    return isotropic_fit(intensity, mask, references, config).correlation


@dataclass(frozen=True)
class RerankFits:
    """The fits of one query's candidates: the isotropic fit of each, and the
    strain tensors fitted to the best few."""

    isotropic: IsotropicFit  # (k,) each, correlation with the prior
    fitted: NDArray[np.int64]  # candidates given a tensor, in fused-score order
    fitted_rank: NDArray[np.int64]  # each one's place in that order (0 = best)
    tensors: StrainFit

    def correlation(self, config: RankingConfig = SERVED) -> NDArray[np.float64]:
        """(k,) correlations, the better of the two fits for the
        ``config.strain_fit_candidates`` best that have a tensor: rank by
        ``config.fused_score``."""
        tensor = self.tensors.correlation(config.strain_penalty, config.anisotropic_penalty)
        use = self.fitted_rank < config.strain_fit_candidates
        correlation = self.isotropic.correlation.copy()
        correlation[self.fitted[use]] = np.maximum(correlation[self.fitted[use]], tensor[use])
        return correlation


def rerank_fits(
    intensity: NDArray[np.floating],
    mask: NDArray[np.bool_],
    similarity: NDArray[np.floating],
    references: References,
    bases_of: BasesOf | None,
    config: RankingConfig = SERVED,
) -> RerankFits:
    """Every candidate gets the isotropic fit (:func:`isotropic_fit`); the
    ``config.strain_fit_candidates`` best by the fused score that are
    calculated references get a strain tensor fitted too.
    ``bases_of(indices)`` gives those candidates'
    :func:`~xrdid.ranking.strain_tensor.strain_basis` (None for a measured
    reference); ``bases_of=None`` fits no tensor."""
    query = _scaled(intensity, config)
    fit = _configured_fit(query, mask, references, config)
    best = np.argsort(-config.fused_score(similarity, fit.correlation), kind="stable")
    best = best[: config.strain_fit_candidates if bases_of is not None else 0]
    bases = list(bases_of(best)) if bases_of is not None and best.size else []
    calculated = np.array([b is not None for b in bases], dtype=bool)
    fitted = best[calculated]
    tensors = fit_strain_tensors(
        query,
        mask,
        _scaled(_profiles(references, fitted), config),
        [b for b in bases if b is not None],
        fit.strain[fitted],
        fit.shift_deg[fitted],
        config.anisotropic_strain_max,
    )
    return RerankFits(fit, fitted, np.flatnonzero(calculated), tensors)


def rerank_scores(
    intensity: NDArray[np.floating],
    mask: NDArray[np.bool_],
    similarity: NDArray[np.floating],
    references: References,
    bases_of: BasesOf | None = None,
    config: RankingConfig = SERVED,
) -> NDArray[np.float64]:
    """The profile correlation fused with each candidate's cosine
    (:func:`rerank_fits`): rank by ``config.fused_score``."""
    return rerank_fits(intensity, mask, similarity, references, bases_of, config).correlation(
        config
    )
