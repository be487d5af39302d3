"""Log lines: JSON with LOG_FORMAT=json for the app and gunicorn alike, with a request's fields and nothing a
client sent: no body, no query string, no identifier from a path, no exception message."""

from __future__ import annotations

import io
import json
import logging
import re
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from service import create_app, logs
from service.auth.access import public
from service.auth.models import Role
from service.config import ConfigurationError, load_settings
from service.gunicorn import RegisterLogger
from service.operations import alembic_config
from tests.factories import make_client, make_location
from tests.incidents.factories import incident_body
from tests.serving import BIN, free_port, served, suite_clock

# What a client sends that must never reach a log line, in every form the service turns it into.
RESIDENT, PLATE, PHONE, NOTE, REFERENCE = "QZRES-8841", "QZ-481-X", "06 4132 9987", "QZNOTE", "QZREF-7731"
SECRETS = ("QZRES", "8841", "QZ481X", "QZ-481-X", "41329987", "4132 9987", "QZNOTE", "QZREF", "QZQUERY")
REQUEST_FIELDS = {"request_id", "client_id", "route", "method", "status", "duration_ms"}


def identifying_body(location_id: object) -> dict[str, Any]:
    return incident_body(location_id, kind="suspiciousVisitor", residentRef=RESIDENT, clientReference=REFERENCE,
                         note=f"Bezoeker {NOTE} wachtte bij de poort.",
                         visitor={"estimatedAgeBand": "23plus", "vehiclePlate": PLATE, "phoneNumber": PHONE,
                                  "relationClaimed": "friend"})


# What the service writes itself and a client did not send: request ids it made, client ids, timestamps. Left out
# before searching, or a random id holding "8841" would look like a leak (it did, once in a few hundred runs).
GENERATED = re.compile(r"\b[0-9a-f]{32}\b|\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"
                       r"|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:[+-]\d\d:\d\d|Z)?")


def assert_nothing_identifying(lines: list[str], *identifiers: str) -> None:
    """No line holds what the client sent (SECRETS) or any of `identifiers` (searched in the whole line)."""
    leaked = [line for line in lines if any(s in GENERATED.sub("", line) for s in SECRETS)
              or any(s in line for s in identifiers)]
    assert leaked == []


@pytest.fixture
def json_lines() -> Iterator[Callable[[], list[str]]]:
    """Everything logged at DEBUG and above during the test, as the JSON formatter writes it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.formatter("json"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield lambda: stream.getvalue().splitlines()
    root.removeHandler(handler)
    root.setLevel(level)


def test_log_format_is_text_or_json(tmp_path):
    base = {"INSTANCE_PATH": str(tmp_path)}
    assert load_settings(base).log_format == "text"
    assert load_settings(base | {"LOG_FORMAT": "json"}).log_format == "json"
    with pytest.raises(ConfigurationError, match="LOG_FORMAT must be text or json"):
        load_settings(base | {"LOG_FORMAT": "xml"})


def test_a_request_line_in_json_carries_the_request_fields(client, token_for, session, json_lines):
    location = make_location(session)
    headers = token_for(Role.INSTITUTION, institution_id=location.institution_id) | {"X-Request-ID": "json-0001"}

    created = client.post("/v1/incidents", json=identifying_body(location.id), headers=headers)

    assert created.status_code == 201, created.json
    lines = [json.loads(line) for line in json_lines()]
    [line] = [line for line in lines if line["logger"] == "service.request"]
    client_id = line["client_id"]
    assert uuid.UUID(client_id)
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert set(line) == {"timestamp", "level", "logger", "message"} | REQUEST_FIELDS
    assert {k: v for k, v in line.items() if k not in ("timestamp", "duration_ms")} == {
        "level": "INFO", "logger": "service.request", "request_id": "json-0001", "client_id": client_id,
        "route": "/v1/incidents", "method": "POST", "status": 201,
        "message": f"json-0001 POST /v1/incidents 201 {line['duration_ms']:.1f}ms client={client_id}"}


def test_no_log_line_carries_what_the_client_sent(client, token_for, session, json_lines):
    location = make_location(session)
    headers = token_for(Role.INSTITUTION, institution_id=location.institution_id)

    created = client.post("/v1/incidents", json=identifying_body(location.id), headers=headers)
    incident = created.json["id"]
    answers = [
        client.get(f"/v1/incidents/{incident}", headers=headers),
        client.post("/v1/incidents/_search", json={"residentRef": RESIDENT}, headers=headers),
        client.get("/v1/incidents?kind=QZQUERY", headers=headers),
        client.post("/v1/incidents", json=identifying_body(location.id) | {"kind": "QZQUERY"}, headers=headers),
        client.post("/v1/incidents", json=identifying_body(location.id), headers=headers),  # clientReference taken
    ]

    assert [created.status_code, *(a.status_code for a in answers)] == [201, 200, 200, 400, 400, 409], [
        a.json for a in answers]
    lines = json_lines()
    assert len(lines) >= 6
    parsed = [json.loads(line) for line in lines]
    assert [p["route"] for p in parsed if p["logger"] == "service.request"] == [
        "/v1/incidents", "/v1/incidents/<uuid:incidentId>", "/v1/incidents/_search", "/v1/incidents",
        "/v1/incidents", "/v1/incidents"]
    assert_nothing_identifying(lines, incident)


def test_an_unhandled_exception_is_logged_by_route_without_its_message(settings, json_lines):
    app = create_app(settings)
    app.config["PROPAGATE_EXCEPTIONS"] = False

    def explode(name: str) -> None:
        raise ValueError(f"cannot read {name}") from KeyError(RESIDENT)

    app.add_url_rule("/v1/boom/<name>", view_func=public(explode), endpoint="boom")

    response = app.test_client().get("/v1/boom/QZRES-8841?note=QZNOTE", headers={"X-Request-ID": "boom-0002"})

    assert response.status_code == 500
    lines = json_lines()
    [error] = [json.loads(line) for line in lines if json.loads(line)["level"] == "ERROR"]
    assert error["message"] == "unhandled exception in GET /v1/boom/<name>"
    assert (error["request_id"], error["route"]) == ("boom-0002", "/v1/boom/<name>")
    assert "builtins.KeyError (message withheld)" in error["exc_info"]
    assert error["exc_info"].endswith("builtins.ValueError (message withheld)")
    assert "in explode" in error["exc_info"]
    assert_nothing_identifying(lines)


def test_the_text_format_withholds_exception_messages_too():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.formatter("text"))
    logger = logging.getLogger("tests.text_format")
    logger.addHandler(handler)
    try:
        try:
            raise RuntimeError(f"duplicate key {RESIDENT}")
        except RuntimeError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert " ERROR tests.text_format failed\nTraceback (most recent call last):\n" in text
    assert text.endswith("builtins.RuntimeError (message withheld)\n")
    assert_nothing_identifying([text])


def test_gunicorns_errors_about_a_request_withhold_its_target_and_content(monkeypatch):
    recorded: list[tuple[str, tuple[Any, ...]]] = []
    logger = RegisterLogger.__new__(RegisterLogger)
    monkeypatch.setattr("gunicorn.glogging.Logger.exception", lambda self, msg, *a, **k: recorded.append((msg, a)))
    monkeypatch.setattr("gunicorn.glogging.Logger.warning", lambda self, msg, *a, **k: recorded.append((msg, a)))

    logger.exception("Error handling request %s %s", "GET", "/v1/incidents/QZRES?note=QZNOTE")
    logger.warning("Invalid request from ip=10.0.0.9: Invalid HTTP request line: 'GET /QZQUERY'")
    logger.warning("Worker (pid:%s) was sent SIGTERM!", 42)

    assert recorded == [("Error handling request (its target is not logged)", ()),
                        ("Invalid request refused (its content is not logged)", ()),
                        ("Worker (pid:%s) was sent SIGTERM!", (42,))]


@pytest.fixture
def gunicorn_register(tmp_path: Path) -> dict[str, Any]:
    """A migrated SQLite register with one institution client, for a gunicorn of its own."""
    url = f"sqlite:///{tmp_path / 'served.sqlite3'}"
    command.upgrade(alembic_config(url), "head")
    engine = create_engine(url)
    with Session(engine, expire_on_commit=False) as session:
        location = make_location(session)
        client, secret = make_client(session, role=Role.INSTITUTION, institution_id=location.institution_id)
        session.commit()
    engine.dispose()
    return {"url": url, "location": location.id, "client": (str(client.id), secret)}


@pytest.mark.slow
def test_under_gunicorn_every_line_is_json_with_the_request_fields_and_nothing_identifying(gunicorn_register,
                                                                                         tmp_path):
    port = free_port()
    env = {"INSTANCE_PATH": str(tmp_path / "instance"), "DATABASE_URL": gunicorn_register["url"],
           "LOG_FORMAT": "json", "APP_ENV": "development", "METRICS_TOKEN": "served-metrics"} | suite_clock()
    argv = [str(BIN / "risk-register"), "serve", "--bind", f"127.0.0.1:{port}", "--workers", "2"]
    client_id, secret = gunicorn_register["client"]
    with served(argv, env, tmp_path, port) as server:
        status, token = server.request("POST", "/v1/oauth/token", form={
            "grant_type": "client_credentials", "client_id": client_id, "client_secret": secret})
        assert status == 200, token
        bearer = {"Authorization": f"Bearer {token['access_token']}"}
        status, created = server.request("POST", "/v1/incidents", identifying_body(gunicorn_register["location"]),
                                         bearer | {"X-Request-ID": "served-1"})
        assert status == 201, created
        assert server.request("GET", f"/v1/incidents/{created['id']}", headers=bearer)[0] == 200
        assert server.request("POST", "/v1/incidents/_search", {"residentRef": RESIDENT}, bearer)[0] == 200
        assert server.request("GET", "/v1/incidents?kind=QZQUERY", headers=bearer)[0] == 400
        with socket.create_connection(("127.0.0.1", port)) as raw:
            raw.sendall(b"GET /QZQUERY?QZRES=8841 HTTP/1.1 QZNOTE\r\n\r\n")
            assert raw.recv(100).startswith(b"HTTP/1.1 400")
        status, metrics = server.request("GET", "/metrics", headers={"Authorization": "Bearer served-metrics"})
        assert status == 200 and "risk_register_build_info{" in metrics
        assert "risk_register_access_log_append_seconds_count" in metrics

    lines = server.output()
    parsed = [json.loads(line) for line in lines]  # every line, gunicorn's included, is one JSON object
    loggers = {p["logger"] for p in parsed}
    assert {"gunicorn.error", "gunicorn.access", "service.request"} <= loggers
    for logger in ("service.request", "gunicorn.access"):
        [line] = [p for p in parsed if p["logger"] == logger and p.get("request_id") == "served-1"]
        assert {k: line[k] for k in REQUEST_FIELDS - {"duration_ms"}} == {
            "request_id": "served-1", "client_id": client_id, "route": "/v1/incidents", "method": "POST",
            "status": 201}, logger
        assert line["duration_ms"] > 0
    # The worker answers the malformed request itself (problem+json) and logs the kind of refusal only.
    assert [p["message"] for p in parsed if p["logger"] == "gunicorn.error" and p["level"] == "WARNING"] == [
        "refused a request before the app: InvalidHTTPVersion (400)"]
    # gunicornc's socket lives in the instance folder, not in ~/.gunicorn/
    control = tmp_path / "instance" / "gunicorn.ctl"
    assert f"Control socket listening at {control}" in [p["message"] for p in parsed]
    assert_nothing_identifying(lines, created["id"], secret, token["access_token"])
