"""Security headers on every response, and API keys kept out of the access log.

The Content-Security-Policy allows only this origin's scripts, so /docs
works with its self-served Swagger UI (its start-up script is a file, not
inline), and a static page served at / later works under it unchanged.
Styles may be inline: Swagger UI sets some; that cannot run code.
"""

from __future__ import annotations

import logging
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
)


class SecurityHeadersMiddleware:
    """Add :data:`SECURITY_HEADERS` to every HTTP response that lacks them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend(h for h in SECURITY_HEADERS if h[0] not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


# Query parameters that may carry a secret: their values never reach the log.
_SECRET_PARAMETER = re.compile(
    r"(?i)([?&][^=&]*(?:key|token|secret|password|auth)[^=&]*=)[^&\s\"]*"
)


def redact_query(text: str) -> str:
    """``text`` with the values of key-like query parameters replaced by ``REDACTED``."""
    return _SECRET_PARAMETER.sub(r"\1REDACTED", text)


class RedactSecretsFilter(logging.Filter):
    """Redact key-like query parameters from uvicorn's access log lines.

    Keys belong in the X-API-Key header; one sent in the query string is
    refused, and this keeps it out of the log as well.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_query(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        return True


def redact_access_log(logger_name: str = "uvicorn.access") -> None:
    """Install :class:`RedactSecretsFilter` on the access logger (once)."""
    access = logging.getLogger(logger_name)
    if not any(isinstance(f, RedactSecretsFilter) for f in access.filters):
        access.addFilter(RedactSecretsFilter())
