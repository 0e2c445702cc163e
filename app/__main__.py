"""``python -m app``: serve with uvicorn on XRDID_HOST:XRDID_PORT, with the
connection limits and timeouts of the settings (docs/operations.md)."""

from __future__ import annotations

import uvicorn

from app.core.config import Settings
from app.core.protocol import header_deadline_protocol


def main() -> None:
    settings = Settings()
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        # One process: the library's writer lock and index live in memory.
        workers=1,
        # h11 with a deadline on request heads (uvicorn has none: slowloris).
        http=header_deadline_protocol(settings.header_timeout_s),
        h11_max_incomplete_event_size=settings.max_header_bytes,
        timeout_keep_alive=settings.keep_alive_timeout_s,
        limit_concurrency=settings.max_connections,
        timeout_graceful_shutdown=settings.shutdown_timeout_s,
        server_header=False,
    )


if __name__ == "__main__":
    main()
