"""Security headers and the access-log filter (app/core/headers.py)."""

from __future__ import annotations

import logging

from app.core.headers import RedactSecretsFilter, redact_query


def test_key_like_query_parameters_are_redacted() -> None:
    assert (
        redact_query("/references/1?api_key=s3cret&limit=5&X-API-Key=abc")
        == "/references/1?api_key=REDACTED&limit=5&X-API-Key=REDACTED"
    )
    assert redact_query("/references?after=10&name=token") == "/references?after=10&name=token"


def test_access_log_records_lose_the_key() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "DELETE", "/references/1?token=abc", "1.1", 401),
        None,
    )
    assert RedactSecretsFilter().filter(record)
    assert "abc" not in record.getMessage() and "token=REDACTED" in record.getMessage()
