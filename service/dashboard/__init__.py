"""The analysts' dashboard at /dashboard/: hotspots, the funnel plot, trends and the reporting funnel in a browser.

Plain HTML, one script and one style sheet of this package (no build step, no framework, nothing from a CDN), under
a Content-Security-Policy that allows this origin only and no inline script or style. The page signs in with the
OAuth2 token endpoint (client credentials of an analyst client) and keeps the token in a script variable only:
never in localStorage, sessionStorage or a cookie. It signs out when the token expires (or the API answers 401).
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, send_from_directory

from service.auth.access import public
from service.http import produces

HERE = Path(__file__).resolve().parent
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")

blp = Blueprint("dashboard", __name__)


@blp.after_request
def _dashboard_policy(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    return response


@blp.get("/dashboard/", merge_slashes=False)  # /dashboard// is a 404 like any other slash too many
@produces("text/html")
@public
def dashboard_page() -> Response:
    """The dashboard page; everything it shows comes from the API of this origin, with the analyst's token."""
    return send_from_directory(HERE, "page.html", mimetype="text/html", max_age=0)


@blp.get("/dashboard/assets/<path:filename>")
@produces("*/*")
@public
def dashboard_asset(filename: str) -> Response:
    """The dashboard's script and style sheet."""
    return send_from_directory(HERE / "assets", filename, max_age=0)
