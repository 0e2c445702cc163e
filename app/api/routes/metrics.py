"""GET /metrics: Prometheus text exposition."""

from __future__ import annotations

from fastapi import APIRouter, Response

from app.api.deps import ServiceDep

router = APIRouter(tags=["health"])


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(service: ServiceDep) -> Response:
    """Request counts and latencies per route, identification stage times,
    library size and readiness."""
    body, content_type = service.metrics.render()
    return Response(content=body, media_type=content_type)
