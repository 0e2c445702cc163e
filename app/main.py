"""Build the FastAPI app (a factory: nothing is created at import).

uvicorn app.main:create_app --factory      # or: python -m app
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from fastapi import FastAPI

from app.api.main import api_router
from app.core.admission import AdmissionMiddleware
from app.core.config import Settings
from app.core.errors import install_error_handlers
from app.core.headers import SecurityHeadersMiddleware, redact_access_log
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
    redact_access_log()
    metrics = Metrics()
    app = FastAPI(
        title="xrdid",
        summary="XRD powder pattern identification",
        description=DESCRIPTION,
        version="0.1.0",
        lifespan=lifespan,
        # /docs is served offline by app.api.routes.docs; ReDoc would need a CDN.
        docs_url=None,
        redoc_url=None,
        form_limits={
            "max_files": 1,
            "max_fields": settings.max_form_fields,
            "max_part_size": settings.max_form_field_bytes,
        },
        openapi_tags=[
            {"name": "identify", "description": "Identify a measured pattern"},
            {"name": "references", "description": "The reference library"},
            {"name": "health", "description": "Liveness, readiness, metrics"},
        ],
    )
    service = ServiceState(settings, metrics)
    app.state.service = service
    install_error_handlers(app)
    app.include_router(api_router)
    mount_page(app)  # the page for people at /
    app.openapi = partial(openapi_schema, app, settings)  # type: ignore[method-assign]
    # Last added = outermost: metrics count every answer, the refusals included.
    app.add_middleware(
        BodyLimitMiddleware,
        max_body_bytes=settings.upload_body_limit_bytes,
        body_timeout_s=settings.body_timeout_s,
    )
    app.add_middleware(
        AdmissionMiddleware,
        gates={
            ("POST", "/identify"): service.identify_gate,
            ("POST", "/references"): service.write_gate,
        },
        retry_after_s=settings.retry_after_s,
    )
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


def openapi_schema(app: FastAPI, settings: Settings) -> dict[str, Any]:
    """FastAPI's schema; a server that requires read keys says so on every read
    (the routes declare the key optional: OPTIONAL_KEY)."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    schema = FastAPI.openapi(app)  # built and cached by FastAPI; adjusted in place
    if settings.require_read_key:
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                if "security" in operation:
                    operation["security"] = [r for r in operation["security"] if r]
    return schema
