"""The service store in one SQLite file (WAL, synchronous=FULL: an
acknowledged write survives a power cut), next to the library by default.

One connection behind a lock: the store's traffic is a few small
transactions per batch of scans, far below what SQLite serialises.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from app.store.base import (
    FINAL_JOB_STATUSES,
    AuditEvent,
    AuditRecord,
    ClaimedBatch,
    ClaimedFile,
    Delivery,
    DeliveryAttempt,
    FileOutcome,
    FileStatus,
    IdempotencyBegin,
    JobFileRecord,
    JobRecord,
    JobStatus,
    NewJob,
    QueueFullError,
    StoredResponse,
    job_event,
)

# Each entry upgrades the schema by one version (PRAGMA user_version).
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE job (
        id TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        created_at REAL NOT NULL,
        started_at REAL,
        finished_at REAL,
        expires_at REAL,
        options TEXT NOT NULL,
        sample_id TEXT,
        callback_url TEXT,
        key_id TEXT,
        request_id TEXT
    );
    CREATE INDEX job_expiry ON job (expires_at) WHERE expires_at IS NOT NULL;
    CREATE TABLE job_file (
        job_id TEXT NOT NULL REFERENCES job (id) ON DELETE CASCADE,
        idx INTEGER NOT NULL,
        filename TEXT NOT NULL,
        status TEXT NOT NULL,
        data BLOB,
        attempts INTEGER NOT NULL DEFAULT 0,
        lease_owner TEXT,
        lease_expires REAL,
        result TEXT,
        error TEXT,
        PRIMARY KEY (job_id, idx)
    );
    CREATE INDEX job_file_todo ON job_file (status, job_id) WHERE status IN ('queued', 'running');
    CREATE TABLE idempotency (
        scope TEXT NOT NULL,
        key TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        state TEXT NOT NULL,
        created_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        locked_until REAL,
        status INTEGER,
        headers TEXT,
        body BLOB,
        PRIMARY KEY (scope, key)
    );
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at REAL NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        key_id TEXT,
        request_id TEXT,
        client TEXT,
        details TEXT NOT NULL
    );
    CREATE TABLE delivery (
        id TEXT PRIMARY KEY,
        job_id TEXT NOT NULL REFERENCES job (id) ON DELETE CASCADE,
        event_type TEXT NOT NULL,
        url TEXT NOT NULL,
        payload BLOB NOT NULL,
        status TEXT NOT NULL,
        created_at REAL NOT NULL,
        next_attempt_at REAL,
        lease_owner TEXT,
        lease_expires REAL
    );
    CREATE INDEX delivery_due ON delivery (status, next_attempt_at);
    CREATE TABLE delivery_attempt (
        delivery_id TEXT NOT NULL REFERENCES delivery (id) ON DELETE CASCADE,
        n INTEGER NOT NULL,
        at REAL NOT NULL,
        status_code INTEGER,
        error TEXT,
        duration_ms REAL NOT NULL,
        PRIMARY KEY (delivery_id, n)
    );
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)

_TODO = (FileStatus.QUEUED.value, FileStatus.RUNNING.value)


class StoreVersionError(RuntimeError):
    pass


def canonical_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


class SqliteServiceStore:
    """:class:`app.store.base.ServiceStore` in a SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            self.path, check_same_thread=False, isolation_level=None, timeout=30.0
        )
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        for pragma in (
            "journal_mode = WAL",
            "synchronous = FULL",
            "foreign_keys = ON",
            "busy_timeout = 30000",
        ):
            self._db.execute(f"PRAGMA {pragma}")
        self._migrate()

    def _migrate(self) -> None:
        with self._transaction() as db:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise StoreVersionError(
                    f"{self.path} has service-store schema {version}; this xrdid knows "
                    f"{SCHEMA_VERSION}: run the newer xrdid, or move the file away"
                )
            for script in MIGRATIONS[version:]:
                for statement in filter(str.strip, script.split(";")):
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------------ jobs

    def create_job(
        self, job: NewJob, *, max_queued_files: int, audit: AuditEvent | None = None
    ) -> JobRecord:
        with self._transaction() as db:
            queued = self._queued(db)
            if queued + len(job.files) > max_queued_files:
                raise QueueFullError(queued, max_queued_files, len(job.files))
            db.execute(
                "INSERT INTO job (id, status, created_at, options, sample_id, callback_url, "
                "key_id, request_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    job.id,
                    JobStatus.QUEUED.value,
                    job.created_at,
                    canonical_json(dict(job.options)),
                    job.sample_id,
                    job.callback_url,
                    job.key_id,
                    job.request_id,
                ),
            )
            db.executemany(
                "INSERT INTO job_file (job_id, idx, filename, status, data) VALUES (?, ?, ?, ?, ?)",
                [
                    (job.id, i, name, FileStatus.QUEUED.value, data)
                    for i, (name, data) in enumerate(job.files)
                ],
            )
            if audit is not None:
                self._audit(db, audit)
            record = self._job(db, job.id)
        assert record is not None
        return record

    def get_job(self, job_id: str, now: float) -> JobRecord | None:
        with self._transaction() as db:
            record = self._job(db, job_id)
        if record is None or (record.expires_at is not None and record.expires_at <= now):
            return None
        return record

    def job_files(self, job_id: str) -> list[JobFileRecord]:
        with self._transaction() as db:
            rows = db.execute(
                "SELECT idx, filename, status, attempts, result, error FROM job_file "
                "WHERE job_id = ? ORDER BY idx",
                (job_id,),
            ).fetchall()
        return [
            JobFileRecord(
                index=row["idx"],
                filename=row["filename"],
                status=FileStatus(row["status"]),
                attempts=row["attempts"],
                result=json.loads(row["result"]) if row["result"] else None,
                error=json.loads(row["error"]) if row["error"] else None,
            )
            for row in rows
        ]

    def cancel_job(
        self, job_id: str, now: float, *, retention_s: float, audit: AuditEvent | None = None
    ) -> JobRecord | None:
        with self._transaction() as db:
            record = self._job(db, job_id)
            if record is None or record.status in FINAL_JOB_STATUSES:
                return record
            db.execute(
                "UPDATE job_file SET status = ?, data = NULL, lease_owner = NULL "
                "WHERE job_id = ? AND status IN (?, ?)",
                (FileStatus.CANCELLED.value, job_id, *_TODO),
            )
            self._finish(db, job_id, JobStatus.CANCELLED, now, retention_s)
            if audit is not None:
                self._audit(db, audit)
            return self._job(db, job_id)

    def claim_files(
        self,
        owner: str,
        now: float,
        *,
        lease_s: float,
        limit: int,
        max_attempts: int,
        retention_s: float,
    ) -> ClaimedBatch | None:
        claimable = "(f.status = 'queued' OR (f.status = 'running' AND f.lease_expires <= :now))"
        with self._transaction() as db:
            while True:
                row = db.execute(
                    "SELECT j.id, j.options, j.sample_id FROM job j JOIN job_file f "
                    f"ON f.job_id = j.id WHERE j.status IN ('queued', 'running') AND {claimable} "
                    "ORDER BY j.created_at, j.id LIMIT 1",
                    {"now": now},
                ).fetchone()
                if row is None:
                    return None
                job_id = row["id"]
                exhausted = db.execute(
                    f"UPDATE job_file AS f SET status = 'failed', data = NULL, lease_owner = NULL, "
                    "error = :error WHERE f.job_id = :job AND f.attempts >= :max AND "
                    f"{claimable}",
                    {
                        "now": now,
                        "job": job_id,
                        "max": max_attempts,
                        "error": canonical_json(abandoned_problem(max_attempts)),
                    },
                ).rowcount
                files = db.execute(
                    f"SELECT idx, filename, data FROM job_file AS f WHERE f.job_id = :job AND "
                    f"{claimable} ORDER BY f.idx LIMIT :limit",
                    {"now": now, "job": job_id, "limit": limit},
                ).fetchall()
                if not files:
                    if exhausted:
                        self._finish_if_done(db, job_id, now, retention_s)
                    continue  # that job had only exhausted scans; look again
                db.executemany(
                    "UPDATE job_file SET status = 'running', attempts = attempts + 1, "
                    "lease_owner = ?, lease_expires = ? WHERE job_id = ? AND idx = ?",
                    [(owner, now + lease_s, job_id, f["idx"]) for f in files],
                )
                db.execute(
                    "UPDATE job SET status = 'running', started_at = COALESCE(started_at, ?) "
                    "WHERE id = ?",
                    (now, job_id),
                )
                return ClaimedBatch(
                    job_id=job_id,
                    options=json.loads(row["options"]),
                    sample_id=row["sample_id"],
                    files=[ClaimedFile(f["idx"], f["filename"], bytes(f["data"])) for f in files],
                )

    def renew_leases(self, owner: str, now: float, lease_s: float) -> int:
        with self._transaction() as db:
            renewed = db.execute(
                "UPDATE job_file SET lease_expires = ? WHERE lease_owner = ? AND status = 'running'",
                (now + lease_s, owner),
            ).rowcount
            renewed += db.execute(
                "UPDATE delivery SET lease_expires = ? WHERE lease_owner = ? AND status = 'pending'",
                (now + lease_s, owner),
            ).rowcount
        return int(renewed)

    def release_claims(self, owner: str) -> int:
        with self._transaction() as db:
            released = db.execute(
                "UPDATE job_file SET status = 'queued', attempts = MAX(attempts - 1, 0), "
                "lease_owner = NULL, lease_expires = NULL "
                "WHERE lease_owner = ? AND status = 'running'",
                (owner,),
            ).rowcount
            db.execute(
                "UPDATE delivery SET lease_owner = NULL, lease_expires = NULL "
                "WHERE lease_owner = ?",
                (owner,),
            )
        return int(released)

    def release_files(self, owner: str, job_id: str, indices: Sequence[int]) -> int:
        with self._transaction() as db:
            released = db.executemany(
                "UPDATE job_file SET status = 'queued', attempts = MAX(attempts - 1, 0), "
                "lease_owner = NULL, lease_expires = NULL "
                "WHERE job_id = ? AND idx = ? AND lease_owner = ? AND status = 'running'",
                [(job_id, index, owner) for index in indices],
            ).rowcount
        return int(released)

    def complete_files(
        self,
        owner: str,
        job_id: str,
        outcomes: Sequence[FileOutcome],
        now: float,
        *,
        retention_s: float,
    ) -> int:
        written = 0
        with self._transaction() as db:
            for outcome in outcomes:
                status = FileStatus.SUCCEEDED if outcome.result is not None else FileStatus.FAILED
                written += db.execute(
                    "UPDATE job_file SET status = ?, result = ?, error = ?, data = NULL, "
                    "lease_owner = NULL, lease_expires = NULL "
                    "WHERE job_id = ? AND idx = ? AND status = 'running' AND lease_owner = ?",
                    (
                        status.value,
                        None if outcome.result is None else canonical_json(outcome.result),
                        None if outcome.error is None else canonical_json(outcome.error),
                        job_id,
                        outcome.index,
                        owner,
                    ),
                ).rowcount
            self._finish_if_done(db, job_id, now, retention_s)
        return written

    def queued_files(self) -> int:
        with self._transaction() as db:
            return self._queued(db)

    def purge_expired(self, now: float) -> int:
        with self._transaction() as db:
            jobs = db.execute(
                "DELETE FROM job WHERE expires_at IS NOT NULL AND expires_at <= ?", (now,)
            ).rowcount
            keys = db.execute("DELETE FROM idempotency WHERE expires_at <= ?", (now,)).rowcount
        return int(jobs + keys)

    def _queued(self, db: sqlite3.Connection) -> int:
        return int(
            db.execute("SELECT COUNT(*) FROM job_file WHERE status IN (?, ?)", _TODO).fetchone()[0]
        )

    def _job(self, db: sqlite3.Connection, job_id: str) -> JobRecord | None:
        row = db.execute("SELECT * FROM job WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            return None
        counts = {status: 0 for status in FileStatus}
        for status, count in db.execute(
            "SELECT status, COUNT(*) FROM job_file WHERE job_id = ? GROUP BY status", (job_id,)
        ):
            counts[FileStatus(status)] = int(count)
        return JobRecord(
            id=row["id"],
            status=JobStatus(row["status"]),
            created_at=row["created_at"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            expires_at=row["expires_at"],
            options=json.loads(row["options"]),
            sample_id=row["sample_id"],
            callback_url=row["callback_url"],
            key_id=row["key_id"],
            counts=counts,
        )

    def _finish_if_done(
        self, db: sqlite3.Connection, job_id: str, now: float, retention_s: float
    ) -> None:
        todo = db.execute(
            "SELECT COUNT(*) FROM job_file WHERE job_id = ? AND status IN (?, ?)", (job_id, *_TODO)
        ).fetchone()[0]
        status = db.execute("SELECT status FROM job WHERE id = ?", (job_id,)).fetchone()
        if todo == 0 and status is not None and status[0] not in FINAL_JOB_STATUSES:
            self._finish(db, job_id, JobStatus.COMPLETED, now, retention_s)

    def _finish(
        self,
        db: sqlite3.Connection,
        job_id: str,
        status: JobStatus,
        now: float,
        retention_s: float,
    ) -> None:
        db.execute(
            "UPDATE job SET status = ?, finished_at = ?, expires_at = ? WHERE id = ?",
            (status.value, now, now + retention_s, job_id),
        )
        record = self._job(db, job_id)
        if record is not None and record.callback_url:
            event_type, payload = job_event(record, now)
            db.execute(
                "INSERT INTO delivery (id, job_id, event_type, url, payload, status, created_at, "
                "next_attempt_at) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)",
                (
                    "msg_" + uuid.uuid4().hex,
                    job_id,
                    event_type,
                    record.callback_url,
                    canonical_json(payload).encode(),
                    now,
                    now,
                ),
            )

    # ------------------------------------------------------------------ idempotency

    def idempotency_begin(
        self, scope: str, key: str, fingerprint: str, now: float, *, ttl_s: float, lock_s: float
    ) -> IdempotencyBegin:
        with self._transaction() as db:
            row = db.execute(
                "SELECT * FROM idempotency WHERE scope = ? AND key = ?", (scope, key)
            ).fetchone()
            if row is not None and row["expires_at"] > now:
                if row["fingerprint"] != fingerprint:
                    return IdempotencyBegin("mismatch")
                if row["state"] == "done":
                    return IdempotencyBegin(
                        "replay",
                        StoredResponse(
                            row["status"], json.loads(row["headers"]), bytes(row["body"])
                        ),
                    )
                if row["locked_until"] > now:
                    return IdempotencyBegin("in_progress")
            # New, expired, or abandoned by a request that died holding it.
            db.execute(
                "INSERT OR REPLACE INTO idempotency (scope, key, fingerprint, state, created_at, "
                "expires_at, locked_until) VALUES (?, ?, ?, 'in_progress', ?, ?, ?)",
                (scope, key, fingerprint, now, now + ttl_s, now + lock_s),
            )
            return IdempotencyBegin("started")

    def idempotency_complete(
        self, scope: str, key: str, response: StoredResponse, now: float
    ) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE idempotency SET state = 'done', locked_until = NULL, status = ?, "
                "headers = ?, body = ? WHERE scope = ? AND key = ?",
                (
                    response.status,
                    canonical_json(dict(response.headers)),
                    response.body,
                    scope,
                    key,
                ),
            )

    def idempotency_release(self, scope: str, key: str) -> None:
        with self._transaction() as db:
            db.execute(
                "DELETE FROM idempotency WHERE scope = ? AND key = ? AND state = 'in_progress'",
                (scope, key),
            )

    # ------------------------------------------------------------------ audit

    def audit_append(self, event: AuditEvent) -> int:
        with self._transaction() as db:
            return self._audit(db, event)

    def _audit(self, db: sqlite3.Connection, event: AuditEvent) -> int:
        cursor = db.execute(
            "INSERT INTO audit (at, action, target, key_id, request_id, client, details) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                event.at,
                event.action,
                event.target,
                event.key_id,
                event.request_id,
                event.client,
                canonical_json(dict(event.details)),
            ),
        )
        return int(cursor.lastrowid or 0)

    def audit_page(self, *, after: int, limit: int) -> list[AuditRecord]:
        with self._transaction() as db:
            rows = db.execute(
                "SELECT * FROM audit WHERE id > ? ORDER BY id LIMIT ?", (after, limit)
            ).fetchall()
        return [
            AuditRecord(
                id=row["id"],
                at=row["at"],
                action=row["action"],
                target=row["target"],
                key_id=row["key_id"],
                request_id=row["request_id"],
                client=row["client"],
                details=json.loads(row["details"]),
            )
            for row in rows
        ]

    # ------------------------------------------------------------------ webhooks

    def claim_deliveries(
        self, owner: str, now: float, *, lease_s: float, limit: int
    ) -> list[Delivery]:
        with self._transaction() as db:
            ids = [
                row[0]
                for row in db.execute(
                    "SELECT id FROM delivery WHERE status = 'pending' AND next_attempt_at <= ? "
                    "AND (lease_owner IS NULL OR lease_expires <= ?) "
                    "ORDER BY next_attempt_at LIMIT ?",
                    (now, now, limit),
                )
            ]
            db.executemany(
                "UPDATE delivery SET lease_owner = ?, lease_expires = ? WHERE id = ?",
                [(owner, now + lease_s, i) for i in ids],
            )
            return [self._delivery(db, i) for i in ids]

    def record_attempt(
        self,
        delivery_id: str,
        attempt: DeliveryAttempt,
        *,
        delivered: bool,
        next_attempt_at: float | None,
    ) -> None:
        status = "delivered" if delivered else ("pending" if next_attempt_at else "failed")
        with self._transaction() as db:
            n = db.execute(
                "SELECT COUNT(*) FROM delivery_attempt WHERE delivery_id = ?", (delivery_id,)
            ).fetchone()[0]
            db.execute(
                "INSERT INTO delivery_attempt (delivery_id, n, at, status_code, error, "
                "duration_ms) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    delivery_id,
                    n + 1,
                    attempt.at,
                    attempt.status_code,
                    attempt.error,
                    attempt.duration_ms,
                ),
            )
            db.execute(
                "UPDATE delivery SET status = ?, next_attempt_at = ?, lease_owner = NULL, "
                "lease_expires = NULL WHERE id = ?",
                (status, None if delivered else next_attempt_at, delivery_id),
            )

    def deliveries(self, job_id: str) -> list[Delivery]:
        with self._transaction() as db:
            ids = [
                row[0]
                for row in db.execute(
                    "SELECT id FROM delivery WHERE job_id = ? ORDER BY created_at", (job_id,)
                )
            ]
            return [self._delivery(db, i) for i in ids]

    def _delivery(self, db: sqlite3.Connection, delivery_id: str) -> Delivery:
        row = db.execute("SELECT * FROM delivery WHERE id = ?", (delivery_id,)).fetchone()
        attempts = [
            DeliveryAttempt(a["at"], a["status_code"], a["error"], a["duration_ms"])
            for a in db.execute(
                "SELECT * FROM delivery_attempt WHERE delivery_id = ? ORDER BY n", (delivery_id,)
            )
        ]
        return Delivery(
            id=row["id"],
            job_id=row["job_id"],
            event_type=row["event_type"],
            url=row["url"],
            payload=bytes(row["payload"]),
            status=row["status"],
            created_at=row["created_at"],
            next_attempt_at=row["next_attempt_at"],
            attempts=attempts,
        )


def abandoned_problem(attempts: int) -> dict[str, Any]:
    """The problem a scan gets when its processing stopped ``attempts`` times
    (the process died on it each time: a scan that crashes the service)."""
    return {
        "type": "urn:xrdid:problem:processing-abandoned",
        "title": "The scan could not be processed",
        "status": 500,
        "detail": (
            f"the service stopped while processing this scan {attempts} times; it was given "
            "up so the rest of the job could finish; please report it with the file"
        ),
    }
