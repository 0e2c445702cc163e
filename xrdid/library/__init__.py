"""The reference library: every pattern the service compares uploads against.

The library stores references and searches their vectors; the ranking
(:mod:`xrdid.ranking`) ranks them. One facade, :class:`Library`, over
small modules, one job each:

- :mod:`~xrdid.library.records`: what is stored and returned (references,
  entries, matches, pages, status) and the library's errors;
- :mod:`~xrdid.library.filters`: element filters;
- :mod:`~xrdid.library.codecs`: bytes of patterns and profiles;
- :mod:`~xrdid.library.store`: SQLite storage and migrations, the source of truth;
- :mod:`~xrdid.library.index`: the search structures in memory (FAISS,
  element bits, profile rows) and the index file that caches them;
- :mod:`~xrdid.library.views`: what the model sees of a stored reference;
- :mod:`~xrdid.library.layouts`: what differs between techniques.

Techniques
----------
A library holds the references of one technique, that of the model it is
opened with (``embedder.technique``, recorded in the file): the service
keeps an XRD library and a Raman library, each with its own file, index and
model, both this code.

Consistency
-----------
- An add commits to SQLite before it returns, so an acknowledged add
  survives a crash; the in-memory index is updated right after the commit.
- The index file is a cache: :meth:`Library.save_index` writes it atomically
  with its header; the service does so periodically and at shutdown, the
  indexer after every batch.
- On open, embeddings made by another model (and profiles missing from a
  library of schema 1) are recomputed from the stored patterns (that is why
  patterns are stored); then the index file is loaded when its header
  matches, its ids are compared with the database's and patched (missing
  ones added from the stored embeddings, extra ones removed), or it is
  rebuilt. So after a crash at any point the two agree again.

Thread safety: one writer at a time; searches run concurrently with each
other and wait only for the in-memory index update of a write.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from numpy.typing import NDArray

from xrdid.cache import LruCache
from xrdid.errors import InputError
from xrdid.library.codecs import decode_pattern, decode_profile, encode_pattern, encode_profile
from xrdid.library.filters import ELEMENT_SYMBOLS, ElementFilter, element_bits, parse_elements
from xrdid.library.index import (
    SearchIndex,
    index_path_for,
    profile_rows,
    read_index_file,
    remove_partial_writes,
    write_index_file,
)
from xrdid.library.layouts import LAYOUTS, RAMAN_FIRST_ID, LibraryLayout
from xrdid.library.locks import ReadWriteLock
from xrdid.library.records import (
    DuplicateReferenceError,
    LibraryStatus,
    Match,
    MeasuredProfile,
    NewReference,
    PatternEmbedder,
    RamanProfile,
    ReferenceEntry,
    ReferenceInfo,
    ReferenceKind,
    ReferenceNotFoundError,
    ReferencePage,
    ReferencePattern,
    technique_of,
)
from xrdid.library.store import MAX_PAGE_SIZE, SqliteStore, chunks
from xrdid.library.views import ModelView, model_view, view_of_blob
from xrdid.ranking import (
    SERVED,
    EmbeddingHits,
    ProfileRows,
    RankedReference,
    ReferenceFacts,
    SearchResolution,
)
from xrdid.ranking.materials import Material
from xrdid.ranking.strain_tensor import StrainBasis, strain_basis
from xrdid.sticks import StickPattern
from xrdid.technique import Technique

__all__ = [
    "ELEMENT_SYMBOLS",
    "LAYOUTS",
    "MAX_PAGE_SIZE",
    "RAMAN_FIRST_ID",
    "DuplicateReferenceError",
    "ElementFilter",
    "Library",
    "LibrarySource",
    "LibraryStatus",
    "Match",
    "MeasuredProfile",
    "ModelView",
    "NewReference",
    "PatternEmbedder",
    "RamanProfile",
    "ReferenceEntry",
    "ReferenceInfo",
    "ReferenceKind",
    "ReferenceNotFoundError",
    "ReferencePage",
    "ReferencePattern",
    "Technique",
    "decode_pattern",
    "decode_profile",
    "encode_pattern",
    "encode_profile",
    "facts_of",
    "index_path_for",
    "model_view",
    "parse_elements",
    "technique_of",
]

logger = logging.getLogger(__name__)

# Rows read, re-embedded and committed per step when embeddings are recomputed
# or the index is rebuilt: bounds memory (a model view is ~100 kB) and keeps an
# interrupted re-embedding's progress.
REBUILD_BATCH = 256

# An embedding whose norm is this far from 1 was not made by the embedder
# (which L2-normalises); refuse it rather than store a wrong cosine.
UNIT_NORM_TOLERANCE = 1e-3

# Decoded profiles kept in memory for the re-rank (17 kB each): reading and
# decompressing 300 takes about 7 ms, against ~10 ms for the re-rank itself.
# 15,000 hold a 10,000-reference library whole in 255 MB; beyond that the
# least recently used are read again.
PROFILE_CACHE_SIZE = 15_000
# Strain bases (34 kB each) of the calculated references a search fitted
# strain tensors to: computing one from the stored sticks takes ~0.3 ms (3 ms
# for the ten a search fits). 2,000 take 68 MB.
STRAIN_BASIS_CACHE_SIZE = 2_000

# OpenMP threads per FAISS search. One query against ≤ 10⁵ flat vectors is
# fastest on one thread (0.1 ms vs 24 ms with 2 threads at 10⁴, the OpenMP
# start-up dominating); concurrent requests use the other cores.
DEFAULT_SEARCH_THREADS = 1


def facts_of(entry: ReferenceEntry) -> ReferenceFacts:
    """What the ranking needs to know of a stored reference."""
    info = entry.info
    material = Material.of(
        info.name, info.formula, info.space_group_number, entry.kind is ReferenceKind.MEASURED
    )
    return ReferenceFacts(info.name, material, info.space_group_number, info.rir)


def _profile_of(new: NewReference) -> NDArray[np.floating]:
    return new.profile if new.profile is not None else model_view(new.pattern).intensity


class Library:
    """A reference library on disk; open it with :meth:`open`."""

    def __init__(
        self,
        path: Path,
        model_version: str,
        dim: int,
        search_threads: int = DEFAULT_SEARCH_THREADS,
        layout: LibraryLayout = LAYOUTS[Technique.XRD],
    ) -> None:
        """Use :meth:`open`; this only sets up the connection."""
        self.path = Path(path)
        self.search_threads = search_threads
        self.index_path = index_path_for(self.path)
        self.model_version = model_version
        self.dim = dim
        self.layout = layout
        self._store = SqliteStore(self.path)
        # Serialises writes: the commit and the in-memory update of one write
        # happen before the next write's, so the generation only grows.
        self._write_lock = threading.Lock()
        self._save_lock = threading.Lock()
        self._rw = ReadWriteLock()
        # id → decoded profile / strain basis; ids are never reused, a stored
        # pattern never changes and a profile only in _refresh_derived(),
        # before any search.
        self._profile_cache: LruCache[int, NDArray[np.float32]] = LruCache(PROFILE_CACHE_SIZE)
        self._basis_cache: LruCache[int, StrainBasis] = LruCache(STRAIN_BASIS_CACHE_SIZE)
        self._closed = False
        self._index = SearchIndex(dim, layout)
        self._publish(-1)
        self._saved_generation = -2

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(
        cls,
        path: Path | str,
        embedder: PatternEmbedder,
        *,
        workers: int = 1,
        progress: Callable[[int, int], None] | None = None,
        search_threads: int = DEFAULT_SEARCH_THREADS,
    ) -> Library:
        """Open (or create) the library at ``path`` for ``embedder``'s model
        (and technique: an XRD library refuses a Raman model and vice versa).

        Stored embeddings of another model, and missing profiles, are
        recomputed from the stored patterns (``workers`` processes preprocess
        them; ``progress(done, total)`` is called after each batch); the index
        is loaded, checked against the database and patched, or rebuilt.
        """
        layout = LAYOUTS[embedder.technique]
        library = cls(Path(path), embedder.version, embedder.dim, search_threads, layout)
        try:
            library._store.init_schema(library.model_version, library.dim, layout)
            library._refresh_derived(embedder, workers, progress)
            library._load_index()
        except BaseException:
            library.close(save=False)
            raise
        return library

    def _refresh_derived(
        self,
        embedder: PatternEmbedder,
        workers: int,
        progress: Callable[[int, int], None] | None,
    ) -> None:
        """Recompute the embeddings stored by another model and the missing
        profiles (both from the model view), committing per batch."""
        store = self._store
        stale = store.stale_count(self.model_version)
        if stale:
            logger.warning(
                "%s: %d references were embedded by another model or lack a profile; "
                "recomputing them with %s",
                self.path,
                stale,
                self.model_version,
            )
        done, after = 0, 0
        pool = (
            ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"))
            if stale and workers > 1
            else None
        )
        try:
            while done < stale:
                rows = store.stale_patterns(self.model_version, after, REBUILD_BATCH)
                if not rows:
                    break
                after = rows[-1][0]
                blobs = [blob for _, blob in rows]
                views = (
                    list(pool.map(view_of_blob, blobs, chunksize=8))
                    if pool
                    else [view_of_blob(b) for b in blobs]
                )
                vectors = embedder.embed(views).astype(np.float32)
                with self._write_lock:
                    store.update_derived(
                        self.model_version,
                        [
                            (rid, vectors[i], encode_profile(views[i].intensity))
                            for i, (rid, _) in enumerate(rows)
                        ],
                    )
                done += len(rows)
                logger.info("recomputed %d/%d references", done, stale)
                if progress:
                    progress(done, stale)
        finally:
            if pool:
                pool.shutdown()
        with self._write_lock:
            store.set_model(self.model_version, self.dim)

    def _load_index(self) -> None:
        """Load the saved index, compare its ids with the database's and patch
        it (or rebuild it); save it when it changed or lagged."""
        remove_partial_writes(self.index_path)
        store = self._store
        generation = store.generation()
        saved = read_index_file(self.index_path, store.uuid, self.model_version, self.dim)
        rows = store.indexed_rows(self.model_version)
        db_ids = np.array([r.id for r in rows], dtype=np.int64)
        index: SearchIndex | None = None
        header: dict[str, Any] = {}
        index_ids = np.empty(0, dtype=np.int64)
        if saved is not None:
            index, header = SearchIndex(self.dim, self.layout, saved[0]), saved[1]
            index_ids = index.vector_ids()
            if np.unique(index_ids).size != index_ids.size:
                logger.warning("%s holds repeated ids; rebuilding", self.index_path)
                index, index_ids = None, np.empty(0, dtype=np.int64)
        changed = index is None
        if index is None:
            index = SearchIndex(self.dim, self.layout)
        extra = np.setdiff1d(index_ids, db_ids)
        missing = np.setdiff1d(db_ids, index_ids)
        if extra.size:
            logger.warning(
                "index holds %d references the database lacks; removing them", extra.size
            )
            index.vectors.remove_ids(extra)
            changed = True
        if missing.size:
            if index_ids.size:
                logger.warning(
                    "index lacks %d references of the database; adding them", missing.size
                )
            for chunk in chunks(missing.tolist(), REBUILD_BATCH):
                ids, vectors = store.embeddings(chunk, self.dim)
                index.vectors.add_with_ids(vectors, ids)
            changed = True
        rows_of = [profile_rows(self.layout, [], {})]  # the right shape for no ids
        for chunk in chunks(db_ids.tolist(), REBUILD_BATCH):
            rows_of.append(profile_rows(self.layout, list(chunk), store.profiles(chunk)))
        bits = (
            np.stack([element_bits(r.elements) for r in rows])
            if rows
            else np.empty((0, 2), dtype=np.uint64)
        )
        index.set_rows(db_ids, bits, np.concatenate(rows_of))
        with self._rw.write():
            self._index = index
            self._publish(generation)
        logger.info("%s: %d references indexed (generation %d)", self.path, index.size, generation)
        if changed or header.get("generation") != generation:
            self.save_index(force=True)
        else:
            self._saved_generation = generation

    # ------------------------------------------------------------------ writes

    @property
    def technique(self) -> Technique:
        return self.layout.technique

    def _checked_embedding(self, new: NewReference) -> NDArray[np.float32]:
        if new.technique is not self.technique:
            raise InputError(
                f"reference {new.info.name!r} is {new.technique.a_label} pattern; "
                f"this is the {self.technique.label} library"
            )
        if new.model_version != self.model_version:
            raise InputError(
                f"reference {new.info.name!r} was embedded by model {new.model_version}, "
                f"the library holds model {self.model_version} embeddings"
            )
        vector = np.asarray(new.embedding, dtype=np.float32).reshape(-1)
        if vector.size != self.dim or not np.all(np.isfinite(vector)):
            raise InputError(f"embedding of {new.info.name!r} is not a finite {self.dim}-vector")
        norm = float(np.linalg.norm(vector))
        if abs(norm - 1.0) > UNIT_NORM_TOLERANCE:
            raise InputError(f"embedding of {new.info.name!r} has norm {norm:.4f}, not 1")
        return vector / norm

    def add(self, new: NewReference) -> ReferenceEntry:
        """Store one reference (durably) and index it.

        Raises :class:`DuplicateReferenceError` when its (source, source id)
        is taken.
        """
        entry = self.add_many([new])[0]
        assert entry is not None
        return entry

    def add_many(
        self, items: Sequence[NewReference], *, skip_existing: bool = False
    ) -> list[ReferenceEntry | None]:
        """Store references in one transaction (all or nothing) and index them.

        With ``skip_existing`` a reference whose (source, source id) is taken
        is left out (``None`` in its place); otherwise that raises
        :class:`DuplicateReferenceError` and nothing is stored.
        """
        vectors = [self._checked_embedding(new) for new in items]
        profiles = [self._encoded_profile(new) for new in items]
        with self._write_lock:
            results, generation = self._store.insert(
                items, vectors, profiles, self.model_version, skip_existing=skip_existing
            )
            if generation is None:
                return results
            # Committed (durable) above; now make it searchable.
            added = [
                (entry.id, vector, entry.info.elements, profile)
                for entry, vector, profile in zip(results, vectors, profiles, strict=True)
                if entry is not None
            ]
            ids = np.array([a[0] for a in added], dtype=np.int64)
            matrix = np.stack([a[1] for a in added]).astype(np.float32)
            bits = np.stack([element_bits(a[2]) for a in added])
            # The row a reopen rebuilds from the stored (companded) profile.
            rows = profile_rows(self.layout, list(ids), {a[0]: decode_profile(a[3]) for a in added})
            with self._rw.write():
                self._index.add(ids, matrix, bits, rows)
                self._publish(generation)
        return results

    def _encoded_profile(self, new: NewReference) -> bytes:
        profile = np.asarray(_profile_of(new))
        if profile.shape != (self.layout.profile_points,):
            raise InputError(
                f"the profile of {new.info.name!r} has {profile.size} points, not the "
                f"{self.layout.profile_points} of the {self.technique.label} model grid"
            )
        return encode_profile(profile)

    def delete(self, reference_id: int) -> None:
        """Remove a reference from the database and the index.

        Raises :class:`ReferenceNotFoundError` when there is none.
        """
        with self._write_lock, self._rw.write():
            # Searches wait for both steps, so none sees an id the database lost.
            generation = self._store.delete(reference_id)
            self._index.remove(reference_id)
            self._publish(generation)

    def save_index(self, *, force: bool = False) -> bool:
        """Write the index file if it is behind the in-memory index; True if written."""
        with self._save_lock:
            with self._rw.read():
                generation = self._index_generation
                if not force and generation == self._saved_generation:
                    return False
                blob = self._index.serialize()
                header = {
                    "library_uuid": self._store.uuid,
                    "generation": generation,
                    "count": self._index.size,
                    "model_version": self.model_version,
                    "dim": self.dim,
                    "saved_at": datetime.now(UTC).isoformat(),
                }
            write_index_file(self.index_path, blob, header)
            self._saved_generation = generation
            return True

    def close(self, *, save: bool = True) -> None:
        """Save the index (if behind) and close every connection."""
        if self._closed:
            return
        if save:
            try:
                self.save_index()
            except Exception:
                logger.exception("could not save %s; it will be rebuilt on open", self.index_path)
        self._closed = True
        self._store.close()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ reads

    def _publish(self, generation: int) -> None:
        """Record what searches now see (call holding the write lock)."""
        self._index_generation = generation
        self._status = LibraryStatus(
            size=self._index.size,
            generation=generation,
            model_version=self.model_version,
            dim=self.dim,
            technique=self.technique,
        )

    def status(self) -> LibraryStatus:
        """Size and version of what searches see. Never waits (an identification
        holding a read lock calls it; a re-entrant read behind a waiting writer
        would deadlock): a snapshot published with each write."""
        return self._status

    def database_size(self) -> int:
        """References in the database (all models)."""
        return self._store.count()

    def verify(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """(ids in the database but not the index, ids in the index but not the
        database); both empty when they agree."""
        with self._rw.read():
            index_ids = self._index.vector_ids()
            db_ids = self._store.ids(self.model_version)
        return np.setdiff1d(db_ids, index_ids), np.setdiff1d(index_ids, db_ids)

    def get(self, reference_id: int) -> ReferenceEntry:
        return self._store.get(reference_id)

    def get_pattern(self, reference_id: int) -> ReferencePattern:
        return self._store.get_pattern(reference_id)

    def find(self, source: str, source_id: str) -> ReferenceEntry | None:
        """The reference with this (source, source id), if any."""
        return self._store.find(source, source_id)

    def find_content(self, content_hash: str) -> ReferenceEntry | None:
        """The first reference made from a file with this content hash, if any."""
        return self._store.find_content(content_hash)

    def source_keys(self) -> set[tuple[str, str]]:
        """Every (source, source id) in the library (for resuming builds)."""
        return self._store.source_keys()

    def content_hashes(self) -> set[str]:
        return self._store.content_hashes()

    def page(
        self,
        *,
        after: int = 0,
        limit: int = 50,
        name_contains: str | None = None,
        elements: ElementFilter | None = None,
        kind: ReferenceKind | None = None,
    ) -> ReferencePage:
        """References in id order, ``limit`` of them after id ``after``."""
        return self._store.page(
            after=after, limit=limit, name_contains=name_contains, elements=elements, kind=kind
        )

    # ------------------------------------------------------------------ search

    def _check_queries(self, embeddings: NDArray[np.float32], k: int) -> NDArray[np.float32]:
        queries = np.ascontiguousarray(np.atleast_2d(embeddings), dtype=np.float32)
        if queries.shape[1] != self.dim:
            raise InputError(
                f"query embeddings have dimension {queries.shape[1]}, expected {self.dim}"
            )
        if k < 1:
            raise InputError(f"k must be at least 1, not {k}")
        return queries

    def search(
        self, embeddings: NDArray[np.float32], k: int, elements: ElementFilter | None = None
    ) -> list[tuple[Match, ...]]:
        """The ``k`` nearest references of each query embedding by cosine.

        ``embeddings`` is (dim,) or (n, dim); one tuple of matches per query,
        best first, fewer than ``k`` only when fewer references qualify.
        :mod:`xrdid.ranking` ranks by profiles too (through :meth:`reading`).
        """
        queries = self._check_queries(embeddings, k)
        with self.reading(elements) as source:
            hits = source.nearest(queries, k)
            return self._with_entries(
                [
                    [
                        (int(i), float(s), None, float(s))
                        for i, s in zip(h.ids, h.similarity, strict=True)
                    ]
                    for h in hits
                ]
            )

    @contextmanager
    def reading(self, elements: ElementFilter | None = None) -> Iterator[LibrarySource]:
        """A consistent view of the references ``elements`` admits, for the
        ranking (:class:`~xrdid.ranking.ReferenceSource`); writes wait until
        it is closed."""
        # OpenMP settings are per calling thread: set them in every one that searches.
        faiss.omp_set_num_threads(self.search_threads)
        with self._rw.read():
            yield LibrarySource(self, elements)

    def matches(self, ranked: Sequence[Sequence[RankedReference]]) -> list[tuple[Match, ...]]:
        """Rankings with each reference's metadata (call inside :meth:`reading`)."""
        return self._with_entries(
            [
                [(r.reference_id, r.similarity, r.profile_correlation, r.score) for r in row]
                for row in ranked
            ]
        )

    def _with_entries(
        self, rows: Sequence[Sequence[tuple[int, float, float | None, float]]]
    ) -> list[tuple[Match, ...]]:
        """(id, cosine, profile correlation, score) rows as matches, with the
        metadata of the results only (not of every candidate scored)."""
        entries = self._store.entries(sorted({hit[0] for row in rows for hit in row}))
        return [
            tuple(
                Match(rank=rank, entry=entries[rid], similarity=s, profile_correlation=c, score=f)
                for rank, (rid, s, c, f) in enumerate(
                    (hit for hit in row if hit[0] in entries), start=1
                )
            )
            for row in rows
        ]

    def stick_patterns(self, ids: Sequence[int]) -> dict[int, StickPattern]:
        """Stick patterns of those of ``ids`` that are calculated references."""
        return self._store.stick_patterns(ids)

    def _profiles(self, ids: Sequence[int]) -> dict[int, NDArray[np.float32]]:
        """Stored profiles of ``ids`` (those that have one), from the cache or the database."""
        return self._profile_cache.get_many(ids, self._store.profiles)

    def _strain_bases(self, ids: Sequence[int]) -> dict[int, StrainBasis]:
        """Strain bases of those of ``ids`` that are calculated references."""
        return self._basis_cache.get_many(ids, self._read_strain_bases)

    def _read_strain_bases(self, ids: Sequence[int]) -> dict[int, StrainBasis]:
        return {rid: strain_basis(s) for rid, s in self._store.stick_patterns(ids).items()}


class LibrarySource:
    """The library as the ranking reads it (:class:`~xrdid.ranking.ReferenceSource`),
    restricted to the references an element filter admits; valid inside
    :meth:`Library.reading` only."""

    def __init__(self, library: Library, elements: ElementFilter | None) -> None:
        self._library = library
        self._index = library._index
        # What the index holds now: a snapshot key for derived caches.
        self.generation = library._index_generation
        self._eligible: NDArray[np.bool_] | None = None
        self._eligible_ids: NDArray[np.int64] | None = None
        if elements is not None and elements.active:
            self._eligible = self._index.eligible(elements)
            self._eligible_ids = self._index.ids[self._eligible]

    def nearest(self, embeddings: NDArray[np.float32], n: int) -> list[EmbeddingHits]:
        queries = np.ascontiguousarray(embeddings, dtype=np.float32)
        available = self._index.size if self._eligible_ids is None else self._eligible_ids.size
        n = min(n, int(available))
        if n == 0:
            none = np.empty(0, dtype=np.int64)
            return [EmbeddingHits(none, np.empty(0), self._cosines(query)) for query in queries]
        scores, ids = self._index.nearest(queries, n, self._eligible_ids)
        out = []
        for query, row_scores, row_ids in zip(queries, scores, ids, strict=True):
            found = row_ids >= 0
            similarity = np.clip(row_scores[found], -1.0, 1.0).astype(np.float64)
            out.append(
                EmbeddingHits(row_ids[found].astype(np.int64), similarity, self._cosines(query))
            )
        return out

    def _cosines(
        self, query: NDArray[np.float32]
    ) -> Callable[[NDArray[np.int64]], NDArray[np.float64]]:
        def cosines(ids: NDArray[np.int64]) -> NDArray[np.float64]:
            vectors = self._index.reconstruct(np.asarray(ids, dtype=np.int64))
            return np.clip(vectors @ query, -1.0, 1.0).astype(np.float64)

        return cosines

    def profile_rows(self, resolution: SearchResolution) -> ProfileRows:
        if self._library.technique is not Technique.XRD:
            raise InputError("coarse profile rows are kept for XRD libraries only")
        if resolution != SERVED.profile_search_resolution:
            raise InputError(
                f"the library keeps profile rows at {SERVED.profile_search_resolution}, "
                f"not {resolution}"
            )
        return self.rows()

    def rows(self) -> ProfileRows:
        """Every indexed reference's row (the layout's), with the filter's mask."""
        return ProfileRows(self._index.ids, self._index.rows, self._eligible)

    def element_bits(self) -> NDArray[np.uint64]:
        """(n, 2) element bits of the indexed references, aligned with :meth:`rows`."""
        return self._index.bits

    def vectors(self, ids: NDArray[np.int64]) -> NDArray[np.float32]:
        """Stored unit embeddings of indexed ``ids``, (n, dim)."""
        return self._index.reconstruct(np.asarray(ids, dtype=np.int64))

    def names(self, ids: NDArray[np.int64]) -> list[str]:
        """Names of ``ids`` (indexed, so stored), in their order."""
        found = self._library._store.names([int(i) for i in ids])
        return [found[int(i)] for i in ids]

    def profiles(self, ids: NDArray[np.int64]) -> NDArray[np.float32]:
        found = self._library._profiles([int(i) for i in ids])
        # A profile not stored (yet).
        blank = np.zeros(self._library.layout.profile_points, dtype=np.float32)
        return np.stack([found.get(int(rid), blank) for rid in ids] or [blank])[: len(ids)]

    def strain_bases(self, ids: NDArray[np.int64]) -> list[StrainBasis | None]:
        found = self._library._strain_bases([int(i) for i in ids])
        return [found.get(int(rid)) for rid in ids]

    def facts(self, ids: NDArray[np.int64]) -> list[ReferenceFacts]:
        entries = self._library._store.entries([int(i) for i in ids])
        return [facts_of(entries[int(i)]) for i in ids]
