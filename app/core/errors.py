"""Errors as ``application/problem+json`` (RFC 9457), from one place.

:class:`xrdid.errors.XrdidError` subclasses map to status codes in
:data:`XRDID_PROBLEMS`; the service's own conditions (not ready, API keys,
upload size) are :class:`ServiceError`\\ s; request validation, unknown
routes and methods are rewritten as problems too. Every problem says what
to fix in ``detail``; parse errors add ``line`` and ``field``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from xrdid.errors import (
    InputError,
    PatternReadError,
    SimulationError,
    SimulationTooLargeError,
    StructureReadError,
    UnsupportedFormatError,
    XrdidError,
)
from xrdid.library import (
    DuplicateReferenceError,
    LibraryUnavailableError,
    ReferenceNotFoundError,
)
from xrdid.readers import SUPPORTED_FORMATS

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
_TYPE_PREFIX = "urn:xrdid:problem:"


class Problem(BaseModel):
    """An error response (RFC 9457 problem details)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": "urn:xrdid:problem:unreadable-pattern",
                    "title": "The pattern file could not be read",
                    "status": 422,
                    "detail": "scan.xy, line 57: '12.34 abc' is not a number; …",
                    "line": 57,
                    "field": "intensity",
                }
            ]
        },
    )

    type: str = Field(description="Problem type (a URN naming the kind of error)")
    title: str = Field(description="Short summary of the kind of error")
    status: int = Field(description="HTTP status code")
    detail: str = Field(description="What is wrong with this request and how to fix it")
    instance: str | None = Field(None, description="The request path")


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_MEDIA_TYPE


def problem_response(
    status: int,
    slug: str,
    title: str,
    detail: str,
    *,
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> ProblemResponse:
    body: dict[str, Any] = {
        "type": _TYPE_PREFIX + slug,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update({k: v for k, v in extra.items() if v is not None})
    return ProblemResponse(body, status_code=status, headers=dict(headers or {}))


class ServiceError(Exception):
    """A condition of the service (not of the science) with its HTTP status;
    ``extra`` adds members to the problem (the limit that was hit)."""

    status = 500
    slug = "internal-error"
    title = "Internal error"

    def __init__(
        self, detail: str, *, headers: Mapping[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = dict(headers or {})
        self.extra = extra


class ServiceNotReadyError(ServiceError):
    status, slug, title = 503, "not-ready", "The service is not ready"


class MissingApiKeyError(ServiceError):
    status, slug, title = 401, "missing-api-key", "An API key is required"


class InvalidApiKeyError(ServiceError):
    status, slug, title = 403, "forbidden", "The API key does not allow this"


class UploadTooLargeError(ServiceError):
    status, slug, title = 413, "upload-too-large", "The upload is too large"


class WriteBudgetError(ServiceError):
    status, slug, title = 413, "over-budget", "The upload costs more than this server allows"


class BadRequestError(ServiceError):
    status, slug, title = 400, "bad-request", "Bad request"


class FormFieldError(ServiceError):
    status, slug, title = 422, "invalid-form", "The form is not as expected"


class TechniqueUnavailableError(ServiceError):
    """A measurement of a technique this server has no model for."""

    status, slug, title = (
        422,
        "technique-unavailable",
        "This server does not identify that technique",
    )


class ClientDisconnectedError(ServiceError):
    """The client left before the answer (nginx's 499; never sent, only counted)."""

    status, slug, title = 499, "client-closed-request", "The client closed the connection"


# Most specific first: the first class an error is an instance of decides.
XRDID_PROBLEMS: tuple[tuple[type[XrdidError], int, str, str], ...] = (
    (LibraryUnavailableError, 503, "library-unavailable", "The library is unavailable"),
    (DuplicateReferenceError, 409, "duplicate-reference", "The reference already exists"),
    (ReferenceNotFoundError, 404, "reference-not-found", "No such reference"),
    (UnsupportedFormatError, 415, "unsupported-format", "The file format is not supported"),
    (PatternReadError, 422, "unreadable-pattern", "The pattern file could not be read"),
    (StructureReadError, 422, "unreadable-structure", "The structure file could not be read"),
    (
        SimulationTooLargeError,
        413,
        "simulation-too-large",
        "The structure is too large to simulate",
    ),
    (SimulationError, 422, "simulation-failed", "No pattern could be simulated"),
    (InputError, 422, "invalid-input", "Invalid input"),
    (XrdidError, 422, "invalid-input", "Invalid input"),
)


def xrdid_problem(exc: XrdidError, instance: str | None = None) -> ProblemResponse:
    status, slug, title = next((s, g, t) for c, s, g, t in XRDID_PROBLEMS if isinstance(exc, c))
    extra: dict[str, Any] = {}
    if isinstance(exc, PatternReadError):
        extra.update(line=exc.line, field=exc.field)
    if isinstance(exc, UnsupportedFormatError):
        extra["supported_formats"] = list(SUPPORTED_FORMATS)
    if isinstance(exc, DuplicateReferenceError):
        extra.update(existing_id=exc.existing_id, existing=f"/references/{exc.existing_id}")
    detail = str(exc)
    if isinstance(exc, SimulationTooLargeError):
        setting = _SIMULATION_SETTINGS.get(exc.quantity)
        extra.update(limit=exc.limit, value=exc.value, quantity=exc.quantity, setting=setting)
        detail += f" (server setting {setting})" if setting else ""
    headers = (
        {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, LibraryUnavailableError) else {}
    )
    return problem_response(
        status, slug, title, detail, instance=instance, headers=headers, **extra
    )


# The settings behind the simulation limits, named in the 413.
_SIMULATION_SETTINGS = {
    "reflections": "XRDID_MAX_SIMULATION_REFLECTIONS",
    "atom_reflections": "XRDID_MAX_SIMULATION_ATOM_REFLECTIONS",
}


def _field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "form")]
    return ".".join(parts) or str(loc[0] if loc else "request")


def _message(error: Mapping[str, Any]) -> str:
    message = str(error.get("msg", "invalid value"))
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    field = _field_name(error.get("loc", ()))
    if error.get("type") == "missing" and field == "file":
        message += ": send the file as the multipart/form-data field 'file'"
    return message


async def _xrdid_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, XrdidError)
    return xrdid_problem(exc, request.url.path)


async def _service_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, ServiceError)
    return problem_response(
        exc.status,
        exc.slug,
        exc.title,
        exc.detail,
        instance=request.url.path,
        headers=exc.headers,
        **exc.extra,
    )


async def _validation_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "field": _field_name(e.get("loc", ())),
            "location": str(e.get("loc", ("body",))[0]),
            "message": _message(e),
        }
        for e in exc.errors()
    ]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors) or "invalid request"
    return problem_response(
        422,
        "invalid-request",
        "Invalid request parameters",
        detail,
        instance=request.url.path,
        field=errors[0]["field"] if errors else None,
        errors=errors,
    )


async def _http_error(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, StarletteHTTPException)
    method, path = request.method, request.url.path
    headers = dict(exc.headers or {})
    if exc.status_code == 404:
        detail = f"there is no {path}; the API is described at /docs"
        if exc.detail and exc.detail != "Not Found":
            detail = str(exc.detail)
        return problem_response(
            404, "not-found", "Not found", detail, instance=path, headers=headers
        )
    if exc.status_code == 405:
        # Starlette names the methods of the first route on the path only.
        allowed = ", ".join(allowed_methods(request)) or headers.get("allow", "")
        headers = {k: v for k, v in headers.items() if k.lower() != "allow"}
        if allowed:
            headers["Allow"] = allowed
        detail = f"{method} is not allowed on {path}" + (f"; use {allowed}" if allowed else "")
        return problem_response(
            405, "method-not-allowed", "Method not allowed", detail, instance=path, headers=headers
        )
    if exc.status_code == 413:
        return problem_response(
            413, "upload-too-large", "The upload is too large", str(exc.detail), instance=path
        )
    if exc.status_code == 400 and str(exc.detail).startswith(_FORM_LIMIT_MESSAGES):
        return _form_limit_problem(request, str(exc.detail))
    if exc.status_code == 400 and "Maximum header size exceeded" in _causes(exc):
        return problem_response(
            422,
            "part-header-too-long",
            "A form part's header is too long",
            "a multipart part header (Content-Disposition with the file name) is longer than "
            "python-multipart's 4 kB limit; file names may have at most "
            f"{request.app.state.service.settings.max_filename_chars} characters",
            instance=path,
        )
    if exc.status_code == 400:
        detail = (
            "the request body could not be parsed; send multipart/form-data with the file in "
            "the field 'file' (e.g. curl -F file=@scan.xy)"
        )
        return problem_response(
            400, "bad-request", "Bad request", detail, instance=path, headers=headers
        )
    return problem_response(
        exc.status_code,
        "http-error",
        str(exc.detail),
        str(exc.detail),
        instance=path,
        headers=headers,
    )


def _causes(exc: BaseException) -> str:
    """The messages of the exceptions behind ``exc`` (the parser's own reason)."""
    messages: list[str] = []
    cause = exc.__cause__ or exc.__context__
    while cause is not None and len(messages) < 5:
        messages.append(str(cause))
        cause = cause.__cause__ or cause.__context__
    return " | ".join(messages)


# Starlette's messages when a form breaks the limits the app set (FastAPI form_limits).
_FORM_LIMIT_MESSAGES = ("Too many fields", "Too many files", "Part exceeded maximum size")


def _form_limit_problem(request: Request, message: str) -> ProblemResponse:
    settings = request.app.state.service.settings
    limits = (
        f"this server takes one file per upload (POST /jobs: up to {settings.job_max_files}, "
        f"XRDID_JOB_MAX_FILES), at most {settings.max_form_fields} other fields "
        f"(XRDID_MAX_FORM_FIELDS) of at most {settings.max_form_field_bytes} bytes each "
        "(XRDID_MAX_FORM_FIELD_BYTES)"
    )
    if message.startswith("Part exceeded"):
        status, slug, title = 413, "form-field-too-large", "A form field is too large"
    else:
        status, slug, title = 422, "too-many-form-parts", "The form has too many parts"
    return problem_response(status, slug, title, f"{message} — {limits}", instance=request.url.path)


_METHOD_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves on the request's path (for ``Allow``)."""
    path = request.url.path
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        if route.methods and route.path_format:
            if compile_path(route.path_format)[0].match(path):
                methods |= set(route.methods)
    return sorted(methods, key=lambda m: (_METHOD_ORDER + (m,)).index(m))


async def _memory_error(request: Request, exc: Exception) -> ProblemResponse:
    logger.error("out of memory on %s %s", request.method, request.url.path)
    return problem_response(
        503,
        "out-of-memory",
        "The server ran out of memory",
        "the server ran out of memory on this request; retry later",
        instance=request.url.path,
        headers={"Retry-After": "10"},
    )


async def _unexpected_error(request: Request, exc: Exception) -> ProblemResponse:
    from app.core.tracing import REQUEST_ID_HEADER, request_id

    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    # Answered outside the request-id middleware: set its header here.
    rid = request_id()
    return problem_response(
        500,
        "internal-error",
        "Internal error",
        "the service failed on this request; it has been logged — please report it with the file",
        instance=request.url.path,
        headers={REQUEST_ID_HEADER: rid} if rid else None,
        request_id=rid,
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(XrdidError, _xrdid_error)
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(MemoryError, _memory_error)
    app.add_exception_handler(Exception, _unexpected_error)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the problems a route can return."""
    descriptions = {
        400: "The body is not multipart/form-data, or a header is repeated or malformed",
        401: "An API key is required (header X-API-Key)",
        403: "The API key does not allow this",
        404: "No such reference or job",
        408: "The request body arrived too slowly",
        409: "A conflict: the reference exists (same source and source id), the job has "
        "finished, or the Idempotency-Key is in use",
        413: "The upload, a form field or the simulation it needs is over this server's limit",
        415: "The file is in no supported format",
        422: "The file or a parameter is invalid (detail says which and how to fix it)",
        429: "Too many scans are waiting for identification (see Retry-After)",
        503: "The model or library is still loading, the server is busy, or the library's "
        "database is unavailable (see Retry-After)",
    }
    return {
        status: {
            "model": Problem,
            "description": descriptions.get(status, "Error"),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }
