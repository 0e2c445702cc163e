"""The API contract: the schema's shape for generated clients, and the
committed openapi.json against the live schema (fails on breaking changes)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from app.contract import COMMITTED_SCHEMA, breaking_changes, live_schema


@pytest.fixture(scope="module")
def live() -> dict[str, Any]:
    return live_schema()


@pytest.fixture(scope="module")
def committed() -> dict[str, Any]:
    return dict(json.loads(COMMITTED_SCHEMA.read_text(encoding="utf-8")))


def test_the_live_schema_keeps_every_promise_of_the_committed_one(
    committed: dict[str, Any], live: dict[str, Any]
) -> None:
    problems = breaking_changes(committed, live)
    assert not problems, (
        "these changes break clients built from openapi.json (see docs/lims.md, versioning):\n"
        + "\n".join(problems)
    )


def test_uploads_are_flat_bodies_with_binary_files(live: dict[str, Any]) -> None:
    schemas = live["components"]["schemas"]
    for path, name, field in (
        ("/identify", "IdentifyUpload", "file"),
        ("/references", "ReferenceUpload", "file"),
        ("/jobs", "JobForm", "files"),
    ):
        body = live["paths"][path]["post"]["requestBody"]["content"]["multipart/form-data"]
        assert body["schema"] == {"$ref": f"#/components/schemas/{name}"}
        schema = schemas[name]
        assert "allOf" not in schema and field in schema["required"]
        prop = schema["properties"][field]
        assert (prop.get("items") or prop)["format"] == "binary"


def test_only_writes_declare_the_key_scheme(live: dict[str, Any]) -> None:
    """Generators demand an authenticated client wherever security is declared."""
    secured = {
        f"{method.upper()} {path}"
        for path, operations in live["paths"].items()
        for method, operation in operations.items()
        if operation.get("security")
    }
    assert secured == {"POST /references", "DELETE /references/{reference_id}", "GET /audit"}


Mutation = Callable[[dict[str, Any]], None]


def _schemas(spec: dict[str, Any]) -> dict[str, Any]:
    return dict(spec["components"]["schemas"])


BREAKING: dict[str, tuple[Mutation, str]] = {
    "removed field": (
        lambda s: _schemas(s)["CandidatePublic"]["properties"].pop("score"),
        "candidates[].score: field removed",
    ),
    "removed endpoint": (lambda s: s["paths"].pop("/jobs/{job_id}"), "endpoint removed"),
    "removed enum value": (
        lambda s: _schemas(s)["JobStatus"]["enum"].remove("cancelled"),
        "enum values removed: ['cancelled']",
    ),
    "changed type": (
        lambda s: _schemas(s)["CandidatePublic"]["properties"].update(rank={"type": "string"}),
        "type changed from integer to string",
    ),
    "newly required request field": (
        lambda s: _schemas(s)["JobForm"]["required"].append("callback_url"),
        "callback_url: field is now required",
    ),
    "removed parameter": (
        lambda s: s["paths"]["/jobs/{job_id}"]["get"]["parameters"].pop(1),
        "query parameter results: removed",
    ),
    "renamed operation": (
        lambda s: s["paths"]["/identify"]["post"].update(operationId="identify_pattern"),
        "operationId changed",
    ),
}
ADDITIONS: dict[str, Mutation] = {
    "new field": lambda s: _schemas(s)["Job"]["properties"].update(note={"type": "string"}),
    "new endpoint": lambda s: s["paths"].update({"/jobs/{job_id}/pdf": {"get": {}}}),
    "new enum value": lambda s: _schemas(s)["JobStatus"]["enum"].append("paused"),
    "new optional parameter": lambda s: s["paths"]["/jobs/{job_id}"]["get"]["parameters"].append(
        {"name": "fields", "in": "query", "required": False, "schema": {"type": "string"}}
    ),
}


@pytest.mark.parametrize("kind", sorted(BREAKING))
def test_breaking_changes_are_caught(committed: dict[str, Any], kind: str) -> None:
    mutate, expected = BREAKING[kind]
    changed = copy.deepcopy(committed)
    mutate(changed)
    problems = breaking_changes(committed, changed)
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize("kind", sorted(ADDITIONS))
def test_additions_pass(committed: dict[str, Any], kind: str) -> None:
    changed = copy.deepcopy(committed)
    ADDITIONS[kind](changed)
    assert breaking_changes(committed, changed) == []
