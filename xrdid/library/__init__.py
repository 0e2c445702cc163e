"""The reference library: every pattern the service compares uploads against.

The library stores references and searches their vectors; the ranking
(:mod:`xrdid.ranking`) ranks them. One facade, :class:`Library`, over
small modules, one job each:

- :mod:`~xrdid.library.records`: what is stored and returned (references,
  entries, matches, pages, status) and the library's errors;
- :mod:`~xrdid.library.filters`: element filters;
- :mod:`~xrdid.library.codecs`: bytes of patterns and profiles;
- :mod:`~xrdid.library.store`: the storage protocol and SQLite storage and
  migrations, the source of truth; :mod:`~xrdid.library.postgres`: the same
  on PostgreSQL, shared by stateless replicas;
- :mod:`~xrdid.library.index`: the search structures in memory (FAISS,
  element bits, profile rows; exact, or approximate for a million XRD
  references) and the index file that caches them;
- :mod:`~xrdid.library.follow`: a replica following the other replicas' writes;
- :mod:`~xrdid.library.views`: what the model sees of a stored reference;
- :mod:`~xrdid.library.layouts`: what differs between techniques.

Techniques
----------
A library holds the references of one technique, that of the model it is
opened with (``embedder.technique``, recorded in the library): the service
keeps an XRD library and a Raman library, each with its own file (or
PostgreSQL schema, :mod:`~xrdid.library.postgres`), index and model, both
this code.

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
- Replicas of one PostgreSQL database each keep their own index and bring it
  up to date with :meth:`Library.sync` (the database's change log since the
  generation they have); a write of their own does the same when another
  replica wrote in between.

Thread safety: one writer at a time; searches run concurrently with each
other and wait only for the in-memory index update of a write.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from numpy.typing import NDArray

from xrdid.cache import LruCache
from xrdid.errors import InputError
from xrdid.files import remove_partial_writes
from xrdid.library.codecs import decode_pattern, decode_profile, encode_pattern, encode_profile
from xrdid.library.filters import ELEMENT_SYMBOLS, ElementFilter, element_bits, parse_elements
from xrdid.library.index import (
    SearchIndex,
    SearchSettings,
    index_path_for,
    profile_rows,
    read_index_file,
    write_index_file,
)
from xrdid.library.layouts import LAYOUTS, RAMAN_FIRST_ID, LibraryLayout
from xrdid.library.locks import ReadWriteLock
from xrdid.library.postgres import PostgresStore, is_database_url
from xrdid.library.records import (
    DatabaseEncodingError,
    DuplicateReferenceError,
    LibraryStatus,
    LibraryUnavailableError,
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
    ReferenceVersion,
    technique_of,
)
from xrdid.library.store import MAX_PAGE_SIZE, LibraryStore, SqliteStore, chunks
from xrdid.library.views import ModelView, model_view, view_of_blob
from xrdid.ranking import (
    SERVED,
    EmbeddingHits,
    ProfileRows,
    RankedReference,
    ReferenceFacts,
    SearchResolution,
)
from xrdid.ranking.correlation import CorrelationRows
from xrdid.ranking.materials import Material
from xrdid.ranking.profile_search import CompressedRows
from xrdid.ranking.strain_tensor import StrainBasis, strain_basis
from xrdid.sticks import StickPattern
from xrdid.technique import Technique

__all__ = [
    "ELEMENT_SYMBOLS",
    "LAYOUTS",
    "MAX_PAGE_SIZE",
    "RAMAN_FIRST_ID",
    "DatabaseEncodingError",
    "DuplicateReferenceError",
    "ElementFilter",
    "Library",
    "LibrarySource",
    "LibraryStatus",
    "LibraryStore",
    "LibraryUnavailableError",
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
    "ReferenceVersion",
    "SearchSettings",
    "Technique",
    "decode_pattern",
    "decode_profile",
    "encode_pattern",
    "encode_profile",
    "facts_of",
    "index_path_for",
    "is_database_url",
    "model_view",
    "parse_elements",
    "technique_of",
]

logger = logging.getLogger(__name__)

# Rows read, re-embedded and committed per step when embeddings are recomputed
# or the index is rebuilt: bounds memory (a model view is ~100 kB) and keeps an
# interrupted re-embedding's progress.
REBUILD_BATCH = 256
# References read per step when the index is built from the database: their
# embeddings and profiles (~2 kB each) in memory at once.
BUILD_BATCH = 2_000

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
    """A reference library (a SQLite file or a PostgreSQL database); open it with :meth:`open`."""

    def __init__(
        self,
        store: LibraryStore,
        model_version: str,
        dim: int,
        search_threads: int = DEFAULT_SEARCH_THREADS,
        *,
        layout: LibraryLayout = LAYOUTS[Technique.XRD],
        index_path: Path | None = None,
        search: SearchSettings | None = None,
        writes_index_file: bool = True,
    ) -> None:
        """Use :meth:`open`; this only sets up the connection."""
        self.location = store.description
        self.search_threads = search_threads
        # The index file (a cache); None: rebuilt from the database on every open.
        self.index_path = index_path
        # False in a process that only searches beside the one that owns the
        # file (a compute process): it reads the file, never writes or tidies it.
        self.writes_index_file = writes_index_file
        self.search_settings = search or SearchSettings()
        self.model_version = model_version
        self.dim = dim
        self.layout = layout
        self._store = store
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
        self._index_loaded = False
        self._publish(-1)
        self._saved_generation = -2

    @property
    def path(self) -> Path:
        """The SQLite file (a PostgreSQL library has none)."""
        if not isinstance(self._store, SqliteStore):
            raise InputError(f"{self.location} is a database, not a file")
        return self._store.path

    @property
    def store(self) -> LibraryStore:
        return self._store

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(
        cls,
        location: Path | str,
        embedder: PatternEmbedder,
        *,
        workers: int = 1,
        progress: Callable[[int, int], None] | None = None,
        search_threads: int = DEFAULT_SEARCH_THREADS,
        index_path: Path | None = None,
        search: SearchSettings | None = None,
        load_index: bool = True,
        writes_index_file: bool = True,
    ) -> Library:
        """Open (or create) the library at ``location`` (a SQLite file, or a
        ``postgresql://`` URL) for ``embedder``'s model (and technique: an XRD
        library refuses a Raman model and vice versa; on PostgreSQL each
        technique's library has its own schema).

        Stored embeddings of another model, and missing profiles, are
        recomputed from the stored patterns (``workers`` processes preprocess
        them; ``progress(done, total)`` is called after each batch); the index
        is loaded from ``index_path`` (default: next to a SQLite file; none
        for a database), checked against the database and patched, or
        rebuilt. With ``load_index`` False the library only stores (a bulk
        build); :meth:`load_index` builds the index once at the end. With
        ``writes_index_file`` False the index file is only read (another
        process of the same service saves it).
        """
        layout = LAYOUTS[embedder.technique]
        store: LibraryStore
        if is_database_url(location):
            store = PostgresStore(str(location), layout.technique)
        else:
            store = SqliteStore(Path(location))
            index_path = index_path or index_path_for(Path(location))
        library = cls(
            store,
            embedder.version,
            embedder.dim,
            search_threads,
            layout=layout,
            index_path=index_path,
            search=search,
            writes_index_file=writes_index_file,
        )
        try:
            library._store.init_schema(library.model_version, library.dim, layout)
            library._refresh_derived(embedder, workers, progress)
            if load_index:
                library.load_index()
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
                self.location,
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

    def load_index(self, progress: Callable[[int, int], None] | None = None) -> None:
        """Load the saved index, compare its ids with the database's and patch
        it (or build it, streaming the database in batches; ``progress(done,
        total)`` after each); save it when it changed or lagged."""
        store = self._store
        with self._write_lock:
            generation = store.generation()
            index, header = self._saved_index()
            changed = index is None
            if index is None:
                index = self._built_index(progress)
            else:
                changed = self._patch(index)
            with self._rw.write():
                self._index = index
                self._index_loaded = True
                self._publish(generation)
        logger.info(
            "%s: %d references indexed (%s search, generation %d)",
            self.location,
            index.size,
            "approximate" if index.approximate else "exact",
            generation,
        )
        if changed or header.get("generation") != generation:
            self.save_index(force=True)
        else:
            self._saved_generation = generation

    def _saved_index(self) -> tuple[SearchIndex | None, dict[str, Any]]:
        """The index file's index and header, if it is usable for this library's size."""
        if self.index_path is None:
            return None, {}
        if self.writes_index_file:
            remove_partial_writes(self.index_path)
        saved = read_index_file(
            self.index_path, self._store.uuid, self.model_version, self.dim, self.layout
        )
        if saved is None:
            return None, {}
        index, header = saved
        ids = index.vector_ids()
        if np.unique(ids).size != ids.size:
            logger.warning("%s holds repeated ids; rebuilding", self.index_path)
            return None, {}
        if index.approximate != self._approximate_for(index.size):
            logger.info("%s: another kind of search is set; rebuilding the index", self.location)
            return None, {}
        if isinstance(index.rows, CompressedRows):
            # How wide a query looks is today's setting; the sketches' size
            # is the build's, so another one rebuilds them.
            settings = self.search_settings
            learnt = min(settings.sketch_dims, index.rows.axes.shape[1], index.size)
            if index.rows.sketches.shape[1] != learnt:
                logger.info("%s: another sketch size is set; rebuilding the index", self.location)
                return None, {}
            index.probe = settings.probe
            index.rows = replace(index.rows, shortlist=settings.profile_shortlist)
        return index, header

    def _approximate_for(self, size: int) -> bool:
        """Whether an index of ``size`` references is approximate (the
        settings say; a layout without approximate search is always exact)."""
        return self.layout.approximate_search and self.search_settings.approximate_for(size)

    def _patch(self, index: SearchIndex) -> bool:
        """Bring a saved index in step with the database; True if it changed."""
        db_ids = self._store.ids(self.model_version)
        extra = np.setdiff1d(index.ids, db_ids)
        missing = np.setdiff1d(db_ids, index.ids)
        if extra.size:
            logger.warning(
                "index holds %d references the database lacks; removing them", extra.size
            )
            index.remove(extra)
        if missing.size:
            logger.warning("index lacks %d references of the database; adding them", missing.size)
            self._add_stored(index, missing.tolist())
        return bool(extra.size or missing.size)

    def _add_stored(self, index: SearchIndex, ids: Sequence[int]) -> None:
        """Index stored references (those of ``ids`` still in the database and
        not in ``index``), read in batches and added at once."""
        _add_rows(index, self._stored_rows(ids))

    def _stored_rows(self, ids: Sequence[int]) -> _IndexRows | None:
        """What the index holds of those of ``ids`` still in the database
        (ids, embeddings, element bits, profile rows), read in batches."""
        parts: list[tuple[Any, ...]] = []
        for chunk in chunks(list(ids), BUILD_BATCH):
            found, vectors = self._store.embeddings(chunk, self.dim)
            if not found.size:
                continue
            entries = self._store.entries(found.tolist())
            profiles = self._store.profiles(found.tolist())
            bits = np.stack([element_bits(entries[int(i)].info.elements) for i in found])
            rows = profile_rows(self.layout, found.tolist(), profiles)
            parts.append((found, vectors, bits, rows))
        if not parts:
            return None
        found, vectors, bits, rows = (np.concatenate(column) for column in zip(*parts, strict=True))
        return found, vectors, bits, rows

    def _built_index(self, progress: Callable[[int, int], None] | None) -> SearchIndex:
        """The index of every reference of this model, read from the database
        in batches (never all patterns or profiles at once)."""
        store = self._store
        ids_parts, bits_parts, after = [], [], 0
        while True:
            rows = store.indexed_rows(self.model_version, after, BUILD_BATCH)
            if not rows:
                break
            ids_parts.append(np.array([r.id for r in rows], dtype=np.int64))
            bits_parts.append(np.stack([element_bits(r.elements) for r in rows]))
            after = rows[-1].id
        db_ids = np.concatenate([np.empty(0, dtype=np.int64), *ids_parts])
        bits = np.concatenate([np.empty((0, 2), dtype=np.uint64), *bits_parts])
        settings = self.search_settings
        if self._approximate_for(db_ids.size):
            step = max(1, db_ids.size // settings.training_sample)
            sample = db_ids[::step].tolist()
            _, sample_vectors = store.embeddings(sample, self.dim)
            sample_rows = np.concatenate(
                [
                    profile_rows(self.layout, list(chunk), store.profiles(chunk))
                    for chunk in chunks(sample, BUILD_BATCH)
                ]
            )
            index = SearchIndex.trained(
                self.dim, self.layout, sample_vectors, sample_rows, settings, db_ids.size
            )
        else:
            index = SearchIndex(self.dim, self.layout)
        blocks: list[Any] = []
        for done, chunk in enumerate(chunks(db_ids.tolist(), BUILD_BATCH), start=1):
            found, vectors = store.embeddings(chunk, self.dim)
            index.vectors.add_with_ids(vectors, found)
            block = profile_rows(self.layout, list(chunk), store.profiles(chunk))
            blocks.append(
                index.rows.encoded(block) if isinstance(index.rows, CompressedRows) else block
            )
            if progress:
                progress(min(done * BUILD_BATCH, db_ids.size), int(db_ids.size))
        if isinstance(index.rows, CompressedRows):
            all_rows: Any = index.rows.joined(blocks)
        else:
            all_rows = np.concatenate([profile_rows(self.layout, [], {}), *blocks])
        index.set_rows(db_ids, bits, all_rows)
        return index

    def sync(self) -> bool:
        """Bring the index up to date with writes of other processes (replicas
        of one database); True if it changed."""
        with self._write_lock:
            return self._sync_locked()

    def _sync_locked(self) -> bool:
        if not self._index_loaded:
            return False
        since = self._index_generation
        if self._store.generation() == since:
            return False
        changes = self._store.changes_since(since)
        if changes is None:
            logger.info(
                "%s: the change log does not reach back; reloading the index", self.location
            )
            # The generation first: a write during the build is applied again
            # at the next sync (adds of ids present are skipped).
            generation = self._store.generation()
            index = self._built_index(None)
            with self._rw.write():
                self._index = index
                self._publish(generation)
            return True
        # Read before taking the index from searches (only writers, who hold
        # _write_lock as this does, change it in between).
        added = self._stored_rows(changes.added) if changes.added else None
        with self._rw.write():
            if changes.deleted:
                self._index.remove(np.array(changes.deleted, dtype=np.int64))
            _add_rows(self._index, added)
            self._publish(changes.generation)
        logger.debug(
            "%s: generation %d → %d (+%d −%d)",
            self.location,
            since,
            changes.generation,
            len(changes.added),
            len(changes.deleted),
        )
        return True

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
            if generation is None or not self._index_loaded:
                return results
            if generation != self._index_generation + 1:
                # Another replica wrote in between: apply the log, ours included.
                self._sync_locked()
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
        with self._write_lock:
            if not self._index_loaded:
                self._store.delete(reference_id)
                return
            with self._rw.write():
                # Searches wait for both steps, so none sees an id the database lost.
                generation = self._store.delete(reference_id)
                if generation == self._index_generation + 1:
                    self._index.remove([reference_id])
                    self._publish(generation)
                    return
            self._sync_locked()  # another replica wrote in between

    def save_index(self, *, force: bool = False) -> bool:
        """Write the index file if it is behind the in-memory index; True if written."""
        if self.index_path is None or not self._index_loaded or not self.writes_index_file:
            return False
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
                    "approximate": self._index.approximate,
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

    def entries(self, ids: Sequence[int]) -> dict[int, ReferenceEntry]:
        """The entries of those of ``ids`` that are stored, in one read (none for none)."""
        return self._store.entries(sorted(set(ids))) if ids else {}

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
        return set(self._store.source_ids())

    def source_ids(self) -> dict[tuple[str, str], int]:
        """Every reference's id, by (source, source id)."""
        return self._store.source_ids()

    def versions(self, ids: Sequence[int]) -> dict[int, ReferenceVersion]:
        """What identification sees of each reference (to tell versions apart)."""
        return self._store.versions(ids)

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
        if not self._index_loaded:
            raise InputError(f"{self.location} was opened without its index; call load_index()")
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


# (ids, embeddings, element bits, profile rows) of references to index.
_IndexRows = tuple[NDArray[np.int64], NDArray[np.float32], NDArray[np.uint64], Any]


def _add_rows(index: SearchIndex, stored: _IndexRows | None) -> None:
    """Add ``stored`` to ``index``, but for the ids it holds (a sync may see an add it has)."""
    if stored is None:
        return
    found, vectors, bits, rows = stored
    fresh = ~np.isin(found, index.ids)
    if fresh.any():
        index.add(found[fresh], vectors[fresh], bits[fresh], rows[fresh])


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
        # Facts read so far: a phase analysis asks for the same references
        # round after round, and writes wait while this view is open.
        self._facts: dict[int, ReferenceFacts] = {}
        self.correlation_rows = CorrelationRows(self.profiles)
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
        wanted = [int(i) for i in ids]
        missing = [i for i in dict.fromkeys(wanted) if i not in self._facts]
        if missing:
            entries = self._library._store.entries(missing)
            self._facts.update((i, facts_of(entries[i])) for i in missing)
        return [self._facts[i] for i in wanted]
