"""GET /health (the process answers) and GET /ready (model and library loaded)."""

from __future__ import annotations

import anyio.to_thread
from fastapi import APIRouter

from app.api.deps import EmbedderDep, LibraryDep, ServiceDep
from app.core.errors import problem_responses
from app.models import HealthResponse, ReadyResponse

router = APIRouter(tags=["health"])


@router.get("/health", summary="Liveness")
async def health() -> HealthResponse:
    """The process is up and serving HTTP (it may still be loading)."""
    return HealthResponse()


@router.get("/ready", summary="Readiness", responses=problem_responses(503))
async def ready(library: LibraryDep, embedder: EmbedderDep, service: ServiceDep) -> ReadyResponse:
    """The model and the library are loaded: identifications can be served.
    The Raman model and library load next (``raman_status``)."""
    status = library.status()
    database_size = await anyio.to_thread.run_sync(library.database_size)
    raman = service.raman
    raman_status = raman.library.status() if raman is not None else None
    phase = service.raman_phase
    return ReadyResponse(
        model_version=embedder.version,
        device=str(embedder.device),
        library_size=status.size,
        library_version=status.version,
        database_size=database_size,
        raman_status=phase if phase in ("ready", "disabled", "failed") else "loading",  # type: ignore[arg-type]
        raman_model_version=raman.embedder.version if raman is not None else None,
        raman_library_size=raman_status.size if raman_status is not None else None,
        raman_library_version=raman_status.version if raman_status is not None else None,
    )
