"""Request ids and logs.

Every response carries ``X-Request-ID``: the client's, when it sent a sane
one (so a LIMS can trace its own ids through our logs), else a new one.
Every log line carries it (``request_id``), uvicorn's access and error
lines included; ``XRDID_LOG_JSON`` makes each line a JSON object.

The middleware is asgi-correlation-id's (maintained, does exactly this,
and keeps the id in a contextvar that worker threads inherit); the JSON
formatter is python-json-logger's.
"""

from __future__ import annotations

import logging
import re
import sys
from uuid import uuid4

from asgi_correlation_id import CorrelationIdMiddleware, correlation_id
from pythonjsonlogger.json import JsonFormatter

from app.core.config import Settings

__all__ = ["REQUEST_ID_HEADER", "CorrelationIdMiddleware", "configure_logging", "request_id"]

REQUEST_ID_HEADER = "X-Request-ID"
# Ids a client may choose: short, printable, nothing a log parser could trip on.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"
_JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s"
# uvicorn's loggers get their own handlers from uvicorn; ours replace them.
_UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


def request_id() -> str | None:
    """The current request's id (None outside a request)."""
    return correlation_id.get()


def is_sane_request_id(value: str) -> bool:
    return _SANE_REQUEST_ID.fullmatch(value) is not None


def new_request_id() -> str:
    return uuid4().hex


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record ("-" outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = correlation_id.get() or "-"
        return True


def request_id_middleware_options() -> dict[str, object]:
    return {
        "header_name": REQUEST_ID_HEADER,
        "generator": new_request_id,
        "validator": is_sane_request_id,
    }


def configure_logging(settings: Settings) -> None:
    """One handler on the root logger, text or JSON, with the request id;
    uvicorn's loggers propagate to it."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    if settings.log_json:
        handler.setFormatter(
            JsonFormatter(_JSON_FIELDS, rename_fields={"levelname": "level", "asctime": "time"})
        )
    else:
        handler.setFormatter(logging.Formatter(_TEXT_FORMAT))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_xrdid", False)]:
        root.removeHandler(old)
    handler._xrdid = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    level = settings.log_level.upper()
    root.setLevel(level)
    logging.getLogger("xrdid").setLevel(level)
    for name in _UVICORN_LOGGERS:
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
