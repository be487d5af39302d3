"""The human-readable API docs at /v1/docs: Swagger UI 5 (it renders OpenAPI 3.1), served by the app itself.

Care networks often have no internet, so nothing comes from a CDN: the page, its initializer and the vendored Swagger
UI (assets/swagger-ui/VENDORED.md) are files of this package, under a CSP that allows this origin only and no inline
script or style.
"""

from __future__ import annotations

from pathlib import Path

from service.pages import page_with_assets

HERE = Path(__file__).resolve().parent
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")

blp = page_with_assets("docs", HERE, "/v1/docs", CSP, assets_max_age=86400)
