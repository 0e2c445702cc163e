"""uvicorn's h11 protocol with a deadline on request heads (slowloris).

uvicorn times out idle keep-alive connections only, and resets that timer
on every byte (uvicorn issue #157 lists "--timeout-request-start" as not
done): a client trickling a request head a byte at a time holds its
connection for ever, and no ASGI middleware sees it, since the app is
called only once the head is complete. This subclass closes a connection
whose request line and headers are not complete ``header_timeout_s`` after
it opened or after the previous response, with a 408. Bodies are timed in
the app (:mod:`app.core.limits`). ``python -m app`` passes the class to
uvicorn (``http=``, a documented option); a reverse proxy in front does the
same job in production (docs/operations.md).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

_REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\ncontent-length: 37\r\n\r\nrequest headers not received in time\n"
)


class HeaderDeadlineProtocol(H11Protocol):
    header_timeout_s: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not cycle:  # a request head was parsed
            self._disarm_head_timer()

    def on_response_complete(self) -> None:
        # The next request's head gets the same time; armed first because a
        # pipelined request is parsed inside the call below.
        self._arm_head_timer()
        super().on_response_complete()

    def _arm_head_timer(self) -> None:
        self._disarm_head_timer()
        self._head_timer = self.loop.call_later(self.header_timeout_s, self._head_too_slow)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.logger.info("closed a connection whose request head was still incomplete")
            self.transport.write(_REQUEST_TIMEOUT)
            self.transport.close()


def header_deadline_protocol(header_timeout_s: float) -> type[H11Protocol]:
    """The protocol class to give uvicorn (``http=``) for this timeout."""
    return type(
        "HeaderDeadlineProtocol",
        (HeaderDeadlineProtocol,),
        {"header_timeout_s": header_timeout_s},
    )
