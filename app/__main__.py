"""``python -m app``: serve with uvicorn on XRDID_HOST:XRDID_PORT."""

from __future__ import annotations

import uvicorn

from app.core.config import Settings


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
    )


if __name__ == "__main__":
    main()
