"""Pages the app serves itself (the API docs, the dashboard): a page and its assets from a package folder, under a
Content-Security-Policy of their own, to anyone (a page holds no data; what it shows comes from the API with the
reader's token)."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, send_from_directory

from service.auth.access import public
from service.http import produces


def page_with_assets(name: str, folder: Path, url: str, csp: str, *, assets_max_age: int) -> Blueprint:
    """A blueprint serving `folder`/page.html at `url` and `folder`/assets/ below it, every answer under `csp`.
    The page is never cached (it names the assets); the assets for `assets_max_age` seconds."""
    blp = Blueprint(name, __name__)

    @blp.after_request
    def _policy(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = csp
        return response

    @blp.get(url, merge_slashes=False)  # a slash too many is a 404, not a redirect
    @produces("text/html")
    @public
    def page() -> Response:
        return send_from_directory(folder, "page.html", mimetype="text/html", max_age=0)

    @blp.get(f"{url.rstrip('/')}/assets/<path:filename>")
    @produces("*/*")
    @public
    def asset(filename: str) -> Response:
        return send_from_directory(folder / "assets", filename, max_age=assets_max_age)

    return blp
