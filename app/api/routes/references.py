"""The reference library: add (POST), list, read and delete references."""

from __future__ import annotations

from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, File, Header, Path, Query, Request, Response, status
from fastapi.responses import JSONResponse

from app.api.deps import (
    OPTIONAL_KEY,
    BackgroundDep,
    ReadAccess,
    ServiceDep,
    SettingsDep,
    SingleParts,
    WriteAccess,
    get_embedder,
    get_library,
    get_raman,
    library_for,
    library_of_id,
)
from app.api.uploads import read_upload
from app.core.audit import audit_event
from app.core.errors import problem_responses
from app.core.idempotency import IDEMPOTENCY_HEADER, fingerprint, idempotent
from app.core.state import ServiceState
from app.core.writes import until_disconnected
from app.forms import ReferenceUpload
from app.models import (
    MAX_ID,
    ReferenceCreated,
    ReferenceDetail,
    ReferenceList,
    ReferencePublic,
    ReferenceQuery,
    pattern_public,
)
from xrdid.library import DuplicateReferenceError, Library, PatternEmbedder
from xrdid.references import embed_references, source_key
from xrdid.technique import Technique

router = APIRouter(prefix="/references", tags=["references"])

# Ids are SQLite integers (1 … 2^63−1); anything else is refused at the edge.
ReferenceId = Annotated[
    int, Path(ge=1, le=MAX_ID, description="The reference's id (1 … 2^63−1)", examples=[1])
]

IDEMPOTENCY_HELP = (
    "A unique key (e.g. a UUID) per reference: a retry with the same key and the same file "
    "returns the first answer instead of adding the reference again"
)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ReferenceCreated,
    summary="Add a reference",
    dependencies=[WriteAccess, SingleParts],
    response_description="The stored reference; found by the next /identify",
    responses=problem_responses(400, 401, 403, 408, 409, 413, 415, 422, 503),
)
async def create_reference(
    form: Annotated[ReferenceUpload, File()],
    request: Request,
    service: ServiceDep,
    settings: SettingsDep,
    background: BackgroundDep,
    idempotency_key: Annotated[
        str | None, Header(alias=IDEMPOTENCY_HEADER, description=IDEMPOTENCY_HELP)
    ] = None,
) -> Response:
    """Add a structure or a measured pattern to the library, or a Raman
    spectrum to the Raman library (told from the file, or by ``technique``).

    The reference is stored durably before the response is sent, and the very
    next identification searches it. (source, source_id) is unique: adding the
    same file twice (same default source id) gives 409. With an
    Idempotency-Key, a retry of the same request gets the first answer.

    The file is read and simulated in a worker process within the server's
    budgets (time, memory, simulation size: 413 past them); an upload whose
    client disconnects is abandoned and never stored.
    """
    data = await read_upload(form.file, settings)
    fields = form.model_dump(mode="json", exclude={"file"})
    request_fingerprint = fingerprint(
        "POST", "/references", fields, [("file", form.file.filename, data)]
    )
    async with idempotent(
        request, idempotency_key, background.store, settings, request_fingerprint
    ) as hold:
        if hold.replay is not None:
            return hold.replay
        source, source_id = source_key(data, form.source, form.source_id)
        for library in _libraries(service, form.technique):
            existing = await anyio.to_thread.run_sync(library.find, source, source_id)
            if existing is not None:  # answer before simulating anything
                raise DuplicateReferenceError(source, source_id, existing.id)
        options = form.prepare_options() | {
            "source": source,
            "source_id": source_id,
            "max_bytes": settings.max_upload_bytes,
            "simulation_limits": settings.simulation_limits,
        }
        prepared = await service.writes.prepare(request, data, form.file.filename, options)
        embedder: PatternEmbedder
        if prepared.technique is Technique.RAMAN:
            raman = get_raman(service)
            library, embedder = raman.library, raman.embedder
        else:
            library, embedder = get_library(service), get_embedder(service)
        (new,) = await until_disconnected(
            request, lambda: service.run_write_embedding(embed_references, [prepared], embedder)
        )
        entry = await anyio.to_thread.run_sync(library.add, new)
        created = ReferenceCreated(
            **ReferencePublic.fields_from(entry), warnings=list(prepared.warnings)
        )
        audit = audit_event(
            request,
            "reference.create",
            f"/references/{entry.id}",
            {"name": created.name, "source": source, "source_id": source_id, "kind": created.kind},
        )
        await anyio.to_thread.run_sync(background.store.audit_append, audit)
        response = JSONResponse(
            created.model_dump(mode="json"),
            status_code=status.HTTP_201_CREATED,
            headers={"Location": f"/references/{entry.id}"},
        )
        return hold.keep(response)


@router.get(
    "",
    summary="List references",
    dependencies=[ReadAccess],
    openapi_extra=OPTIONAL_KEY,
    responses=problem_responses(401, 403, 422, 503),
)
async def list_references(
    query: Annotated[ReferenceQuery, Query()], service: ServiceDep
) -> ReferenceList:
    """References of one library (``technique``: XRD unless asked for Raman)
    in id order, filtered by name substring, kind and elements. Page with
    ``after``: pass the previous page's ``next_after``."""
    library = library_for(service, query.technique)
    page = await anyio.to_thread.run_sync(
        lambda: library.page(
            after=query.after,
            limit=query.limit,
            name_contains=query.name,
            elements=query.element_filter(),
            kind=query.kind,
        )
    )
    return ReferenceList.from_page(page, query.limit, library.status().version)


@router.get(
    "/{reference_id}",
    summary="Read a reference and its pattern",
    dependencies=[ReadAccess],
    openapi_extra=OPTIONAL_KEY,
    responses=problem_responses(401, 403, 404, 422, 503),
)
async def get_reference(
    reference_id: ReferenceId,
    service: ServiceDep,
    pattern: Annotated[bool, Query(description="Include the pattern arrays")] = True,
) -> ReferenceDetail:
    """Metadata, and the pattern: sticks (d, 2θ at Cu Kα1, relative
    intensity, hkl) for a calculated reference, the profile for a measured
    one, the spectrum for a Raman one."""
    library = library_of_id(service, reference_id)
    entry = await anyio.to_thread.run_sync(library.get, reference_id)
    detail = ReferenceDetail(**ReferencePublic.fields_from(entry))
    if pattern:
        stored = await anyio.to_thread.run_sync(library.get_pattern, reference_id)
        detail.pattern = pattern_public(stored)
    return detail


@router.delete(
    "/{reference_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a reference",
    dependencies=[WriteAccess],
    responses=problem_responses(401, 403, 404, 422, 503),
)
async def delete_reference(
    reference_id: ReferenceId, request: Request, service: ServiceDep, background: BackgroundDep
) -> Response:
    """Remove the reference from the database and the search index."""
    library = library_of_id(service, reference_id)
    entry = await anyio.to_thread.run_sync(library.get, reference_id)
    await anyio.to_thread.run_sync(library.delete, reference_id)
    info = entry.info
    audit = audit_event(
        request,
        "reference.delete",
        f"/references/{reference_id}",
        {"name": info.name, "source": info.source, "source_id": info.source_id},
    )
    await anyio.to_thread.run_sync(background.store.audit_append, audit)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _libraries(service: ServiceState, technique: str) -> list[Library]:
    """The libraries a request concerns, in id order: the one ``technique``
    names, or (auto) the XRD library and the Raman one when loaded."""
    if technique != "auto":
        return [library_for(service, Technique(technique))]
    raman = service.raman
    return [get_library(service)] + ([raman.library] if raman is not None else [])
