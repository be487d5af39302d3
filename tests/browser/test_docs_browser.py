"""/v1/docs in a real browser: Swagger UI renders the OpenAPI 3.1 document from this origin alone."""

from __future__ import annotations

import json
import urllib.request

from service.auth.models import Role
from service.config import API_VERSION
from tests.browser.conftest import LiveServer, RecordedPage

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def _document(live_server: LiveServer) -> dict:  # type: ignore[type-arg]
    with urllib.request.urlopen(f"{live_server.url}/v1/openapi.json") as response:  # noqa: S310 - our own server
        return json.load(response)


def test_the_docs_list_every_operation_with_nothing_from_elsewhere_and_no_errors(page: RecordedPage,
                                                                               live_server: LiveServer):
    document = _document(live_server)
    expected = sorted((method.upper(), path) for path, item in document["paths"].items()
                      for method in item if method in METHODS)

    response = page.page.goto("/v1/docs")
    # Locators, not page-side evaluation: the page's CSP forbids eval, which wait_for_function needs.
    operations = page.page.locator(".opblock")
    operations.nth(len(expected) - 1).wait_for()

    assert response.status == 200
    listed = sorted((block.locator(".opblock-summary-method").inner_text().strip(),
                     block.locator(".opblock-summary-path").get_attribute("data-path"))
                    for block in operations.all())
    assert listed == expected
    assert len(expected) > 20
    title = page.page.inner_text(".info .title")
    assert document["info"]["title"] in title and API_VERSION in title and "OAS 3.1" in title
    assert page.page.locator("text=Unable to render this definition").count() == 0
    assert page.errors == []
    assert page.elsewhere() == []
    assert f"{live_server.url}/v1/openapi.json" in page.requests


def test_the_live_server_commits_what_a_browser_test_sets_up(live_server: LiveServer):
    """What a dashboard test needs: a client made here is known to the server (its own database, committing)."""
    request = urllib.request.Request(f"{live_server.url}/v1/institutions",  # noqa: S310 - our own server
                                     headers={"Authorization": f"Bearer {live_server.bearer(Role.ADMIN)}"})
    with urllib.request.urlopen(request) as response:  # noqa: S310
        assert (response.status, set(json.load(response))) == (200, {"items", "nextCursor"})  # not a 401
