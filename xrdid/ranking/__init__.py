"""Rank references for a scan: one package, one config, one entry point.

- :mod:`~xrdid.ranking.config`: :class:`RankingConfig`, every tuned constant
  (:data:`SERVED` is what the service uses);
- :mod:`~xrdid.ranking.rows`: profiles made ready for a Pearson r;
- :mod:`~xrdid.ranking.correlation`: the shift- and strain-fitted correlation
  and the fused score;
- :mod:`~xrdid.ranking.strain_tensor`: a strain per crystal direction;
- :mod:`~xrdid.ranking.profile_search`: candidates from a coarse profile
  search of the whole library;
- :mod:`~xrdid.ranking.pipeline`: :func:`rank`, what the service, the
  evaluation and the tuning sweeps call, over a :class:`ReferenceSource`;
- :mod:`~xrdid.ranking.memory`: :class:`ArraySource`, references as arrays;
- :mod:`~xrdid.ranking.phases`: several phases in one scan;
- :mod:`~xrdid.ranking.doublet`: references as the scan's Kα doublet shows them.
"""

from xrdid.ranking.config import SERVED, RankingConfig, SearchResolution
from xrdid.ranking.memory import ArraySource
from xrdid.ranking.pipeline import (
    EmbeddingHits,
    ProfileRows,
    Query,
    RankedReference,
    Ranking,
    ReferenceFacts,
    ReferenceSource,
    candidates,
    rank,
)

__all__ = [
    "SERVED",
    "ArraySource",
    "EmbeddingHits",
    "ProfileRows",
    "Query",
    "RankedReference",
    "Ranking",
    "RankingConfig",
    "ReferenceFacts",
    "ReferenceSource",
    "SearchResolution",
    "candidates",
    "rank",
]
