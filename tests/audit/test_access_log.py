"""The access log over HTTP (DESIGN §6, NEN 7513): one event per request to every audited route, refused ones too.

Each test notes the head of the log, makes one request and reads back exactly one new event: its type, outcome,
client, role, scope acted for, route, request id (the response's X-Request-ID), and the records or count it touched.
Events never hold a resident reference, a pseudonym or a note. The auditor's view of the log is filtered, paged and
scoped. The last test extends the privacy canary of the ingest work to the access log and to exports.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from service import clock
from service.audit.keys import canonical
from service.audit.models import AccessEvent
from service.auth.models import ApiClient, Role
from service.config import Settings
from service.incidents.idempotency import key_hash
from service.incidents.models import IdempotencyKey, Incident, Revision
from service.registry.models import Institution, Location
from tests.factories import as_table_owner, make_client, make_institution, make_location, seal_access_log
from tests.incidents.factories import incident_body
from tests.incidents.test_privacy_canary import (
    IDENTITY_CANARIES,
    NOTE_1,
    NOTE_2,
    NOTE_CANARY,
    PHONE_2,
    PLATE_2,
    RESIDENT_1,
    RESIDENT_2,
    _as_text,
    _hits,
    absence_incident,
    database_leaks,
    visitor_incident,
)

NDJSON = "application/x-ndjson"
INCIDENT_ROUTE = "/v1/incidents/<uuid:incidentId>"
EVERY_CANARY = {**IDENTITY_CANARIES, "note": (NOTE_CANARY,)}


@dataclass
class Party:
    """A client with a token, and what its events must say about it."""

    client: ApiClient
    headers: dict[str, str]
    institution: Institution | None = None
    location: Location | None = None
    codes: tuple[str, ...] = ()

    @property
    def acted_for(self) -> str:
        return str(self.institution.id) if self.institution is not None else ",".join(self.codes)

    @property
    def municipality_code(self) -> str | None:
        if self.institution is not None:
            return self.institution.municipality_code
        return self.codes[0] if len(self.codes) == 1 and self.codes[0] != "*" else None


def institution_party(session: Session, token_for: Any, municipality_code: str = "GM0014") -> Party:
    institution = make_institution(session, municipality_code=municipality_code)
    location = make_location(session, institution)
    client, _secret = make_client(session, role=Role.INSTITUTION, institution_id=institution.id)
    return Party(client, token_for(Role.INSTITUTION, client=client), institution, location)


def scoped_party(session: Session, token_for: Any, role: Role, codes: Iterable[str] = ("GM0014",)) -> Party:
    client, _secret = make_client(session, role=role, municipality_codes=list(codes))
    return Party(client, token_for(role, client=client), codes=tuple(codes))


@dataclass
class Log:
    """The access log as seen from the test's connection; `one` takes exactly the events since the last look."""

    session: Session
    mark: int = field(default=0)

    def __post_init__(self) -> None:
        self.mark = self.head()

    def head(self) -> int:
        return self.session.scalar(select(func.coalesce(func.max(AccessEvent.seq), 0))) or 0

    def new(self) -> list[AccessEvent]:
        self.session.expire_all()
        events = list(self.session.scalars(select(AccessEvent).where(AccessEvent.seq > self.mark)
                                           .order_by(AccessEvent.seq)))
        self.mark = self.head()
        return events

    def one(self, response: TestResponse) -> AccessEvent:
        events = self.new()
        assert len(events) == 1, [(e.event_type, e.route, e.outcome) for e in events]
        assert events[0].request_id == response.headers["X-Request-ID"]
        return events[0]

    def all(self) -> list[AccessEvent]:
        self.session.expire_all()
        return list(self.session.scalars(select(AccessEvent).order_by(AccessEvent.seq)))


@pytest.fixture
def log(session: Session) -> Log:
    return Log(session)


@pytest.fixture
def own(session: Session, token_for: Any) -> Party:
    return institution_party(session, token_for)


def assert_event(event: AccessEvent, *, event_type: str, outcome: int, route: str, party: Party | None,
                 records: list[str] | None = None, record_count: int | None = None,
                 filters: dict[str, str] | None = None) -> None:
    assert (event.event_type, event.outcome, event.route) == (event_type, outcome, route)
    if party is None:
        assert (event.client_id, event.role, event.acted_for, event.municipality_code) == (None, None, None, None)
    else:
        assert event.client_id == party.client.id
        assert event.role == party.client.role.value
        assert event.acted_for == party.acted_for
        assert event.municipality_code == party.municipality_code
    if records is not None:
        assert sorted(event.records) == sorted(records)
    if record_count is not None:
        assert event.record_count == record_count
    if filters is not None:
        assert event.filters == filters


def month_label(months_back: int = 0) -> str:
    today = clock.today().replace(day=1)
    year, month = divmod(today.year * 12 + today.month - 1 - months_back, 12)
    return f"{year}-{month + 1:02d}"


def create(client: FlaskClient, party: Party, **overrides: Any) -> dict[str, Any]:
    assert party.location is not None
    response = client.post("/v1/incidents", headers=party.headers, json=incident_body(party.location.id, **overrides))
    assert response.status_code == 201, response.json
    return response.json


def counts(session: Session) -> tuple[int, int, int]:
    return (session.scalar(select(func.count()).select_from(Incident)) or 0,
            session.scalar(select(func.count()).select_from(Revision)) or 0,
            session.scalar(select(func.count()).select_from(IdempotencyKey)) or 0)


# --- one event per route class ---------------------------------------------------------------------------------------


def test_a_create_is_one_create_event_naming_the_new_incident(client: FlaskClient, own: Party, log: Log) -> None:
    response = client.post("/v1/incidents", headers=own.headers | {"X-Request-ID": "create-1"},
                           json=incident_body(own.location.id))  # type: ignore[union-attr]

    assert response.status_code == 201
    event = log.one(response)
    assert event.request_id == "create-1"
    assert_event(event, event_type="create", outcome=201, route="POST /v1/incidents", party=own,
                 records=[response.json["id"]], record_count=1, filters={})


def test_a_batch_is_one_create_event_naming_every_new_incident(client: FlaskClient, own: Party, log: Log) -> None:
    items = [incident_body(own.location.id) for _ in range(3)]  # type: ignore[union-attr]

    response = client.post("/v1/incidents/_batch", headers=own.headers, json={"items": items})

    assert response.status_code == 201, response.json
    ids = [item["id"] for item in response.json["items"]]
    assert_event(log.one(response), event_type="create", outcome=201, route="POST /v1/incidents/_batch", party=own,
                 records=ids, record_count=3)


def test_reading_an_incident_and_its_revisions_are_read_events(client: FlaskClient, own: Party, log: Log) -> None:
    incident_id = create(client, own)["id"]
    log.new()

    got = client.get(f"/v1/incidents/{incident_id}", headers=own.headers)
    assert got.status_code == 200
    assert_event(log.one(got), event_type="read", outcome=200, route=f"GET {INCIDENT_ROUTE}", party=own,
                 records=[incident_id], record_count=1, filters={})

    revisions = client.get(f"/v1/incidents/{incident_id}/revisions", headers=own.headers)
    assert revisions.status_code == 200
    assert_event(log.one(revisions), event_type="read", outcome=200, route=f"GET {INCIDENT_ROUTE}/revisions",
                 party=own, records=[incident_id], record_count=1)


def test_a_list_is_a_search_event_with_its_count_and_filters(client: FlaskClient, own: Party, log: Log) -> None:
    ids = [create(client, own)["id"] for _ in range(3)]
    create(client, own, kind="absence", indicators=["awayWithoutPermission"])
    log.new()

    response = client.get("/v1/incidents", headers=own.headers,
                          query_string={"kind": "recruitmentAttempt", "limit": 10})

    assert response.status_code == 200
    assert sorted(item["id"] for item in response.json["items"]) == sorted(ids)
    assert_event(log.one(response), event_type="search", outcome=200, route="GET /v1/incidents", party=own,
                 records=ids, record_count=3, filters={"kind": "recruitmentAttempt", "limit": "10"})


def test_a_search_by_resident_logs_that_the_resident_was_given_never_who(
        client: FlaskClient, own: Party, log: Log) -> None:
    mine = [create(client, own, residentRef=RESIDENT_1)["id"] for _ in range(2)]
    create(client, own, residentRef=RESIDENT_2)
    log.new()

    response = client.post("/v1/incidents/_search", headers=own.headers,
                           json={"residentRef": RESIDENT_1, "exploitationType": "criminal"})

    assert response.status_code == 200
    assert sorted(item["id"] for item in response.json["items"]) == sorted(mine)
    event = log.one(response)
    assert_event(event, event_type="search", outcome=200, route="POST /v1/incidents/_search", party=own,
                 records=mine, record_count=2, filters={"residentRef": "given", "exploitationType": "criminal",
                                                        "limit": "50"})
    assert RESIDENT_1.casefold() not in canonical(event).decode().casefold()


def test_a_correction_and_a_retraction_are_events_of_their_own(client: FlaskClient, own: Party, log: Log) -> None:
    incident_id = create(client, own)["id"]
    log.new()

    corrected = client.patch(f"/v1/incidents/{incident_id}", headers=own.headers | {"If-Match": '"1"'},
                             json={"reason": "Verkeerde leeftijd", "residentAgeBand": "12to15"})
    assert corrected.status_code == 200, corrected.json
    assert_event(log.one(corrected), event_type="correct", outcome=200, route=f"PATCH {INCIDENT_ROUTE}", party=own,
                 records=[incident_id], record_count=1, filters={})

    retracted = client.post(f"/v1/incidents/{incident_id}/retraction", headers=own.headers | {"If-Match": '"2"'},
                            json={"reason": "Dubbel gemeld"})
    assert retracted.status_code == 200, retracted.json
    assert_event(log.one(retracted), event_type="retract", outcome=200, route=f"POST {INCIDENT_ROUTE}/retraction",
                 party=own, records=[incident_id], record_count=1)


@pytest.mark.parametrize("path, params", [
    ("hotspots", {"period": month_label(), "groupBy": "location"}),
    ("trends", {"periodType": "month", "from": month_label(2), "to": month_label(), "groupBy": "institution"}),
    ("reporting-funnel", {"period": month_label(), "groupBy": "institution"}),
])
def test_a_statistic_is_one_event_counting_its_units_with_its_filters(
        path: str, params: dict[str, str], client: FlaskClient, session: Session, own: Party, log: Log,
        token_for: Any) -> None:
    make_location(session, own.institution)
    create(client, own)
    analyst = scoped_party(session, token_for, Role.ANALYST)
    log.new()

    response = client.get(f"/v1/stats/{path}", headers=analyst.headers, query_string=params)

    assert response.status_code == 200, response.json
    assert len(response.json["units"]) >= 1
    assert_event(log.one(response), event_type="statistics", outcome=200, route=f"GET /v1/stats/{path}",
                 party=analyst, records=[], record_count=len(response.json["units"]), filters=params)


def test_an_export_is_one_event_with_its_row_count(
        client: FlaskClient, session: Session, own: Party, log: Log, token_for: Any) -> None:
    for _ in range(3):
        create(client, own)
    auditor = scoped_party(session, token_for, Role.AUDITOR)
    log.new()

    response = client.get("/v1/exports/incidents", headers=auditor.headers | {"Accept": NDJSON},
                          query_string={"from": month_label(1), "to": month_label()})

    assert response.status_code == 200
    lines = response.get_data(as_text=True).splitlines()
    assert len(lines) == 3 + 1  # rows and the metadata line
    assert_event(log.one(response), event_type="export", outcome=200, route="GET /v1/exports/incidents",
                 party=auditor, records=[], record_count=3, filters={"from": month_label(1), "to": month_label()})


def test_reading_and_verifying_the_log_are_audit_events(
        client: FlaskClient, session: Session, own: Party, log: Log, token_for: Any) -> None:
    for _ in range(3):
        create(client, own)
    auditor = scoped_party(session, token_for, Role.AUDITOR)
    log.new()

    listed = client.get("/v1/audit-events", headers=auditor.headers,
                        query_string={"eventType": "create", "limit": 2})
    assert listed.status_code == 200, listed.json
    assert len(listed.json["items"]) == 2
    assert_event(log.one(listed), event_type="audit", outcome=200, route="GET /v1/audit-events", party=auditor,
                 record_count=2, filters={"eventType": "create", "limit": "2"})

    verified = client.get("/v1/audit-events/_verify", headers=auditor.headers)
    assert verified.status_code == 200, verified.json
    assert verified.json["valid"] is True
    assert_event(log.one(verified), event_type="audit", outcome=200, route="GET /v1/audit-events/_verify",
                 party=auditor, records=[], filters={})


# --- refused attempts -------------------------------------------------------------------------------------------------


def test_a_request_without_a_token_is_one_event_without_a_caller(
        client: FlaskClient, session: Session, own: Party, log: Log) -> None:
    before = counts(session)

    response = client.post("/v1/incidents", json=incident_body(own.location.id))  # type: ignore[union-attr]

    assert response.status_code == 401
    assert_event(log.one(response), event_type="create", outcome=401, route="POST /v1/incidents", party=None,
                 records=[], record_count=0)
    assert counts(session) == before


def test_an_analyst_at_the_incidents_is_one_403_event_naming_the_analyst(
        client: FlaskClient, session: Session, log: Log, token_for: Any) -> None:
    analyst = scoped_party(session, token_for, Role.ANALYST)

    response = client.get("/v1/incidents", headers=analyst.headers, query_string={"kind": "absence"})

    assert response.status_code == 403
    assert_event(log.one(response), event_type="search", outcome=403, route="GET /v1/incidents", party=analyst,
                 records=[], record_count=0, filters={"kind": "given"})


@pytest.mark.parametrize("method, suffix, event_type, body", [
    ("get", "", "read", None),
    ("get", "/revisions", "read", None),
    ("patch", "", "correct", {"reason": "Correctie", "residentAgeBand": "12to15"}),
    ("post", "/retraction", "retract", {"reason": "Dubbel"}),
])
def test_someone_elses_incident_is_one_404_event_naming_what_was_asked_for(
        method: str, suffix: str, event_type: str, body: dict[str, Any] | None, client: FlaskClient,
        session: Session, own: Party, log: Log, token_for: Any) -> None:
    incident_id = create(client, own)["id"]
    other = institution_party(session, token_for)
    before = counts(session)
    log.new()

    response = getattr(client, method)(f"/v1/incidents/{incident_id}{suffix}", json=body,
                                       headers=other.headers | {"If-Match": '"1"'})

    assert response.status_code == 404
    # Nothing was touched (count 0), but the id probed for is on record for the auditor.
    assert_event(log.one(response), event_type=event_type, outcome=404,
                 route=f"{method.upper()} {INCIDENT_ROUTE}{suffix}", party=other, records=[incident_id],
                 record_count=0)
    assert counts(session) == before
    assert client.get(f"/v1/incidents/{incident_id}", headers=own.headers).json["version"] == 1


def test_invalid_input_is_one_400_event_and_nothing_recorded(
        client: FlaskClient, session: Session, own: Party, log: Log, token_for: Any) -> None:
    before = counts(session)

    invalid = client.post("/v1/incidents", headers=own.headers,
                          json=incident_body(own.location.id, exploitationType="nonsense"))  # type: ignore[union-attr]
    assert invalid.status_code == 400
    assert_event(log.one(invalid), event_type="create", outcome=400, route="POST /v1/incidents", party=own,
                 records=[], record_count=0)

    foreign = institution_party(session, token_for)
    elsewhere = client.post("/v1/incidents/_batch", headers=own.headers, json={"items": [
        incident_body(own.location.id), incident_body(foreign.location.id)]})  # type: ignore[union-attr]
    assert elsewhere.status_code == 400
    assert_event(log.one(elsewhere), event_type="create", outcome=400, route="POST /v1/incidents/_batch", party=own,
                 records=[], record_count=0)

    in_url = client.get("/v1/incidents", headers=own.headers, query_string={"residentRef": RESIDENT_1})
    assert in_url.status_code == 400
    event = log.one(in_url)
    assert_event(event, event_type="search", outcome=400, route="GET /v1/incidents", party=own, records=[],
                 record_count=0, filters={"residentRef": "given"})
    assert RESIDENT_1.casefold() not in canonical(event).decode().casefold()
    assert counts(session) == before


def test_a_refused_request_leaves_nothing_of_its_flushed_work_but_its_event(
        client: FlaskClient, session: Session, settings: Settings, own: Party, log: Log) -> None:
    """The create below deletes an expired key (flushed) before its duplicate clientReference refuses it: the
    deletion must roll back with the work, while the event of the 409 is committed."""
    existing = create(client, own)
    now = clock.now()
    stale = key_hash(settings.pseudonym_master_key, "stale-key")
    session.add(IdempotencyKey(client_id=own.client.id, key_hash=stale, request_hash="0" * 64,
                               response_status=201, response_body="{}", created_at=now - dt.timedelta(days=2),
                               expires_at=now - dt.timedelta(days=1)))
    session.flush()
    before = counts(session)
    log.new()

    response = client.post("/v1/incidents", headers=own.headers | {"Idempotency-Key": "stale-key"},
                           json=incident_body(own.location.id,  # type: ignore[union-attr]
                                              clientReference=existing["clientReference"]))

    assert response.status_code == 409, response.json
    assert_event(log.one(response), event_type="create", outcome=409, route="POST /v1/incidents", party=own,
                 records=[], record_count=0)
    assert counts(session) == before
    session.expire_all()
    assert session.get(IdempotencyKey, (own.client.id, stale)) is not None


def test_every_event_of_a_mixed_session_is_valid_json_without_identities(
        app: Flask, client: FlaskClient, session: Session, own: Party, log: Log, token_for: Any) -> None:
    incident_id = create(client, own, residentRef=RESIDENT_1, note=NOTE_1)["id"]
    client.patch(f"/v1/incidents/{incident_id}", headers=own.headers | {"If-Match": '"1"'},
                 json={"reason": "Correctie", "residentRef": RESIDENT_2, "note": NOTE_2})
    client.post("/v1/incidents/_search", headers=own.headers, json={"residentRef": RESIDENT_2})
    client.post("/v1/incidents/_search", headers=own.headers, json={"residentRef": RESIDENT_1, "limit": 0})
    client.get("/v1/incidents", headers=own.headers, query_string={"residentRef": RESIDENT_1})
    client.post("/v1/incidents", headers=own.headers, json=incident_body(
        own.location.id, residentRef=RESIDENT_1, note=NOTE_1, occurredAt="gisteren"))  # type: ignore[union-attr]
    pseudonyms = [p for p in session.scalars(select(Incident.resident_pseudonym)) if p]
    assert pseudonyms

    events = log.new()

    assert len(events) == 6
    forbidden = {"residentRef": (RESIDENT_1, RESIDENT_2), "note": (NOTE_CANARY,), "pseudonym": tuple(pseudonyms)}
    for event in events:
        assert _hits(canonical(event).decode(), forbidden) == [], event.route
        json.loads(canonical(event))


# --- the auditor's view of the log ------------------------------------------------------------------------------------


def _seqs(response: TestResponse) -> list[int]:
    assert response.status_code == 200, response.json
    return [item["seq"] for item in response.json["items"]]


def _in_scope(log: Log, codes: tuple[str, ...] = ("GM0014",)) -> list[AccessEvent]:
    return [e for e in log.all() if "*" in codes or e.municipality_code in codes]


def test_the_log_filters_by_time_client_and_event_type(
        client: FlaskClient, session: Session, own: Party, log: Log, token_for: Any) -> None:
    other = institution_party(session, token_for)
    for party in (own, other, own):
        create(client, party)
        client.get("/v1/incidents", headers=party.headers)
    auditor = scoped_party(session, token_for, Role.AUDITOR)

    by_client = client.get("/v1/audit-events", headers=auditor.headers, query_string={"clientId": str(own.client.id)})
    assert _seqs(by_client) == [e.seq for e in log.all() if e.client_id == own.client.id]
    assert len(by_client.json["items"]) == 4

    by_type = client.get("/v1/audit-events", headers=auditor.headers, query_string={"eventType": "create"})
    assert _seqs(by_type) == [e.seq for e in _in_scope(log) if e.event_type == "create"]
    assert len(by_type.json["items"]) == 3
    assert by_type.json["items"][0]["clientId"] == str(own.client.id)
    assert by_type.json["items"][0]["route"] == "POST /v1/incidents"

    events = _in_scope(log)
    start, end = events[1].occurred_at, events[4].occurred_at
    window = client.get("/v1/audit-events", headers=auditor.headers,
                        query_string={"occurredFrom": start.isoformat(), "occurredTo": end.isoformat()})
    expected = [e.seq for e in events if start <= e.occurred_at < end]
    assert expected
    assert _seqs(window) == expected

    refused = client.get("/v1/audit-events", headers=auditor.headers, query_string={"eventType": "gossip"})
    assert refused.status_code == 400


def test_the_log_pages_with_a_cursor_in_the_link_header(
        client: FlaskClient, session: Session, own: Party, log: Log, token_for: Any) -> None:
    for _ in range(5):
        client.get("/v1/incidents", headers=own.headers)
    auditor = scoped_party(session, token_for, Role.AUDITOR)
    expected = [e.seq for e in log.all() if e.client_id == own.client.id]
    assert len(expected) == 5

    seen, url, pages = [], "/v1/audit-events", 0
    params: dict[str, Any] | None = {"clientId": str(own.client.id), "limit": 2}
    while url:
        response = client.get(url, headers=auditor.headers, query_string=params)
        seen += _seqs(response)
        pages += 1
        link = response.headers.get("Link")
        if link is None:
            assert response.json["nextCursor"] is None
            break
        target, rel = link.split(";", 1)
        assert rel.strip() == 'rel="next"'
        parts = urlsplit(target.strip().strip("<>"))
        url, params = f"{parts.path}?{parts.query}", None
        assert response.json["nextCursor"] in parts.query

    assert seen == expected
    assert pages == 3


@pytest.mark.parametrize("delimiter", [",", ";"])
def test_the_log_reads_as_csv_with_the_same_events_and_the_same_next_page(
        client: FlaskClient, session: Session, own: Party, token_for: Any, delimiter: str) -> None:
    for _ in range(3):
        create(client, own)
        client.get("/v1/incidents", headers=own.headers)
    seal_access_log(session, client.application.extensions["chain_keys"])
    auditor = scoped_party(session, token_for, Role.AUDITOR)
    params = {"clientId": str(own.client.id), "limit": 4}

    as_json = client.get("/v1/audit-events", headers=auditor.headers, query_string=params)
    as_csv = client.get("/v1/audit-events", headers=auditor.headers | {"Accept": "text/csv"},
                        query_string=params | {"delimiter": delimiter})

    assert as_csv.status_code == 200 and as_csv.mimetype == "text/csv"
    body = as_csv.get_data(as_text=True)
    assert body.startswith("\ufeff")
    reader = csv.DictReader(io.StringIO(body[1:], newline=""), delimiter=delimiter)
    rows = list(reader)
    items = as_json.json["items"]
    assert sorted(reader.fieldnames or ()) == sorted(items[0])
    assert [int(row["seq"]) for row in rows] == [item["seq"] for item in items]
    for row, item in zip(rows, items, strict=True):
        assert row["records"] == ";".join(item["records"])
        assert row["hash"] == item["hash"] != "" and row["route"] == item["route"]
        assert row["filters"] == ";".join(f"{k}={v}" for k, v in sorted(item["filters"].items()))
    assert any(row["records"] for row in rows)  # the create events name their incident
    assert not [cell for row in rows for cell in row.values() if cell[:1] in ("=", "+", "-", "@", "\t", "\r")]
    # The next page of the CSV is the next page of the JSON, and stays CSV with its delimiter.
    link = as_csv.headers["Link"]
    assert as_json.json["nextCursor"] in link and f"delimiter={quote(delimiter)}" in link


def test_the_log_pages_in_append_order_even_when_clocks_disagree(
        client: FlaskClient, session: Session, own: Party, log: Log, token_for: Any) -> None:
    for _ in range(4):
        client.get("/v1/incidents", headers=own.headers)
    mine = [e for e in log.all() if e.client_id == own.client.id]
    # The newest event says it happened first, as one from a host with a slow clock would (written here by the
    # table's owner: the service itself never changes an event).
    as_table_owner(session)
    session.execute(update(AccessEvent).where(AccessEvent.seq == mine[-1].seq)
                    .values(occurred_at=mine[0].occurred_at - dt.timedelta(minutes=5)))
    session.flush()
    auditor = scoped_party(session, token_for, Role.AUDITOR)

    first = client.get("/v1/audit-events", headers=auditor.headers,
                       query_string={"clientId": str(own.client.id), "limit": 2})
    rest = client.get("/v1/audit-events", headers=auditor.headers,
                      query_string={"clientId": str(own.client.id), "limit": 50, "cursor": first.json["nextCursor"]})

    assert _seqs(first) + _seqs(rest) == [e.seq for e in mine]


def test_an_auditor_reads_only_the_events_of_its_municipalities(
        client: FlaskClient, session: Session, own: Party, log: Log, token_for: Any) -> None:
    elsewhere = institution_party(session, token_for, municipality_code="GM0034")
    create(client, own)
    create(client, elsewhere)
    client.get("/v1/incidents")  # refused, no caller: no municipality
    ours = {e.seq for e in log.all() if e.municipality_code == "GM0014"}
    theirs = {e.seq for e in log.all() if e.municipality_code == "GM0034"}
    assert ours and theirs

    flevoland = scoped_party(session, token_for, Role.AUDITOR, ["GM0034"])
    seen = set(_seqs(client.get("/v1/audit-events", headers=flevoland.headers, query_string={"limit": 200})))
    assert seen == theirs
    assert not seen & ours

    national = scoped_party(session, token_for, Role.AUDITOR, ["*"])
    everything = {e.seq for e in log.all()}
    seen = set(_seqs(client.get("/v1/audit-events", headers=national.headers, query_string={"limit": 200})))
    assert seen == everything
    assert any(e.municipality_code is None for e in log.all() if e.seq in seen)


@pytest.mark.parametrize("role", [Role.INSTITUTION, Role.ANALYST, Role.ADMIN])
@pytest.mark.parametrize("path", ["/v1/audit-events", "/v1/audit-events/_verify"])
def test_only_auditors_read_the_log(role: Role, path: str, client: FlaskClient, log: Log, token_for: Any) -> None:
    response = client.get(path, headers=token_for(role))

    assert response.status_code == 403
    assert response.mimetype == "application/problem+json"
    event = log.one(response)
    assert (event.event_type, event.outcome, event.role) == ("audit", 403, role.value)


# --- the privacy canary, extended to the log and to exports -----------------------------------------------------------


def test_no_identity_reaches_the_access_log_or_an_export(
        app: Flask, client: FlaskClient, session: Session, connection: Connection, own: Party,
        token_for: Any) -> None:
    location_id = str(own.location.id)  # type: ignore[union-attr]
    created = client.post("/v1/incidents", headers=own.headers | {"Idempotency-Key": "canary-log-1"},
                          json=visitor_incident(location_id, "canary-log-single"))
    assert created.status_code == 201, created.json
    batch = client.post("/v1/incidents/_batch", headers=own.headers, json={"items": [
        visitor_incident(location_id, "canary-log-batch-1",
                         visitor={"vehiclePlate": "cn77xq", "phoneNumber": "0677310042", "relationClaimed": "friend"}),
        absence_incident(location_id, "canary-log-batch-2")]})
    assert batch.status_code == 201, batch.json
    incident_id = created.json["id"]
    corrected = client.patch(f"/v1/incidents/{incident_id}", headers=own.headers | {"If-Match": '"1"'},
                             json={"reason": "Correctie", "residentRef": RESIDENT_2, "note": NOTE_2,
                                   "visitor": {"vehiclePlate": PLATE_2, "phoneNumber": PHONE_2}})
    assert corrected.status_code == 200, corrected.json
    for resident in (RESIDENT_1, RESIDENT_2):
        found = client.post("/v1/incidents/_search", headers=own.headers, json={"residentRef": resident})
        assert found.status_code == 200 and found.json["items"]
    refused = [
        client.post("/v1/incidents", headers=own.headers,
                    json=visitor_incident(location_id, "canary-log-bad", occurredAt="gisteren")),
        client.get("/v1/incidents", headers=own.headers, query_string={"residentRef": RESIDENT_1}),
        client.post("/v1/incidents/_search", json={"residentRef": RESIDENT_1}),
        client.post("/v1/incidents/_search", headers=token_for(Role.ANALYST), json={"residentRef": RESIDENT_1}),
    ]
    assert [r.status_code for r in refused] == [400, 400, 401, 403]
    auditor = scoped_party(session, token_for, Role.AUDITOR)
    exports, bodies = [], []
    for media in (NDJSON, "text/csv"):  # each streamed body read before the next request
        exports.append(client.get("/v1/exports/incidents", headers=auditor.headers | {"Accept": media},
                                  query_string={"from": month_label(1), "to": month_label()}))
        bodies.append(exports[-1].get_data(as_text=True))
    assert [r.status_code for r in exports] == [200, 200]
    assert all(incident_id in body for body in bodies)  # the export holds the canary incidents

    stored = connection.execute(text("SELECT resident_pseudonym, visitor_plate_fingerprint, "
                                     "visitor_phone_fingerprint FROM incident")).all()
    derived = {"pseudonym or fingerprint": tuple(v for row in stored for v in row if v)}
    assert len(derived["pseudonym or fingerprint"]) >= 5
    canaries = EVERY_CANARY | derived

    rows = connection.execute(text("SELECT * FROM access_event ORDER BY seq")).mappings().all()
    assert len(rows) >= 10
    log_leaks = [f"access_event seq {row['seq']}.{column}: {hit}" for row in rows for column, value in row.items()
                 if value is not None for hit in _hits(_as_text(value), canaries)]
    export_leaks = [f"export {r.mimetype}: {hit}" for r, body in zip(exports, bodies, strict=True)
                    for hit in _hits(body + "\n" + str(r.headers), canaries)]
    assert log_leaks == []
    assert export_leaks == []
    assert database_leaks(connection) == []


def test_an_analyst_with_a_long_scope_is_logged_in_full(client: FlaskClient, session: Session, token_for: Any,
                                                        log: Log) -> None:
    codes = [f"GM{n:04d}" for n in range(1, 121)]
    analyst = scoped_party(session, token_for, Role.ANALYST, codes)
    log.new()

    response = client.get("/v1/stats/hotspots", query_string={"period": "2026-Q1", "groupBy": "municipality"},
                          headers=analyst.headers)

    assert response.status_code == 200
    assert log.one(response).acted_for == ",".join(codes)
