"""GET /health (the process answers) and GET /ready (model and library loaded)."""

from __future__ import annotations

import anyio.to_thread
from fastapi import APIRouter

from app.api.deps import EmbedderDep, LibraryDep
from app.core.errors import problem_responses
from app.models import HealthResponse, ReadyResponse

router = APIRouter(tags=["health"])


@router.get("/health", summary="Liveness")
async def health() -> HealthResponse:
    """The process is up and serving HTTP (it may still be loading)."""
    return HealthResponse()


@router.get("/ready", summary="Readiness", responses=problem_responses(503))
async def ready(library: LibraryDep, embedder: EmbedderDep) -> ReadyResponse:
    """The model and the library are loaded: identifications can be served."""
    status = library.status()
    database_size = await anyio.to_thread.run_sync(library.database_size)
    return ReadyResponse(
        model_version=embedder.version,
        device=str(embedder.device),
        library_size=status.size,
        library_version=status.version,
        database_size=database_size,
    )
