"""Raman identification on arrays: nearest references by embedding, a
shift-tolerant re-rank, element probabilities and the "no match" verdict.

Pure functions: the references come as :class:`RamanReferences` (what the
library will hold per Raman reference), the query as its preprocessed
intensity, mask and embedding. The service and ``indexer evaluate-raman``
call :func:`identify`; its tuned numbers live in :class:`RamanRanking`
(chosen on validation spectra by ``evaluate-raman``, model card).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from xrdid.raman.correlation import RAMAN_MAX_SHIFT_STEPS, shifted_correlation


@dataclass(frozen=True)
class RamanReferences:
    """Reference spectra as arrays, several per class (mineral)."""

    embeddings: NDArray[np.float32]  # (N, D) unit vectors
    intensity: NDArray[np.float32]  # (N, L) preprocessed
    class_index: NDArray[np.int64]  # (N,)
    class_names: list[str]  # (C,)
    class_elements: NDArray[np.uint8]  # (C, E)
    element_symbols: list[str]  # (E,)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @cached_property
    def intensity_squared(self) -> NDArray[np.float32]:
        """Squares of the intensities: the hit quality index's norms over any
        query's range in one matrix product."""
        return np.square(self.intensity)


@dataclass(frozen=True)
class RamanRanking:
    """The identification's settings."""

    candidates: int = 30  # the embedding's nearest classes, re-ranked
    # ... and the classes whose profiles fit the query best (hit quality
    # index over all references), so a class the embedding misses can still win.
    profile_candidates: int = 10
    rerank_weight: float = 1.0  # fused = cosine + weight × correlation
    max_shift_steps: int = RAMAN_MAX_SHIFT_STEPS
    element_neighbours: int = 10  # classes that vote on the elements
    element_temperature: float = 0.05  # softmax temperature of their cosines
    # "no match" when the query's best score of kind ``no_match_on`` ("fused",
    # "cosine" or "correlation", over the candidates) is below this (None: never).
    no_match_below: float | None = None
    no_match_on: str = "fused"


@dataclass(frozen=True)
class RamanIdentification:
    classes: NDArray[np.int64]  # ranked class indices (the candidates)
    scores: NDArray[np.float64]  # fused scores, descending
    cosine: NDArray[np.float64]  # embedding cosine of each ranked class
    correlation: NDArray[np.float64]  # profile correlation of each ranked class
    element_probability: NDArray[np.float64]  # (E,)
    no_match: bool
    extra: dict[str, float] = field(default_factory=dict)


def class_cosines(
    query_embeddings: NDArray[np.float32], references: RamanReferences
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """(M, C) best cosine of each class's references, and which reference gave it."""
    similarity = query_embeddings @ references.embeddings.T  # (M, N)
    return _per_class_best(similarity, references.class_index, references.n_classes)


def _per_class_best(
    similarity: NDArray[np.floating], class_index: NDArray[np.int64], n_classes: int
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    best = np.full((similarity.shape[0], n_classes), -np.inf, dtype=np.float32)
    which = np.zeros((similarity.shape[0], n_classes), dtype=np.int64)
    order = np.argsort(similarity, axis=1)  # ascending: the last write per class wins
    rows = np.arange(similarity.shape[0])[:, None]
    classes = class_index[order]
    best[rows, classes] = similarity[rows, order]
    which[rows, classes] = order
    return best, which


def hit_quality_index(
    intensity: NDArray[np.floating], mask: NDArray[np.bool_], references: RamanReferences
) -> NDArray[np.float32]:
    """(C,) the classical hit quality index of each class: the best cos² of the
    query and a reference over the query's covered range."""
    q = np.where(mask, intensity, 0.0).astype(np.float32)
    dot = references.intensity @ q
    norms = (references.intensity_squared @ mask.astype(np.float32)) * float(q @ q) + 1e-12
    best, _ = _per_class_best(
        (dot * dot / norms)[None, :], references.class_index, references.n_classes
    )
    return best[0]


def candidate_classes(
    cosine: NDArray[np.floating], hqi: NDArray[np.floating], ranking: RamanRanking
) -> NDArray[np.int64]:
    """The embedding's nearest classes, then the best-fitting profiles not among them."""
    nearest = np.argsort(-cosine, kind="stable")[: ranking.candidates]
    fitting = np.argsort(-hqi, kind="stable")[: ranking.profile_candidates]
    return np.concatenate([nearest, fitting[~np.isin(fitting, nearest)]])


def element_vote(
    class_scores: NDArray[np.floating], references: RamanReferences, ranking: RamanRanking
) -> NDArray[np.float64]:
    """(E,) probability of each element: the nearest classes' chemistry,
    weighted by a softmax of their scores."""
    top = np.argsort(-class_scores)[: ranking.element_neighbours]
    weights = np.exp((class_scores[top] - class_scores[top].max()) / ranking.element_temperature)
    weights /= weights.sum()
    return weights @ references.class_elements[top].astype(np.float64)


def identify(
    embedding: NDArray[np.float32],
    intensity: NDArray[np.floating],
    mask: NDArray[np.bool_],
    references: RamanReferences,
    ranking: RamanRanking = RamanRanking(),
    *,
    rerank: bool = True,
) -> RamanIdentification:
    """Rank the library's minerals for one query."""
    cosine = class_cosines(embedding[None, :], references)[0][0].astype(np.float64)
    hqi = hit_quality_index(intensity, mask, references) if rerank else np.zeros(0)
    candidates = candidate_classes(
        cosine, hqi, ranking if rerank else replace(ranking, profile_candidates=0)
    )
    correlation = np.zeros(candidates.size)
    if rerank:
        # Every reference of each candidate class; the class keeps its best.
        refs = np.flatnonzero(np.isin(references.class_index, candidates))
        r = shifted_correlation(
            intensity, mask, references.intensity[refs], ranking.max_shift_steps
        )
        best = np.full(references.n_classes, -np.inf)
        np.maximum.at(best, references.class_index[refs], r)
        correlation = best[candidates]
    fused = cosine[candidates] + (ranking.rerank_weight if rerank else 0.0) * correlation
    order = np.argsort(-fused, kind="stable")
    ranked, scores = candidates[order], fused[order]
    elements = element_vote(cosine, references, ranking)
    top = {"fused": scores[0], "cosine": cosine[ranked].max(), "correlation": correlation.max()}
    no_match = ranking.no_match_below is not None and bool(
        top[ranking.no_match_on] < ranking.no_match_below
    )
    return RamanIdentification(
        classes=ranked,
        scores=scores,
        cosine=cosine[ranked],
        correlation=correlation[order],
        element_probability=elements,
        no_match=no_match,
    )
