"""Browser tests: the app on a live server of its own, and Debian's Chromium driven by Playwright for Python.

`live_server` serves a fresh app on a migrated scratch database (committing like production) on a free port of
127.0.0.1, in a thread. `page` is a new browser page on that server that records every request it makes and every
console error, uncaught exception and CSP violation. Playwright's own browser builds are not used (they cannot be
downloaded here): Chromium comes from Debian (`apt-get install chromium`).

Without Chromium or Playwright these tests skip; under CI=true they fail instead, so CI cannot pass without them.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
from alembic import command
from flask import Flask
from flask_jwt_extended import create_access_token
from sqlalchemy.orm import Session
from werkzeug.serving import WSGIRequestHandler, make_server

from service import create_app
from service.auth import service as auth_service
from service.auth.models import Role
from service.config import Settings
from service.operations import alembic_config
from tests.conftest import ScratchDatabases, unavailable
from tests.factories import make_client

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
# Waits for the page to get somewhere, not measurements: generous so that a loaded CI machine does not fail them.
WAIT_MS = 60_000


class _QuietHandler(WSGIRequestHandler):
    """The app logs each request itself; werkzeug's own line would print the raw path and query."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


@dataclass
class LiveServer:
    url: str
    app: Flask

    def bearer(self, role: Role, **scope: Any) -> str:
        """An access token of a new committed client with `role` (analysts and auditors: GM0014)."""
        if role in (Role.ANALYST, Role.AUDITOR):
            scope.setdefault("municipality_codes", ["GM0014"])
        with Session(self.app.extensions["database"]["engine"], expire_on_commit=False) as session:
            client, _secret = make_client(session, role=role, **scope)
            session.commit()
        with self.app.app_context():
            return create_access_token(identity=str(client.id), additional_claims=auth_service.token_claims(client))


@pytest.fixture(scope="session")
def live_server(scratch_databases: ScratchDatabases, settings: Settings) -> Iterator[LiveServer]:
    url = scratch_databases.create()
    command.upgrade(alembic_config(url), "head")
    app = create_app(settings.with_overrides(database_url=url))
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    yield LiveServer(f"http://127.0.0.1:{server.port}", app)
    server.shutdown()
    thread.join()
    app.extensions["database"]["engine"].dispose()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("Playwright for Python is not installed", "Playwright")
    if shutil.which(CHROMIUM) is None:
        unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium)", "Chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@dataclass
class RecordedPage:
    """A Playwright page, with what it asked for and what went wrong in it."""

    page: Any
    origin: str
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def elsewhere(self) -> list[str]:
        """Requests that left the server's origin (data: URLs stay in the page)."""
        origin = urlsplit(self.origin)
        return [url for url in self.requests
                if urlsplit(url).scheme != "data" and urlsplit(url)[:2] != (origin.scheme, origin.netloc)]


@pytest.fixture
def page(browser: Any, live_server: LiveServer) -> Iterator[RecordedPage]:
    context = browser.new_context(base_url=live_server.url, service_workers="block")
    context.set_default_timeout(WAIT_MS)
    recorded = RecordedPage(context.new_page(), live_server.url)
    context.on("request", lambda request: recorded.requests.append(request.url))
    recorded.page.on("console", lambda message: message.type == "error" and recorded.errors.append(message.text))
    recorded.page.on("pageerror", lambda error: recorded.errors.append(f"uncaught: {error}"))
    yield recorded
    context.close()
