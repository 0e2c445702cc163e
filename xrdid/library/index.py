"""The library's search structures in memory, and the index file that caches them.

:class:`SearchIndex` holds, keyed by reference id, the FAISS index of the
unit embeddings (inner product of unit vectors = cosine) and, aligned with
the indexed ids, each reference's element bits (for filters) and profile row
(the layout's: a coarse row for the XRD profile search of
:mod:`xrdid.ranking.profile_search`, the whole profile for the Raman ranking).

Two kinds, chosen by :class:`SearchSettings` (by default by the library's
size when it is opened):

- **exact** (``IndexIDMap2(IndexFlatIP)``, float32 rows): every cosine and
  every profile row compared; what a library of up to a few hundred thousand
  references uses, and every Raman library;
- **approximate** (``IndexIVFFlat``, :class:`~xrdid.ranking.profile_search.CompressedRows`):
  the embedding search compares a query with the lists of its nearest
  centroids only; the coarse profile rows are 8-bit codes, compared in full
  only where their small sketches correlate best; for a million XRD
  references.

It is derived from the database; the file written by
:func:`write_index_file` caches all of it (FAISS index, ids, element bits,
profile rows) behind a JSON header naming the database state it reflects
(library uuid, generation, count, model version, dimension, kind).
"""

from __future__ import annotations

import io
import json
import logging
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import faiss
import numpy as np
from numpy.typing import NDArray

from xrdid.files import atomic_write
from xrdid.library.filters import ElementFilter, eligible
from xrdid.library.layouts import LibraryLayout
from xrdid.ranking.profile_search import CompressedRows

__all__ = [
    "INDEX_SUFFIX",
    "SearchIndex",
    "SearchSettings",
    "index_path_for",
    "profile_rows",
    "index_path_for",
    "read_index_file",
    "write_index_file",
]

logger = logging.getLogger(__name__)

INDEX_SUFFIX = ".faiss"
_INDEX_MAGIC = b"XRDIDIX4"  # 4: profile rows with sketches

# The fewest references approximate search structures are learnt from.
_LEARNT_FROM = 100
# A direct map by hash table: IVF vectors can then be looked up and removed by id.
_BY_ID: int = faiss.DirectMap.Hashtable  # type: ignore[attr-defined]

Rows = NDArray[np.float32] | CompressedRows


@dataclass(frozen=True)
class SearchSettings:
    """Exact or approximate search, and how wide the approximate one looks.

    ``mode`` "auto" (the default) searches approximately from
    ``approximate_from`` references on, where exact search stops paying (it
    kept exact search's top-5 at 200,000 and a million references,
    ``docs/scale-out.md``); decided when the index is built, so a library
    that grows past it switches at its next open; XRD libraries only, a
    Raman library is searched exactly. Embedding lists: about √n (≈ 1,000
    rows each at a million); a query compares ``probe`` lists' worth of
    embeddings. Profile rows: sketches of ``sketch_dims`` numbers; a query
    compares in full the ``profile_shortlist`` share of the eligible rows
    whose sketches score best (``docs/scale-out.md`` has the recall measured).
    """

    mode: Literal["auto", "exact", "approximate"] = "auto"
    approximate_from: int = 200_000
    probe: int = 64
    profile_shortlist: float = 0.03
    sketch_dims: int = 64
    # Rows k-means (the embedding's lists) and the sketches' axes are made from.
    training_sample: int = 50_000

    def approximate_for(self, size: int) -> bool:
        """Whether an index of ``size`` references is approximate. Its lists
        and axes are learnt from the references, so a library of fewer than
        ``_LEARNT_FROM`` (an empty one first of all) is searched exactly
        whatever the mode, until it is opened again with more."""
        if size < _LEARNT_FROM:
            return False
        if self.mode == "auto":
            return size >= self.approximate_from
        return self.mode == "approximate"

    @staticmethod
    def lists_for(size: int) -> int:
        return int(min(max(round(math.sqrt(size)), 16), 8192))


def index_path_for(library_path: Path) -> Path:
    """Where the index file of a library lives (next to the database)."""
    return library_path.with_name(library_path.name + INDEX_SUFFIX)


def _append_rows(rows: Rows, more: NDArray[np.float32]) -> Rows:
    if isinstance(rows, CompressedRows):
        return rows.append(more)
    return np.concatenate([rows, more])


def _keep_rows(rows: Rows, keep: NDArray[np.bool_]) -> Rows:
    return rows.take(keep) if isinstance(rows, CompressedRows) else rows[keep]


class SearchIndex:
    """Embeddings, element bits and profile rows of the indexed references
    (not thread-safe: the library guards it with its lock)."""

    def __init__(
        self, dim: int, layout: LibraryLayout, vectors: Any = None, rows: Rows | None = None
    ) -> None:
        self.dim = dim
        self.vectors: Any = (
            vectors if vectors is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        )
        self.ids = np.empty(0, dtype=np.int64)
        self.bits = np.empty((0, 2), dtype=np.uint64)
        self.rows: Rows = rows if rows is not None else profile_rows(layout, [], {})
        self.probe = 0  # IVF lists searched per query (approximate)

    @classmethod
    def trained(
        cls,
        dim: int,
        layout: LibraryLayout,
        vectors: NDArray[np.float32],
        rows: NDArray[np.float32],
        settings: SearchSettings,
        size: int,
    ) -> SearchIndex:
        """An empty approximate index for about ``size`` references, its lists
        and sketch axes made from samples of their embeddings and profile rows."""
        n_lists = min(SearchSettings.lists_for(size), max(1, vectors.shape[0] // 39))
        quantizer = faiss.IndexFlatIP(dim)
        ivf = faiss.IndexIVFFlat(quantizer, dim, n_lists, faiss.METRIC_INNER_PRODUCT)
        ivf.cp.seed = 0
        ivf.train(np.ascontiguousarray(vectors, dtype=np.float32))
        ivf.set_direct_map_type(_BY_ID)
        compressed = CompressedRows.train(rows, settings.sketch_dims, settings.profile_shortlist)
        index = cls(dim, layout, ivf, compressed)
        index.probe = settings.probe
        return index

    @property
    def approximate(self) -> bool:
        return isinstance(self.rows, CompressedRows)

    @property
    def size(self) -> int:
        return int(self.vectors.ntotal)

    def vector_ids(self) -> NDArray[np.int64]:
        """The ids the FAISS index holds (in its own order)."""
        if isinstance(self.vectors, faiss.IndexIDMap2):
            return faiss.vector_to_array(self.vectors.id_map).astype(np.int64)
        lists: Any = faiss.extract_index_ivf(self.vectors).invlists
        parts = [np.empty(0, dtype=np.int64)]
        for i in range(lists.nlist):
            size = lists.list_size(i)
            if size:
                parts.append(faiss.rev_swig_ptr(lists.get_ids(i), size).astype(np.int64))
        return np.concatenate(parts)

    def set_rows(self, ids: NDArray[np.int64], bits: NDArray[np.uint64], rows: Rows) -> None:
        """Replace the per-reference rows (the FAISS part is already in step)."""
        self.ids, self.bits, self.rows = ids, bits, rows

    def add(
        self,
        ids: NDArray[np.int64],
        vectors: NDArray[np.float32],
        bits: NDArray[np.uint64],
        rows: NDArray[np.float32],
    ) -> None:
        # New arrays, never in place: a reader holding the old ones keeps a
        # consistent view.
        self.vectors.add_with_ids(vectors, ids)
        self.ids = np.concatenate([self.ids, ids])
        self.bits = np.concatenate([self.bits, bits])
        self.rows = _append_rows(self.rows, rows)

    def remove(self, reference_ids: Sequence[int] | NDArray[np.int64]) -> None:
        gone = np.asarray(reference_ids, dtype=np.int64)
        self.vectors.remove_ids(gone)
        keep = ~np.isin(self.ids, gone)
        self.ids, self.bits = self.ids[keep], self.bits[keep]
        self.rows = _keep_rows(self.rows, keep)

    def eligible(self, elements: ElementFilter) -> NDArray[np.bool_]:
        """Which indexed references (a mask over :attr:`ids`) the filter admits."""
        return eligible(self.bits, elements)

    def nearest(
        self, queries: NDArray[np.float32], n: int, only: NDArray[np.int64] | None = None
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """FAISS search: (scores, ids) (Q, n), ids −1 past the end; ``only``
        restricts it to those ids."""
        selector = None if only is None else faiss.IDSelectorBatch(only)  # outlives the search
        if self.approximate:
            lists = faiss.extract_index_ivf(self.vectors).nlist
            share = 1.0 if only is None else max(only.size / max(self.size, 1), 1e-9)
            # A filter leaves fewer rows per list: look at more lists.
            probe = int(min(lists, math.ceil(self.probe / share)))
            params: Any = faiss.SearchParametersIVF()
            params.nprobe = probe
            if selector is not None:
                params.sel = selector
            return self.vectors.search(queries, n, params=params)
        if selector is None:
            return self.vectors.search(queries, n)
        flat_params = faiss.SearchParameters()
        flat_params.sel = selector
        return self.vectors.search(queries, n, params=flat_params)

    def reconstruct(self, ids: NDArray[np.int64]) -> NDArray[np.float32]:
        if isinstance(self.vectors, faiss.IndexIDMap2):
            return self.vectors.reconstruct_batch(ids)
        if not len(ids):
            return np.empty((0, self.dim), dtype=np.float32)
        return np.stack([self.vectors.reconstruct(int(i)) for i in ids])

    # ------------------------------------------------------------------ the cache file

    def serialize(self) -> tuple[NDArray[np.uint8], bytes]:
        """(FAISS index bytes, the per-reference rows as .npz bytes)."""
        arrays: dict[str, NDArray[Any]] = {"ids": self.ids, "bits": self.bits}
        if isinstance(self.rows, CompressedRows):
            arrays |= {
                "codes": self.rows.codes,
                "sketches": self.rows.sketches,
                "axes": self.rows.axes,
                "sketch_bins": np.array(self.rows.sketch_bins),
                "profile_shortlist": np.array(self.rows.shortlist),
                "probe": np.array(self.probe),
            }
        else:
            arrays["rows"] = self.rows
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)  # type: ignore[arg-type]
        return faiss.serialize_index(self.vectors), buffer.getvalue()

    @classmethod
    def deserialize(
        cls, dim: int, layout: LibraryLayout, vectors: Any, rows_blob: bytes
    ) -> SearchIndex:
        with np.load(io.BytesIO(rows_blob), allow_pickle=False) as arrays:
            if "codes" in arrays:
                rows: Rows = CompressedRows(
                    arrays["codes"],
                    arrays["sketches"],
                    arrays["axes"],
                    int(arrays["sketch_bins"]),
                    float(arrays["profile_shortlist"]),
                )
            else:
                rows = arrays["rows"]
            index = cls(dim, layout, vectors, rows)
            index.ids, index.bits = arrays["ids"], arrays["bits"]
            if "probe" in arrays:
                index.probe = int(arrays["probe"])
        if index.ids.size != index.size or index.rows.shape[0] != index.size:
            raise ValueError("the cached rows do not match the cached vectors")
        if index.rows.shape[1] != profile_rows(layout, [], {}).shape[1]:
            raise ValueError("the cached rows are another technique's")
        return index


def profile_rows(
    layout: LibraryLayout, ids: Sequence[int], stored: dict[int, NDArray[np.float32]]
) -> NDArray[np.float32]:
    """The layout's rows of ``ids``' stored profiles (a flat row where none is
    stored; the right shape for no ids)."""
    blank = np.zeros(layout.profile_points, dtype=np.float32)
    return layout.rows(np.stack([stored.get(rid, blank) for rid in ids] or [blank])[: len(ids)])


def read_index_file(
    path: Path, library_uuid: str, model_version: str, dim: int, layout: LibraryLayout
) -> tuple[SearchIndex, dict[str, Any]] | None:
    """The saved index and its header if it belongs to this library and
    model, else None (missing, foreign, stale model, older format, corrupt)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        logger.warning("cannot read %s (%s); rebuilding the index", path, exc)
        return None
    try:
        if not data.startswith(_INDEX_MAGIC):
            raise ValueError("not an xrdid index file of this version")
        (length,) = struct.unpack_from("<I", data, len(_INDEX_MAGIC))
        start = len(_INDEX_MAGIC) + 4
        header = json.loads(data[start : start + length])
        if (
            header.get("library_uuid") != library_uuid
            or header.get("model_version") != model_version
            or header.get("dim") != dim
        ):
            logger.info("%s was built for another library or model; rebuilding", path)
            return None
        offset = start + length
        faiss_bytes = int(header["faiss_bytes"])
        vectors = faiss.deserialize_index(
            np.frombuffer(data, dtype=np.uint8, count=faiss_bytes, offset=offset)
        )
        if vectors.d != dim or not isinstance(vectors, faiss.IndexIDMap2 | faiss.IndexIVFFlat):
            raise ValueError("index has the wrong type or dimension")
        if isinstance(vectors, faiss.IndexIVFFlat):
            vectors.set_direct_map_type(_BY_ID)
        index = SearchIndex.deserialize(dim, layout, vectors, data[offset + faiss_bytes :])
        return index, header
    except Exception as exc:  # corrupt or truncated file: rebuild from the database
        logger.warning("%s is unreadable (%s); rebuilding the index", path, exc)
        return None


def write_index_file(
    path: Path, blobs: tuple[NDArray[np.uint8], bytes], header: dict[str, Any]
) -> None:
    """Write a serialised index (:meth:`SearchIndex.serialize`) behind its header, atomically."""
    vectors, rows = blobs
    encoded = json.dumps(header | {"faiss_bytes": int(vectors.size)}).encode()
    atomic_write(
        path, [_INDEX_MAGIC, struct.pack("<I", len(encoded)), encoded, vectors.tobytes(), rows]
    )
