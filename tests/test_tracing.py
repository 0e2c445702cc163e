"""Request ids in log lines, as text and as JSON."""

from __future__ import annotations

import json
import logging

import pytest
from asgi_correlation_id import correlation_id

from app.core.config import Settings
from app.core.tracing import configure_logging, is_sane_request_id


@pytest.mark.parametrize("json_logs", [False, True])
def test_log_lines_carry_the_request_id(
    capsys: pytest.CaptureFixture[str], json_logs: bool
) -> None:
    configure_logging(Settings(log_json=json_logs, log_level="info"))
    token = correlation_id.set("lims-run-42")
    try:
        logging.getLogger("app.test").info("job %s queued", "abc")
        logging.getLogger("uvicorn.access").info('127.0.0.1 - "GET /health HTTP/1.1" 200')
    finally:
        correlation_id.reset(token)
    logging.getLogger("app.test").info("outside a request")
    lines = capsys.readouterr().err.strip().splitlines()[-3:]
    if json_logs:
        records = [json.loads(line) for line in lines]
        assert (
            records[0]["message"] == "job abc queued" and records[0]["request_id"] == "lims-run-42"
        )
        assert records[0]["level"] == "INFO" and records[0]["name"] == "app.test"
        assert records[1]["request_id"] == "lims-run-42"  # uvicorn's lines too
        assert records[2]["request_id"] == "-"
    else:
        assert "[lims-run-42]: job abc queued" in lines[0]
        assert "[lims-run-42]" in lines[1] and "[-]: outside a request" in lines[2]
    configure_logging(Settings(log_level="warning"))


@pytest.mark.parametrize(
    ("value", "sane"),
    [("5f0c7a4e9b2d4c1f", True), ("LIMS:run/42", True), ("", False), ("a b", False),
     ("x" * 129, False), ("line\nbreak", False), ('quote"', False)],
)  # fmt: skip
def test_sane_request_ids(value: str, sane: bool) -> None:
    assert is_sane_request_id(value) is sane
