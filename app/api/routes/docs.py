"""GET /docs: Swagger UI served by the app itself, so it works offline.

The assets come from swagger-ui-bundle-v2 (the spec-first project's
packaging of Swagger UI 5, which reads OpenAPI 3.1; the older
swagger-ui-bundle ships Swagger UI 4, which does not). The start-up
script is a file, not inline, so the Content-Security-Policy can forbid
inline scripts.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, HTMLResponse, Response
from swagger_ui_bundle import swagger_ui_path

router = APIRouter(include_in_schema=False)

ASSETS = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "favicon-32x32.png": "image/png",
}

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>xrdid API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
"""

INIT_SCRIPT = """window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  layout: "BaseLayout",
});
"""


@router.get("/docs")
async def docs() -> HTMLResponse:
    return HTMLResponse(PAGE)


@router.get("/docs/init.js")
async def init_script() -> Response:
    return Response(INIT_SCRIPT, media_type="text/javascript")


@router.get("/docs/{asset}")
async def asset(asset: str) -> Response:
    if asset not in ASSETS:
        raise HTTPException(404)
    return FileResponse(
        str(swagger_ui_path / asset),
        media_type=ASSETS[asset],
        headers={"Cache-Control": "public, max-age=86400"},
    )
