"""The ranking's one entry point: query → candidates → fitted, fused, ordered.

:func:`rank` is what ``/identify``, the batch jobs, the evaluation and the
tuning sweeps call. For each query it takes

1. the embedding's ``config.rerank_candidates`` nearest references (cosine),
2. the ``config.profile_search_candidates`` references whose profiles fit the
   query best over the whole library (:mod:`xrdid.ranking.profile_search`),
3. scores all of them by the profile correlation fused with their cosine,
   strain tensors fitted to the best calculated ones
   (:mod:`xrdid.ranking.correlation`), and orders them.

It reads references only through a :class:`ReferenceSource`: the library
(SQLite + FAISS) implements it for the service, :class:`ArraySource` (arrays
in memory) for the evaluation and the tests, so both rank the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from xrdid.ranking.config import SERVED, RankingConfig, SearchResolution
from xrdid.ranking.correlation import CorrelationRows, RerankFits, StoredReferences, rerank_fits
from xrdid.ranking.materials import Material
from xrdid.ranking.profile_search import CompressedRows, profile_search
from xrdid.ranking.strain_tensor import StrainBasis

__all__ = [
    "EmbeddingHits",
    "ProfileRows",
    "Query",
    "RankedReference",
    "Ranking",
    "ReferenceFacts",
    "ReferenceSource",
    "candidates",
    "rank",
]


@dataclass(frozen=True)
class Query:
    """A scan as the ranking compares it: its model-grid profile, coverage
    mask and embedding."""

    intensity: NDArray[np.floating]  # (L,)
    mask: NDArray[np.bool_]  # (L,)
    embedding: NDArray[np.float32]  # (dim,) unit vector


@dataclass(frozen=True)
class EmbeddingHits:
    """A vector search's nearest references for one query, best first, and
    the cosine of any other reference with it."""

    ids: NDArray[np.int64]
    similarity: NDArray[np.floating]
    similarity_of: Callable[[NDArray[np.int64]], NDArray[np.floating]]


@dataclass(frozen=True)
class ProfileRows:
    """Every reference's coarse profile (:func:`~xrdid.ranking.profile_search.coarse_rows`,
    or compressed for a large library), its id, and whether a filter admits it (None: all)."""

    ids: NDArray[np.int64]
    rows: NDArray[np.float32] | CompressedRows
    eligible: NDArray[np.bool_] | None


@dataclass(frozen=True)
class ReferenceFacts:
    """What the phase analysis and the grouping need to know of a reference."""

    name: str
    material: Material  # :mod:`xrdid.ranking.materials`
    space_group_number: int | None
    rir: float | None  # reference intensity ratio (:mod:`xrdid.rir`); None: unknown


class ReferenceSource(Protocol):
    """What the ranking reads of a reference library (one consistent view:
    the library holds its read lock while the ranking runs)."""

    # Its references' correlation rows, made once each for this view.
    correlation_rows: CorrelationRows

    def nearest(self, embeddings: NDArray[np.float32], n: int) -> list[EmbeddingHits]:
        """The ``n`` nearest eligible references of each (Q, dim) embedding."""
        ...

    def profile_rows(self, resolution: SearchResolution) -> ProfileRows:
        """Every eligible reference's coarse profile at ``resolution``."""
        ...

    def profiles(self, ids: NDArray[np.int64]) -> NDArray[np.float32]:
        """(len(ids), L) model-grid profiles (zeros where none is stored)."""
        ...

    def strain_bases(self, ids: NDArray[np.int64]) -> Sequence[StrainBasis | None]:
        """Each id's strain basis; None for a measured reference."""
        ...

    def facts(self, ids: NDArray[np.int64]) -> list[ReferenceFacts]:
        """What each id is: name, material, space group, intensity ratio."""
        ...


@dataclass(frozen=True)
class RankedReference:
    """One reference as ranked for a query."""

    reference_id: int
    similarity: float  # cosine of the embeddings, −1…1
    profile_correlation: float  # fitted Pearson r (priors included), −1…1
    score: float  # config.fused_score of the two


@dataclass(frozen=True)
class Ranking:
    """One query's candidates, their fits, and the ``k`` best of them."""

    ids: NDArray[np.int64]  # the candidates: the embedding's nearest, then the profile search's
    similarity: NDArray[np.floating]  # their cosines
    fits: RerankFits | None  # None when there are no candidates
    best: list[RankedReference]  # the k best by the config's fused score, best first

    def reordered(self, k: int, config: RankingConfig) -> list[RankedReference]:
        """The ``k`` best under another config that only changes how the fits
        are scored (the weight, the priors, fewer strain tensors): tuning
        sweeps re-score one ranking instead of fitting again."""
        return _best(self.ids, self.similarity, self.fits, k, config)


def _best(
    ids: NDArray[np.int64],
    similarity: NDArray[np.floating],
    fits: RerankFits | None,
    k: int,
    config: RankingConfig,
) -> list[RankedReference]:
    """The ``k`` best candidates by ``config.fused_score``, best first."""
    if fits is None:
        return []
    correlation = fits.correlation(config)
    score = config.fused_score(similarity, correlation)
    order = np.argsort(-score, kind="stable")[:k]
    return [
        RankedReference(int(ids[i]), float(similarity[i]), float(correlation[i]), float(score[i]))
        for i in order
    ]


def candidates(
    query: Query, hits: EmbeddingHits, rows: ProfileRows, config: RankingConfig = SERVED
) -> tuple[NDArray[np.int64], NDArray[np.floating]]:
    """(ids, cosines) the ranking scores for ``query``: the embedding's
    nearest, then those the profile search adds that are not among them."""
    found = rows.ids[profile_search(query.intensity, query.mask, rows.rows, rows.eligible, config)]
    added = found[~np.isin(found, hits.ids)]
    if not added.size:
        return hits.ids, hits.similarity
    return (
        np.concatenate([hits.ids, added]),
        np.concatenate([hits.similarity, hits.similarity_of(added)]),
    )


def _strain_bases(
    source: ReferenceSource, ids: NDArray[np.int64], indices: NDArray[np.int64]
) -> Sequence[StrainBasis | None]:
    return source.strain_bases(ids[indices])


def rank(
    queries: Sequence[Query],
    source: ReferenceSource,
    k: int,
    config: RankingConfig = SERVED,
) -> list[Ranking]:
    """Each query's ranking; its ``best`` holds the ``k`` best references
    (fewer only when fewer are eligible)."""
    if not queries:
        return []
    embeddings = np.stack([q.embedding for q in queries])
    nearest = source.nearest(embeddings, max(k, config.rerank_candidates))
    rows = source.profile_rows(config.profile_search_resolution)
    out = []
    for query, hits in zip(queries, nearest, strict=True):
        ids, similarity = candidates(query, hits, rows, config)
        if not ids.size:
            out.append(Ranking(ids, similarity, None, []))
            continue
        fits = rerank_fits(
            query.intensity,
            query.mask,
            similarity,
            StoredReferences(source, ids),
            partial(_strain_bases, source, ids),
            config,
        )
        out.append(Ranking(ids, similarity, fits, _best(ids, similarity, fits, k, config)))
    return out
