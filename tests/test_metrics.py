"""/metrics: one well-formed Content-Type, and the domain metrics of service/metrics.py."""

from __future__ import annotations

import email.message
from importlib import metadata

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine

from service import clock, create_app
from service.auth.models import Role
from service.config import API_VERSION
from tests.factories import make_location
from tests.incidents.factories import incident_body
from tests.test_operations import sample, scrape


def _metrics(client) -> str:  # type: ignore[no-untyped-def]
    return scrape(client).get_data(as_text=True)


def _families(text: str) -> dict[str, list]:  # type: ignore[type-arg]
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def test_the_content_type_is_the_text_format_with_one_charset(client):
    response = scrape(client)

    assert response.status_code == 200
    header = response.headers.get_all("Content-Type")
    assert header == ["text/plain; version=0.0.4; charset=utf-8"]
    parsed = email.message.Message()
    parsed["Content-Type"] = header[0]
    assert parsed.get_params() == [("text/plain", ""), ("version", "0.0.4"), ("charset", "utf-8")]


def test_statistics_requests_are_counted_by_endpoint_only(client, token_for):
    analyst = token_for(Role.ANALYST)
    year = str(clock.today().year - 1)
    requests = {
        "hotspots": f"/v1/stats/hotspots?period={year}&groupBy=location",
        "trends": f"/v1/stats/trends?periodType=year&from={year}&to={year}&groupBy=municipality",
        "reporting-funnel": f"/v1/stats/reporting-funnel?period={year}&groupBy=institution",
    }
    before = {endpoint: sample(_metrics(client), "risk_register_statistics_requests_total", {"endpoint": endpoint})
              for endpoint in requests}

    for path in requests.values():
        assert client.get(path, headers=analyst).status_code == 200, path
    assert client.get("/v1/stats/hotspots?period=nonsense&groupBy=location", headers=analyst).status_code == 400

    text = _metrics(client)
    assert {endpoint: sample(text, "risk_register_statistics_requests_total", {"endpoint": endpoint}) - before[endpoint]
            for endpoint in requests} == {"hotspots": 1, "trends": 1, "reporting-funnel": 1}
    samples = _families(text)["risk_register_statistics_requests"]
    assert {tuple(s.labels) for s in samples} == {("endpoint",)}


def test_every_access_event_append_is_timed(client, session, token_for):
    location = make_location(session)
    headers = token_for(Role.INSTITUTION, institution_id=location.institution_id)
    before = sample(_metrics(client), "risk_register_access_log_append_seconds_count", {})

    assert client.post("/v1/incidents", json=incident_body(location.id), headers=headers).status_code == 201
    assert client.get("/v1/incidents", headers=headers).status_code == 200
    assert client.get("/v1/taxonomy", headers=headers).status_code == 200  # not audited: no event

    text = _metrics(client)
    assert sample(text, "risk_register_access_log_append_seconds_count", {}) == before + 2
    assert sample(text, "risk_register_access_log_append_seconds_sum", {}) > 0


def test_the_pool_gauges_are_read_from_the_pool_at_scrape_time(settings, tmp_path):
    url = f"sqlite:///{tmp_path / 'pool.sqlite3'}"
    create_engine(url).dispose()
    app = create_app(settings.with_overrides(database_url=url))
    engine = app.extensions["database"]["engine"]
    http = app.test_client()

    held = [engine.connect() for _ in range(7)]
    busy = _metrics(http)
    for connection in held:
        connection.close()
    idle = _metrics(http)
    engine.dispose()

    gauges = ("checked_out", "size", "overflow", "checked_in")
    assert {g: sample(busy, f"risk_register_db_pool_{g}", {}) for g in gauges} == {
        "checked_out": 7, "size": 5, "overflow": 2, "checked_in": 0}
    assert {g: sample(idle, f"risk_register_db_pool_{g}", {}) for g in gauges} == {
        "checked_out": 0, "size": 5, "overflow": 0, "checked_in": 5}


def test_rate_limit_rejections_are_counted_by_limit(settings, connection, session):
    from tests.test_ratelimit import _app, _bearer

    app = _app(settings, connection, rate_limit="2 per minute", token_rate_limit="1 per minute")
    http = app.test_client()
    headers = _bearer(app, session)
    before = {limit: sample(_metrics(http), "risk_register_rate_limited_total", {"limit": limit})
              for limit in ("api", "token")}

    statuses = [http.get("/v1/institutions", headers=headers).status_code for _ in range(3)]
    statuses += [http.post("/v1/oauth/token", data={"grant_type": "client_credentials"}).status_code
                 for _ in range(2)]

    assert statuses == [200, 200, 429, 401, 429]
    text = _metrics(http)
    assert {limit: sample(text, "risk_register_rate_limited_total", {"limit": limit}) - before[limit]
            for limit in before} == {"api": 1, "token": 1}


def test_the_build_info_names_the_api_and_package_version(client):
    [build] = _families(_metrics(client))["risk_register_build_info"]
    assert (build.labels, build.value) == (
        {"api_version": API_VERSION, "version": metadata.version("risk-register")}, 1)


# --- who may read them, and what they do not tell (DESIGN §5: operational metrics are no side channel) -------------


def test_metrics_need_the_metrics_token(client, token_for):
    for headers in ({}, {"Authorization": "Bearer wrong"}, token_for(Role.ADMIN)):
        response = client.get("/metrics", headers=headers)
        assert response.status_code == 401
        assert response.mimetype == "application/problem+json"
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert b"http_requests_total" not in response.get_data()
    assert scrape(client).status_code == 200


def test_without_a_metrics_token_configured_metrics_are_not_served(settings):
    app = create_app(settings.with_overrides(metrics_token=""))
    response = app.test_client().get("/metrics", headers={"Authorization": "Bearer "})
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


def test_signals_recorded_are_not_counted_one_by_one(client, session, token_for):
    location = make_location(session)
    institution = token_for(Role.INSTITUTION, institution_id=location.institution_id)
    before = _metrics(client)

    for n in range(3):
        body = incident_body(str(location.id), clientReference=f"METRIC-{n}")
        assert client.post("/v1/incidents", json=body, headers=institution).status_code == 201
    after = _metrics(client)

    assert "/v1/incidents" not in after
    audited = {"route": "(audited)", "method": "-", "status": "2xx"}
    assert sample(after, "http_requests_total", audited) - sample(before, "http_requests_total", audited) == 3
    recorded = _families(after)["risk_register_incidents_recorded"]
    assert [s.value % 100 for s in recorded] == [0]  # a hundred at a time, never one by one


def test_an_options_request_to_a_data_route_is_not_labelled_by_route_either(client):
    assert client.options("/v1/incidents/_batch").status_code == 200

    assert "/v1/incidents" not in _metrics(client)


def test_incidents_are_counted_a_hundred_at_a_time(client, session):
    from sqlalchemy import func, select

    from service.incidents.models import Incident
    from tests.stats.factories import seed

    seed(session, make_location(session), 250)
    recorded = session.scalar(select(func.count()).select_from(Incident))

    [sample_] = _families(_metrics(client))["risk_register_incidents_recorded"]
    if session.get_bind().dialect.name == "postgresql":
        assert sample_.value % 100 == 0  # the planner's estimate, which this transaction's rows do not move
    else:
        assert sample_.value == recorded // 100 * 100 >= 200
