"""/dashboard/ in a real browser: the demo analyst signs in, sees the demo hotspot in the table and on the funnel
plot, switches language, signs out, and is signed out when the token expires; nothing leaves the origin and
nothing is logged as an error. The run saves docs/dashboard.png, the screenshot README shows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from service.demo import HOTSPOT, seed_demo
from service.incidents.service import IdentityKeys
from tests.browser.conftest import LiveServer, RecordedPage

# 2026-Q3 is then the last full quarter, inside the demo's two years of data.
pytestmark = pytest.mark.clock("2026-11-20")
TODAY = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
SCREENSHOT = Path(__file__).resolve().parent.parent.parent / "docs" / "dashboard.png"


@pytest.fixture
def analyst(live_server: LiveServer) -> tuple[str, str]:
    """The demo data on the live server's database, and the demo analyst's client id and (fresh) secret."""
    app = live_server.app
    with Session(app.extensions["database"]["engine"], expire_on_commit=False) as session:
        credentials = seed_demo(session, IdentityKeys.from_settings(app.extensions["settings"]))
        session.commit()
    return credentials["analyst"]


def sign_in(page: Any, analyst: tuple[str, str]) -> None:
    page.fill("#client-id", analyst[0])
    page.fill("#client-secret", analyst[1])
    page.click("#sign-in button[type=submit]")
    page.locator("#dashboard-view").wait_for(state="visible")


def show_quarter(page: Any, quarter: str) -> None:
    page.select_option("#period-type", "quarter")
    page.select_option("#period", quarter)
    page.locator("#funnel-plot svg circle").first.wait_for()
    page.locator("#reporting-funnel tbody tr").first.wait_for()
    page.locator("#trends tbody tr").first.wait_for()


def test_the_analyst_sees_the_demo_hotspot_in_the_table_and_on_the_funnel_plot(
        page: RecordedPage, live_server: LiveServer, analyst: tuple[str, str]):
    browser = page.page
    browser.clock.install(time=TODAY)  # the browser's periods are those of the server's clock
    response = browser.goto("/dashboard/")
    assert response.status == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert "unsafe-inline" not in response.headers["content-security-policy"]
    assert browser.locator("#sign-in-view").is_visible() and browser.locator("#dashboard-view").is_hidden()

    sign_in(browser, analyst)
    show_quarter(browser, "2026-Q3")

    first = browser.locator("#hotspots tbody tr").first
    assert first.locator("td").first.inner_text() == HOTSPOT  # ordered by the empirical-Bayes rate
    assert first.get_attribute("class") in ("above95", "above998")
    points = browser.locator("#funnel-plot svg circle")
    assert points.count() >= 3
    hotspot_id = first.get_attribute("data-unit-id")
    assert browser.locator(f"#funnel-plot svg circle[data-unit-id='{hotspot_id}']").count() == 1
    suppressed = browser.locator("#hotspots td.suppressed")
    assert all(cell.inner_text() == "<10" for cell in suppressed.all())
    # Dutch by default, in the page and in the plot.
    assert browser.inner_text("#dashboard-view h2 >> nth=0") == "Brandpunten"
    assert "Plaatsmaanden" in browser.inner_html("#funnel-plot")
    browser.screenshot(path=str(SCREENSHOT), full_page=True)

    # Sortable: by signals, ascending then descending.
    browser.click("#hotspots th[data-key='incidents']")
    assert browser.get_attribute("#hotspots th[data-key='incidents']", "aria-sort") == "descending"
    assert browser.locator("#hotspots tbody tr").first.get_attribute("data-unit-id") == hotspot_id

    # English, then Dutch again.
    browser.click("#language")
    browser.locator("#dashboard-view h2 >> text=Hotspots").wait_for()
    browser.locator("#funnel-plot >> text='Place-months'").wait_for()
    browser.click("#language")
    browser.locator("#dashboard-view h2 >> text=Brandpunten").wait_for()
    browser.locator("#funnel-plot >> text='Plaatsmaanden'").wait_for()
    assert browser.evaluate("document.documentElement.lang") == "nl"

    browser.click("#sign-out")
    assert browser.locator("#sign-in-view").is_visible()
    assert browser.locator("#hotspots tbody tr").count() == 0
    assert browser.locator("#funnel-plot svg").count() == 0
    # The token was in memory only: nothing in the browser's storage or cookies.
    assert browser.evaluate("localStorage.length + sessionStorage.length") == 0
    assert browser.context.cookies() == []

    assert page.errors == []
    assert page.elsewhere() == []
    assert any(url.endswith("/v1/oauth/token") for url in page.requests)


def test_an_expired_token_returns_to_the_sign_in_page(
        page: RecordedPage, live_server: LiveServer, analyst: tuple[str, str]):
    browser = page.page
    browser.clock.install(time=TODAY)
    browser.goto("/dashboard/")
    sign_in(browser, analyst)
    show_quarter(browser, "2026-Q3")
    lifetime = live_server.app.config["JWT_ACCESS_TOKEN_EXPIRES"]
    refused: list[str] = []
    browser.on("response", lambda response: response.status == 401 and refused.append(response.url))

    browser.clock.fast_forward(int(lifetime.total_seconds() * 1000))

    browser.locator("#sign-in-view").wait_for(state="visible")
    assert browser.locator("#dashboard-view").is_hidden()
    assert browser.inner_text("#sign-in-message") == "Uw sessie is verlopen. Meld u opnieuw aan."
    assert browser.locator("#hotspots tbody tr").count() == 0
    assert refused == []  # signed out before the token could be refused
    assert page.errors == []
    assert page.elsewhere() == []
