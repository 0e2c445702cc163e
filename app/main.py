"""Build the FastAPI app (a factory: nothing is created at import).

uvicorn app.main:create_app --factory      # or: python -m app
"""

from __future__ import annotations

import logging

from fastapi import FastAPI

from app.api.main import api_router
from app.core.config import Settings
from app.core.errors import install_error_handlers
from app.core.limits import BodyLimitMiddleware
from app.core.metrics import Metrics, MetricsMiddleware
from app.core.state import ServiceState, lifespan
from app.page import mount_page

DESCRIPTION = """
Identify the crystalline material in a sample from its X-ray powder diffraction pattern.

* **POST /identify** — upload a measured pattern (.xy, .xye, .dat, .txt, .csv, .xrdml,
  Bruker .raw/.brml, Rigaku .ras/.rasx, GSAS .gsa/.fxye, pdCIF); get the most similar
  reference materials with cosine similarities.
* **/references** — the reference library: add a structure (CIF, BGMN .str) or a measured
  pattern, list, read, delete. Writes need an API key (header `X-API-Key`).

Errors are `application/problem+json`; `detail` says what to fix.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """The service app; ``settings`` default to the ``XRDID_*`` environment."""
    settings = settings or Settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("xrdid").setLevel(settings.log_level.upper())
    metrics = Metrics()
    app = FastAPI(
        title="xrdid",
        summary="XRD powder pattern identification",
        description=DESCRIPTION,
        version="0.1.0",
        lifespan=lifespan,
        openapi_tags=[
            {"name": "identify", "description": "Identify a measured pattern"},
            {"name": "references", "description": "The reference library"},
            {"name": "health", "description": "Liveness, readiness, metrics"},
        ],
    )
    app.state.service = ServiceState(settings, metrics)
    install_error_handlers(app)
    app.include_router(api_router)
    mount_page(app)  # the page for people at /
    # Last added = outermost: metrics also count the 413s of the body limit.
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.upload_body_limit_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app
