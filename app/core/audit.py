"""Audit records of writes: who (the key's id, never the key), from where,
under which request id, and what changed."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from typing import Any

from fastapi import Request

from app.api.deps import API_KEY_HEADER
from app.core.tracing import request_id
from app.store.base import AuditEvent


def key_id(key: str | None) -> str | None:
    """A short, stable id of an API key: enough to tell keys apart in the log,
    useless for guessing the key (keys are long random strings)."""
    if not key:
        return None
    return "key_" + hashlib.sha256(key.encode()).hexdigest()[:12]


def request_key_id(request: Request) -> str | None:
    return key_id(request.headers.get(API_KEY_HEADER))


def audit_event(
    request: Request, action: str, target: str, details: Mapping[str, Any] | None = None
) -> AuditEvent:
    return AuditEvent(
        at=time.time(),
        action=action,
        target=target,
        key_id=request_key_id(request),
        request_id=request_id(),
        client=request.client.host if request.client else None,
        details=dict(details or {}),
    )
