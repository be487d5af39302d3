"""Liveness, readiness, metrics, the request id, the request log line, and how failures are answered."""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

import pytest
from alembic import command
from flask_jwt_extended import create_access_token
from prometheus_client.parser import text_string_to_metric_families

from service import create_app
from service.auth.access import public
from service.auth.models import ApiClient, Role
from service.auth.service import token_claims
from service.config import API_VERSION
from service.operations import alembic_config, newest_revision
from tests.factories import make_institution

UNREACHABLE_POSTGRES = "postgresql+psycopg://nobody@127.0.0.1:1/none"
HEX_ID = re.compile(r"^[0-9a-f]{32}$")


def assert_conventions(response) -> None:  # type: ignore[no-untyped-def]
    assert response.headers["API-Version"] == API_VERSION
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def problem_body(status: int, title: str, detail: str, request_id: str) -> dict[str, object]:
    return {"type": "about:blank", "title": title, "status": status, "detail": detail,
            "instance": f"urn:request:{request_id}"}


def scrape(client: Any) -> Any:
    """GET /metrics as Prometheus does, with the configured METRICS_TOKEN."""
    token = client.application.extensions["settings"].metrics_token
    return client.get("/metrics", headers={"Authorization": f"Bearer {token}"})


def sample(metrics_text: str, name: str, labels: dict[str, str]) -> float:
    """The value of one sample in a Prometheus exposition (0 when absent)."""
    for family in text_string_to_metric_families(metrics_text):
        for found in family.samples:
            if found.name == name and all(found.labels.get(k) == v for k, v in labels.items()):
                return found.value
    return 0.0


@pytest.fixture
def unreachable_app(settings):  # type: ignore[no-untyped-def]
    return create_app(settings.with_overrides(database_url=UNREACHABLE_POSTGRES))


# Liveness and readiness


def test_healthz_answers_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.json == {"status": "ok"}
    assert_conventions(response)


def test_healthz_does_not_need_the_database(unreachable_app):
    response = unreachable_app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_readyz_reports_the_newest_schema_revision(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json == {"status": "ready", "schemaRevision": newest_revision()}
    assert newest_revision() is not None
    assert_conventions(response)


def test_readyz_is_503_when_the_database_is_unreachable(unreachable_app):
    response = unreachable_app.test_client().get("/readyz", headers={"X-Request-ID": "ready-0001"})
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert response.headers["Retry-After"] == "5"
    assert response.json == problem_body(503, "Service Unavailable", "The database is unreachable.", "ready-0001")
    assert_conventions(response)


SCHEMA_BEHIND = "The database schema is not at the newest migration; run `risk-register db upgrade`."


def test_readyz_is_503_when_the_schema_was_migrated_back_to_base(settings, tmp_path):
    url = f"sqlite:///{tmp_path / 'behind.sqlite3'}"
    command.upgrade(alembic_config(url), "head")
    command.downgrade(alembic_config(url), "base")
    app = create_app(settings.with_overrides(database_url=url))

    response = app.test_client().get("/readyz", headers={"X-Request-ID": "ready-0002"})

    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert response.headers["Retry-After"] == "30"
    assert response.json == problem_body(503, "Service Unavailable", SCHEMA_BEHIND, "ready-0002")
    assert_conventions(response)


def test_readyz_is_503_with_retry_after_for_a_database_never_migrated(settings, tmp_path):
    app = create_app(settings.with_overrides(database_url=f"sqlite:///{tmp_path / 'empty.sqlite3'}"))
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert response.headers["Retry-After"] in ("5", "30")
    assert response.json["status"] == 503
    assert_conventions(response)


def test_readyz_tells_to_migrate_a_database_never_migrated(settings, tmp_path):
    app = create_app(settings.with_overrides(database_url=f"sqlite:///{tmp_path / 'empty.sqlite3'}"))
    response = app.test_client().get("/readyz", headers={"X-Request-ID": "ready-0003"})
    assert response.json == problem_body(503, "Service Unavailable", SCHEMA_BEHIND, "ready-0003")
    assert response.headers["Retry-After"] == "30"


# Metrics


def test_metrics_count_requests_by_route_pattern_and_time_them(client):
    labels = {"route": "/healthz", "method": "GET", "status": "200"}
    before = sample(scrape(client).get_data(as_text=True), "http_requests_total", labels)

    assert client.get("/healthz").status_code == 200
    response = scrape(client)

    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert_conventions(response)
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    text = response.get_data(as_text=True)
    assert 'http_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert sample(text, "http_requests_total", labels) == before + 1
    timing = {"route": "/healthz", "method": "GET"}
    assert 'http_request_duration_seconds_bucket{le="0.005",method="GET",route="/healthz"}' in text
    count = sample(text, "http_request_duration_seconds_count", timing)
    assert count >= 1
    assert sample(text, "http_request_duration_seconds_bucket", timing | {"le": "+Inf"}) == count


def test_metrics_label_routes_by_pattern_not_by_path(client, token_for, session):
    institution = make_institution(session)
    headers = token_for(Role.ADMIN)
    assert client.get(f"/v1/institutions/{institution.id}", headers=headers).status_code == 200

    text = scrape(client).get_data(as_text=True)

    assert str(institution.id) not in text
    assert sample(text, "http_requests_total", {"route": "/v1/institutions/<uuid:institutionId>",
                                                "method": "GET", "status": "200"}) >= 1


# Request id


def test_a_valid_request_id_is_echoed(client):
    response = client.get("/healthz", headers={"X-Request-ID": "abc-12345"})
    assert response.headers["X-Request-ID"] == "abc-12345"


@pytest.mark.parametrize("incoming", [
    "bad id with spaces", "a" * 65, "semi;colon", "", "short-1", "dotted.id.1234", "under_score_1234",
    "111222333",  # a citizen service number
    "0612345678",  # a phone number
    "CL-0042-111222333",
    "ref-12-03-2010",  # a date of birth
])
def test_an_invalid_request_id_is_replaced_by_a_generated_one(client, incoming):
    response = client.get("/healthz", headers={"X-Request-ID": incoming})
    assert HEX_ID.match(response.headers["X-Request-ID"])
    assert response.headers["X-Request-ID"] != incoming


@pytest.mark.parametrize("incoming", ["550e8400-e29b-41d4-a716-446655440000", "8cda80a34b454123917f6494e8c2d219",
                                      "trace-2026-11-20-0001", "log-line-1"])
def test_a_token_shaped_request_id_without_identifying_data_is_kept(client, incoming):
    # The second UUID holds 454123917, which passes the BSN 11-proof: inside a generated id it is no number.
    assert client.get("/healthz", headers={"X-Request-ID": incoming}).headers["X-Request-ID"] == incoming


def test_without_a_request_id_one_is_generated_per_request(client):
    first = client.get("/healthz").headers["X-Request-ID"]
    second = client.get("/healthz").headers["X-Request-ID"]
    assert HEX_ID.match(first) and HEX_ID.match(second)
    assert first != second


def test_the_request_id_is_the_instance_of_a_problem(client):
    response = client.get("/v1/no-such-thing", headers={"X-Request-ID": "trace-42"})
    assert response.status_code == 404
    assert response.json["instance"] == "urn:request:trace-42"
    assert_conventions(response)


# The request log line


def _request_lines(caplog) -> list[str]:  # type: ignore[no-untyped-def]
    return [r.getMessage() for r in caplog.records if r.name == "service.request"]


def test_the_request_log_line_carries_method_route_status_and_request_id(client, token_for, caplog):
    headers = token_for(Role.ADMIN) | {"X-Request-ID": "log-line-1"}
    caplog.set_level(logging.INFO)

    response = client.post("/v1/institutions?q=CANARY-QUERY", headers=headers,
                           json={"name": "CANARY-BODY", "sector": "youthCare", "municipalityCode": "GM0014"})

    assert response.status_code == 201, response.json
    lines = _request_lines(caplog)
    assert len(lines) == 1
    assert re.fullmatch(r"log-line-1 POST /v1/institutions 201 \d+\.\dms client=[0-9a-f-]{36}", lines[0]), lines
    everything = "\n".join(f"{r.getMessage()} {r.args!r}" for r in caplog.records)
    assert "CANARY" not in everything


def test_a_refused_body_is_not_logged_either(client, token_for, caplog):
    headers = token_for(Role.ADMIN) | {"X-Request-ID": "log-line-2"}
    caplog.set_level(logging.DEBUG)

    response = client.post("/v1/institutions?q=CANARY-QUERY", headers=headers,
                           json={"name": "CANARY-BODY", "sector": "CANARY-SECTOR", "municipalityCode": "CANARY"})

    assert response.status_code == 400
    assert re.fullmatch(r"log-line-2 POST /v1/institutions 400 \d+\.\dms client=[0-9a-f-]{36}",
                        _request_lines(caplog)[0])
    everything = "\n".join(f"{r.getMessage()} {r.args!r}" for r in caplog.records)
    assert "CANARY" not in everything


def test_the_request_log_line_names_the_route_pattern_not_the_path(client, token_for, session, caplog):
    institution = make_institution(session)
    headers = token_for(Role.ADMIN) | {"X-Request-ID": "log-line-3"}
    caplog.set_level(logging.INFO, logger="service.request")

    assert client.get(f"/v1/institutions/{institution.id}", headers=headers).status_code == 200

    [line] = _request_lines(caplog)
    assert line.startswith("log-line-3 GET /v1/institutions/<uuid:institutionId> 200 ")
    assert str(institution.id) not in line


# Failures


@pytest.fixture
def boom_app(settings):  # type: ignore[no-untyped-def]
    app = create_app(settings)
    app.add_url_rule("/v1/boom", view_func=public(lambda: 1 / 0), endpoint="boom")
    app.config["PROPAGATE_EXCEPTIONS"] = False
    return app


def test_an_unexpected_exception_is_a_500_problem_without_internals(boom_app, caplog):
    caplog.set_level(logging.INFO)
    response = boom_app.test_client().get("/v1/boom", headers={"X-Request-ID": "boom-0001"})

    assert response.status_code == 500
    assert response.mimetype == "application/problem+json"
    assert response.json == problem_body(
        500, "Internal Server Error",
        "The server could not complete the request. Quote the instance when reporting it.", "boom-0001")
    text = response.get_data(as_text=True)
    for leak in ("ZeroDivisionError", "division by zero", "Traceback", ".py", "/work/", "site-packages"):
        assert leak not in text
    assert_conventions(response)
    assert any(line.startswith("boom-0001 GET /v1/boom 500 ") for line in _request_lines(caplog))


def test_a_database_outage_inside_a_request_is_a_503_problem(unreachable_app):
    with unreachable_app.app_context():
        admin = ApiClient(id=uuid.uuid4(), name="admin", role=Role.ADMIN, municipality_codes=[])
        token = create_access_token(identity=str(admin.id), additional_claims=token_claims(admin))

    response = unreachable_app.test_client().get(
        "/v1/institutions", headers={"Authorization": f"Bearer {token}", "X-Request-ID": "outage-1"})

    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert response.headers["Retry-After"] == "5"
    assert response.json == problem_body(
        503, "Service Unavailable", "The register's database is unavailable. Nothing was recorded; retry later.",
        "outage-1")
    assert_conventions(response)
