"""The service store in PostgreSQL (``XRDID_DATABASE_URL``): the job queue,
idempotency keys, the audit log and webhook deliveries shared by every replica.

The same contract and tables as :mod:`app.store.sqlite`, created by this
store's own Alembic migrations (:mod:`app.store.migrations`, version table
``xrdid_service_alembic_version``): the library's schema lives in the
science package and is versioned apart, so either can change without the other.

Concurrency, where SQLite had one writer at a time:
- claims lock the scans they take with ``FOR UPDATE SKIP LOCKED``: workers
  on any replica claim different scans of the same job without waiting;
- every transaction that changes scans locks them before it locks their
  job's row (one order, no deadlock between claims and completions), and a
  completion counts the job's unfinished scans after it holds the job's
  row, so the last of two concurrent completions finishes the job;
- job creation (the queue bound) and audit appends (ids grow in commit
  order, so a reader paging by id misses none) are serialised by advisory locks.
A transaction the server aborts as a deadlock or serialisation failure is retried.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout

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
from app.store.sqlite import abandoned_problem, canonical_json
from xrdid.library.postgres import run_migrations
from xrdid.library.records import LibraryUnavailableError

__all__ = ["PostgresServiceStore", "migrate"]

T = TypeVar("T")
Row = dict[str, Any]
Connection = psycopg.Connection[Row]

# Advisory lock keys (pg_advisory_xact_lock): migrating, the queue bound, the audit order.
_MIGRATION_LOCK = 0x78727376  # "xrsv"
_QUEUE_LOCK = 0x78727371
_AUDIT_LOCK = 0x78727361
_CLAIMABLE = "(f.status = 'queued' OR (f.status = 'running' AND f.lease_expires <= %(now)s))"
_RETRIES = 5
CONNECT_TIMEOUT_S = 3
POOL_TIMEOUT_S = 3.0


def migrate(url: str) -> None:
    """Create or upgrade the service store's tables to the newest migration."""
    run_migrations(url, Path(__file__).with_name("migrations"), advisory_lock=_MIGRATION_LOCK)


class PostgresServiceStore:
    """:class:`app.store.base.ServiceStore` in a PostgreSQL database."""

    def __init__(self, url: str, *, max_connections: int = 8) -> None:
        self._url = url
        # Migrated on first use: a replica started before its database serves
        # 503s for jobs (and its workers retry) until the database is up.
        self._migrated = False
        self._migrate_lock = threading.Lock()
        self._pool: ConnectionPool[Connection] = ConnectionPool(
            url,
            min_size=1,
            max_size=max_connections,
            kwargs={
                "autocommit": True,
                "connect_timeout": CONNECT_TIMEOUT_S,
                "row_factory": dict_row,
            },
            check=ConnectionPool.check_connection,
            timeout=POOL_TIMEOUT_S,
            reconnect_timeout=0,  # keep trying while the database is down
            open=True,
            name="xrdid-service",
        )

    def close(self) -> None:
        self._pool.close()

    def _migrate(self) -> None:
        with self._migrate_lock:
            if self._migrated:
                return
            try:
                migrate(self._url)
            except psycopg.OperationalError:
                raise
            except Exception as exc:  # SQLAlchemy wraps the driver's errors
                if isinstance(exc.__cause__, psycopg.OperationalError):
                    raise exc.__cause__ from exc
                raise
            self._migrated = True

    def _run(self, work: Callable[[Connection], T]) -> T:
        """``work`` in one transaction, retried when the server aborts it for a
        deadlock or a serialisation failure; an unreachable database is a 503."""
        for attempt in range(_RETRIES):
            try:
                self._migrate()
                with self._pool.connection() as db, db.transaction():
                    return work(db)
            except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
                if attempt == _RETRIES - 1:
                    raise
                time.sleep(0.01 * (attempt + 1))
            except (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout) as exc:
                raise LibraryUnavailableError() from exc
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ jobs

    def create_job(
        self, job: NewJob, *, max_queued_files: int, audit: AuditEvent | None = None
    ) -> JobRecord:
        def work(db: Connection) -> JobRecord:
            db.execute("SELECT pg_advisory_xact_lock(%s)", (_QUEUE_LOCK,))
            queued = _queued(db)
            if queued + len(job.files) > max_queued_files:
                raise QueueFullError(queued, max_queued_files, len(job.files))
            db.execute(
                "INSERT INTO job (id, status, created_at, options, sample_id, callback_url, "
                "key_id, request_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    job.id,
                    JobStatus.QUEUED.value,
                    job.created_at,
                    Jsonb(dict(job.options)),
                    job.sample_id,
                    job.callback_url,
                    job.key_id,
                    job.request_id,
                ),
            )
            with db.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO job_file (job_id, idx, filename, status, data) "
                    "VALUES (%s, %s, %s, %s, %s)",
                    [
                        (job.id, i, name, FileStatus.QUEUED.value, data)
                        for i, (name, data) in enumerate(job.files)
                    ],
                )
            if audit is not None:
                _audit(db, audit)
            record = _job(db, job.id)
            assert record is not None
            return record

        return self._run(work)

    def get_job(self, job_id: str, now: float) -> JobRecord | None:
        record = self._run(lambda db: _job(db, job_id))
        if record is None or (record.expires_at is not None and record.expires_at <= now):
            return None
        return record

    def job_files(self, job_id: str) -> list[JobFileRecord]:
        rows = self._run(
            lambda db: db.execute(
                "SELECT idx, filename, status, attempts, result, error FROM job_file "
                "WHERE job_id = %s ORDER BY idx",
                (job_id,),
            ).fetchall()
        )
        return [
            JobFileRecord(
                index=row["idx"],
                filename=row["filename"],
                status=FileStatus(row["status"]),
                attempts=row["attempts"],
                result=row["result"],
                error=row["error"],
            )
            for row in rows
        ]

    def cancel_job(
        self, job_id: str, now: float, *, retention_s: float, audit: AuditEvent | None = None
    ) -> JobRecord | None:
        def work(db: Connection) -> JobRecord | None:
            record = _job(db, job_id)
            if record is None or record.status in FINAL_JOB_STATUSES:
                return record
            db.execute(
                "UPDATE job_file SET status = 'cancelled', data = NULL, lease_owner = NULL "
                "WHERE job_id = %s AND status IN ('queued', 'running')",
                (job_id,),
            )
            status = _locked_job_status(db, job_id)
            if status not in FINAL_JOB_STATUSES:  # a completion may have finished it
                _finish(db, job_id, JobStatus.CANCELLED, now, retention_s)
            if audit is not None:
                _audit(db, audit)
            return _job(db, job_id)

        return self._run(work)

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
        def work(db: Connection) -> ClaimedBatch | None:
            passed: list[str] = []  # jobs whose claimable scans were all exhausted
            while True:
                first = db.execute(
                    "SELECT f.job_id FROM job_file f JOIN job j ON j.id = f.job_id "
                    f"WHERE j.status IN ('queued', 'running') AND {_CLAIMABLE} "
                    "AND NOT (f.job_id = ANY(%(passed)s)) "
                    "ORDER BY j.created_at, j.id, f.idx LIMIT 1 FOR UPDATE OF f SKIP LOCKED",
                    {"now": now, "passed": passed},
                ).fetchone()
                if first is None:
                    return None
                job_id = first["job_id"]
                params = {"now": now, "job": job_id, "max": max_attempts, "limit": limit}
                exhausted = db.execute(
                    "UPDATE job_file SET status = 'failed', data = NULL, lease_owner = NULL, "
                    "error = %(error)s WHERE (job_id, idx) IN (SELECT f.job_id, f.idx "
                    f"FROM job_file f WHERE f.job_id = %(job)s AND {_CLAIMABLE} "
                    "AND f.attempts >= %(max)s FOR UPDATE SKIP LOCKED)",
                    {**params, "error": Jsonb(abandoned_problem(max_attempts))},
                ).rowcount
                files = db.execute(
                    "UPDATE job_file SET status = 'running', attempts = attempts + 1, "
                    "lease_owner = %(owner)s, lease_expires = %(expires)s "
                    "WHERE (job_id, idx) IN (SELECT f.job_id, f.idx FROM job_file f "
                    f"WHERE f.job_id = %(job)s AND {_CLAIMABLE} AND f.attempts < %(max)s "
                    "ORDER BY f.idx LIMIT %(limit)s FOR UPDATE SKIP LOCKED) "
                    "RETURNING idx, filename, data",
                    {**params, "owner": owner, "expires": now + lease_s},
                ).fetchall()
                if not files:
                    if exhausted:
                        _finish_if_done(db, job_id, now, retention_s)
                    passed.append(job_id)
                    continue
                # Only a queued job's row is written here (no completion holds it yet).
                job = (
                    db.execute(
                        "UPDATE job SET status = 'running', started_at = %s "
                        "WHERE id = %s AND status = 'queued' RETURNING options, sample_id",
                        (now, job_id),
                    ).fetchone()
                    or db.execute(
                        "SELECT options, sample_id FROM job WHERE id = %s", (job_id,)
                    ).fetchone()
                )
                assert job is not None
                return ClaimedBatch(
                    job_id=job_id,
                    options=job["options"],
                    sample_id=job["sample_id"],
                    files=[
                        ClaimedFile(f["idx"], f["filename"], bytes(f["data"]))
                        for f in sorted(files, key=lambda f: int(f["idx"]))
                    ],
                )

        return self._run(work)

    def renew_leases(self, owner: str, now: float, lease_s: float) -> int:
        def work(db: Connection) -> int:
            renewed = db.execute(
                "UPDATE job_file SET lease_expires = %s "
                "WHERE lease_owner = %s AND status = 'running'",
                (now + lease_s, owner),
            ).rowcount
            renewed += db.execute(
                "UPDATE delivery SET lease_expires = %s "
                "WHERE lease_owner = %s AND status = 'pending'",
                (now + lease_s, owner),
            ).rowcount
            return int(renewed)

        return self._run(work)

    def release_claims(self, owner: str) -> int:
        def work(db: Connection) -> int:
            released = db.execute(
                "UPDATE job_file SET status = 'queued', attempts = GREATEST(attempts - 1, 0), "
                "lease_owner = NULL, lease_expires = NULL "
                "WHERE lease_owner = %s AND status = 'running'",
                (owner,),
            ).rowcount
            db.execute(
                "UPDATE delivery SET lease_owner = NULL, lease_expires = NULL "
                "WHERE lease_owner = %s",
                (owner,),
            )
            return int(released)

        return self._run(work)

    def release_files(self, owner: str, job_id: str, indices: Sequence[int]) -> int:
        def work(db: Connection) -> int:
            released = db.execute(
                "UPDATE job_file SET status = 'queued', attempts = GREATEST(attempts - 1, 0), "
                "lease_owner = NULL, lease_expires = NULL "
                "WHERE job_id = %s AND idx = ANY(%s) AND lease_owner = %s AND status = 'running'",
                (job_id, list(indices), owner),
            ).rowcount
            return int(released)

        return self._run(work)

    def complete_files(
        self,
        owner: str,
        job_id: str,
        outcomes: Sequence[FileOutcome],
        now: float,
        *,
        retention_s: float,
    ) -> int:
        def work(db: Connection) -> int:
            written = 0
            for outcome in sorted(outcomes, key=lambda o: o.index):
                status = FileStatus.SUCCEEDED if outcome.result is not None else FileStatus.FAILED
                written += db.execute(
                    "UPDATE job_file SET status = %s, result = %s, error = %s, data = NULL, "
                    "lease_owner = NULL, lease_expires = NULL WHERE job_id = %s AND idx = %s "
                    "AND status = 'running' AND lease_owner = %s",
                    (
                        status.value,
                        None if outcome.result is None else Jsonb(dict(outcome.result)),
                        None if outcome.error is None else Jsonb(dict(outcome.error)),
                        job_id,
                        outcome.index,
                        owner,
                    ),
                ).rowcount
            _finish_if_done(db, job_id, now, retention_s)
            return written

        return self._run(work)

    def queued_files(self) -> int:
        return self._run(_queued)

    def purge_expired(self, now: float) -> int:
        def work(db: Connection) -> int:
            jobs = db.execute(
                "DELETE FROM job WHERE expires_at IS NOT NULL AND expires_at <= %s", (now,)
            ).rowcount
            keys = db.execute("DELETE FROM idempotency WHERE expires_at <= %s", (now,)).rowcount
            return int(jobs + keys)

        return self._run(work)

    # ------------------------------------------------------------------ idempotency

    def idempotency_begin(
        self, scope: str, key: str, fingerprint: str, now: float, *, ttl_s: float, lock_s: float
    ) -> IdempotencyBegin:
        def work(db: Connection) -> IdempotencyBegin:
            # The row exists (or is created) first, so concurrent requests queue on its lock.
            db.execute(
                "INSERT INTO idempotency (scope, key, fingerprint, state, created_at, expires_at, "
                "locked_until) VALUES (%s, %s, '', 'new', %s, %s, %s) "
                "ON CONFLICT (scope, key) DO NOTHING",
                (scope, key, now, now, now),
            )
            row = db.execute(
                "SELECT * FROM idempotency WHERE scope = %s AND key = %s FOR UPDATE",
                (scope, key),
            ).fetchone()
            assert row is not None
            if row["state"] != "new" and row["expires_at"] > now:
                if row["fingerprint"] != fingerprint:
                    return IdempotencyBegin("mismatch")
                if row["state"] == "done":
                    return IdempotencyBegin(
                        "replay", StoredResponse(row["status"], row["headers"], bytes(row["body"]))
                    )
                if row["locked_until"] > now:
                    return IdempotencyBegin("in_progress")
            # New, expired, or abandoned by a request that died holding it.
            db.execute(
                "UPDATE idempotency SET fingerprint = %s, state = 'in_progress', created_at = %s, "
                "expires_at = %s, locked_until = %s, status = NULL, headers = NULL, body = NULL "
                "WHERE scope = %s AND key = %s",
                (fingerprint, now, now + ttl_s, now + lock_s, scope, key),
            )
            return IdempotencyBegin("started")

        return self._run(work)

    def idempotency_complete(
        self, scope: str, key: str, response: StoredResponse, now: float
    ) -> None:
        self._run(
            lambda db: db.execute(
                "UPDATE idempotency SET state = 'done', locked_until = NULL, status = %s, "
                "headers = %s, body = %s WHERE scope = %s AND key = %s",
                (response.status, Jsonb(dict(response.headers)), response.body, scope, key),
            )
        )

    def idempotency_release(self, scope: str, key: str) -> None:
        self._run(
            lambda db: db.execute(
                "DELETE FROM idempotency WHERE scope = %s AND key = %s AND state = 'in_progress'",
                (scope, key),
            )
        )

    # ------------------------------------------------------------------ audit

    def audit_append(self, event: AuditEvent) -> int:
        return self._run(lambda db: _audit(db, event))

    def audit_page(self, *, after: int, limit: int) -> list[AuditRecord]:
        rows = self._run(
            lambda db: db.execute(
                "SELECT * FROM audit WHERE id > %s ORDER BY id LIMIT %s", (after, limit)
            ).fetchall()
        )
        return [
            AuditRecord(
                id=row["id"],
                at=row["at"],
                action=row["action"],
                target=row["target"],
                key_id=row["key_id"],
                request_id=row["request_id"],
                client=row["client"],
                details=row["details"],
            )
            for row in rows
        ]

    # ------------------------------------------------------------------ webhooks

    def claim_deliveries(
        self, owner: str, now: float, *, lease_s: float, limit: int
    ) -> list[Delivery]:
        def work(db: Connection) -> list[Delivery]:
            ids = [
                row["id"]
                for row in db.execute(
                    "UPDATE delivery SET lease_owner = %(owner)s, lease_expires = %(expires)s "
                    "WHERE id IN (SELECT id FROM delivery WHERE status = 'pending' "
                    "AND next_attempt_at <= %(now)s "
                    "AND (lease_owner IS NULL OR lease_expires <= %(now)s) "
                    "ORDER BY next_attempt_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED) "
                    "RETURNING id, next_attempt_at",
                    {"owner": owner, "expires": now + lease_s, "now": now, "limit": limit},
                ).fetchall()
            ]
            return sorted(
                (_delivery(db, i) for i in ids), key=lambda d: (d.next_attempt_at or 0.0, d.id)
            )

        return self._run(work)

    def record_attempt(
        self,
        delivery_id: str,
        attempt: DeliveryAttempt,
        *,
        delivered: bool,
        next_attempt_at: float | None,
    ) -> None:
        status = "delivered" if delivered else ("pending" if next_attempt_at else "failed")

        def work(db: Connection) -> None:
            db.execute("SELECT 1 FROM delivery WHERE id = %s FOR UPDATE", (delivery_id,))
            row = db.execute(
                "SELECT COUNT(*) AS n FROM delivery_attempt WHERE delivery_id = %s",
                (delivery_id,),
            ).fetchone()
            assert row is not None
            db.execute(
                "INSERT INTO delivery_attempt (delivery_id, n, at, status_code, error, "
                "duration_ms) VALUES (%s, %s, %s, %s, %s, %s)",
                (
                    delivery_id,
                    row["n"] + 1,
                    attempt.at,
                    attempt.status_code,
                    attempt.error,
                    attempt.duration_ms,
                ),
            )
            db.execute(
                "UPDATE delivery SET status = %s, next_attempt_at = %s, lease_owner = NULL, "
                "lease_expires = NULL WHERE id = %s",
                (status, None if delivered else next_attempt_at, delivery_id),
            )

        self._run(work)

    def deliveries(self, job_id: str) -> list[Delivery]:
        def work(db: Connection) -> list[Delivery]:
            ids = [
                row["id"]
                for row in db.execute(
                    "SELECT id FROM delivery WHERE job_id = %s ORDER BY created_at, id", (job_id,)
                )
            ]
            return [_delivery(db, i) for i in ids]

        return self._run(work)


# ---------------------------------------------------------------------- helpers


def _queued(db: Connection) -> int:
    row = db.execute(
        "SELECT COUNT(*) AS n FROM job_file WHERE status IN ('queued', 'running')"
    ).fetchone()
    return int(row["n"]) if row else 0


def _job(db: Connection, job_id: str) -> JobRecord | None:
    row = db.execute("SELECT * FROM job WHERE id = %s", (job_id,)).fetchone()
    if row is None:
        return None
    counts = {status: 0 for status in FileStatus}
    for count in db.execute(
        "SELECT status, COUNT(*) AS n FROM job_file WHERE job_id = %s GROUP BY status", (job_id,)
    ):
        counts[FileStatus(count["status"])] = int(count["n"])
    return JobRecord(
        id=row["id"],
        status=JobStatus(row["status"]),
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        expires_at=row["expires_at"],
        options=row["options"],
        sample_id=row["sample_id"],
        callback_url=row["callback_url"],
        key_id=row["key_id"],
        counts=counts,
    )


def _locked_job_status(db: Connection, job_id: str) -> JobStatus | None:
    """The job's status, its row locked until the transaction ends."""
    row = db.execute("SELECT status FROM job WHERE id = %s FOR UPDATE", (job_id,)).fetchone()
    return None if row is None else JobStatus(row["status"])


def _finish_if_done(db: Connection, job_id: str, now: float, retention_s: float) -> None:
    # The job's row first: of two completions of its last scans, the second
    # counts after the first commits, and sees nothing left to do.
    status = _locked_job_status(db, job_id)
    if status is None or status in FINAL_JOB_STATUSES:
        return
    todo = db.execute(
        "SELECT COUNT(*) AS n FROM job_file WHERE job_id = %s AND status IN ('queued', 'running')",
        (job_id,),
    ).fetchone()
    if todo is not None and todo["n"] == 0:
        _finish(db, job_id, JobStatus.COMPLETED, now, retention_s)


def _finish(db: Connection, job_id: str, status: JobStatus, now: float, retention_s: float) -> None:
    db.execute(
        "UPDATE job SET status = %s, finished_at = %s, expires_at = %s WHERE id = %s",
        (status.value, now, now + retention_s, job_id),
    )
    record = _job(db, job_id)
    if record is not None and record.callback_url:
        event_type, payload = job_event(record, now)
        db.execute(
            "INSERT INTO delivery (id, job_id, event_type, url, payload, status, created_at, "
            "next_attempt_at) VALUES (%s, %s, %s, %s, %s, 'pending', %s, %s)",
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


def _audit(db: Connection, event: AuditEvent) -> int:
    db.execute("SELECT pg_advisory_xact_lock(%s)", (_AUDIT_LOCK,))
    row = db.execute(
        "INSERT INTO audit (at, action, target, key_id, request_id, client, details) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (
            event.at,
            event.action,
            event.target,
            event.key_id,
            event.request_id,
            event.client,
            Jsonb(dict(event.details)),
        ),
    ).fetchone()
    assert row is not None
    return int(row["id"])


def _delivery(db: Connection, delivery_id: str) -> Delivery:
    row = db.execute("SELECT * FROM delivery WHERE id = %s", (delivery_id,)).fetchone()
    assert row is not None
    attempts = [
        DeliveryAttempt(a["at"], a["status_code"], a["error"], a["duration_ms"])
        for a in db.execute(
            "SELECT * FROM delivery_attempt WHERE delivery_id = %s ORDER BY n", (delivery_id,)
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
