"""Bound request bodies while they stream in: their size and their time.

A declared ``Content-Length`` over the size limit is refused before any
byte is read; a body that grows past it (chunked or lying) is cut off as
soon as it does (413). A body still arriving ``body_timeout_s`` after the
request started is cut off too (408): a slow sender holds a connection and
a task, never the service. In both cases the app's reaction to the aborted
read is replaced by the problem, and the connection is closed.

Only the body is timed: once it is complete, ``receive`` waits for the
client's disconnect without a deadline (uploads watch for it).
"""

from __future__ import annotations

import anyio
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import ProblemResponse, problem_response


class _BodyAborted(Exception):
    pass


# What the default body limit is made of, named in its 413.
_DEFAULT_LIMIT = "the server's XRDID_MAX_UPLOAD_BYTES plus room for form fields"


def _too_large(limit: int, path: str, received: int | None, setting: str) -> ProblemResponse:
    size = f" ({received} bytes)" if received is not None else ""
    return problem_response(
        413,
        "upload-too-large",
        "The upload is too large",
        f"the request body{size} exceeds the limit of {limit} bytes; send a smaller file "
        f"(the limit is {setting})",
        instance=path,
        limit_bytes=limit,
        headers={"Connection": "close"},
    )


def _too_slow(timeout_s: float, path: str, received: int) -> ProblemResponse:
    return problem_response(
        408,
        "body-timeout",
        "The request body arrived too slowly",
        f"the request body was not complete {timeout_s:g} s after the request started "
        f"({received} bytes arrived; XRDID_BODY_TIMEOUT_S); send it faster or in one piece",
        instance=path,
        limit_s=timeout_s,
        headers={"Connection": "close"},
    )


class BodyLimitMiddleware:
    """Refuse HTTP request bodies larger than ``max_body_bytes`` (or the
    path's own limit in ``path_limits``: bytes and the setting behind them)
    with a 413, or slower than ``body_timeout_s`` with a 408 problem."""

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        body_timeout_s: float,
        path_limits: dict[str, tuple[int, str]] | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_timeout_s = body_timeout_s
        self.path_limits = dict(path_limits or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        limit, setting = self.path_limits.get(path, (self.max_body_bytes, _DEFAULT_LIMIT))
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(limit, path, int(declared), setting)(scope, receive, send)
            return
        deadline = anyio.current_time() + self.body_timeout_s
        received = 0
        body_complete = False
        problem: ProblemResponse | None = None
        started = False

        async def limited_receive() -> Message:
            nonlocal received, body_complete, problem
            if body_complete:
                return await receive()
            with anyio.move_on_after(deadline - anyio.current_time()) as wait:
                message = await receive()
            if wait.cancelled_caught:
                problem = _too_slow(self.body_timeout_s, path, received)
                raise _BodyAborted
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    problem = _too_large(limit, path, None, setting)
                    raise _BodyAborted
                body_complete = not message.get("more_body", False)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if problem is not None:
                return  # whatever the app made of the aborted read is replaced below
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if problem is None:
                raise
        if problem is not None and not started:
            await problem(scope, receive, send)
