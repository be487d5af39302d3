"""The demo data shows a useful picture on whatever day `make run` is started (CI runs this on other days too)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from service import clock
from service.auth.models import Role
from service.demo import GRONINGEN, HOTSPOT, seed_demo
from service.incidents.service import IdentityKeys
from service.periods import labels_of, parse_period
from service.registry.models import Location


@pytest.fixture
def demo(session, app) -> None:  # type: ignore[no-untyped-def]
    seed_demo(session, IdentityKeys(b"d" * 32, 1))


def last_full(period_type: str) -> str:
    return parse_period(labels_of(clock.now())[period_type], clock.today()).previous().label


def get(client, headers: dict[str, str], path: str, **params: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    response = client.get(path, query_string=params, headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_the_last_quarter_shows_released_locations_a_trend_and_the_hotspot(client, session, token_for, demo):
    analyst = token_for(Role.ANALYST, municipality_codes=[GRONINGEN])

    body = get(client, analyst, "/v1/stats/hotspots", period=last_full("quarter"), groupBy="location")

    released = [row for row in body["units"] if not row["incidents"]["suppressed"]]
    assert len(released) >= 3
    assert body["units"][0]["unit"]["name"] == HOTSPOT
    assert body["units"][0]["funnelBand"] in ("above95", "above998")
    assert {row["trend"] for row in body["units"]} - {"unknown"}
    hotspot = session.scalar(select(Location.id).where(Location.name == HOTSPOT))
    assert body["units"][0]["unit"]["id"] == str(hotspot)


def test_every_month_of_the_last_year_has_a_released_total(client, token_for, demo):
    analyst = token_for(Role.ANALYST, municipality_codes=[GRONINGEN])
    this_month = parse_period(labels_of(clock.now())["month"], clock.today())
    a_year_ago = this_month
    for _ in range(12):
        a_year_ago = a_year_ago.previous()

    body = get(client, analyst, "/v1/stats/trends", periodType="month", groupBy="municipality",
               to=this_month.previous().label, **{"from": a_year_ago.label})

    assert len(body["total"]) == 12
    assert all(point["incidents"]["value"] for point in body["total"])


def test_the_reporting_funnel_of_the_last_quarter_releases_the_municipality(client, token_for, demo):
    analyst = token_for(Role.ANALYST, municipality_codes=[GRONINGEN])

    body = get(client, analyst, "/v1/stats/reporting-funnel", period=last_full("quarter"), groupBy="municipality")

    [groningen] = body["units"]
    assert groningen["signals"]["value"] >= 50
    assert groningen["reachedStep2"]["value"] is not None


def test_the_demo_institution_has_signals_in_its_queue_and_a_resident_worth_an_attestation(client, session, app,
                                                                                            token_for):
    from service.auth.models import ApiClient
    from service.demo import DEMO_CLIENTS, STORY, STORY_RESIDENT
    from service.signing import verify_statement

    seed_demo(session, IdentityKeys.from_settings(app.extensions["settings"]), chain_keys=app.extensions["chain_keys"])
    seed_demo(session, IdentityKeys.from_settings(app.extensions["settings"]), chain_keys=app.extensions["chain_keys"])
    demo_client = session.scalar(select(ApiClient).where(ApiClient.name == DEMO_CLIENTS[Role.INSTITUTION]))
    institution = token_for(Role.INSTITUTION, client=demo_client)

    queue = client.get("/v1/incidents/follow-up", headers=institution)
    attestation = client.post("/v1/incidents/_attestation", json={"residentRef": STORY_RESIDENT}, headers=institution)

    assert queue.status_code == 200 and queue.json["items"]
    counts = dict(part.split("=") for part in queue.headers["Follow-Up-Counts"].split(", "))
    assert all(int(n) > 0 for n in counts.values()), counts
    signals = attestation.json["statement"]["signals"]
    assert [s["clientReference"] for s in signals] == [reference for reference, *_ in STORY]  # seeded once
    assert all(s["accessLog"] for s in signals)
    assert sorted(r["action"] for s in signals for r in s["revisions"]) == ["correction", "retraction"]
    assert verify_statement(attestation.json["jws"], client.get("/v1/oauth/jwks.json").json) == \
        attestation.json["statement"]
