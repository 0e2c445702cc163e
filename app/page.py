"""The page for people at ``/``: static files (HTML, JavaScript, CSS and the
vendored plotting library) under ``/static``; no build step, no CDN.

The page uses only same-origin scripts and styles (no inline code), so it
works under a strict Content-Security-Policy. See docs/page.md.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).parent / "static"

# Revalidate on every load (a 304 when unchanged), so that an upgraded
# service never runs with yesterday's scripts from the browser's cache.
REVALIDATE = {"Cache-Control": "no-cache"}


class _RevalidatedFiles(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(REVALIDATE)
        return response


def mount_page(app: FastAPI) -> None:
    """Serve the page at ``/`` and its files at ``/static``."""
    app.mount("/static", _RevalidatedFiles(directory=STATIC_DIR), name="static")

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers=REVALIDATE)
