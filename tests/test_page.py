"""The page at / as files (its behaviour is tested in a real browser in
tests/e2e/test_page_browser.py): served by the app, complete, same-origin
only with no inline code (a strict Content-Security-Policy), and the vendored
plotting library the version the lock file pins."""

from __future__ import annotations

import json
import re
import warnings
from html.parser import HTMLParser
from pathlib import Path

import pytest

from app.core.config import Settings
from app.main import create_app
from app.page import STATIC_DIR
from xrdid.data_paths import PROJECT_ROOT

with warnings.catch_warnings():  # starlette's TestClient warns about httpx on import
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

OWN_FILES = [
    STATIC_DIR / "index.html",
    STATIC_DIR / "style.css",
    *sorted((STATIC_DIR / "js").glob("*.js")),
]
WEB = PROJECT_ROOT / "web"


class _Page(HTMLParser):
    """What the CSP cares about in the HTML: resources, inline code, inline styles."""

    def __init__(self) -> None:
        super().__init__()
        self.resources: list[str] = []
        self.inline_scripts = 0
        self.style_elements = 0
        self.style_attributes: list[str] = []
        self.handlers: list[str] = []
        self._in_script_without_src = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script":
            if values.get("src"):
                self.resources.append(str(values["src"]))
            else:
                self._in_script_without_src = True
        if tag == "link" and values.get("href"):
            self.resources.append(str(values["href"]))
        if tag == "style":
            self.style_elements += 1
        if "style" in values:
            self.style_attributes.append(tag)
        self.handlers += [f"{tag}.{name}" for name in values if name.startswith("on")]

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script_without_src = False

    def handle_data(self, data: str) -> None:
        if self._in_script_without_src and data.strip():
            self.inline_scripts += 1


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    """The app without its lifespan: the page needs neither model nor library."""
    tmp = tmp_path_factory.mktemp("page")
    settings = Settings(
        library_path=tmp / "library.sqlite",
        default_library_path=tmp / "none.sqlite",
        log_level="warning",
    )
    return TestClient(create_app(settings))


def parsed_page() -> _Page:
    page = _Page()
    page.feed((STATIC_DIR / "index.html").read_text())
    return page


def test_page_is_served_at_root(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-cache"
    assert '<script type="module" src="static/js/main.js">' in response.text
    assert client.head("/").status_code == 200
    # The page is not an API operation.
    assert "/" not in client.get("/openapi.json").json()["paths"]


def test_every_resource_of_the_page_is_served(client: TestClient) -> None:
    expected_types = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
    resources = parsed_page().resources
    assert len(resources) >= 5
    for resource in resources:
        response = client.get("/" + resource)
        assert response.status_code == 200, resource
        suffix = Path(resource).suffix
        assert response.headers["content-type"].startswith(expected_types[suffix]), resource
        assert response.headers["cache-control"] == "no-cache"
        etag = response.headers["etag"]
        assert client.get("/" + resource, headers={"If-None-Match": etag}).status_code == 304


def test_module_imports_resolve() -> None:
    """Every `import … from "./x.js"` names a file that exists."""
    for path in (STATIC_DIR / "js").glob("*.js"):
        for target in re.findall(r'from\s+"(\.[^"]+)"', path.read_text()):
            assert (path.parent / target).resolve().is_file(), f"{path.name} imports {target}"


def test_page_runs_under_a_strict_content_security_policy() -> None:
    """No inline script, style element, style attribute or on* handler; no
    other origin (labs may be offline, and the CSP allows 'self' only)."""
    page = parsed_page()
    assert page.inline_scripts == 0
    assert page.style_elements == 0
    assert page.style_attributes == []
    assert page.handlers == []
    for resource in page.resources:
        assert resource.startswith("static/"), resource
    for path in OWN_FILES:
        text = path.read_text()
        assert not re.search(r"https?://", text), f"{path.name} names another origin"
    for path in (STATIC_DIR / "js").glob("*.js"):
        text = path.read_text()
        # HTML from strings would bypass the builder that keeps text as text,
        # and style attributes or eval are refused by the CSP.
        for banned in (
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            'setAttribute("style"',
            "eval(",
            "new Function",
        ):
            assert banned not in text, f"{path.name} uses {banned}"


def test_vendored_plot_library_is_the_locked_version() -> None:
    lock = json.loads((WEB / "package-lock.json").read_text())
    manifest = json.loads((WEB / "package.json").read_text())
    locked = lock["packages"]["node_modules/uplot"]["version"]
    assert manifest["dependencies"]["uplot"] == locked  # pinned exactly
    banner = (STATIC_DIR / "vendor" / "uPlot.iife.min.js").read_text()[:200]
    assert f"(v{locked})" in banner, "run `make vendor` after changing web/package.json"
    assert (STATIC_DIR / "vendor" / "uPlot.min.css").stat().st_size > 500
    assert "MIT" in (STATIC_DIR / "vendor" / "uPlot.LICENSE").read_text()
