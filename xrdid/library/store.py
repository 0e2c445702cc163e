"""Storage of the library, the source of truth: the :class:`LibraryStore`
protocol every backend implements, and its embedded SQLite implementation
(:mod:`xrdid.library.postgres` is the server one).

Tables: ``meta`` (schema version, library uuid, generation counter, model
version, embedding dimension, technique), ``reference`` (one row per
reference: descriptive metadata, its technique, the pattern it was made
from, its embedding and the model version of that embedding, created time,
notes, content hash),
``reference_profile`` (its model-grid profile, for the re-rank) and
``reference_element`` (element → reference, for SQL filters) and
``reference_change`` (which references each generation added or deleted:
how replicas of one database bring their search index up to date without
reading every id; kept for the last :data:`CHANGE_LOG_GENERATIONS`).

A write commits (WAL, ``synchronous=FULL``) before it returns, so an
acknowledged add survives a crash; every write transaction bumps the
generation counter. Ids are ``AUTOINCREMENT``: never reused, so a stale
search index cannot point an old id at a different reference; a library's
ids start after its layout's first id (Raman ids above 10⁹), so ids are
unique across the libraries of a service. Each thread
reads through its own connection (WAL readers never block the writer); one
writer at a time.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from xrdid.errors import InputError
from xrdid.library.codecs import decode_pattern, decode_profile, encode_pattern
from xrdid.library.filters import ElementFilter
from xrdid.library.layouts import LibraryLayout
from xrdid.library.records import (
    DuplicateReferenceError,
    NewReference,
    ReferenceEntry,
    ReferenceInfo,
    ReferenceKind,
    ReferenceNotFoundError,
    ReferencePage,
    ReferencePattern,
    ReferenceVersion,
)
from xrdid.sticks import StickPattern
from xrdid.technique import Technique

__all__ = [
    "CHANGE_LOG_GENERATIONS",
    "MAX_PAGE_SIZE",
    "SCHEMA_VERSION",
    "LibraryChanges",
    "LibraryStore",
    "SqliteStore",
    "StoredRow",
    "ENTRY_COLUMNS",
    "EXPORT_COLUMNS",
    "chunks",
    "entry_of",
    "net_changes",
]

logger = logging.getLogger(__name__)

# 2: profiles stored; 3: reference intensity ratios; 4: techniques (XRD,
# Raman); 5: the change log. Older libraries are upgraded in place on open
# (by what they lack: a library of the scale branch's schema 4 has the change
# log and no technique).
SCHEMA_VERSION = 5

# Generations of changes kept in the log: a replica further behind reloads
# its whole index instead (as after a restart).
CHANGE_LOG_GENERATIONS = 10_000
_PRUNE_EVERY = 1_000

# SQLite host parameters per statement stay well below its 32,766 limit.
_SQL_CHUNK = 500

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS reference (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    formula TEXT,
    elements TEXT NOT NULL,  -- sorted symbols separated by spaces; '' when unknown
    space_group_symbol TEXT,
    space_group_number INTEGER,
    crystal_system TEXT,
    source TEXT NOT NULL,
    source_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('calculated', 'measured')),
    pattern BLOB NOT NULL,  -- codecs.encode_pattern()
    embedding BLOB NOT NULL,  -- float32 unit vector
    model_version TEXT NOT NULL,
    created_at TEXT NOT NULL,  -- ISO 8601, UTC
    notes TEXT,
    content_hash TEXT,
    rir REAL,  -- reference intensity ratio I/I_corundum; NULL when unknown
    technique TEXT NOT NULL DEFAULT 'xrd' CHECK (technique IN ('xrd', 'raman')),
    UNIQUE (source, source_id)
);
-- Apart from the reference rows (whose pattern blobs a search would have to
-- read past): one model-grid profile per reference, for the re-rank.
CREATE TABLE IF NOT EXISTS reference_profile (
    reference_id INTEGER PRIMARY KEY REFERENCES reference (id) ON DELETE CASCADE,
    profile BLOB NOT NULL  -- codecs.encode_profile()
);
CREATE INDEX IF NOT EXISTS reference_by_content_hash ON reference (content_hash);
CREATE TABLE IF NOT EXISTS reference_element (
    element TEXT NOT NULL,
    reference_id INTEGER NOT NULL REFERENCES reference (id) ON DELETE CASCADE,
    PRIMARY KEY (element, reference_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS reference_element_by_reference ON reference_element (reference_id);
CREATE TABLE IF NOT EXISTS reference_change (
    generation INTEGER NOT NULL,
    reference_id INTEGER NOT NULL,
    op TEXT NOT NULL CHECK (op IN ('add', 'delete'))
);
CREATE INDEX IF NOT EXISTS reference_change_by_generation ON reference_change (generation);
"""

# Columns added since schema 1, each with its definition: an older library
# gets those it lacks. Profiles (1 → 2) are derived data: their table is
# created with the schema and filled from the stored patterns
# (Library._refresh_derived). RIRs (2 → 3) stay unknown for existing
# references; rebuilding gives calculated ones theirs. Techniques (3 → 4):
# every older library is an XRD one. The change log (4 → 5) starts empty at
# the current generation.
_ADDED_COLUMNS = {
    "rir": "REAL",
    "technique": "TEXT NOT NULL DEFAULT 'xrd' CHECK (technique IN ('xrd', 'raman'))",
}
_UPGRADABLE = {"1", "2", "3", "4"}

ENTRY_COLUMNS = (
    "id, name, formula, elements, space_group_symbol, space_group_number, crystal_system, "
    "source, source_id, notes, rir, kind, model_version, created_at, content_hash, technique"
)

# Every stored column of a reference, for copying a library (ids kept).
EXPORT_COLUMNS = (
    "r.id, r.name, r.formula, r.elements, r.space_group_symbol, r.space_group_number, "
    "r.crystal_system, r.source, r.source_id, r.kind, r.pattern, r.embedding, "
    "r.model_version, r.created_at, r.notes, r.content_hash, r.rir, r.technique"
)

# A reference's id, then what identification sees of it (ReferenceVersion).
VERSION_COLUMNS = (
    "r.id, r.name, r.formula, r.elements, r.space_group_symbol, r.space_group_number, "
    "r.crystal_system, r.kind, r.notes, r.rir, r.technique, p.profile"
)


def version_of(row: Sequence[Any]) -> ReferenceVersion:
    """A reference's version from a row of :data:`VERSION_COLUMNS`."""
    blob = row[-1]
    return ReferenceVersion(
        tuple(row[1:-1]), decode_profile(bytes(blob)) if blob is not None else None
    )


# Rows whose embedding another model made, or that have no profile (schema 1).
_STALE = "(model_version != ? OR id NOT IN (SELECT reference_id FROM reference_profile))"


# SQLite integers are signed 64-bit; a larger Python int raises OverflowError
# in the driver, so ids and cursors are checked before any query.
MAX_SQLITE_INTEGER = 2**63 - 1


def _stored_id(reference_id: int) -> int:
    """``reference_id`` as a storable id; ReferenceNotFoundError when no id can be it."""
    if not 1 <= reference_id <= MAX_SQLITE_INTEGER:
        raise ReferenceNotFoundError(reference_id)
    return int(reference_id)


def _cursor(after: int) -> int:
    """A paging cursor (an id or 0) clamped to SQLite's range; InputError when negative."""
    if after < 0:
        raise InputError(f"after {after} is negative; pass 0 or a previous page's next_after")
    return min(int(after), MAX_SQLITE_INTEGER)


def chunks(values: Sequence[int], size: int = _SQL_CHUNK) -> Iterator[Sequence[int]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def entry_of(row: Sequence[Any]) -> ReferenceEntry:
    """A stored reference from a row of ``ENTRY_COLUMNS``."""
    (rid, name, formula, elements, sg_symbol, sg_number, system, source, source_id, notes, rir) = (
        row[:11]
    )
    kind, model_version, created_at, content_hash, technique = row[11:]
    return ReferenceEntry(
        id=int(rid),
        info=ReferenceInfo(
            name=name,
            source=source,
            source_id=source_id,
            formula=formula,
            elements=tuple(elements.split()),
            space_group_symbol=sg_symbol,
            space_group_number=sg_number,
            crystal_system=system,
            notes=notes,
            rir=rir,
        ),
        kind=ReferenceKind(kind),
        model_version=model_version,
        created_at=(
            created_at if isinstance(created_at, datetime) else datetime.fromisoformat(created_at)
        ),
        content_hash=content_hash,
        technique=Technique(technique),
    )


@dataclass(frozen=True)
class StoredRow:
    """A reference as the search index needs it: id and element symbols."""

    id: int
    elements: tuple[str, ...]


@dataclass(frozen=True)
class LibraryChanges:
    """What changed after a generation, up to ``generation``: references
    added (and not deleted since) and references deleted."""

    generation: int
    added: tuple[int, ...]
    deleted: tuple[int, ...]


def net_changes(generation: int, log: Sequence[tuple[str, int]]) -> LibraryChanges:
    """The net effect of (op, reference id) log rows in generation order
    (ids are never reused: an id added then deleted is neither)."""
    added: dict[int, None] = {}
    deleted: dict[int, None] = {}
    for op, rid in log:
        if op == "add":
            added[rid] = None
        elif rid in added:
            del added[rid]
        else:
            deleted[rid] = None
    return LibraryChanges(generation, tuple(added), tuple(deleted))


class LibraryStore(Protocol):
    """What the library needs of its storage (SQLite embedded, PostgreSQL
    shared by replicas). Every write is one transaction, durable when it
    returns, and bumps the generation; ids are never reused."""

    uuid: str  # the library's identity (set by init_schema)

    @property
    def description(self) -> str:
        """Where it is, for logs and messages (no password)."""
        ...

    def init_schema(self, model_version: str, dim: int, layout: LibraryLayout) -> None:
        """Create or upgrade the tables, check the library holds ``layout``'s
        technique and read its uuid."""
        ...

    def set_model(self, model_version: str, dim: int) -> None: ...
    def close(self) -> None: ...

    def generation(self) -> int: ...
    def changes_since(self, generation: int) -> LibraryChanges | None:
        """The changes after ``generation``; None when the log no longer
        reaches back that far (or stored embeddings were recomputed), or
        ``generation`` is ahead of the database (restored from a backup):
        reload everything."""
        ...

    def stale_count(self, model_version: str) -> int: ...
    def stale_patterns(
        self, model_version: str, after: int, limit: int
    ) -> list[tuple[int, bytes]]: ...
    def update_derived(
        self, model_version: str, rows: Sequence[tuple[int, NDArray[np.float32], bytes]]
    ) -> None: ...

    def insert(
        self,
        items: Sequence[NewReference],
        vectors: Sequence[NDArray[np.float32]],
        profiles: Sequence[bytes],
        model_version: str,
        *,
        skip_existing: bool,
    ) -> tuple[list[ReferenceEntry | None], int | None]: ...
    def delete(self, reference_id: int) -> int: ...
    def import_rows(self, rows: Sequence[tuple[Any, ...]]) -> int:
        """Store exported rows (:meth:`SqliteStore.export_rows`) with their ids."""
        ...

    def indexed_rows(
        self, model_version: str, after: int = 0, limit: int | None = None
    ) -> list[StoredRow]: ...
    def embeddings(
        self, ids: Sequence[int], dim: int
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]: ...
    def profiles(self, ids: Sequence[int]) -> dict[int, NDArray[np.float32]]: ...
    def stick_patterns(self, ids: Sequence[int]) -> dict[int, StickPattern]: ...
    def names(self, ids: Sequence[int]) -> dict[int, str]: ...

    def count(self) -> int: ...
    def ids(self, model_version: str) -> NDArray[np.int64]: ...
    def get(self, reference_id: int) -> ReferenceEntry: ...
    def get_pattern(self, reference_id: int) -> ReferencePattern: ...
    def entries(self, ids: Sequence[int]) -> dict[int, ReferenceEntry]: ...
    def find(self, source: str, source_id: str) -> ReferenceEntry | None: ...
    def find_content(self, content_hash: str) -> ReferenceEntry | None: ...
    def source_ids(self) -> dict[tuple[str, str], int]:
        """Every reference's id, by (source, source id)."""
        ...

    def versions(self, ids: Sequence[int]) -> dict[int, ReferenceVersion]: ...

    def content_hashes(self) -> set[str]: ...
    def page(
        self,
        *,
        after: int = 0,
        limit: int = DEFAULT_PAGE_SIZE,
        name_contains: str | None = None,
        elements: ElementFilter | None = None,
        kind: ReferenceKind | None = None,
    ) -> ReferencePage: ...


class SqliteStore:
    """The library's SQLite file: schema, migrations, reads and writes."""

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        """``read_only``: never write the file nor beside it (a shipped
        default library, perhaps on a read-only image); it must exist."""
        self.path = Path(path)
        self.read_only = read_only
        if read_only:
            if not self.path.is_file():
                raise InputError(f"no library at {self.path}")
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = self._connect()
        if not read_only:
            self._writer.execute("PRAGMA journal_mode = WAL")
        self._writer.execute("PRAGMA foreign_keys = ON")
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._reader_connections: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._closed = False
        self.uuid = ""

    @property
    def description(self) -> str:
        return str(self.path)

    # ------------------------------------------------------------------ connections

    def _connect(self) -> sqlite3.Connection:
        if self.read_only:
            # immutable: no -wal or -shm files beside it (the file is never written).
            connection = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=ro&immutable=1",
                uri=True,
                check_same_thread=False,
                isolation_level=None,
            )
            connection.execute("PRAGMA query_only = ON")
            return connection
        connection = sqlite3.connect(
            self.path, check_same_thread=False, isolation_level=None, timeout=30.0
        )
        connection.execute("PRAGMA synchronous = FULL")
        connection.execute("PRAGMA busy_timeout = 30000")
        return connection

    def _reader(self) -> sqlite3.Connection:
        """This thread's read connection."""
        if self._closed:
            raise InputError(f"the library {self.path} is closed")
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._connect()
            connection.execute("PRAGMA query_only = ON")
            self._local.connection = connection
            with self._readers_lock:
                self._reader_connections.append(connection)
        return connection

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """The one writer's transaction (BEGIN IMMEDIATE … COMMIT, rolled back on error)."""
        with self._write_lock:
            connection = self._writer
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self._readers_lock:
            for connection in self._reader_connections:
                connection.close()
            self._reader_connections.clear()
        if not self.read_only:
            try:
                self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass
        self._writer.close()

    # ------------------------------------------------------------------ schema

    def init_schema(self, model_version: str, dim: int, layout: LibraryLayout) -> None:
        """Create the tables (or upgrade an older library), check the library
        holds ``layout``'s technique and read its uuid."""
        # CREATE … IF NOT EXISTS is idempotent; executescript commits on its own.
        with self._write_lock:
            self._writer.executescript(_SCHEMA)
        with self.transaction() as db:
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            if not meta:
                meta = {
                    "schema_version": str(SCHEMA_VERSION),
                    "library_uuid": uuid.uuid4().hex,
                    "generation": "0",
                    "model_version": model_version,
                    "dim": str(dim),
                    "technique": str(layout.technique),
                    "created_at": datetime.now(UTC).isoformat(),
                    "changes_from": "0",
                }
                db.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", meta.items())
                if layout.first_id:
                    # AUTOINCREMENT continues after the largest id it has seen.
                    db.execute(
                        "INSERT INTO sqlite_sequence (name, seq) VALUES ('reference', ?)",
                        (layout.first_id,),
                    )
            elif meta.get("schema_version") in _UPGRADABLE:
                version = meta["schema_version"]
                logger.warning(
                    "%s: upgrading the library schema %s → %d", self.path, version, SCHEMA_VERSION
                )
                present = {row[1] for row in db.execute("PRAGMA table_info(reference)")}
                for column, definition in _ADDED_COLUMNS.items():
                    if column not in present:
                        db.execute(f"ALTER TABLE reference ADD COLUMN {column} {definition}")
                db.execute(
                    "UPDATE meta SET value = ? WHERE key = 'schema_version'",
                    (str(SCHEMA_VERSION),),
                )
                if "technique" not in meta:
                    meta["technique"] = str(Technique.XRD)
                    db.execute("INSERT INTO meta (key, value) VALUES ('technique', 'xrd')")
                if "changes_from" not in meta:
                    db.execute(
                        "INSERT INTO meta (key, value) VALUES ('changes_from', ?)",
                        (meta["generation"],),
                    )
            elif int(meta.get("schema_version", "0")) != SCHEMA_VERSION:
                raise InputError(
                    f"{self.path} has library schema {meta.get('schema_version')}, this "
                    f"xrdid reads schema {SCHEMA_VERSION}; rebuild it with "
                    "`python -m indexer build`"
                )
            if meta["technique"] != str(layout.technique):
                raise InputError(
                    f"{self.path} is {Technique(meta['technique']).a_label} library; it cannot "
                    f"be opened with {layout.technique.a_label} model"
                )
        self.uuid = meta["library_uuid"]

    def set_model(self, model_version: str, dim: int) -> None:
        """Record the model every stored embedding now comes from."""
        with self.transaction() as db:
            db.execute("UPDATE meta SET value = ? WHERE key = 'model_version'", (model_version,))
            db.execute("UPDATE meta SET value = ? WHERE key = 'dim'", (str(dim),))

    # ------------------------------------------------------------------ generation

    @staticmethod
    def _generation_of(db: sqlite3.Connection) -> int:
        (value,) = db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        return int(value)

    def generation(self) -> int:
        return self._generation_of(self._reader())

    def _bump_generation(
        self, db: sqlite3.Connection, changes: Sequence[tuple[str, int]] = ()
    ) -> int:
        """The next generation, with its (op, reference id) changes logged."""
        db.execute(
            "UPDATE meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key = 'generation'"
        )
        generation = self._generation_of(db)
        db.executemany(
            "INSERT INTO reference_change (generation, reference_id, op) VALUES (?, ?, ?)",
            [(generation, rid, op) for op, rid in changes],
        )
        if generation % _PRUNE_EVERY == 0:
            self._forget_changes(db, generation - CHANGE_LOG_GENERATIONS)
        return generation

    @staticmethod
    def _forget_changes(db: sqlite3.Connection, through: int) -> None:
        """Drop the log up to generation ``through``: replicas that far behind reload."""
        db.execute("DELETE FROM reference_change WHERE generation <= ?", (through,))
        db.execute(
            "UPDATE meta SET value = CAST(MAX(CAST(value AS INTEGER), ?) AS TEXT) "
            "WHERE key = 'changes_from'",
            (through,),
        )

    def changes_since(self, generation: int) -> LibraryChanges | None:
        reader = self._reader()
        reader.execute("BEGIN")  # one snapshot for the generation and the log
        try:
            meta = dict(
                reader.execute(
                    "SELECT key, value FROM meta WHERE key IN ('generation', 'changes_from')"
                ).fetchall()
            )
            # Too far behind, or ahead (the database was restored from an older backup).
            if not int(meta["changes_from"]) <= generation <= int(meta["generation"]):
                return None
            log = reader.execute(
                "SELECT op, reference_id FROM reference_change WHERE generation > ? "
                "ORDER BY generation, rowid",
                (generation,),
            ).fetchall()
        finally:
            reader.execute("COMMIT")
        return net_changes(int(meta["generation"]), [(op, int(rid)) for op, rid in log])

    # ------------------------------------------------------------------ derived data

    def stale_count(self, model_version: str) -> int:
        """References embedded by another model or lacking a profile."""
        (count,) = (
            self._reader()
            .execute(f"SELECT COUNT(*) FROM reference WHERE {_STALE}", (model_version,))
            .fetchone()
        )
        return int(count)

    def stale_patterns(self, model_version: str, after: int, limit: int) -> list[tuple[int, bytes]]:
        """(id, stored pattern) of up to ``limit`` stale references after id ``after``."""
        rows = (
            self._reader()
            .execute(
                f"SELECT id, pattern FROM reference WHERE {_STALE} AND id > ? ORDER BY id LIMIT ?",
                (model_version, after, limit),
            )
            .fetchall()
        )
        return [(int(r[0]), bytes(r[1])) for r in rows]

    def update_derived(
        self, model_version: str, rows: Sequence[tuple[int, NDArray[np.float32], bytes]]
    ) -> None:
        """Store recomputed (id, embedding, encoded profile) rows in one transaction."""
        with self.transaction() as db:
            db.executemany(
                "UPDATE reference SET embedding = ?, model_version = ? WHERE id = ?",
                [(vector.tobytes(), model_version, rid) for rid, vector, _ in rows],
            )
            db.executemany(
                "INSERT OR REPLACE INTO reference_profile (reference_id, profile) VALUES (?, ?)",
                [(rid, profile) for rid, _, profile in rows],
            )
            generation = self._bump_generation(db)
            # Every replica reloads its index: embeddings changed in place.
            self._forget_changes(db, generation)

    # ------------------------------------------------------------------ writes

    def insert(
        self,
        items: Sequence[NewReference],
        vectors: Sequence[NDArray[np.float32]],
        profiles: Sequence[bytes],
        model_version: str,
        *,
        skip_existing: bool,
    ) -> tuple[list[ReferenceEntry | None], int | None]:
        """Store references in one transaction (all or nothing): the entries
        (None for one skipped as existing) and the new generation (None when
        nothing was added). A taken (source, source id) raises
        :class:`DuplicateReferenceError` unless ``skip_existing``."""
        now = datetime.now(UTC)
        results: list[ReferenceEntry | None] = []
        with self.transaction() as db:
            for new, vector, profile in zip(items, vectors, profiles, strict=True):
                info = new.info
                row = db.execute(
                    "SELECT id FROM reference WHERE source = ? AND source_id = ?",
                    (info.source, info.source_id),
                ).fetchone()
                if row is not None:
                    if not skip_existing:
                        raise DuplicateReferenceError(info.source, info.source_id, int(row[0]))
                    results.append(None)
                    continue
                elements = tuple(sorted(set(info.elements)))
                cursor = db.execute(
                    "INSERT INTO reference (name, formula, elements, space_group_symbol, "
                    "space_group_number, crystal_system, source, source_id, kind, pattern, "
                    "embedding, model_version, created_at, notes, content_hash, rir, technique) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        info.name.strip(),
                        info.formula,
                        " ".join(elements),
                        info.space_group_symbol,
                        info.space_group_number,
                        info.crystal_system,
                        info.source,
                        info.source_id,
                        str(new.kind),
                        encode_pattern(new.pattern),
                        vector.tobytes(),
                        model_version,
                        now.isoformat(),
                        info.notes,
                        new.content_hash,
                        info.rir,
                        str(new.technique),
                    ),
                )
                rid = int(cursor.lastrowid or 0)
                db.execute(
                    "INSERT INTO reference_profile (reference_id, profile) VALUES (?, ?)",
                    (rid, profile),
                )
                db.executemany(
                    "INSERT INTO reference_element (element, reference_id) VALUES (?, ?)",
                    [(e, rid) for e in elements],
                )
                results.append(
                    ReferenceEntry(
                        id=rid,
                        info=info,
                        kind=new.kind,
                        model_version=model_version,
                        created_at=now,
                        content_hash=new.content_hash,
                        technique=new.technique,
                    )
                )
            added = [("add", r.id) for r in results if r is not None]
            generation = self._bump_generation(db, added) if added else None
        return results, generation

    def delete(self, reference_id: int) -> int:
        """Remove a reference; the new generation. Raises
        :class:`ReferenceNotFoundError` when there is none."""
        reference_id = _stored_id(reference_id)
        with self.transaction() as db:
            cursor = db.execute("DELETE FROM reference WHERE id = ?", (reference_id,))
            if cursor.rowcount == 0:
                raise ReferenceNotFoundError(reference_id)
            return self._bump_generation(db, [("delete", int(reference_id))])

    # ------------------------------------------------------------------ reads for the index

    def indexed_rows(
        self, model_version: str, after: int = 0, limit: int | None = None
    ) -> list[StoredRow]:
        """(id, elements) of the references embedded by ``model_version``
        after id ``after`` (``limit`` of them; all when None), by id."""
        return [
            StoredRow(int(rid), tuple(elements.split()))
            for rid, elements in self._reader().execute(
                "SELECT id, elements FROM reference WHERE model_version = ? AND id > ? "
                "ORDER BY id LIMIT ?",
                (model_version, after, -1 if limit is None else limit),
            )
        ]

    def embeddings(
        self, ids: Sequence[int], dim: int
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """(ids found, their (n, dim) stored embeddings), by id."""
        marks = ",".join("?" * len(ids))
        rows = (
            self._reader()
            .execute(
                f"SELECT id, embedding FROM reference WHERE id IN ({marks}) ORDER BY id", list(ids)
            )
            .fetchall()
        )
        out_ids = np.array([r[0] for r in rows], dtype=np.int64)
        vectors = (
            np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
            if rows
            else np.empty((0, dim), dtype=np.float32)
        )
        if vectors.shape[1] != dim:
            raise InputError(f"stored embeddings have dimension {vectors.shape[1]}, expected {dim}")
        return out_ids, np.ascontiguousarray(vectors, dtype=np.float32)

    def profiles(self, ids: Sequence[int]) -> dict[int, NDArray[np.float32]]:
        """Decoded stored profiles of those of ``ids`` that have one."""
        reader = self._reader()
        out: dict[int, NDArray[np.float32]] = {}
        for chunk in chunks(list(ids)):
            marks = ",".join("?" * len(chunk))
            for rid, blob in reader.execute(
                "SELECT reference_id, profile FROM reference_profile "
                f"WHERE reference_id IN ({marks})",
                list(chunk),
            ):
                out[int(rid)] = decode_profile(bytes(blob))
        return out

    def stick_patterns(self, ids: Sequence[int]) -> dict[int, StickPattern]:
        """Stick patterns of those of ``ids`` that are calculated references."""
        reader = self._reader()
        out: dict[int, StickPattern] = {}
        for chunk in chunks(list(ids)):
            marks = ",".join("?" * len(chunk))
            for rid, blob in reader.execute(
                f"SELECT id, pattern FROM reference WHERE kind = 'calculated' AND id IN ({marks})",
                list(chunk),
            ):
                pattern = decode_pattern(bytes(blob))
                if isinstance(pattern, StickPattern):
                    out[int(rid)] = pattern
        return out

    def names(self, ids: Sequence[int]) -> dict[int, str]:
        """Names of those of ``ids`` that exist (one light query per chunk)."""
        reader = self._reader()
        out: dict[int, str] = {}
        for chunk in chunks(list(ids)):
            marks = ",".join("?" * len(chunk))
            for rid, name in reader.execute(
                f"SELECT id, name FROM reference WHERE id IN ({marks})", list(chunk)
            ):
                out[int(rid)] = name
        return out

    # ------------------------------------------------------------------ export

    def export_rows(self, after: int, limit: int) -> list[tuple[Any, ...]]:
        """Up to ``limit`` references after id ``after``, every stored column
        (:data:`EXPORT_COLUMNS`) and the profile (None if none), for copying a
        library into another backend."""
        return (
            self._reader()
            .execute(
                f"SELECT {EXPORT_COLUMNS}, p.profile FROM reference r "
                "LEFT JOIN reference_profile p ON p.reference_id = r.id "
                "WHERE r.id > ? ORDER BY r.id LIMIT ?",
                (after, limit),
            )
            .fetchall()
        )

    def import_rows(self, rows: Sequence[tuple[Any, ...]]) -> int:
        """Store exported references (:meth:`export_rows`, encoded blobs as
        they are) with their ids, in one transaction; those whose id is
        present already are skipped. The number stored."""
        with self.transaction() as db:
            present = {
                int(r[0])
                for chunk in chunks([int(r[0]) for r in rows])
                for r in db.execute(
                    f"SELECT id FROM reference WHERE id IN ({','.join('?' * len(chunk))})",
                    list(chunk),
                )
            }
            fresh = [r for r in rows if int(r[0]) not in present]
            if not fresh:
                return 0
            db.executemany(
                "INSERT INTO reference (id, name, formula, elements, space_group_symbol, "
                "space_group_number, crystal_system, source, source_id, kind, pattern, "
                "embedding, model_version, created_at, notes, content_hash, rir, technique) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        *r[:13],
                        r[13].isoformat() if isinstance(r[13], datetime) else r[13],
                        *r[14:18],
                    )
                    for r in fresh
                ],
            )
            db.executemany(
                "INSERT INTO reference_profile (reference_id, profile) VALUES (?, ?)",
                [(r[0], r[18]) for r in fresh if r[18] is not None],
            )
            db.executemany(
                "INSERT INTO reference_element (element, reference_id) VALUES (?, ?)",
                [(e, r[0]) for r in fresh for e in str(r[3]).split()],
            )
            self._bump_generation(db, [("add", int(r[0])) for r in fresh])
        return len(fresh)

    def meta(self) -> dict[str, str]:
        return dict(self._reader().execute("SELECT key, value FROM meta").fetchall())

    # ------------------------------------------------------------------ reads

    def count(self) -> int:
        (size,) = self._reader().execute("SELECT COUNT(*) FROM reference").fetchone()
        return int(size)

    def ids(self, model_version: str) -> NDArray[np.int64]:
        return np.array(
            [
                r[0]
                for r in self._reader().execute(
                    "SELECT id FROM reference WHERE model_version = ?", (model_version,)
                )
            ],
            dtype=np.int64,
        )

    def get(self, reference_id: int) -> ReferenceEntry:
        reference_id = _stored_id(reference_id)
        row = (
            self._reader()
            .execute(f"SELECT {ENTRY_COLUMNS} FROM reference WHERE id = ?", (reference_id,))
            .fetchone()
        )
        if row is None:
            raise ReferenceNotFoundError(reference_id)
        return entry_of(row)

    def get_pattern(self, reference_id: int) -> ReferencePattern:
        reference_id = _stored_id(reference_id)
        row = (
            self._reader()
            .execute("SELECT pattern FROM reference WHERE id = ?", (reference_id,))
            .fetchone()
        )
        if row is None:
            raise ReferenceNotFoundError(reference_id)
        return decode_pattern(bytes(row[0]))

    def entries(self, ids: Sequence[int]) -> dict[int, ReferenceEntry]:
        reader = self._reader()
        out: dict[int, ReferenceEntry] = {}
        for chunk in chunks(list(ids)):
            marks = ",".join("?" * len(chunk))
            for row in reader.execute(
                f"SELECT {ENTRY_COLUMNS} FROM reference WHERE id IN ({marks})", list(chunk)
            ):
                entry = entry_of(row)
                out[entry.id] = entry
        return out

    def find(self, source: str, source_id: str) -> ReferenceEntry | None:
        row = (
            self._reader()
            .execute(
                f"SELECT {ENTRY_COLUMNS} FROM reference WHERE source = ? AND source_id = ?",
                (source, source_id),
            )
            .fetchone()
        )
        return None if row is None else entry_of(row)

    def find_content(self, content_hash: str) -> ReferenceEntry | None:
        row = (
            self._reader()
            .execute(
                f"SELECT {ENTRY_COLUMNS} FROM reference WHERE content_hash = ? ORDER BY id LIMIT 1",
                (content_hash,),
            )
            .fetchone()
        )
        return None if row is None else entry_of(row)

    def source_ids(self) -> dict[tuple[str, str], int]:
        return {
            (source, source_id): int(rid)
            for rid, source, source_id in self._reader().execute(
                "SELECT id, source, source_id FROM reference"
            )
        }

    def versions(self, ids: Sequence[int]) -> dict[int, ReferenceVersion]:
        reader = self._reader()
        out: dict[int, ReferenceVersion] = {}
        for chunk in chunks(list(ids)):
            marks = ",".join("?" * len(chunk))
            for row in reader.execute(
                f"SELECT {VERSION_COLUMNS} FROM reference r LEFT JOIN reference_profile p "
                f"ON p.reference_id = r.id WHERE r.id IN ({marks})",
                list(chunk),
            ):
                out[int(row[0])] = version_of(row)
        return out

    def content_hashes(self) -> set[str]:
        return {
            h
            for (h,) in self._reader().execute(
                "SELECT content_hash FROM reference WHERE content_hash IS NOT NULL"
            )
        }

    def page(
        self,
        *,
        after: int = 0,
        limit: int = DEFAULT_PAGE_SIZE,
        name_contains: str | None = None,
        elements: ElementFilter | None = None,
        kind: ReferenceKind | None = None,
    ) -> ReferencePage:
        """References in id order, ``limit`` of them after id ``after``."""
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise InputError(f"limit {limit} is outside 1–{MAX_PAGE_SIZE}")
        after = _cursor(after)
        where: list[str] = []
        params: list[Any] = []
        if name_contains:
            escaped = name_contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where.append("name LIKE ? ESCAPE '\\'")
            params.append(f"%{escaped}%")
        if kind is not None:
            where.append("kind = ?")
            params.append(str(kind))
        if elements is not None and elements.active:
            where.append("elements != ''")
            if elements.all_of:
                marks = ",".join("?" * len(elements.all_of))
                where.append(
                    f"id IN (SELECT reference_id FROM reference_element WHERE element IN ({marks}) "
                    "GROUP BY reference_id HAVING COUNT(*) = ?)"
                )
                params.extend(sorted(elements.all_of))
                params.append(len(elements.all_of))
            if elements.none_of:
                marks = ",".join("?" * len(elements.none_of))
                where.append(
                    f"id NOT IN (SELECT reference_id FROM reference_element WHERE element IN ({marks}))"
                )
                params.extend(sorted(elements.none_of))
            if elements.only_from is not None:
                marks = ",".join("?" * len(elements.only_from))
                where.append(
                    "id NOT IN (SELECT reference_id FROM reference_element "
                    f"WHERE element NOT IN ({marks}))"
                )
                params.extend(sorted(elements.only_from))
        condition = " AND ".join(where) or "1"
        reader = self._reader()
        (total,) = reader.execute(
            f"SELECT COUNT(*) FROM reference WHERE {condition}", params
        ).fetchone()
        rows = reader.execute(
            f"SELECT {ENTRY_COLUMNS} FROM reference WHERE {condition} AND id > ? "
            "ORDER BY id LIMIT ?",
            [*params, after, limit + 1],
        ).fetchall()
        entries = tuple(entry_of(r) for r in rows[:limit])
        next_after = entries[-1].id if len(rows) > limit else None
        return ReferencePage(entries=entries, total=int(total), next_after=next_after)
