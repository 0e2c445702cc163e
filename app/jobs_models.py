"""Request and response models of batch jobs (/jobs) and the audit log (/audit).

A job's per-file ``result`` is exactly what POST /identify answers for that
file (:class:`app.models.IdentifyResponse`), and its ``error`` exactly the
problem POST /identify would have answered.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from app.core.errors import Problem
from app.forms import BinaryFile
from app.models import MAX_ID, IdentifyForm, IdentifyResponse, never_null
from app.store.base import (
    AuditRecord,
    Delivery,
    FileStatus,
    JobFileRecord,
    JobRecord,
    JobStatus,
)

JOB_FILES_HELP = (
    "The scans, one part each (repeat the field): XRD patterns or Raman spectra in any "
    "format /identify reads, each told apart as /identify tells it (or as `technique` "
    "says); or one .zip of them (folders are fine; at most XRDID_JOB_MAX_FILES files)"
)
CALLBACK_HELP = (
    "Called (POST, signed as Standard Webhooks defines) when the job finishes; needs the "
    "server's XRDID_WEBHOOK_SECRET, and its host must be allowed by XRDID_WEBHOOK_ALLOWED_HOSTS"
)


def _time(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


class JobForm(IdentifyForm):
    """POST /jobs: scans (or a zip of them), the /identify options for all of
    them (phases, include and internal_standard too; pictures, ``plot``, are
    for single requests), and optionally a callback URL."""

    files: list[BinaryFile] = Field(description=JOB_FILES_HELP)
    callback_url: str | None = Field(
        default=None,
        json_schema_extra=never_null,
        max_length=2000,
        description=CALLBACK_HELP,
        examples=["https://lims.example.org/xrdid/callback"],
    )

    def identify_options(self) -> dict[str, Any]:
        """The fields /identify takes, as JSON (stored with the job)."""
        return self.model_dump(mode="json", exclude={"files", "callback_url", "sample_id"})


class JobProgress(BaseModel):
    total: int = Field(description="Scans in the job")
    queued: int
    running: int
    succeeded: int
    failed: int = Field(description="Scans whose identification failed (see each one's error)")
    cancelled: int

    @classmethod
    def from_record(cls, job: JobRecord) -> JobProgress:
        counts = job.counts
        return cls(
            total=job.total,
            queued=counts.get(FileStatus.QUEUED, 0),
            running=counts.get(FileStatus.RUNNING, 0),
            succeeded=counts.get(FileStatus.SUCCEEDED, 0),
            failed=counts.get(FileStatus.FAILED, 0),
            cancelled=counts.get(FileStatus.CANCELLED, 0),
        )


class JobFileResult(BaseModel):
    index: int = Field(description="Position in the upload (zip members in archive order)")
    filename: str
    status: FileStatus
    result: IdentifyResponse | None = Field(
        default=None, description="What POST /identify answers for this file"
    )
    error: Problem | None = Field(
        default=None, description="The problem POST /identify would have answered"
    )

    @staticmethod
    def json_of(record: JobFileRecord) -> dict[str, Any]:
        """As JSON, without re-validating the stored result (it was valid when stored)."""
        return {
            "index": record.index,
            "filename": record.filename,
            "status": record.status.value,
            "result": record.result,
            "error": record.error,
        }


class DeliveryAttemptPublic(BaseModel):
    at: datetime
    status_code: int | None = Field(description="The receiver's HTTP status; null: no answer")
    error: str | None = Field(description="Why the attempt failed; null when it was delivered")
    duration_ms: float


class WebhookDeliveryPublic(BaseModel):
    id: str = Field(description="The webhook-id header: the same on every retry")
    event: str = Field(description="job.completed or job.cancelled")
    status: Literal["pending", "delivered", "failed"]
    next_attempt_at: datetime | None
    attempts: list[DeliveryAttemptPublic]

    @classmethod
    def from_delivery(cls, delivery: Delivery) -> WebhookDeliveryPublic:
        return cls(
            id=delivery.id,
            event=delivery.event_type,
            status=delivery.status,
            next_attempt_at=_time(delivery.next_attempt_at),
            attempts=[
                DeliveryAttemptPublic(
                    at=datetime.fromtimestamp(a.at, UTC),
                    status_code=a.status_code,
                    error=a.error,
                    duration_ms=round(a.duration_ms, 3),
                )
                for a in delivery.attempts
            ],
        )


class JobWebhook(BaseModel):
    url: str
    deliveries: list[WebhookDeliveryPublic] = Field(description="The delivery log")


class Job(BaseModel):
    id: str
    status: JobStatus
    sample_id: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    expires_at: datetime | None = Field(
        description="When the job and its results are deleted (set when it finishes)"
    )
    options: dict[str, Any] = Field(description="The /identify options every scan is run with")
    progress: JobProgress
    files: list[JobFileResult] | None = Field(
        default=None, description="Per file, in upload order; left out with results=false"
    )
    webhook: JobWebhook | None = None

    @staticmethod
    def json_of(
        job: JobRecord,
        files: list[JobFileRecord] | None = None,
        deliveries: list[Delivery] | None = None,
    ) -> dict[str, Any]:
        summary = Job(
            id=job.id,
            status=job.status,
            sample_id=job.sample_id,
            created_at=datetime.fromtimestamp(job.created_at, UTC),
            started_at=_time(job.started_at),
            finished_at=_time(job.finished_at),
            expires_at=_time(job.expires_at),
            options=dict(job.options),
            progress=JobProgress.from_record(job),
            webhook=(
                JobWebhook(
                    url=job.callback_url,
                    deliveries=[WebhookDeliveryPublic.from_delivery(d) for d in deliveries or []],
                )
                if job.callback_url
                else None
            ),
        ).model_dump(mode="json")
        summary["files"] = None if files is None else [JobFileResult.json_of(f) for f in files]
        return summary


class AuditEntry(BaseModel):
    id: int
    at: datetime
    action: str = Field(description="reference.create, reference.delete, job.submit or job.cancel")
    target: str = Field(description="The resource written, e.g. /references/12")
    key_id: str | None = Field(description="A short hash of the API key used (never the key)")
    request_id: str | None = Field(description="The request's X-Request-ID (also in the logs)")
    client: str | None = Field(description="The client's address")
    details: dict[str, Any] = Field(description="What changed")

    @classmethod
    def from_record(cls, record: AuditRecord) -> AuditEntry:
        return cls(
            id=record.id,
            at=datetime.fromtimestamp(record.at, UTC),
            action=record.action,
            target=record.target,
            key_id=record.key_id,
            request_id=record.request_id,
            client=record.client,
            details=dict(record.details),
        )


class AuditPage(BaseModel):
    items: list[AuditEntry]
    limit: int
    next_after: int | None = Field(
        description="Pass as 'after' for the next page; null on the last"
    )


class AuditQuery(BaseModel):
    limit: int = Field(default=50, ge=1, le=500, description="Entries per page")
    after: int = Field(
        default=0,
        ge=0,
        le=MAX_ID,  # an id is a SQLite integer: larger cannot be bound (that was a 500)
        description="Entries with ids above this (the previous page's next_after)",
    )
