"""Auditor exports: both formats parsed back and compared field by field with the database rows.

Also: the re-keyed resident pseudonym, nothing write-only or identifying in either format, the metadata headers and
the final NDJSON record, content negotiation, period validation, municipality scope, retracted incidents, the access
event with its row count, and the roles that may not export.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import uuid
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from service import clock
from service.audit.models import AccessEvent
from service.auth.access import Caller
from service.auth.models import Role
from service.incidents.models import Incident
from service.incidents.service import IdentityKeys, record_incidents
from service.registry.models import Institution, Location
from tests.audit.test_access_log import Party, create, institution_party, month_label, scoped_party
from tests.factories import make_institution, make_location
from tests.incidents.test_privacy_canary import (
    IDENTITY_CANARIES,
    NOTE_1,
    NOTE_CANARY,
    RESIDENT_2,
    _hits,
    absence_incident,
    visitor_incident,
)

NDJSON, CSV = "application/x-ndjson", "text/csv"
HEX64 = re.compile(r"^[0-9a-f]{64}$")
COLUMNS = ["id", "institutionId", "institutionName", "locationId", "locationName", "clientReference", "kind",
           "exploitationType", "residentAgeBand",
           "indicators", "occurredAt", "recordedAt", "status", "version", "taxonomyVersion", "residentPseudonym",
           "absenceEndedAt", "absenceWhereaboutsKnown", "absenceRiskLevel", "absenceReportedMissingToPolice",
           "visitorEstimatedAgeBand", "visitorRelationClaimed", "meldcodeStep", "reportedTo", "reportedAt"]
TIMES = {"occurredAt", "recordedAt", "absenceEndedAt", "reportedAt"}


def period() -> dict[str, str]:
    return {"from": month_label(1), "to": month_label()}


def export(client: FlaskClient, headers: dict[str, str], media: str, **params: str) -> TestResponse:
    response = client.get("/v1/exports/incidents", headers=headers | {"Accept": media},
                          query_string=params or period())
    response.get_data()  # read the stream now: the next request may not start before it ends
    return response


def ndjson_rows(response: TestResponse) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == NDJSON
    lines = response.get_data(as_text=True).split("\n")
    assert lines[-1] == ""  # every record ends with a newline
    records = [json.loads(line) for line in lines[:-1]]
    assert list(records[-1]) == ["metadata"]
    rows = records[:-1]
    assert all(list(row) == COLUMNS for row in rows)
    return rows, records[-1]["metadata"]


def csv_rows(response: TestResponse, delimiter: str = ",") -> list[dict[str, str]]:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == CSV
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")  # UTF-8 for Excel
    reader = csv.DictReader(io.StringIO(text[1:], newline=""), delimiter=delimiter)
    assert reader.fieldnames == COLUMNS
    return list(reader)


def expected(session: Session, incident: Incident) -> dict[str, Any]:
    """A database row as the export must show it (pseudonym aside, which is checked on its own), the institution
    and location named from the registry."""
    institution, location = session.get(Institution, incident.institution_id), session.get(Location,
                                                                                          incident.location_id)
    assert institution is not None and location is not None
    return {
        "id": str(incident.id), "institutionId": str(incident.institution_id), "institutionName": institution.name,
        "locationId": str(incident.location_id), "locationName": location.name,
        "clientReference": incident.client_reference,
        "kind": incident.kind, "exploitationType": incident.exploitation_type,
        "residentAgeBand": incident.resident_age_band, "indicators": incident.indicators,
        "occurredAt": incident.occurred_at, "recordedAt": incident.recorded_at, "status": incident.status.value,
        "version": incident.version, "taxonomyVersion": incident.taxonomy_version,
        "absenceEndedAt": incident.absence_ended_at, "absenceWhereaboutsKnown": incident.absence_whereabouts_known,
        "absenceRiskLevel": incident.absence_risk_level,
        "absenceReportedMissingToPolice": incident.absence_reported_missing_to_police,
        "visitorEstimatedAgeBand": incident.visitor_estimated_age_band,
        "visitorRelationClaimed": incident.visitor_relation_claimed, "meldcodeStep": incident.meldcode_step,
        "reportedTo": incident.reported_to, "reportedAt": incident.reported_at,
    }


def from_json(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (dt.datetime.fromisoformat(v) if k in TIMES and v is not None else v)
            for k, v in row.items() if k != "residentPseudonym"}


def from_csv(row: dict[str, str]) -> dict[str, Any]:
    """Undo the CSV cell rules: '' is null, booleans are true/false, lists are joined with ';'."""
    parsed: dict[str, Any] = {}
    for key, value in row.items():
        if key == "residentPseudonym":
            continue
        if key in ("indicators", "reportedTo"):
            parsed[key] = value.split(";") if value else []
        elif value == "":
            parsed[key] = None
        elif key in TIMES:
            parsed[key] = dt.datetime.fromisoformat(value)
        elif key in ("version", "meldcodeStep"):
            parsed[key] = int(value)
        elif key in ("absenceWhereaboutsKnown", "absenceReportedMissingToPolice"):
            assert value in ("true", "false")
            parsed[key] = value == "true"
        else:
            parsed[key] = value
    return parsed


def in_scope(session: Session, codes: tuple[str, ...]) -> list[Incident]:
    """What an auditor of `codes` should get for period(): the incidents logged at those municipalities' locations."""
    first = dt.datetime.strptime(month_label(1), "%Y-%m").date()
    start = dt.datetime(first.year, first.month, 1, tzinfo=dt.UTC) - dt.timedelta(hours=2)
    stmt = select(Incident).join(Location, Location.id == Incident.location_id).where(
        Incident.occurred_at >= start)
    if "*" not in codes:
        stmt = stmt.where(Location.municipality_code.in_(codes))
    session.expire_all()
    return list(session.scalars(stmt.order_by(Incident.recorded_at, Incident.id)))


@pytest.fixture
def own(session: Session, token_for: Any) -> Party:
    return institution_party(session, token_for)


@pytest.fixture
def auditor(session: Session, token_for: Any) -> Party:
    return scoped_party(session, token_for, Role.AUDITOR)


@pytest.fixture
def recorded(client: FlaskClient, own: Party) -> dict[str, str]:
    """Incidents of every kind, two of one resident, one corrected and one retracted; their ids by purpose."""
    location = str(own.location.id)  # type: ignore[union-attr]
    ids: dict[str, str] = {}
    for name, body in (("visitor", visitor_incident(location, "exp-visitor")),
                       ("absence", absence_incident(location, "exp-absence")),
                       ("other resident", visitor_incident(location, "exp-other", residentRef=RESIDENT_2)),
                       ("no resident", visitor_incident(location, "exp-none", residentRef=None)),
                       ("corrected", absence_incident(location, "exp-corrected")),
                       ("retracted", visitor_incident(location, "exp-retracted", residentRef=RESIDENT_2))):
        response = client.post("/v1/incidents", headers=own.headers, json=body)
        assert response.status_code == 201, response.json
        ids[name] = response.json["id"]
    corrected = client.patch(f"/v1/incidents/{ids['corrected']}", headers=own.headers | {"If-Match": '"1"'},
                             json={"reason": "Aanvulling", "followUp": {"meldcodeStep": 3}})
    assert corrected.status_code == 200, corrected.json
    retracted = client.post(f"/v1/incidents/{ids['retracted']}/retraction",
                            headers=own.headers | {"If-Match": '"1"'}, json={"reason": "Dubbel"})
    assert retracted.status_code == 200, retracted.json
    return ids


def test_ndjson_rows_are_the_database_rows(
        client: FlaskClient, session: Session, auditor: Party, recorded: dict[str, str]) -> None:
    rows, metadata = ndjson_rows(export(client, auditor.headers, NDJSON))

    incidents = in_scope(session, auditor.codes)
    assert len(incidents) == len(recorded) == len(rows)
    assert [from_json(row) for row in rows] == [expected(session, incident) for incident in incidents]
    assert metadata["rowCount"] == len(rows)


@pytest.mark.parametrize("delimiter", [",", ";"])
def test_csv_rows_are_the_database_rows(client: FlaskClient, session: Session, auditor: Party,
                                        recorded: dict[str, str], delimiter: str) -> None:
    response = export(client, auditor.headers, CSV, **period(), delimiter=delimiter)
    rows = csv_rows(response, delimiter)

    assert [from_csv(row) for row in rows] == [expected(session, incident)
                                                     for incident in in_scope(session, auditor.codes)]
    # Every cell quoted: a list holding ';' stays one cell when ';' is the delimiter (Excel with Dutch settings).
    lines = response.get_data(as_text=True)[1:].split("\r\n")
    assert all(line.startswith('"') and line.endswith('"') for line in lines if line)
    assert any(len(row["indicators"].split(";")) > 1 for row in rows)
    assert not [cell for row in rows for cell in row.values() if cell[:1] in ("=", "+", "-", "@", "\t", "\r")]


def test_an_unknown_delimiter_is_a_problem_naming_it(client: FlaskClient, auditor: Party) -> None:
    response = export(client, auditor.headers, CSV, **period(), delimiter="\t")

    assert response.status_code == 400
    assert [e["pointer"] for e in response.get_json()["errors"]] == ["/delimiter"]


def test_both_formats_hold_the_same_rows(client: FlaskClient, auditor: Party, recorded: dict[str, str]) -> None:
    as_json, _ = ndjson_rows(export(client, auditor.headers, NDJSON))
    as_csv = csv_rows(export(client, auditor.headers, CSV))

    assert [from_json(row) for row in as_json] == [from_csv(row) for row in as_csv]
    assert [row["residentPseudonym"] for row in as_json] == [row["residentPseudonym"] or None for row in as_csv]


def test_the_resident_pseudonym_is_re_keyed_for_the_export(
        client: FlaskClient, session: Session, auditor: Party, recorded: dict[str, str]) -> None:
    rows = {row["id"]: row for row in ndjson_rows(export(client, auditor.headers, NDJSON))[0]}
    stored = {str(i.id): i.resident_pseudonym for i in in_scope(session, auditor.codes)}

    visitor, absence = rows[recorded["visitor"]], rows[recorded["absence"]]
    assert HEX64.match(visitor["residentPseudonym"])
    assert visitor["residentPseudonym"] == absence["residentPseudonym"]  # one resident, one export pseudonym
    assert rows[recorded["other resident"]]["residentPseudonym"] != visitor["residentPseudonym"]
    assert rows[recorded["other resident"]]["residentPseudonym"] == rows[recorded["retracted"]]["residentPseudonym"]
    assert rows[recorded["no resident"]]["residentPseudonym"] is None
    assert stored[recorded["visitor"]] and HEX64.match(stored[recorded["visitor"]])
    for incident_id, row in rows.items():
        if row["residentPseudonym"] is not None:
            assert row["residentPseudonym"] != stored[incident_id]  # cannot be joined to a copy of the database
    assert not {p for p in stored.values() if p} & {row["residentPseudonym"] for row in rows.values()}


def test_no_note_fingerprint_or_identity_is_exported(
        client: FlaskClient, session: Session, auditor: Party, recorded: dict[str, str]) -> None:
    incidents = in_scope(session, auditor.codes)
    assert any(i.note == NOTE_1 for i in incidents)  # controls: they were all recorded
    stored = {"stored pseudonym or fingerprint": tuple(
        v for i in incidents for v in (i.resident_pseudonym, i.visitor_plate_fingerprint,
                                       i.visitor_phone_fingerprint) if v)}
    assert len(stored["stored pseudonym or fingerprint"]) >= 10
    canaries = {**IDENTITY_CANARIES, "note": (NOTE_CANARY, NOTE_1), **stored}

    for media in (NDJSON, CSV):
        response = export(client, auditor.headers, media)
        body = response.get_data(as_text=True)
        assert _hits(body + "\n" + str(response.headers), canaries) == [], media
        for word in ("note", "fingerprint", "plate", "phone", "residentRef"):  # no such column or key either
            assert word.casefold() not in body.casefold(), (media, word)


def test_the_metadata_agrees_with_the_rows(client: FlaskClient, auditor: Party, recorded: dict[str, str]) -> None:
    before = clock.now()
    response = export(client, auditor.headers, NDJSON)
    rows, metadata = ndjson_rows(response)

    generated = dt.datetime.fromisoformat(response.headers["Export-Generated-At"])
    assert before <= generated <= clock.now()
    assert int(response.headers["Export-Row-Count"]) == len(rows) == metadata["rowCount"] == len(recorded)
    assert json.loads(response.headers["Export-Filters"]) == period() == metadata["filters"]
    assert metadata["generatedAt"] == response.headers["Export-Generated-At"]
    assert all(dt.datetime.fromisoformat(row["recordedAt"]) <= generated for row in rows)
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="incidents-{month_label(1)}-{month_label()}.ndjson"')

    as_csv = export(client, auditor.headers, CSV)
    assert int(as_csv.headers["Export-Row-Count"]) == len(csv_rows(as_csv)) == len(recorded)
    assert json.loads(as_csv.headers["Export-Filters"]) == period()


def test_an_incident_outside_the_periods_is_not_exported(
        app: Flask, client: FlaskClient, session: Session, own: Party, auditor: Party,
        recorded: dict[str, str]) -> None:
    caller = Caller(own.client.id, Role.INSTITUTION, own.institution.id, ())  # type: ignore[union-attr]
    long_ago = clock.now() - dt.timedelta(days=400)
    old = record_incidents(session, caller, [{
        "client_reference": "exp-old", "location_id": own.location.id, "kind": "absence",  # type: ignore[union-attr]
        "exploitation_type": "sexual", "occurred_at": long_ago, "indicators": ["awayWithoutPermission"],
        "absence": {"whereabouts_known": True, "risk_level": "orange", "reported_missing_to_police": False}}],
        IdentityKeys.from_settings(app.extensions["settings"]))[0]
    session.flush()

    rows, _ = ndjson_rows(export(client, auditor.headers, NDJSON))
    assert str(old.id) not in {row["id"] for row in rows}
    assert len(rows) == len(recorded)

    label = f"{long_ago.year}"
    everything, _ = ndjson_rows(export(client, auditor.headers, NDJSON, **{"from": label, "to": month_label()}))
    assert str(old.id) in {row["id"] for row in everything}


def test_retracted_incidents_are_exported_marked(
        client: FlaskClient, auditor: Party, recorded: dict[str, str]) -> None:
    rows = {row["id"]: row for row in ndjson_rows(export(client, auditor.headers, NDJSON))[0]}

    assert rows[recorded["retracted"]]["status"] == "retracted"
    assert rows[recorded["retracted"]]["version"] == 2
    assert rows[recorded["corrected"]]["status"] == "active"
    assert rows[recorded["corrected"]]["version"] == 2
    assert rows[recorded["corrected"]]["meldcodeStep"] == 3
    assert {row["status"] for rid, row in rows.items() if rid != recorded["retracted"]} == {"active"}


def test_an_auditor_exports_only_institutions_of_its_municipalities(
        client: FlaskClient, session: Session, token_for: Any, own: Party, recorded: dict[str, str]) -> None:
    elsewhere = institution_party(session, token_for, municipality_code="GM0034")
    theirs = client.post("/v1/incidents", headers=elsewhere.headers,
                         json=absence_incident(str(elsewhere.location.id), "exp-almere"))  # type: ignore[union-attr]
    assert theirs.status_code == 201

    almere = scoped_party(session, token_for, Role.AUDITOR, ["GM0034"])
    rows, metadata = ndjson_rows(export(client, almere.headers, NDJSON))
    assert [row["id"] for row in rows] == [theirs.json["id"]]
    assert not {row["id"] for row in rows} & set(recorded.values())
    assert metadata["rowCount"] == 1
    assert {row["institutionId"] for row in csv_rows(export(client, almere.headers, CSV))} == {
        str(elsewhere.institution.id)}  # type: ignore[union-attr]

    both = scoped_party(session, token_for, Role.AUDITOR, ["GM0014", "GM0034"])
    national = scoped_party(session, token_for, Role.AUDITOR, ["*"])
    for party in (both, national):
        ids = {row["id"] for row in ndjson_rows(export(client, party.headers, NDJSON))[0]}
        assert ids == set(recorded.values()) | {theirs.json["id"]}


def test_the_export_is_an_access_event_with_its_row_count(
        client: FlaskClient, session: Session, auditor: Party, recorded: dict[str, str]) -> None:
    for media in (NDJSON, CSV):
        response = export(client, auditor.headers, media)
        assert response.status_code == 200
        session.expire_all()
        event = session.scalar(select(AccessEvent).where(AccessEvent.request_id == response.headers["X-Request-ID"]))
        assert event is not None
        assert (event.event_type, event.outcome, event.record_count) == ("export", 200, len(recorded))
        assert event.client_id == auditor.client.id
        assert event.filters == period()
        assert event.records == []


def test_anything_but_csv_or_ndjson_is_406(client: FlaskClient, session: Session, auditor: Party) -> None:
    response = export(client, auditor.headers, "application/json")

    assert response.status_code == 406
    assert response.mimetype == "application/problem+json"
    assert response.json["status"] == 406
    event = session.scalar(select(AccessEvent).where(AccessEvent.request_id == response.headers["X-Request-ID"]))
    assert event is not None and (event.event_type, event.outcome) == ("export", 406)


def test_an_ndjson_or_csv_preference_is_honoured(client: FlaskClient, auditor: Party) -> None:
    assert export(client, auditor.headers, "text/csv;q=0.5, application/x-ndjson").mimetype == NDJSON
    assert export(client, auditor.headers, "application/x-ndjson;q=0.2, text/csv").mimetype == CSV


@pytest.mark.parametrize("params, pointer", [
    ({"from": month_label(), "to": month_label(1)}, "/to"),
    ({"from": "2026-13", "to": month_label()}, "/from"),
    ({"from": "gisteren", "to": month_label()}, "/from"),
    ({"from": month_label()}, "/to"),
    ({"from": month_label(), "to": month_label(), "format": "csv"}, "/format"),
])
def test_bad_periods_are_400(params: dict[str, str], pointer: str, client: FlaskClient, auditor: Party) -> None:
    response = export(client, auditor.headers, NDJSON, **params)

    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert pointer in [error["pointer"] for error in response.json["errors"]]


@pytest.mark.parametrize("role", [Role.INSTITUTION, Role.ANALYST, Role.ADMIN])
def test_only_auditors_export(role: Role, client: FlaskClient, token_for: Any) -> None:
    response = export(client, token_for(role), NDJSON)

    assert response.status_code == 403
    assert response.mimetype == "application/problem+json"


def test_without_a_token_an_export_is_401(client: FlaskClient) -> None:
    assert export(client, {}, CSV).status_code == 401


# --- the count and the rows under a concurrent write (PostgreSQL, real commits) ------------------------------------


@pytest.fixture
def committing(committing_register: Any) -> Any:
    """A scratch PostgreSQL register whose requests really commit: (app, engine, location, institution and
    auditor headers)."""
    from service.registry.models import Location as LocationModel

    with Session(committing_register.engine, expire_on_commit=False) as session:
        location = session.get(LocationModel, uuid.UUID(committing_register.location_id))
    _writer, writer_headers = committing_register.bearer()
    _reader, reader_headers = committing_register.bearer(Role.AUDITOR, municipality_codes=["GM0014"])
    return committing_register.app, committing_register.engine, location, writer_headers, reader_headers


def test_the_logged_count_matches_the_streamed_rows_when_a_write_commits_meanwhile(
        committing: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A create that set recorded_at before the export began commits after the export's transaction (say it
    was slow to commit) and before its rows stream: what is counted must be what streams."""
    from service.exports import service as exports

    app, engine, location, writer, auditor = committing
    client = app.test_client()
    for n in range(2):
        response = client.post("/v1/incidents", headers=writer,
                               json=absence_incident(str(location.id), f"race-{n}"))
        assert response.status_code == 201, response.json
    now = clock.now()
    other = engine.connect()
    in_flight = other.begin()
    other.execute(insert(Incident).values(
        institution_id=location.institution_id, location_id=location.id, client_reference="race-in-flight",
        kind="absence", exploitation_type="sexual", occurred_at=now - dt.timedelta(hours=2),
        recorded_at=now - dt.timedelta(seconds=1), resident_age_band="16to17", indicators=["awayWithoutPermission"],
        reported_to=[], taxonomy_version="x", record_key=1))
    stream = exports.ndjson

    def commit_then_stream(*args: Any, **kwargs: Any) -> Any:
        in_flight.commit()  # the request's own transaction has committed by now; the rows have not been read
        yield from stream(*args, **kwargs)

    monkeypatch.setattr(exports, "ndjson", commit_then_stream)
    try:
        response = client.get("/v1/exports/incidents", headers=auditor | {"Accept": NDJSON}, query_string=period())
        body = response.get_data(as_text=True)
    finally:
        other.close()

    counted = int(response.headers["Export-Row-Count"])
    rows, metadata = ndjson_rows(response)
    with Session(engine) as session:
        logged = session.scalar(select(AccessEvent.record_count).where(AccessEvent.event_type == "export"))
    # It committed after the export's snapshot: neither counted nor streamed, so the log tells the truth.
    assert "race-in-flight" not in body
    assert len(rows) == metadata["rowCount"] == 2
    assert counted == logged == len(rows), f"streamed {len(rows)} rows; header and access event say {counted}"


def test_a_formula_in_a_client_reference_is_exported_as_text(
        client: FlaskClient, session: Session, own: Party, auditor: Party) -> None:
    formula = '=HYPERLINK("http://example.invalid","open")'
    # References have a shape that leaves no room for a formula now; one recorded before that is still exported.
    recorded = create(client, own, clientReference="LEGACY-1")
    session.execute(update(Incident).where(Incident.id == uuid.UUID(recorded["id"])).values(client_reference=formula))

    rows = csv_rows(export(client, auditor.headers, CSV, **period()))
    exported, _metadata = ndjson_rows(export(client, auditor.headers, NDJSON, **period()))

    # A spreadsheet would run the CSV cell; the leading quote keeps it text. JSON is not executed.
    assert [r["clientReference"] for r in rows if "HYPERLINK" in r["clientReference"]] == ["'" + formula]
    assert [r["clientReference"] for r in exported if "HYPERLINK" in r["clientReference"]] == [formula]


def test_auditors_are_scoped_by_where_the_signal_was_logged(
        client: FlaskClient, session: Session, token_for: Any) -> None:
    institution = make_institution(session, municipality_code="GM0014")
    elsewhere = make_location(session, institution, municipality_code="GM0034")
    writer = institution_party(session, token_for)
    writer.headers = token_for(Role.INSTITUTION, institution_id=institution.id)
    writer.location = elsewhere
    incident_id = create(client, writer)["id"]

    there = scoped_party(session, token_for, Role.AUDITOR, ("GM0034",))
    home = scoped_party(session, token_for, Role.AUDITOR, ("GM0014",))
    seen_there, _ = ndjson_rows(export(client, there.headers, NDJSON, **period()))
    seen_home, _ = ndjson_rows(export(client, home.headers, NDJSON, **period()))

    assert incident_id in {r["id"] for r in seen_there}
    assert incident_id not in {r["id"] for r in seen_home}
