"""A :class:`~xrdid.ranking.pipeline.ReferenceSource` over arrays in memory.

The evaluation, the tuning sweeps and tests rank against references held as
arrays (profiles, embeddings, stick patterns) instead of a library file;
ids are row indices. Exact search: every cosine is computed.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import numpy as np
from numpy.typing import NDArray

from xrdid.ranking.config import SearchResolution
from xrdid.ranking.correlation import CorrelationRows
from xrdid.ranking.materials import Material
from xrdid.ranking.pipeline import EmbeddingHits, ProfileRows, ReferenceFacts
from xrdid.ranking.profile_search import coarse_rows
from xrdid.ranking.strain_tensor import StrainBasis, strain_basis
from xrdid.sticks import StickPattern

__all__ = ["ArraySource"]


def _take(values: NDArray[np.float32], ids: NDArray[np.int64]) -> NDArray[np.float32]:
    return values[ids]


class ArraySource:
    """References as arrays: ``profiles`` (n, L) on the model grid,
    ``embeddings`` (n, dim) unit vectors and, for calculated references, their
    stick patterns (None for a measured one); ``labels`` name each row's
    material (a row is its own material without them), with its space group
    and reference intensity ratio when known; ``eligible`` masks the rows a
    filter admits."""

    def __init__(
        self,
        profiles: NDArray[np.floating],
        embeddings: NDArray[np.float32],
        sticks: Sequence[StickPattern | None] | None = None,
        eligible: NDArray[np.bool_] | None = None,
        labels: Sequence[str] | None = None,
        space_groups: Sequence[int | None] | None = None,
        rirs: Sequence[float | None] | None = None,
    ) -> None:
        self._profiles = profiles
        self._embeddings = embeddings
        self._sticks = sticks
        self._eligible = eligible
        self._labels = labels
        self._space_groups = space_groups
        self._rirs = rirs
        self._coarse: dict[SearchResolution, NDArray[np.float32]] = {}
        self._bases: dict[int, StrainBasis] = {}
        self.correlation_rows = CorrelationRows(self.profiles)

    def restricted(self, eligible: NDArray[np.bool_]) -> ArraySource:
        """The same references with only ``eligible`` admitted (caches shared)."""
        other = ArraySource(
            self._profiles,
            self._embeddings,
            self._sticks,
            eligible,
            self._labels,
            self._space_groups,
            self._rirs,
        )
        other._coarse, other._bases = self._coarse, self._bases
        other.correlation_rows = self.correlation_rows
        return other

    def nearest(self, embeddings: NDArray[np.float32], n: int) -> list[EmbeddingHits]:
        cosine = embeddings @ self._embeddings.T
        if self._eligible is not None:
            cosine[:, ~self._eligible] = -np.inf
            n = min(n, int(np.count_nonzero(self._eligible)))
        out = []
        for row in cosine:
            order = np.argsort(-row)[:n]
            out.append(EmbeddingHits(order, row[order], partial(_take, row)))
        return out

    def profile_rows(self, resolution: SearchResolution) -> ProfileRows:
        if resolution not in self._coarse:
            self._coarse[resolution] = coarse_rows(self._profiles, resolution)
        rows = self._coarse[resolution]
        return ProfileRows(np.arange(rows.shape[0], dtype=np.int64), rows, self._eligible)

    def profiles(self, ids: NDArray[np.int64]) -> NDArray[np.float32]:
        return np.asarray(self._profiles[ids], dtype=np.float32)

    def strain_bases(self, ids: NDArray[np.int64]) -> list[StrainBasis | None]:
        return [self._basis(int(i)) for i in ids]

    def facts(self, ids: NDArray[np.int64]) -> list[ReferenceFacts]:
        out = []
        for i in (int(i) for i in ids):
            key = self._labels[i] if self._labels else str(i)
            group = self._space_groups[i] if self._space_groups else None
            rir = self._rirs[i] if self._rirs else None
            out.append(ReferenceFacts(key, Material(key, key, measured=False), group, rir))
        return out

    def _basis(self, index: int) -> StrainBasis | None:
        """A calculated reference's strain basis (computed once), None for a measured one."""
        sticks = None if self._sticks is None else self._sticks[index]
        if sticks is None:
            return None
        if index not in self._bases:
            self._bases[index] = strain_basis(sticks)
        return self._bases[index]
