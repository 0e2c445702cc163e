"""``Idempotency-Key`` on POST /references and POST /jobs (IETF httpapi
draft "The Idempotency-Key HTTP Header Field"):

- the first request with a key runs; its successful response is kept for
  XRDID_IDEMPOTENCY_TTL_S and replayed, byte for byte, to every retry of
  the same request with the same key (``Idempotent-Replayed: true``);
- the same key on a different request: 422;
- a retry while the first is still running: 409 (retry shortly);
- a request that fails keeps nothing: a retry with the key runs again.

"The same request" is the method, the path and the request's content: the
form fields and each file's name and SHA-256 (not the raw multipart bytes,
whose boundary differs on every send). Keys are scoped by API key, so two
clients cannot collide.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
from fastapi import Request, Response

from app.core.audit import request_key_id
from app.core.config import Settings
from app.core.errors import ServiceError
from app.store.base import ServiceStore, StoredResponse

__all__ = ["IDEMPOTENCY_HEADER", "Idempotent", "fingerprint", "idempotent"]

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
# A request holding its key longer than this has died (a crash mid-request);
# its key is then free again. Far above the slowest add or job submission.
LOCK_S = 300.0
# An sf-string's characters (RFC 8941: printable ASCII), without quote and
# backslash; UUIDs, ULIDs and LIMS ids fit.
_KEY = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]{1,255}")
# Headers of the first response worth replaying (not dates or lengths).
_KEPT_HEADERS = ("content-type", "location")


class InvalidIdempotencyKeyError(ServiceError):
    status, slug, title = 400, "invalid-idempotency-key", "The Idempotency-Key is not valid"


class IdempotencyKeyReusedError(ServiceError):
    status, slug, title = (
        422,
        "idempotency-key-reused",
        "The Idempotency-Key was used for a different request",
    )


class IdempotencyKeyInUseError(ServiceError):
    status, slug, title = (
        409,
        "idempotency-key-in-use",
        "A request with this Idempotency-Key is still being processed",
    )


def parse_key(raw: str) -> str:
    """The key of an ``Idempotency-Key`` header: an sf-string ("…"), or the
    same characters unquoted (what most clients send)."""
    value = raw.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    if not _KEY.fullmatch(value) or not value.strip():
        raise InvalidIdempotencyKeyError(
            f"the {IDEMPOTENCY_HEADER} header must be 1–255 printable ASCII characters "
            'without quotes or backslashes, e.g. "8e03978e-40d5-43e8-bc93-6894a57f9324" '
            "(a new UUID for every new request)"
        )
    return value


def fingerprint(
    method: str,
    path: str,
    fields: Mapping[str, Any],
    files: Sequence[tuple[str, str | None, bytes]],
) -> str:
    """SHA-256 of what makes a request this request: method, path, form
    fields, and (field, filename, content hash) of each file, in order."""
    canonical = {
        "method": method.upper(),
        "path": path,
        "fields": {k: v for k, v in sorted(fields.items()) if v is not None},
        "files": [[field, name, hashlib.sha256(data).hexdigest()] for field, name, data in files],
    }
    return hashlib.sha256(json.dumps(canonical, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class Idempotent:
    """One request's hold on its key. ``replay`` is the first response when
    this request is a retry; otherwise call :meth:`keep` on the response."""

    replay: Response | None = None
    kept: StoredResponse | None = None

    def keep(self, response: Response) -> Response:
        headers = {k: v for k, v in response.headers.items() if k.lower() in _KEPT_HEADERS}
        self.kept = StoredResponse(response.status_code, headers, bytes(response.body))
        return response


def _replay(stored: StoredResponse) -> Response:
    headers = {**stored.headers, REPLAYED_HEADER: "true"}
    return Response(content=stored.body, status_code=stored.status, headers=headers)


@asynccontextmanager
async def idempotent(
    request: Request,
    raw: str | None,
    store: ServiceStore,
    settings: Settings,
    request_fingerprint: str,
) -> AsyncIterator[Idempotent]:
    """Run the body at most once per (client, key ``raw``, the header's value);
    see the module docstring."""
    if raw is None:
        yield Idempotent()
        return
    sent = request.headers.getlist(IDEMPOTENCY_HEADER)
    if len(sent) > 1:  # never a guess between several (as with X-API-Key)
        raise InvalidIdempotencyKeyError(
            f"the request has {len(sent)} {IDEMPOTENCY_HEADER} headers; send exactly one"
        )
    key = parse_key(raw)
    scope = request_key_id(request) or "anonymous"
    begun = await anyio.to_thread.run_sync(
        lambda: store.idempotency_begin(
            scope,
            key,
            request_fingerprint,
            time.time(),
            ttl_s=settings.idempotency_ttl_s,
            lock_s=LOCK_S,
        )
    )
    if begun.outcome == "replay":
        assert begun.response is not None
        yield Idempotent(replay=_replay(begun.response))
        return
    if begun.outcome == "mismatch":
        raise IdempotencyKeyReusedError(
            f"the {IDEMPOTENCY_HEADER} {key!r} was used for a different request (other "
            "fields or files) in the last "
            f"{settings.idempotency_ttl_s / 3600:g} h; use a new key for a new request"
        )
    if begun.outcome == "in_progress":
        raise IdempotencyKeyInUseError(
            f"a request with the {IDEMPOTENCY_HEADER} {key!r} is still being processed; "
            "retry it shortly to get its response",
            headers={"Retry-After": "1"},
        )
    hold = Idempotent()
    try:
        yield hold
    finally:
        with anyio.CancelScope(shield=True):
            if hold.kept is not None:
                kept = hold.kept
                await anyio.to_thread.run_sync(
                    lambda: store.idempotency_complete(scope, key, kept, time.time())
                )
            else:
                await anyio.to_thread.run_sync(lambda: store.idempotency_release(scope, key))
