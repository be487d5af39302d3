"""The human-readable API docs at /v1/docs: Swagger UI 5 (it renders OpenAPI 3.1), served by the app itself.

Care networks often have no internet, so nothing comes from a CDN: the page, its initializer and the vendored Swagger
UI (assets/swagger-ui/VENDORED.md) are files of this package, under a CSP that allows this origin only and no inline
script or style.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, send_from_directory

from service.auth.access import public
from service.http import produces

HERE = Path(__file__).resolve().parent
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")

blp = Blueprint("docs", __name__)


@blp.after_request
def _docs_policy(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    return response


@blp.get("/v1/docs")
@produces("text/html")
@public
def docs_page() -> Response:
    """The docs page; it loads /v1/openapi.json from this origin."""
    return send_from_directory(HERE, "page.html", mimetype="text/html", max_age=0)


@blp.get("/v1/docs/assets/<path:filename>")
@produces("*/*")
@public
def docs_asset(filename: str) -> Response:
    """Swagger UI's script and style, and the page's initializer."""
    return send_from_directory(HERE / "assets", filename, max_age=86400)
