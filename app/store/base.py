"""The service's durable state apart from the library: batch jobs and their
scans, idempotency keys, the audit log and webhook deliveries.

:class:`ServiceStore` is the contract a backend fills (SQLite now,
:mod:`app.store.sqlite`; another database later). Every method is one
transaction and blocking (the app calls them from worker threads); times
are Unix seconds passed in by the caller, so a backend never reads a clock
and tests control time. ``tests/test_store.py`` is the contract's test
suite, parametrised over backends.

Jobs
----
A job's scans are claimed in batches with a lease (``claim_files``): the
claim marks them running for one owner until ``lease_expires``; the owner
renews it while it works (``renew_leases``) and writes each scan's outcome
with ``complete_files``, which only succeeds while the owner still holds
the claim. A claim that lapses (the process was killed) is claimed again,
at most ``max_attempts`` times in all; so every scan gets exactly one
outcome. When a job's last scan is done (or the job is cancelled) the same
transaction queues its webhook event (an outbox), so a crash between the two
cannot lose the callback.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

__all__ = [
    "AuditEvent",
    "AuditRecord",
    "ClaimedBatch",
    "ClaimedFile",
    "Delivery",
    "DeliveryAttempt",
    "FileOutcome",
    "FileStatus",
    "IdempotencyBegin",
    "JobFileRecord",
    "JobRecord",
    "JobStatus",
    "NewJob",
    "QueueFullError",
    "ServiceStore",
    "StoredResponse",
    "job_event",
]


class JobStatus(enum.StrEnum):
    QUEUED = "queued"  # no scan started
    RUNNING = "running"  # some scans done or being computed, some waiting
    COMPLETED = "completed"  # every scan has its result or its error
    CANCELLED = "cancelled"  # stopped by DELETE; finished scans keep their results


class FileStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINAL_JOB_STATUSES = (JobStatus.COMPLETED, JobStatus.CANCELLED)


class QueueFullError(Exception):
    """The queue holds too many waiting scans to take this job now."""

    def __init__(self, queued: int, limit: int, wanted: int) -> None:
        super().__init__(f"{queued} scans are waiting (limit {limit}); this job adds {wanted}")
        self.queued, self.limit, self.wanted = queued, limit, wanted


@dataclass(frozen=True)
class AuditEvent:
    """One write, as the audit log keeps it (never the API key itself)."""

    at: float
    action: str  # "reference.create", "reference.delete", "job.submit", "job.cancel"
    target: str  # the resource's path, e.g. "/references/12"
    key_id: str | None  # a short hash of the API key
    request_id: str | None
    client: str | None  # the client's address
    details: Mapping[str, Any] = field(default_factory=dict)  # what changed


@dataclass(frozen=True)
class AuditRecord(AuditEvent):
    id: int = 0


@dataclass(frozen=True)
class NewJob:
    id: str
    created_at: float
    options: Mapping[str, Any]  # the /identify form fields, as JSON
    files: Sequence[tuple[str, bytes]]  # (filename, content), in order
    sample_id: str | None = None
    callback_url: str | None = None
    key_id: str | None = None
    request_id: str | None = None


@dataclass(frozen=True)
class JobRecord:
    id: str
    status: JobStatus
    created_at: float
    started_at: float | None
    finished_at: float | None
    expires_at: float | None  # set when it finishes: created + retention
    options: Mapping[str, Any]
    sample_id: str | None
    callback_url: str | None
    key_id: str | None
    counts: Mapping[FileStatus, int]  # scans by status

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class JobFileRecord:
    index: int
    filename: str
    status: FileStatus
    attempts: int
    result: Mapping[str, Any] | None  # the /identify response, as JSON
    error: Mapping[str, Any] | None  # the problem /identify would have answered


@dataclass(frozen=True)
class ClaimedFile:
    index: int
    filename: str
    data: bytes


@dataclass(frozen=True)
class ClaimedBatch:
    job_id: str
    options: Mapping[str, Any]
    sample_id: str | None
    files: Sequence[ClaimedFile]


@dataclass(frozen=True)
class FileOutcome:
    """A computed scan's result or error; or ``retry``: neither, the scan
    could not be computed now (the library was unreachable) and goes back
    to the queue (:meth:`ServiceStore.release_files`)."""

    index: int
    result: Mapping[str, Any] | None = None
    error: Mapping[str, Any] | None = None
    retry: bool = False

    def __post_init__(self) -> None:
        if self.retry:
            if self.result is not None or self.error is not None:
                raise ValueError("an outcome to retry has no result and no error")
        elif (self.result is None) == (self.error is None):
            raise ValueError("an outcome is a result or an error")


@dataclass(frozen=True)
class StoredResponse:
    """A response kept for replay under an Idempotency-Key."""

    status: int
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class IdempotencyBegin:
    """What ``idempotency_begin`` found for a key.

    started: the caller owns the key and must complete or release it;
    replay: the first request finished, here is its response;
    mismatch: the key was used for a different request;
    in_progress: the first request is still being processed.
    """

    outcome: Literal["started", "replay", "mismatch", "in_progress"]
    response: StoredResponse | None = None


@dataclass(frozen=True)
class DeliveryAttempt:
    at: float
    status_code: int | None
    error: str | None
    duration_ms: float


@dataclass(frozen=True)
class Delivery:
    """A webhook message: one event to one URL, retried until delivered."""

    id: str  # the webhook-id: the same on every retry
    job_id: str
    event_type: str
    url: str
    payload: bytes
    status: Literal["pending", "delivered", "failed"]
    created_at: float
    next_attempt_at: float | None
    attempts: Sequence[DeliveryAttempt]


def job_event(job: JobRecord, at: float) -> tuple[str, dict[str, Any]]:
    """The webhook event of a finished job (Standard Webhooks' type/timestamp/data
    envelope): counts and links, not the results (small payloads; GET them)."""
    from datetime import UTC, datetime

    event_type = f"job.{job.status.value}"
    return event_type, {
        "type": event_type,
        "timestamp": datetime.fromtimestamp(at, UTC).isoformat(),
        "data": {
            "job_id": job.id,
            "status": job.status.value,
            "sample_id": job.sample_id,
            "total": job.total,
            "succeeded": job.counts.get(FileStatus.SUCCEEDED, 0),
            "failed": job.counts.get(FileStatus.FAILED, 0),
            "cancelled": job.counts.get(FileStatus.CANCELLED, 0),
            "url": f"/jobs/{job.id}",
        },
    }


class ServiceStore(Protocol):
    """Durable service state; every method is one transaction."""

    # ---- jobs
    def create_job(
        self, job: NewJob, *, max_queued_files: int, audit: AuditEvent | None = None
    ) -> JobRecord:
        """Store a job and its scans (queued); QueueFullError when the scans
        waiting would exceed ``max_queued_files``."""
        ...

    def get_job(self, job_id: str, now: float) -> JobRecord | None:
        """The job; None when there is none or it has expired."""
        ...

    def job_files(self, job_id: str) -> list[JobFileRecord]: ...

    def cancel_job(
        self, job_id: str, now: float, *, retention_s: float, audit: AuditEvent | None = None
    ) -> JobRecord | None:
        """Cancel the job's unfinished scans (a finished job is returned as it is)."""
        ...

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
        """Claim up to ``limit`` scans of the oldest job with scans to do
        (waiting, or claimed by an owner whose lease lapsed); a scan claimed
        ``max_attempts`` times already is failed instead."""
        ...

    def renew_leases(self, owner: str, now: float, lease_s: float) -> int: ...

    def release_claims(self, owner: str) -> int:
        """Give the owner's claimed scans back to the queue (a clean shutdown:
        the attempt does not count)."""
        ...

    def release_files(self, owner: str, job_id: str, indices: Sequence[int]) -> int:
        """Give these scans the owner holds back to the queue without counting
        the attempt (they could not be computed now: the library was unreachable)."""
        ...

    def complete_files(
        self,
        owner: str,
        job_id: str,
        outcomes: Sequence[FileOutcome],
        now: float,
        *,
        retention_s: float,
    ) -> int:
        """Write outcomes of scans the owner still holds; returns how many were written."""
        ...

    def queued_files(self) -> int:
        """Scans waiting or being computed, over all jobs."""
        ...

    def purge_expired(self, now: float) -> int:
        """Delete finished jobs past their retention and expired idempotency keys."""
        ...

    # ---- idempotency
    def idempotency_begin(
        self, scope: str, key: str, fingerprint: str, now: float, *, ttl_s: float, lock_s: float
    ) -> IdempotencyBegin: ...

    def idempotency_complete(
        self, scope: str, key: str, response: StoredResponse, now: float
    ) -> None: ...

    def idempotency_release(self, scope: str, key: str) -> None: ...

    # ---- audit
    def audit_append(self, event: AuditEvent) -> int: ...

    def audit_page(self, *, after: int, limit: int) -> list[AuditRecord]: ...

    # ---- webhooks
    def claim_deliveries(
        self, owner: str, now: float, *, lease_s: float, limit: int
    ) -> list[Delivery]:
        """Pending deliveries due now, claimed for ``lease_s``."""
        ...

    def record_attempt(
        self,
        delivery_id: str,
        attempt: DeliveryAttempt,
        *,
        delivered: bool,
        next_attempt_at: float | None,
    ) -> None:
        """Log an attempt: delivered, retry at ``next_attempt_at``, or (None) failed for good."""
        ...

    def deliveries(self, job_id: str) -> list[Delivery]: ...

    def close(self) -> None: ...
