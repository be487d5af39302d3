"""The analysts' dashboard at /dashboard/: hotspots, the funnel plot, trends and the reporting funnel in a browser.

Plain HTML, one script and one style sheet of this package (no build step, no framework, nothing from a CDN), under
a Content-Security-Policy that allows this origin only and no inline script or style. The page signs in with the
OAuth2 token endpoint (client credentials of an analyst client) and keeps the token in a script variable only:
never in localStorage, sessionStorage or a cookie. It signs out when the token expires (or the API answers 401).
"""

from __future__ import annotations

from pathlib import Path

from service.pages import page_with_assets

HERE = Path(__file__).resolve().parent
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")

blp = page_with_assets("dashboard", HERE, "/dashboard/", CSP, assets_max_age=0)
