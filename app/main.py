"""Build the FastAPI app (a factory: nothing is created at import).

uvicorn app.main:create_app --factory      # or: python -m app
"""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import FastAPI

from app.api.main import api_router, worker_router
from app.core.admission import AdmissionMiddleware
from app.core.config import Settings
from app.core.errors import install_error_handlers
from app.core.headers import SecurityHeadersMiddleware, redact_access_log
from app.core.limits import BodyLimitMiddleware
from app.core.metrics import Metrics, MetricsMiddleware
from app.core.state import ServiceState, lifespan
from app.core.tracing import (
    CorrelationIdMiddleware,
    configure_logging,
    request_id_middleware_options,
)
from app.page import mount_page

DESCRIPTION = """
Identify the crystalline material in a sample from its X-ray powder diffraction pattern.

* **POST /identify** — upload a measured pattern (.xy, .xye, .dat, .txt, .csv, .xrdml,
  Bruker .raw/.uxd/.brml, Rigaku .ras/.rasx/.asc, Philips .udf/.rd/.sd, GSAS .gsa/.fxye,
  Sietronics .cpi, pdCIF, pyFAI q or 2θ text, Fit2D/pyFAI .chi);
  get the most similar reference materials with cosine similarities.
* **/references** — the reference library: add a structure (CIF, BGMN .str) or a measured
  pattern, list, read, delete. Writes need an API key (header `X-API-Key`).
* **POST /jobs** — many scans (or a zip) at once: 202 and a job to poll (GET /jobs/{id}, JSON
  or CSV) or a signed callback; `Idempotency-Key` makes retries safe. **GET /audit** — who
  changed what. See docs/lims.md.

Errors are `application/problem+json`; `detail` says what to fix.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """The service app; ``settings`` default to the ``XRDID_*`` environment."""
    settings = settings or Settings()
    configure_logging(settings)
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
        # One file per upload; POST /jobs raises max_files for its route.
        form_limits={
            "max_files": 1,
            "max_fields": settings.max_form_fields,
            "max_part_size": settings.max_form_field_bytes,
        },
        # operationId = the route function's name: generated clients get
        # identify(), submit_job(), … (FastAPI's default appends path and method).
        generate_unique_id_function=lambda route: route.name,
        openapi_tags=[
            {"name": "identify", "description": "Identify a measured pattern"},
            {"name": "references", "description": "The reference library"},
            {"name": "jobs", "description": "Batch identification of many scans"},
            {"name": "audit", "description": "Who changed what"},
            {"name": "health", "description": "Liveness, readiness, metrics"},
        ],
    )
    service = ServiceState(settings, metrics)
    app.state.service = service
    install_error_handlers(app)
    if settings.role == "worker":
        app.include_router(worker_router)
    else:
        app.include_router(api_router)
        mount_page(app)  # the page for people at /
    app.openapi = partial(openapi_schema, app, settings)  # type: ignore[method-assign]
    # Last added = outermost: metrics count every answer, the refusals included.
    app.add_middleware(
        BodyLimitMiddleware,
        max_body_bytes=settings.upload_body_limit_bytes,
        body_timeout_s=settings.body_timeout_s,
        path_limits={"/jobs": (settings.job_max_body_bytes, "XRDID_JOB_MAX_BODY_BYTES")},
    )
    app.add_middleware(
        AdmissionMiddleware,
        gates={
            ("POST", "/identify"): service.identify_gate,
            ("POST", "/references"): service.write_gate,
            ("POST", "/jobs"): service.job_gate,
        },
        retry_after_s=settings.retry_after_s,
    )
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    # Outermost: every response, the 413s and 500s too, carries X-Request-ID.
    app.add_middleware(CorrelationIdMiddleware, **request_id_middleware_options())  # type: ignore[arg-type]
    return app


def openapi_schema(app: FastAPI, settings: Settings) -> dict[str, Any]:
    """FastAPI's schema, with the key of the reads (routes marked OPTIONAL_KEY)
    as this server treats it: required where XRDID_REQUIRE_READ_KEY is set,
    else not declared (generators demand an authenticated client wherever an
    operation has a security requirement, even an optional one)."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    schema = FastAPI.openapi(app)  # built and cached by FastAPI; adjusted in place
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            security = operation.get("security")
            if not security or {} not in security:
                continue
            if settings.require_read_key:
                operation["security"] = [r for r in security if r]
            else:
                del operation["security"]
    return schema
