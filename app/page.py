"""The page for people at ``/``: static files (HTML, JavaScript, CSS and the
vendored plotting library) under ``/static``; no build step, no CDN.

The page uses only same-origin scripts and styles (no inline code), so it
works under a strict Content-Security-Policy. See docs/page.md.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"


def mount_page(app: FastAPI) -> None:
    """Serve the page at ``/`` and its files at ``/static``."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def page() -> FileResponse:
        # Revalidate the page on every load so an upgrade is picked up at once.
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})
