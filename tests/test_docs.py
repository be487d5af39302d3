"""The docs page at /v1/docs: Swagger UI 5 from this origin, under a CSP without inline script or style.

tests/browser/test_docs_browser.py renders it in Chromium; these checks need no browser.
"""

from __future__ import annotations

import hashlib
import re
from html.parser import HTMLParser
from pathlib import Path

from service.config import API_VERSION
from service.docs import HERE

VENDORED = HERE / "assets" / "swagger-ui"


class _Page(HTMLParser):
    """The URLs a page loads, and whether it has inline script, style or event handlers."""

    def __init__(self) -> None:
        super().__init__()
        self.loads: list[str] = []
        self.inline: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        self.inline += [name for name in named if name.startswith("on") or name == "style"]
        if tag == "script":
            if named.get("src") is None:
                self.inline.append("script")
            else:
                self.loads.append(named["src"] or "")
        if tag == "link" and named.get("href"):
            self.loads.append(named["href"] or "")
        if tag == "style":
            self.inline.append("style")


def _policy(header: str) -> dict[str, list[str]]:
    return {name: values for name, *values in (part.split() for part in header.split(";") if part.strip())}


def test_the_docs_page_loads_only_assets_of_this_origin_and_no_inline_code(client):
    response = client.get("/v1/docs", headers={"Accept": "text/html"})

    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = _Page()
    page.feed(response.get_data(as_text=True))
    assert page.inline == []
    assert page.loads == ["/v1/docs/assets/swagger-ui/swagger-ui.css", "data:,",
                          "/v1/docs/assets/swagger-ui/swagger-ui-bundle.js", "/v1/docs/assets/initializer.js"]
    assert 'data-spec-url="/v1/openapi.json"' in response.get_data(as_text=True)
    assert client.get("/v1/openapi.json").json["info"]["version"] == API_VERSION


def test_the_docs_csp_allows_this_origin_only_and_nothing_inline(client):
    for path in ("/v1/docs", "/v1/docs/assets/initializer.js", "/v1/docs/assets/no-such-file.js"):
        policy = _policy(client.get(path).headers["Content-Security-Policy"])
        assert policy == {
            "default-src": ["'none'"], "script-src": ["'self'"], "style-src": ["'self'"],
            "img-src": ["'self'", "data:"], "connect-src": ["'self'"], "font-src": ["'self'"],
            "base-uri": ["'none'"], "form-action": ["'none'"], "frame-ancestors": ["'none'"],
        }, path


def test_the_api_keeps_its_own_policy(client):
    assert client.get("/healthz").headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"


def test_every_asset_of_the_page_is_served_with_its_type(client):
    expected = {"/v1/docs/assets/swagger-ui/swagger-ui.css": "text/css",
                "/v1/docs/assets/swagger-ui/swagger-ui-bundle.js": "text/javascript",
                "/v1/docs/assets/initializer.js": "text/javascript"}
    for path, mimetype in expected.items():
        response = client.get(path)
        assert (response.status_code, response.mimetype) == (200, mimetype), path
    assert client.get("/v1/docs/assets/../page.html").status_code == 404


def test_the_vendored_swagger_ui_is_the_version_and_files_its_note_names():
    note = (VENDORED / "VENDORED.md").read_text()
    version = re.search(r"`swagger-ui-dist` (\d+\.\d+\.\d+)", note).group(1)  # type: ignore[union-attr]
    assert version.startswith("5."), "Swagger UI 5 renders OpenAPI 3.1; 4 does not"
    bundle = (VENDORED / "swagger-ui-bundle.js").read_bytes()
    assert f'PACKAGE_VERSION:"{version}"'.encode() in bundle
    for name in ("swagger-ui-bundle.js", "swagger-ui.css"):
        digest = hashlib.sha256((VENDORED / name).read_bytes()).hexdigest()
        assert f"sha256 of `{name}`: `{digest}`" in note, name
    assert {p.name for p in VENDORED.iterdir()} == {
        "swagger-ui-bundle.js", "swagger-ui.css", "swagger-ui-bundle.js.LICENSE.txt", "LICENSE", "NOTICE",
        "VENDORED.md"}
    assert "Apache License" in (VENDORED / "LICENSE").read_text()


def test_the_initializer_asks_nothing_of_another_origin():
    script = (HERE / "assets" / "initializer.js").read_text()
    assert "validatorUrl: null" in script
    assert not re.search(r"https?://", script)
    assert Path(HERE / "page.html").read_text().count("<script") == 2
