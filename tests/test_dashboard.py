"""The dashboard page at /dashboard/: its own files from this origin, under a CSP without inline script or style,
and a script that keeps the token in memory only.

tests/browser/test_dashboard_browser.py drives it in Chromium; these checks need no browser.
"""

from __future__ import annotations

import re

from service.dashboard import HERE
from tests.test_docs import _Page, _policy


def test_the_dashboard_page_loads_only_its_own_assets_and_no_inline_code(client):
    response = client.get("/dashboard/", headers={"Accept": "text/html"})

    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = _Page()
    page.feed(response.get_data(as_text=True))
    assert page.inline == []
    assert page.loads == ["/dashboard/assets/dashboard.css", "data:,", "/dashboard/assets/dashboard.js"]


def test_the_dashboard_csp_allows_this_origin_only_and_nothing_inline(client):
    for path in ("/dashboard/", "/dashboard/assets/dashboard.js", "/dashboard/assets/no-such-file.js"):
        response = client.get(path)
        assert _policy(response.headers["Content-Security-Policy"]) == {
            "default-src": ["'none'"], "script-src": ["'self'"], "style-src": ["'self'"],
            "img-src": ["'self'", "data:"], "connect-src": ["'self'"], "base-uri": ["'none'"],
            "form-action": ["'none'"], "frame-ancestors": ["'none'"],
        }, path
        assert response.headers["X-Frame-Options"] == "DENY"


def test_every_asset_is_served_with_its_type_and_nothing_outside_the_folder(client):
    for path, mimetype in {"/dashboard/assets/dashboard.js": "text/javascript",
                           "/dashboard/assets/dashboard.css": "text/css"}.items():
        response = client.get(path)
        assert (response.status_code, response.mimetype) == (200, mimetype), path
    assert client.get("/dashboard/assets/../page.html").status_code == 404


def test_the_script_keeps_the_token_in_memory_and_calls_only_this_origin():
    script = (HERE / "assets" / "dashboard.js").read_text(encoding="utf-8")
    code = re.sub(r"//[^\n]*", "", script)  # the comments name what the code must not use

    for forbidden in ("localStorage", "sessionStorage", "document.cookie", "indexedDB", "innerHTML", "eval(",
                      "new Function", "http://", "https://"):
        assert forbidden not in code, forbidden
    assert re.findall(r"fetch\(\"([^\"]+)\"", code) == ["/v1/oauth/token"]
    assert set(re.findall(r"api\(\"([^\"]+)\"", code)) == {
        "/v1/taxonomy", "/v1/stats/hotspots", "/v1/stats/hotspots/funnel-plot", "/v1/stats/trends",
        "/v1/stats/reporting-funnel"}
