"""PostgreSQL storage of the library: one database shared by stateless replicas.

The same tables as the embedded SQLite library (:mod:`xrdid.library.store`),
created and upgraded by Alembic migrations (:mod:`xrdid.library.migrations`;
replicas starting together take an advisory lock, so one migrates). Driver:
psycopg 3 with its connection pool: synchronous like the rest of the library
(the service runs library calls in worker threads), binary COPY-free bulk
writes through ``unnest`` arrays, LISTEN/NOTIFY, and a pool that checks a
connection before lending it, so the service recovers by itself after a
database restart.

Writes take the generation row's lock first, so they are serialised as in
SQLite: ids and generations grow in commit order, and a replica that has
applied generation g has seen every change up to g. Each write notifies
``xrdid_library`` (delivered at commit) with its generation; replicas listen
(:meth:`PostgresStore.wait_for_change`) and apply the change log.

Each technique's library has its own schema in the database (the same
tables, migrations and change log; :data:`SCHEMAS`): the XRD library the
database's default one, the Raman library ``raman``. A store's connections
search only its schema, so every statement is the same for both.

A database that cannot be reached raises
:class:`~xrdid.library.records.LibraryUnavailableError` (the service answers
503 with Retry-After) instead of a driver error.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from numpy.typing import NDArray
from psycopg_pool import ConnectionPool, PoolTimeout

from xrdid.errors import InputError
from xrdid.library.codecs import decode_pattern, decode_profile, encode_pattern
from xrdid.library.filters import ElementFilter
from xrdid.library.layouts import LibraryLayout
from xrdid.library.records import (
    DatabaseEncodingError,
    DuplicateReferenceError,
    LibraryUnavailableError,
    NewReference,
    ReferenceEntry,
    ReferenceKind,
    ReferenceNotFoundError,
    ReferencePage,
    ReferencePattern,
    ReferenceVersion,
)
from xrdid.library.store import (
    CHANGE_LOG_GENERATIONS,
    DEFAULT_PAGE_SIZE,
    ENTRY_COLUMNS,
    MAX_PAGE_SIZE,
    VERSION_COLUMNS,
    LibraryChanges,
    StoredRow,
    _cursor,
    _stored_id,
    entry_of,
    net_changes,
    version_of,
)
from xrdid.sticks import StickPattern
from xrdid.technique import Technique

__all__ = [
    "NOTIFY_CHANNEL",
    "SCHEMAS",
    "PostgresStore",
    "is_database_url",
    "migrate",
    "run_migrations",
]

logger = logging.getLogger(__name__)

NOTIFY_CHANNEL = "xrdid_library"  # the XRD library's; another technique's adds _<technique>
# Where each technique's library lives: None, the connection's default schema
# (public; where the XRD library has always been).
SCHEMAS: dict[Technique, str | None] = {Technique.XRD: None, Technique.RAMAN: "raman"}
# Held while migrating, so replicas starting together migrate once.
_MIGRATION_LOCK = 0x78726469  # "xrdi"
_PRUNE_EVERY = 1_000
# A request waits this long for a connection before it is told to retry.
POOL_TIMEOUT_S = 3.0
CONNECT_TIMEOUT_S = 3

_STALE = (
    "(model_version <> %s OR NOT EXISTS "
    "(SELECT 1 FROM reference_profile p WHERE p.reference_id = reference.id))"
)


def is_database_url(location: str | Path) -> bool:
    """Whether a library location names a PostgreSQL database (else a SQLite file)."""
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def _described(url: str) -> str:
    """host:port/dbname of a connection URL, without user or password."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    return f"postgresql://{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"


def migrate(url: str, schema: str | None = None) -> None:
    """Create or upgrade the library's tables (in ``schema``; None: the
    default one) to the newest migration."""
    run_migrations(
        url, Path(__file__).with_name("migrations"), advisory_lock=_MIGRATION_LOCK, schema=schema
    )


# Alembic keeps the running migration's context in module globals: two runs
# at once in one process (the library's and the service store's) mix them up.
_ALEMBIC_LOCK = threading.Lock()


def run_migrations(
    url: str, script_location: Path, *, advisory_lock: int, schema: str | None = None
) -> None:
    """Upgrade a database to the newest Alembic migration of ``script_location``,
    one process at a time (the advisory lock) and one thread at a time; with
    ``schema``, in that schema (created if absent, version table included)."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    _require_utf8(url)
    engine = create_engine(
        "postgresql+psycopg://" + url.split("://", 1)[1],
        poolclass=NullPool,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_S},
    )
    try:
        with _ALEMBIC_LOCK, engine.begin() as connection:
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": advisory_lock})
            if schema is not None:
                connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
                connection.execute(text(f'SET search_path TO "{schema}"'))
            config = Config()
            config.set_main_option("script_location", str(script_location))
            config.attributes["connection"] = connection
            config.attributes["version_table_schema"] = schema
            command.upgrade(config, "head")
    finally:
        engine.dispose()


def _require_utf8(url: str) -> None:
    """Refuse a database that does not store text as UTF-8 (the driver reads
    SQL_ASCII text as bytes, which SQLAlchemy's first query already trips on)."""
    with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S, autocommit=True) as connection:
        row = connection.execute("SHOW server_encoding").fetchone()
    value = row[0] if row is not None else ""
    encoding = value.decode() if isinstance(value, bytes) else str(value)
    if encoding != "UTF8":
        raise DatabaseEncodingError(
            f"the database {_described(url)} stores text as {encoding}, not UTF8: create it "
            "again with CREATE DATABASE … ENCODING 'UTF8' TEMPLATE template0 (or a cluster "
            "made by initdb -E UTF8), then copy the libraries into it "
            "(python -m indexer migrate-to-postgres)"
        )


def _unavailable(exc: Exception) -> LibraryUnavailableError:
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    logger.warning("the library's database is unavailable: %s", first_line)
    return LibraryUnavailableError()


class PostgresStore:
    """A library's tables in a PostgreSQL database (:class:`~xrdid.library.store.LibraryStore`):
    those of ``technique``'s library, in its schema (:data:`SCHEMAS`)."""

    def __init__(
        self, url: str, technique: Technique = Technique.XRD, *, max_connections: int = 8
    ) -> None:
        self.url = url
        self.technique = technique
        self.schema = SCHEMAS[technique]
        self._channel = (
            NOTIFY_CHANNEL if technique is Technique.XRD else f"{NOTIFY_CHANNEL}_{technique}"
        )
        self.uuid = ""
        connect: dict[str, Any] = {"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S}
        if self.schema is not None:
            connect["options"] = f"-c search_path={self.schema}"
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=max_connections,
            kwargs=connect,
            check=ConnectionPool.check_connection,
            timeout=POOL_TIMEOUT_S,
            reconnect_timeout=0,  # keep trying while the database is down
            open=False,
            name="xrdid-library",
        )
        self._pool.open(wait=False)
        self._listener: psycopg.Connection[Any] | None = None
        self._listener_lock = threading.Lock()
        self._closed = False

    @property
    def description(self) -> str:
        where = _described(self.url)
        return where if self.schema is None else f"{where} (schema {self.schema})"

    # ------------------------------------------------------------------ connections

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        if self._closed:
            raise InputError(f"the library {self.description} is closed")
        try:
            with self._pool.connection() as connection:
                yield connection
        except (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout) as exc:
            raise _unavailable(exc) from exc

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._connection() as connection:
            return connection.execute(sql, params).fetchall()

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[Any]]:
        """A write transaction, serialised with every other writer by the generation row lock."""
        with self._connection() as connection, connection.transaction():
            connection.execute("SELECT value FROM library_meta WHERE key = 'generation' FOR UPDATE")
            yield connection

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self._listener_lock:
            if self._listener is not None:
                self._listener.close()
                self._listener = None
        self._pool.close()

    # ------------------------------------------------------------------ schema

    def init_schema(self, model_version: str, dim: int, layout: LibraryLayout) -> None:
        """Migrate the tables to the newest schema, check the library holds
        ``layout``'s technique and read the library's uuid."""
        if layout.technique is not self.technique:
            raise InputError(
                f"{self.description} holds the {self.technique.label} library, "
                f"not the {layout.technique.label} one"
            )
        try:
            migrate(self.url, self.schema)
        except psycopg.OperationalError as exc:
            raise _unavailable(exc) from exc
        except Exception as exc:  # SQLAlchemy wraps driver errors
            if isinstance(exc.__cause__, psycopg.OperationalError):
                raise _unavailable(exc.__cause__) from exc
            raise
        initial = {
            "library_uuid": uuid.uuid4().hex,
            "generation": "0",
            "model_version": model_version,
            "dim": str(dim),
            "technique": str(layout.technique),
            "created_at": datetime.now(UTC).isoformat(),
            "changes_from": "0",
        }
        with self._connection() as connection, connection.transaction():
            connection.execute("LOCK TABLE library_meta IN SHARE ROW EXCLUSIVE MODE")
            meta = dict(connection.execute("SELECT key, value FROM library_meta").fetchall())
            if not meta:
                connection.cursor().executemany(
                    "INSERT INTO library_meta (key, value) VALUES (%s, %s)", list(initial.items())
                )
                meta = initial
                if layout.first_id:
                    # The identity continues after the layout's first id.
                    connection.execute(
                        "SELECT setval(pg_get_serial_sequence('reference', 'id'), %s)",
                        (layout.first_id,),
                    )
        if meta["technique"] != str(layout.technique):
            raise InputError(
                f"{self.description} is {Technique(meta['technique']).a_label} library; it "
                f"cannot be opened with {layout.technique.a_label} model"
            )
        self.uuid = meta["library_uuid"]

    def set_model(self, model_version: str, dim: int) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE library_meta SET value = %s WHERE key = 'model_version'", (model_version,)
            )
            db.execute("UPDATE library_meta SET value = %s WHERE key = 'dim'", (str(dim),))

    # ------------------------------------------------------------------ generation

    def generation(self) -> int:
        ((value,),) = self._rows("SELECT value FROM library_meta WHERE key = 'generation'")
        return int(value)

    def _bump_generation(
        self, db: psycopg.Connection[Any], changes: Sequence[tuple[str, int]] = ()
    ) -> int:
        """The next generation, with its (op, reference id) changes logged and announced."""
        row = db.execute(
            "UPDATE library_meta SET value = (value::bigint + 1)::text "
            "WHERE key = 'generation' RETURNING value"
        ).fetchone()
        assert row is not None
        generation = int(row[0])
        if changes:
            db.execute(
                "INSERT INTO reference_change (generation, reference_id, op) "
                "SELECT %s, * FROM unnest(%s::bigint[], %s::text[])",
                (generation, [rid for _, rid in changes], [op for op, _ in changes]),
            )
        if generation % _PRUNE_EVERY == 0:
            self._forget_changes(db, generation - CHANGE_LOG_GENERATIONS)
        db.execute("SELECT pg_notify(%s, %s)", (self._channel, str(generation)))
        return generation

    @staticmethod
    def _forget_changes(db: psycopg.Connection[Any], through: int) -> None:
        db.execute("DELETE FROM reference_change WHERE generation <= %s", (through,))
        db.execute(
            "UPDATE library_meta SET value = GREATEST(value::bigint, %s)::text "
            "WHERE key = 'changes_from'",
            (through,),
        )

    def changes_since(self, generation: int) -> LibraryChanges | None:
        with self._connection() as connection:
            meta = dict(
                connection.execute(
                    "SELECT key, value FROM library_meta "
                    "WHERE key IN ('generation', 'changes_from')"
                ).fetchall()
            )
            current = int(meta["generation"])
            # Too far behind, or ahead (the database was restored from an older backup).
            if not int(meta["changes_from"]) <= generation <= current:
                return None
            # Generations commit in order: every change up to `current` is visible.
            log = connection.execute(
                "SELECT op, reference_id FROM reference_change "
                "WHERE generation > %s AND generation <= %s ORDER BY generation, seq",
                (generation, current),
            ).fetchall()
        return net_changes(current, [(op, int(rid)) for op, rid in log])

    def wait_for_change(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for a write of any replica; True if one was announced."""
        with self._listener_lock:
            listener = self._listener
            if listener is None or listener.closed:
                try:
                    listener = psycopg.connect(
                        self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
                    )
                    listener.execute(f"LISTEN {self._channel}")
                except psycopg.OperationalError as exc:
                    raise _unavailable(exc) from exc
                self._listener = listener
        try:
            return any(True for _ in listener.notifies(timeout=timeout_s, stop_after=1))
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            with self._listener_lock:
                if self._listener is listener:
                    listener.close()
                    self._listener = None
            raise _unavailable(exc) from exc

    # ------------------------------------------------------------------ derived data

    def stale_count(self, model_version: str) -> int:
        ((count,),) = self._rows(f"SELECT COUNT(*) FROM reference WHERE {_STALE}", (model_version,))
        return int(count)

    def stale_patterns(self, model_version: str, after: int, limit: int) -> list[tuple[int, bytes]]:
        rows = self._rows(
            f"SELECT id, pattern FROM reference WHERE {_STALE} AND id > %s ORDER BY id LIMIT %s",
            (model_version, after, limit),
        )
        return [(int(r[0]), bytes(r[1])) for r in rows]

    def update_derived(
        self, model_version: str, rows: Sequence[tuple[int, NDArray[np.float32], bytes]]
    ) -> None:
        ids = [rid for rid, _, _ in rows]
        with self.transaction() as db:
            db.execute(
                "UPDATE reference SET embedding = v.embedding, model_version = %s "
                "FROM unnest(%s::bigint[], %s::bytea[]) AS v(id, embedding) "
                "WHERE reference.id = v.id",
                (model_version, ids, [vector.tobytes() for _, vector, _ in rows]),
            )
            db.execute(
                "INSERT INTO reference_profile (reference_id, profile) "
                "SELECT * FROM unnest(%s::bigint[], %s::bytea[]) "
                "ON CONFLICT (reference_id) DO UPDATE SET profile = EXCLUDED.profile",
                (ids, [profile for _, _, profile in rows]),
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
        """Store references in one transaction (all or nothing); see
        :meth:`xrdid.library.store.SqliteStore.insert`."""
        now = datetime.now(UTC)
        keys = [(new.info.source, new.info.source_id) for new in items]
        with self.transaction() as db:
            taken = {
                (source, source_id): int(rid)
                for source, source_id, rid in db.execute(
                    "SELECT r.source, r.source_id, r.id FROM reference r "
                    "JOIN unnest(%s::text[], %s::text[]) AS k(source, source_id) "
                    "USING (source, source_id)",
                    ([k[0] for k in keys], [k[1] for k in keys]),
                ).fetchall()
            }
            chosen: list[int] = []  # positions of the items to store
            seen: dict[tuple[str, str], int] = {}
            for i, key in enumerate(keys):
                if key in taken or key in seen:
                    if skip_existing:
                        continue
                    if key in taken:
                        raise DuplicateReferenceError(key[0], key[1], taken[key])
                    raise InputError(
                        f"source {key[0]!r} and source id {key[1]!r} appear twice in one "
                        "batch; give each reference its own source id"
                    )
                seen[key] = i
                chosen.append(i)
            results: list[ReferenceEntry | None] = [None] * len(items)
            if not chosen:
                return results, None
            columns: dict[str, list[Any]] = {
                name: []
                for name in (
                    "name formula elements space_group_symbol space_group_number "
                    "crystal_system source source_id kind pattern embedding content_hash rir "
                    "technique"
                ).split()
            }
            for i in chosen:
                new, info = items[i], items[i].info
                values = (
                    info.name.strip(),
                    info.formula,
                    " ".join(sorted(set(info.elements))),
                    info.space_group_symbol,
                    info.space_group_number,
                    info.crystal_system,
                    info.source,
                    info.source_id,
                    str(new.kind),
                    encode_pattern(new.pattern),
                    vectors[i].tobytes(),
                    new.content_hash,
                    info.rir,
                    str(new.technique),
                )
                for column, value in zip(columns.values(), values, strict=True):
                    column.append(value)
            notes = [items[i].info.notes for i in chosen]
            stored = db.execute(
                "INSERT INTO reference (name, formula, elements, space_group_symbol, "
                "space_group_number, crystal_system, source, source_id, kind, pattern, "
                "embedding, content_hash, rir, technique, notes, model_version, created_at) "
                "SELECT *, %s, %s FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], "
                "%s::int[], %s::text[], %s::text[], %s::text[], %s::text[], %s::bytea[], "
                "%s::bytea[], %s::text[], %s::float8[], %s::text[], %s::text[]) "
                "RETURNING id, source, source_id",
                (model_version, now, *columns.values(), notes),
            ).fetchall()
            ids = {(source, source_id): int(rid) for rid, source, source_id in stored}
            new_ids = [ids[keys[i]] for i in chosen]
            db.execute(
                "INSERT INTO reference_profile (reference_id, profile) "
                "SELECT * FROM unnest(%s::bigint[], %s::bytea[])",
                (new_ids, [profiles[i] for i in chosen]),
            )
            pairs = [
                (element, rid)
                for i, rid in zip(chosen, new_ids, strict=True)
                for element in sorted(set(items[i].info.elements))
            ]
            if pairs:
                db.execute(
                    "INSERT INTO reference_element (element, reference_id) "
                    "SELECT * FROM unnest(%s::text[], %s::bigint[])",
                    ([p[0] for p in pairs], [p[1] for p in pairs]),
                )
            generation = self._bump_generation(db, [("add", rid) for rid in new_ids])
        for i, rid in zip(chosen, new_ids, strict=True):
            results[i] = ReferenceEntry(
                id=rid,
                info=items[i].info,
                kind=items[i].kind,
                model_version=model_version,
                created_at=now,
                content_hash=items[i].content_hash,
                technique=items[i].technique,
            )
        return results, generation

    def delete(self, reference_id: int) -> int:
        reference_id = _stored_id(reference_id)
        with self.transaction() as db:
            cursor = db.execute("DELETE FROM reference WHERE id = %s", (reference_id,))
            if cursor.rowcount == 0:
                raise ReferenceNotFoundError(reference_id)
            return self._bump_generation(db, [("delete", reference_id)])

    # ------------------------------------------------------------------ import

    def import_rows(self, rows: Sequence[tuple[Any, ...]]) -> int:
        """Store exported references (:meth:`~xrdid.library.store.SqliteStore.export_rows`)
        with their ids, in one transaction; those whose id is present already
        are skipped (a copy can resume). The number stored."""
        with self.transaction() as db:
            present = {
                int(r[0])
                for r in db.execute(
                    "SELECT id FROM reference WHERE id = ANY(%s)", ([int(r[0]) for r in rows],)
                ).fetchall()
            }
            fresh = [r for r in rows if int(r[0]) not in present]
            if not fresh:
                return 0
            columns = list(zip(*(r[:18] for r in fresh), strict=True))
            created = [
                v if isinstance(v, datetime) else datetime.fromisoformat(v) for v in columns[13]
            ]
            db.execute(
                "INSERT INTO reference (id, name, formula, elements, space_group_symbol, "
                "space_group_number, crystal_system, source, source_id, kind, pattern, "
                "embedding, model_version, created_at, notes, content_hash, rir, technique) "
                "OVERRIDING SYSTEM VALUE SELECT * FROM unnest(%s::bigint[], %s::text[], "
                "%s::text[], %s::text[], %s::text[], %s::int[], %s::text[], %s::text[], "
                "%s::text[], %s::text[], %s::bytea[], %s::bytea[], %s::text[], "
                "%s::timestamptz[], %s::text[], %s::text[], %s::float8[], %s::text[])",
                (*[list(c) for c in columns[:13]], created, *[list(c) for c in columns[14:]]),
            )
            profiled = [(int(r[0]), bytes(r[18])) for r in fresh if r[18] is not None]
            db.execute(
                "INSERT INTO reference_profile (reference_id, profile) "
                "SELECT * FROM unnest(%s::bigint[], %s::bytea[])",
                ([p[0] for p in profiled], [p[1] for p in profiled]),
            )
            pairs = [(e, int(r[0])) for r in fresh for e in str(r[3]).split()]
            db.execute(
                "INSERT INTO reference_element (element, reference_id) "
                "SELECT * FROM unnest(%s::text[], %s::bigint[])",
                ([p[0] for p in pairs], [p[1] for p in pairs]),
            )
            # New references after the copied ones get larger ids.
            db.execute(
                "SELECT setval(pg_get_serial_sequence('reference', 'id'), "
                "(SELECT MAX(id) FROM reference))"
            )
            self._bump_generation(db, [("add", int(r[0])) for r in fresh])
        return len(fresh)

    # ------------------------------------------------------------------ reads for the index

    def indexed_rows(
        self, model_version: str, after: int = 0, limit: int | None = None
    ) -> list[StoredRow]:
        return [
            StoredRow(int(rid), tuple(elements.split()))
            for rid, elements in self._rows(
                "SELECT id, elements FROM reference WHERE model_version = %s AND id > %s "
                "ORDER BY id LIMIT %s",
                (model_version, after, limit),
            )
        ]

    def embeddings(
        self, ids: Sequence[int], dim: int
    ) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        rows = self._rows(
            "SELECT id, embedding FROM reference WHERE id = ANY(%s) ORDER BY id",
            ([int(i) for i in ids],),
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
        return {
            int(rid): decode_profile(bytes(blob))
            for rid, blob in self._rows(
                "SELECT reference_id, profile FROM reference_profile WHERE reference_id = ANY(%s)",
                ([int(i) for i in ids],),
            )
        }

    def stick_patterns(self, ids: Sequence[int]) -> dict[int, StickPattern]:
        out: dict[int, StickPattern] = {}
        for rid, blob in self._rows(
            "SELECT id, pattern FROM reference WHERE kind = 'calculated' AND id = ANY(%s)",
            ([int(i) for i in ids],),
        ):
            pattern = decode_pattern(bytes(blob))
            if isinstance(pattern, StickPattern):
                out[int(rid)] = pattern
        return out

    def names(self, ids: Sequence[int]) -> dict[int, str]:
        return {
            int(rid): name
            for rid, name in self._rows(
                "SELECT id, name FROM reference WHERE id = ANY(%s)", ([int(i) for i in ids],)
            )
        }

    # ------------------------------------------------------------------ reads

    def count(self) -> int:
        ((size,),) = self._rows("SELECT COUNT(*) FROM reference")
        return int(size)

    def ids(self, model_version: str) -> NDArray[np.int64]:
        return np.array(
            [
                r[0]
                for r in self._rows(
                    "SELECT id FROM reference WHERE model_version = %s", (model_version,)
                )
            ],
            dtype=np.int64,
        )

    def get(self, reference_id: int) -> ReferenceEntry:
        reference_id = _stored_id(reference_id)
        rows = self._rows(f"SELECT {ENTRY_COLUMNS} FROM reference WHERE id = %s", (reference_id,))
        if not rows:
            raise ReferenceNotFoundError(reference_id)
        return entry_of(rows[0])

    def get_pattern(self, reference_id: int) -> ReferencePattern:
        reference_id = _stored_id(reference_id)
        rows = self._rows("SELECT pattern FROM reference WHERE id = %s", (reference_id,))
        if not rows:
            raise ReferenceNotFoundError(reference_id)
        return decode_pattern(bytes(rows[0][0]))

    def entries(self, ids: Sequence[int]) -> dict[int, ReferenceEntry]:
        out = {}
        for row in self._rows(
            f"SELECT {ENTRY_COLUMNS} FROM reference WHERE id = ANY(%s)", ([int(i) for i in ids],)
        ):
            entry = entry_of(row)
            out[entry.id] = entry
        return out

    def find(self, source: str, source_id: str) -> ReferenceEntry | None:
        rows = self._rows(
            f"SELECT {ENTRY_COLUMNS} FROM reference WHERE source = %s AND source_id = %s",
            (source, source_id),
        )
        return entry_of(rows[0]) if rows else None

    def find_content(self, content_hash: str) -> ReferenceEntry | None:
        rows = self._rows(
            f"SELECT {ENTRY_COLUMNS} FROM reference WHERE content_hash = %s ORDER BY id LIMIT 1",
            (content_hash,),
        )
        return entry_of(rows[0]) if rows else None

    def source_ids(self) -> dict[tuple[str, str], int]:
        return {
            (source, source_id): int(rid)
            for rid, source, source_id in self._rows("SELECT id, source, source_id FROM reference")
        }

    def versions(self, ids: Sequence[int]) -> dict[int, ReferenceVersion]:
        return {
            int(row[0]): version_of(row)
            for row in self._rows(
                f"SELECT {VERSION_COLUMNS} FROM reference r LEFT JOIN reference_profile p "
                "ON p.reference_id = r.id WHERE r.id = ANY(%s)",
                ([int(i) for i in ids],),
            )
        }

    def content_hashes(self) -> set[str]:
        return {
            h
            for (h,) in self._rows(
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
        after = _cursor(after)  # bigint, as SQLite's integers
        where: list[str] = []
        params: list[Any] = []
        if name_contains:
            escaped = name_contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where.append("name LIKE %s ESCAPE '\\'")
            params.append(f"%{escaped}%")
        if kind is not None:
            where.append("kind = %s")
            params.append(str(kind))
        if elements is not None and elements.active:
            where.append("elements <> ''")
            if elements.all_of:
                where.append(
                    "id IN (SELECT reference_id FROM reference_element WHERE element = ANY(%s) "
                    "GROUP BY reference_id HAVING COUNT(*) = %s)"
                )
                params += [sorted(elements.all_of), len(elements.all_of)]
            if elements.none_of:
                where.append(
                    "id NOT IN (SELECT reference_id FROM reference_element WHERE element = ANY(%s))"
                )
                params.append(sorted(elements.none_of))
            if elements.only_from is not None:
                where.append(
                    "id NOT IN (SELECT reference_id FROM reference_element "
                    "WHERE element <> ALL(%s))"
                )
                params.append(sorted(elements.only_from))
        condition = " AND ".join(where) or "TRUE"
        ((total,),) = self._rows(f"SELECT COUNT(*) FROM reference WHERE {condition}", params)
        rows = self._rows(
            f"SELECT {ENTRY_COLUMNS} FROM reference WHERE {condition} AND id > %s "
            "ORDER BY id LIMIT %s",
            [*params, after, limit + 1],
        )
        entries = tuple(entry_of(r) for r in rows[:limit])
        next_after = entries[-1].id if len(rows) > limit else None
        return ReferencePage(entries=entries, total=int(total), next_after=next_after)
