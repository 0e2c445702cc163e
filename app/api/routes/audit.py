"""GET /audit: who changed what (write keys only)."""

from __future__ import annotations

from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Query

from app.api.deps import BackgroundDep, WriteAccess
from app.core.errors import problem_responses
from app.jobs_models import AuditEntry, AuditPage, AuditQuery

router = APIRouter(prefix="/audit", tags=["audit"], dependencies=[WriteAccess])


@router.get(
    "",
    summary="The audit log",
    responses=problem_responses(401, 403, 422, 503),
)
async def audit_log(query: Annotated[AuditQuery, Query()], background: BackgroundDep) -> AuditPage:
    """Every write, oldest first: references added and deleted, jobs
    submitted and cancelled, with the time, the API key's id (a short hash,
    never the key), the request id, the client's address and what changed.
    Page with ``after``: pass the previous page's ``next_after``."""
    records = await anyio.to_thread.run_sync(
        lambda: background.store.audit_page(after=query.after, limit=query.limit + 1)
    )
    more = len(records) > query.limit
    records = records[: query.limit]
    return AuditPage(
        items=[AuditEntry.from_record(r) for r in records],
        limit=query.limit,
        next_after=records[-1].id if more and records else None,
    )
