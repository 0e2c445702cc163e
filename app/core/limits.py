"""Cap request bodies while they stream in (uploads are never read unbounded).

A declared ``Content-Length`` over the limit is refused before any byte is
read; a body that grows past it (chunked or lying) is cut off as soon as it
does, and the app's reaction to the aborted read is replaced by the 413.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import ProblemResponse, problem_response


class _BodyTooLarge(Exception):
    pass


def _too_large(limit: int, path: str, received: int | None) -> ProblemResponse:
    size = f" ({received} bytes)" if received is not None else ""
    return problem_response(
        413,
        "upload-too-large",
        "The upload is too large",
        f"the request body{size} exceeds the limit of {limit} bytes; send a smaller file "
        "(the limit is the server's XRDID_MAX_UPLOAD_BYTES plus room for form fields)",
        instance=path,
        limit_bytes=limit,
        headers={"Connection": "close"},
    )


class BodyLimitMiddleware:
    """Refuse HTTP request bodies larger than ``max_body_bytes`` (or the
    path's own limit in ``path_limits``) with a 413 problem."""

    def __init__(
        self, app: ASGIApp, max_body_bytes: int, path_limits: dict[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.path_limits = dict(path_limits or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        limit = self.path_limits.get(path, self.max_body_bytes)
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(limit, path, int(declared))(scope, receive, send)
            return
        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                return  # whatever the app made of the aborted read is replaced below
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            await _too_large(limit, path, None)(scope, receive, send)
