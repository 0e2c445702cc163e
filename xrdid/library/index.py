"""The library's search structures in memory, and the index file that caches them.

:class:`SearchIndex` holds the FAISS index of the unit embeddings
(``IndexIDMap2(IndexFlatIP(dim))``: inner product of unit vectors = cosine,
exact search) keyed by reference id and, aligned with the indexed ids, each
reference's element bits (for filters) and profile row (the layout's: a
coarse row for the XRD profile search of :mod:`xrdid.ranking.profile_search`,
the whole profile for the Raman ranking). It is derived from
the database; the file written by :func:`write_index_file` caches the FAISS
part behind a JSON header naming the database state it reflects (library
uuid, generation, count, model version, dimension).
"""

from __future__ import annotations

import json
import logging
import os
import struct
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from numpy.typing import NDArray

from xrdid.library.filters import ElementFilter, eligible
from xrdid.library.layouts import LibraryLayout

__all__ = [
    "INDEX_SUFFIX",
    "SearchIndex",
    "profile_rows",
    "index_path_for",
    "read_index_file",
    "remove_partial_writes",
    "write_index_file",
]

logger = logging.getLogger(__name__)

INDEX_SUFFIX = ".faiss"
_INDEX_MAGIC = b"XRDIDIX1"


def index_path_for(library_path: Path) -> Path:
    """Where the index file of a library lives (next to the database)."""
    return library_path.with_name(library_path.name + INDEX_SUFFIX)


class SearchIndex:
    """Embeddings, element bits and profile rows of the indexed references
    (not thread-safe: the library guards it with its lock)."""

    def __init__(self, dim: int, layout: LibraryLayout, vectors: Any = None) -> None:
        self.dim = dim
        self.vectors: Any = (
            vectors if vectors is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        )
        self.ids = np.empty(0, dtype=np.int64)
        self.bits = np.empty((0, 2), dtype=np.uint64)
        self.rows = profile_rows(layout, [], {})

    @property
    def size(self) -> int:
        return int(self.vectors.ntotal)

    def vector_ids(self) -> NDArray[np.int64]:
        """The ids the FAISS index holds (in its own order)."""
        return faiss.vector_to_array(self.vectors.id_map).astype(np.int64)

    def set_rows(
        self, ids: NDArray[np.int64], bits: NDArray[np.uint64], rows: NDArray[np.float32]
    ) -> None:
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
        self.rows = np.concatenate([self.rows, rows])

    def remove(self, reference_id: int) -> None:
        self.vectors.remove_ids(np.array([reference_id], dtype=np.int64))
        keep = self.ids != reference_id
        self.ids, self.bits, self.rows = self.ids[keep], self.bits[keep], self.rows[keep]

    def eligible(self, elements: ElementFilter) -> NDArray[np.bool_]:
        """Which indexed references (a mask over :attr:`ids`) the filter admits."""
        return eligible(self.bits, elements)

    def nearest(
        self, queries: NDArray[np.float32], n: int, only: NDArray[np.int64] | None = None
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """FAISS search: (scores, ids) (Q, n), ids −1 past the end; ``only``
        restricts it to those ids."""
        if only is None:
            return self.vectors.search(queries, n)
        selector = faiss.IDSelectorBatch(only)  # must outlive the search
        params = faiss.SearchParameters()
        params.sel = selector
        return self.vectors.search(queries, n, params=params)

    def reconstruct(self, ids: NDArray[np.int64]) -> NDArray[np.float32]:
        return self.vectors.reconstruct_batch(ids)

    def serialize(self) -> NDArray[np.uint8]:
        return faiss.serialize_index(self.vectors)


def profile_rows(
    layout: LibraryLayout, ids: Sequence[int], stored: dict[int, NDArray[np.float32]]
) -> NDArray[np.float32]:
    """The layout's rows of ``ids``' stored profiles (a flat row where none is
    stored; the right shape for no ids)."""
    blank = np.zeros(layout.profile_points, dtype=np.float32)
    return layout.rows(np.stack([stored.get(rid, blank) for rid in ids] or [blank])[: len(ids)])


def read_index_file(
    path: Path, library_uuid: str, model_version: str, dim: int
) -> tuple[Any, dict[str, Any]] | None:
    """The saved FAISS index and its header if it belongs to this library and
    model, else None (missing, foreign, stale model, corrupt)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        logger.warning("cannot read %s (%s); rebuilding the index", path, exc)
        return None
    try:
        if not data.startswith(_INDEX_MAGIC):
            raise ValueError("not an xrdid index file")
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
        index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8, offset=start + length))
        if not isinstance(index, faiss.IndexIDMap2) or index.d != dim:
            raise ValueError("index has the wrong type or dimension")
        return index, header
    except Exception as exc:  # corrupt or truncated file: rebuild from the database
        logger.warning("%s is unreadable (%s); rebuilding the index", path, exc)
        return None


def write_index_file(path: Path, blob: NDArray[np.uint8], header: dict[str, Any]) -> None:
    """Write a serialised FAISS index (:meth:`SearchIndex.serialize`) behind
    its header, atomically."""
    encoded = json.dumps(header).encode()
    _atomic_write(path, [_INDEX_MAGIC, struct.pack("<I", len(encoded)), encoded, blob.tobytes()])


def remove_partial_writes(path: Path) -> None:
    """Delete what saves interrupted by a crash left next to ``path``."""
    for leftover in path.parent.glob(path.name + ".tmp-*"):
        leftover.unlink(missing_ok=True)


def _fsync_directory(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # not supported on this platform
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write(path: Path, chunks: Sequence[bytes]) -> None:
    """Write a file so that a crash leaves either the old or the new content."""
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    try:
        with open(tmp, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_directory(path.parent)
