"""Batch jobs: POST /jobs (many scans or a zip), GET /jobs/{id} (status,
progress, per-file results as JSON or CSV), DELETE /jobs/{id} (cancel)."""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, File, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from app.api.deps import (
    OPTIONAL_KEY,
    BackgroundDep,
    JobParts,
    ReadAccess,
    ServiceDep,
    SettingsDep,
)
from app.core.audit import audit_event, request_key_id
from app.core.background import Background
from app.core.config import JOB_MAX_FILES_CEILING, Settings
from app.core.errors import ServiceError, UploadTooLargeError, problem_responses
from app.core.idempotency import IDEMPOTENCY_HEADER, fingerprint, idempotent
from app.core.tracing import request_id
from app.jobs.export import result_rows, to_csv
from app.jobs_models import Job, JobFileResult, JobForm
from app.store.base import FINAL_JOB_STATUSES, FileStatus, JobStatus, NewJob, QueueFullError
from app.webhooks.policy import CallbackRefusedError
from xrdid.readers.archive import ScanFile, is_scan_archive, unpack_scans

router = APIRouter(prefix="/jobs", tags=["jobs"], dependencies=[ReadAccess])

IDEMPOTENCY_HELP = (
    "A unique key (e.g. a UUID) per job: a retry with the same key and the same files "
    "returns the first answer instead of submitting the job again"
)
JobId = Annotated[
    str,
    Path(
        description="The job's id, from POST /jobs",
        pattern="^[0-9a-f]{32}$",
        examples=["5f0c7a4e9b2d4c1fa3e8d6b7c9a01234"],
    ),
]


class JobNotFoundError(ServiceError):
    status, slug, title = 404, "job-not-found", "No such job"


class JobFinishedError(ServiceError):
    status, slug, title = 409, "job-finished", "The job has finished"


class QueueFullProblem(ServiceError):
    status, slug, title = 429, "queue-full", "Too many scans are waiting"


class JobRefusedError(ServiceError):
    status, slug, title = 422, "job-refused", "The job cannot be accepted"


def _not_found(job_id: str, settings: Settings) -> JobNotFoundError:
    return JobNotFoundError(
        f"there is no job {job_id}; finished jobs are kept for "
        f"{settings.job_retention_s / 3600:g} h (XRDID_JOB_RETENTION_S)"
    )


async def _check_callback(url: str, background: Background, settings: Settings) -> None:
    if settings.webhook_secret is None:
        raise JobRefusedError(
            "this server sends no webhooks (the operator sets XRDID_WEBHOOK_SECRET to turn "
            "them on); leave callback_url out and poll GET /jobs/{id}"
        )
    try:
        await background.webhooks.policy.check(url)
    except CallbackRefusedError as exc:
        raise JobRefusedError(str(exc)) from exc


def _expand(uploads: list[ScanFile], settings: Settings) -> list[ScanFile]:
    """The job's scans: uploads as they are, zips of scans unpacked in place;
    the job is refused before it is queued if any scan or their number is
    over the limits of POST /identify and of a job."""
    scans: list[ScanFile] = []
    for name, data in uploads:
        if is_scan_archive(data, name):
            scans.extend(
                unpack_scans(
                    data,
                    name,
                    max_members=settings.job_max_files,
                    max_member_bytes=settings.max_upload_bytes,
                    max_total_bytes=settings.job_max_body_bytes,
                )
            )
        elif not data:  # the schema's minLength: 1, as for POST /identify's file
            raise JobRefusedError(f"{name} is empty; leave it out of the job or send its content")
        elif len(data) > settings.max_upload_bytes:  # as POST /identify refuses it
            raise UploadTooLargeError(
                f"{name} is larger than the limit of {settings.max_upload_bytes} bytes a "
                "scan may have (XRDID_MAX_UPLOAD_BYTES); leave it out of the job"
            )
        else:
            scans.append((name, data))
        if len(scans) > settings.job_max_files:
            raise JobRefusedError(
                f"the job holds more than {settings.job_max_files} files "
                "(XRDID_JOB_MAX_FILES); split it into several jobs"
            )
    return scans


def _wants_csv(accept: str | None) -> bool:
    """Whether the Accept header prefers text/csv over JSON."""
    if not accept:
        return False
    weights: dict[str, float] = {}
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        quality = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    quality = float(param[2:])
                except ValueError:
                    quality = 0.0
        weights[media.lower()] = max(weights.get(media.lower(), 0.0), quality)
    csv_q = weights.get("text/csv", 0.0)
    json_q = max(weights.get("application/json", 0.0), weights.get("*/*", 0.0) - 0.001)
    return csv_q > 0 and csv_q >= json_q


@router.post(
    "",
    status_code=202,
    response_model=Job,
    summary="Submit a batch of scans",
    response_description="The job, queued; poll the URL in Location",
    responses={
        **problem_responses(400, 401, 403, 408, 409, 413, 422, 429, 503),
        202: {"headers": {"Location": {"description": "/jobs/{id}", "schema": {"type": "string"}}}},
    },
    dependencies=[JobParts],
    # Many file parts; XRDID_JOB_MAX_FILES (at most this) is checked once they are read.
    form_limits={"max_files": JOB_MAX_FILES_CEILING},
    openapi_extra=OPTIONAL_KEY,
)
async def submit_job(
    form: Annotated[JobForm, File()],
    request: Request,
    service: ServiceDep,
    settings: SettingsDep,
    background: BackgroundDep,
    idempotency_key: Annotated[
        str | None, Header(alias=IDEMPOTENCY_HEADER, description=IDEMPOTENCY_HELP)
    ] = None,
) -> Response:
    """Queue many scans (or one zip of them) for identification with the same
    options as POST /identify; answers 202 at once with the job's id.

    Each scan is read as POST /identify reads it, an XRD pattern or a Raman
    spectrum (``technique``, ``laser_wavelength_nm``), and answered as
    /identify answers it; a job may mix both. Scans are identified in
    batches (one forward pass of each technique's model for many scans),
    each result stored as it comes: GET /jobs/{id} shows the progress and
    the results so far. When the queue is full: 429 with Retry-After. The
    job, and its results, are kept for XRDID_JOB_RETENTION_S after it
    finishes; it survives restarts of the service.
    """
    if form.callback_url:
        await _check_callback(form.callback_url, background, settings)
    uploads = [(f.filename or f"file-{i}", await f.read()) for i, f in enumerate(form.files)]
    fields: dict[str, Any] = {
        **form.identify_options(),
        "sample_id": form.sample_id,
        "callback_url": form.callback_url,
    }
    request_fingerprint = fingerprint(
        "POST", "/jobs", fields, [("files", name, data) for name, data in uploads]
    )
    store = background.store
    async with idempotent(request, idempotency_key, store, settings, request_fingerprint) as hold:
        if hold.replay is not None:
            return hold.replay
        scans = await service.run_cpu(_expand, uploads, settings)
        job_id = uuid.uuid4().hex
        options = form.identify_options()
        new = NewJob(
            id=job_id,
            created_at=time.time(),
            options=options,
            files=scans,
            sample_id=form.sample_id,
            callback_url=form.callback_url,
            key_id=request_key_id(request),
            request_id=request_id(),
        )
        audit = audit_event(
            request,
            "job.submit",
            f"/jobs/{job_id}",
            {"files": len(scans), "options": options, "callback_url": form.callback_url},
        )
        try:
            record = await anyio.to_thread.run_sync(
                lambda: store.create_job(
                    new, max_queued_files=settings.job_queue_max_files, audit=audit
                )
            )
        except QueueFullError as exc:
            retry = background.jobs.retry_after_s(exc.queued, exc.wanted, exc.limit)
            raise QueueFullProblem(
                f"{exc.queued} scans are waiting and this job adds {exc.wanted}; the queue "
                f"holds {exc.limit} (XRDID_JOB_QUEUE_MAX_FILES); retry in about {retry} s"
                + (" or split the job" if exc.wanted > exc.limit else ""),
                headers={"Retry-After": str(retry)},
            ) from exc
        background.jobs.wake()
        response = JSONResponse(
            Job.json_of(record), status_code=202, headers={"Location": f"/jobs/{job_id}"}
        )
        return hold.keep(response)


@router.get(
    "/{job_id}",
    response_model=Job,
    summary="A job's status, progress and results",
    openapi_extra=OPTIONAL_KEY,
    responses={
        **problem_responses(401, 403, 404, 422, 503),
        200: {
            "description": "The job (JSON), or its results as CSV with Accept: text/csv",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        },
    },
)
async def get_job(
    job_id: JobId,
    request: Request,
    settings: SettingsDep,
    background: BackgroundDep,
    results: Annotated[
        bool, Query(description="Include each file's result (false: status and progress only)")
    ] = True,
) -> Response:
    """The job: status (queued, running, completed, cancelled), progress,
    each file's result (what POST /identify answers for it) or error, and
    the webhook delivery log. With ``Accept: text/csv``: one row per file
    and candidate (with the file's technique, verdict, phases and, for a
    Raman spectrum, its likely elements)."""
    store = background.store
    job = await anyio.to_thread.run_sync(store.get_job, job_id, time.time())
    if job is None:
        raise _not_found(job_id, settings)
    wants_csv = _wants_csv(request.headers.get("accept"))
    files = (
        await anyio.to_thread.run_sync(store.job_files, job_id) if results or wants_csv else None
    )
    if wants_csv:
        assert files is not None
        rows = result_rows(JobFileResult.json_of(f) for f in files)
        return Response(
            to_csv(rows),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="job-{job_id}.csv"'},
        )
    deliveries = (
        await anyio.to_thread.run_sync(store.deliveries, job_id) if job.callback_url else None
    )
    return JSONResponse(Job.json_of(job, files, deliveries))


@router.delete(
    "/{job_id}",
    response_model=Job,
    summary="Cancel a job",
    openapi_extra=OPTIONAL_KEY,
    responses=problem_responses(401, 403, 404, 409, 422, 503),
)
async def cancel_job(
    job_id: JobId, request: Request, settings: SettingsDep, background: BackgroundDep
) -> Response:
    """Stop a queued or running job: scans not yet identified are cancelled,
    results already computed are kept. Cancelling a cancelled job changes
    nothing; a completed job cannot be cancelled (409)."""
    store = background.store
    job = await anyio.to_thread.run_sync(store.get_job, job_id, time.time())
    if job is None:
        raise _not_found(job_id, settings)
    if job.status is JobStatus.COMPLETED:
        raise JobFinishedError(
            f"job {job_id} completed; there is nothing left to cancel (its results are kept "
            "until expires_at)"
        )
    if job.status not in FINAL_JOB_STATUSES:
        pending = job.counts.get(FileStatus.QUEUED, 0) + job.counts.get(FileStatus.RUNNING, 0)
        audit = audit_event(request, "job.cancel", f"/jobs/{job_id}", {"cancelled_files": pending})
        cancelled = await anyio.to_thread.run_sync(
            lambda: store.cancel_job(
                job_id, time.time(), retention_s=settings.job_retention_s, audit=audit
            )
        )
        job = cancelled or job
    return JSONResponse(Job.json_of(job, None, None))
