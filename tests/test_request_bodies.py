"""Input taken at its word: JSON that cannot be read is a 400, JSON types are strict, text is text, and
an unknown key is never echoed when it could be an identifier. Through HTTP; the hostile walk over every operation
is tests/test_hostile_input.py."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service import arguments
from service.arguments import MAX_JSON_DEPTH
from service.auth.models import Role
from service.http import PROBLEM_JSON
from service.incidents.models import Incident
from service.registry.models import Capacity, Location
from tests.factories import make_institution, make_location
from tests.incidents.factories import incident_body

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def institution_headers(session: Session, token_for: Any) -> tuple[dict[str, str], str]:
    institution = make_institution(session)
    location = make_location(session, institution)
    return token_for(Role.INSTITUTION, institution_id=institution.id), str(location.id)


def incidents(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Incident)) or 0


def problem(response: Any) -> dict[str, Any]:
    assert response.mimetype == PROBLEM_JSON, response.get_data(as_text=True)
    assert response.status_code == 400, response.get_data(as_text=True)
    return response.json


def unreadable(body: dict[str, Any], reason: str) -> dict[str, Any]:
    return {"type": "about:blank", "title": "Invalid input", "status": 400,
            "detail": "The body is not JSON the register can read.", "instance": body["instance"],
            "errors": [{"pointer": "/", "detail": reason}]}


def invalid(body: dict[str, Any], errors: list[dict[str, str]]) -> dict[str, Any]:
    return {"type": "about:blank", "title": "Invalid input", "status": 400,
            "detail": f"{len(errors)} invalid field(s); see errors.", "instance": body["instance"], "errors": errors}


# --- JSON that cannot be read -------------------------------------------------------------------------------

TOO_DEEP = f"Arrays and objects may nest at most {MAX_JSON_DEPTH} deep."
NOT_JSON = "Not valid JSON (RFC 8259) in UTF-8."


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(("raw", "reason"), [
    (nested(200_000), TOO_DEEP),  # the parser's recursion gives out long before: it was a 500
    ('{"note": ' + nested(200_000) + "}", TOO_DEEP),
    (nested(MAX_JSON_DEPTH + 1), TOO_DEEP),  # within the parser's reach, beyond the service's limit
    ('{"a": ' * (MAX_JSON_DEPTH + 1) + "1" + "}" * (MAX_JSON_DEPTH + 1), TOO_DEEP),
    ('{"clientReference": NaN}', "NaN and Infinity are not JSON."),
    ('{"clientReference": -Infinity}', "NaN and Infinity are not JSON."),
    ('{"followUp": {"meldcodeStep": ' + "9" * 5000 + "}}", NOT_JSON),  # beyond Python's digit limit: was a 500
    ('{"note": "abc', NOT_JSON),
    (b'{"note": "\xff\xfe"}', NOT_JSON),  # not UTF-8
])
def test_a_body_the_register_cannot_read_is_a_400_that_says_why(
        client: FlaskClient, session: Session, institution_headers: Any, raw: str | bytes, reason: str) -> None:
    headers, _location = institution_headers
    response = client.post("/v1/incidents", data=raw, headers=headers | JSON)

    body = problem(response)
    assert body == unreadable(body, reason)
    assert incidents(session) == 0


def test_nesting_up_to_the_limit_is_read_and_judged_by_the_schema(
        client: FlaskClient, institution_headers: Any) -> None:
    headers, _location = institution_headers
    response = client.post("/v1/incidents", data='{"note": ' + nested(MAX_JSON_DEPTH - 1) + "}",
                           headers=headers | JSON)

    assert {"pointer": "/note", "detail": "Not a valid string."} in problem(response)["errors"]


def test_the_body_is_parsed_once_per_request(
        client: FlaskClient, institution_headers: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # The arguments, the idempotency fingerprint and the access log all read the body: one parse serves them.
    headers, location_id = institution_headers
    parses = []
    loads = arguments.BodyJSONProvider.loads

    def counted(provider: arguments.BodyJSONProvider, text: str | bytes, **kwargs: Any) -> Any:
        parses.append(1)
        return loads(provider, text, **kwargs)

    monkeypatch.setattr(arguments.BodyJSONProvider, "loads", counted)
    items = [incident_body(location_id) for _ in range(3)]

    response = client.post("/v1/incidents/_batch", json={"items": items}, headers=headers | {"Idempotency-Key": "k-1"})

    assert response.status_code == 201, response.json
    assert len(parses) == 1


# --- text ---------------------------------------------------------------------------------------------------

NOT_TEXT = "Must not contain control characters (other than tab and line breaks) or unpaired surrogates."


@pytest.mark.parametrize("field", ["note", "clientReference", "residentRef"])
@pytest.mark.parametrize("value", ["\ud800x", "x\udfff", "a\u0000b", "bell\u0007", "esc\u001b[0m"])
def test_text_fields_refuse_control_characters_and_lone_surrogates_by_name(
        client: FlaskClient, session: Session, institution_headers: Any, field: str, value: str) -> None:
    # A lone surrogate was a 500 on both databases (it cannot be encoded), NUL a 500 on PostgreSQL.
    headers, location_id = institution_headers
    raw = json.dumps(incident_body(location_id, **{field: value}))  # \ud800 travels as an escape

    response = client.post("/v1/incidents", data=raw, headers=headers | JSON)

    body = problem(response)
    assert body == invalid(body, [{"pointer": f"/{field}", "detail": NOT_TEXT}])
    assert incidents(session) == 0


def test_tabs_and_line_breaks_are_text(client: FlaskClient, institution_headers: Any) -> None:
    headers, location_id = institution_headers
    response = client.post("/v1/incidents", json=incident_body(location_id, note="Eerst:\tbij het hek\r\nDaarna weg"),
                           headers=headers)
    assert response.status_code == 201, response.json
    assert response.json["note"] == "Eerst:\tbij het hek\r\nDaarna weg"


# --- strict numbers and booleans ---------------------------------------------------------------------------

NOT_AN_INTEGER = "Not a valid integer."


@pytest.mark.parametrize("places", [7.9, 2.5, 2.589e-42, "4", True, None, [4]])
def test_places_are_json_integers(client: FlaskClient, session: Session, token_for: Any, places: Any) -> None:
    # Each was stored truncated or cast (7, 2, 0, 4).
    institution = make_institution(session)
    before = session.scalar(select(func.count()).select_from(Location))
    response = client.post(f"/v1/institutions/{institution.id}/locations", headers=token_for(Role.ADMIN), json={
        "name": "De Hoven", "postcode4": "9712", "municipalityCode": "GM0014", "setting": "open",
        "capacities": [{"validFrom": "2024-01-01", "places": places}]})

    body = problem(response)
    detail = "Field may not be null." if places is None else NOT_AN_INTEGER
    assert body == invalid(body, [{"pointer": "/capacities/0/places", "detail": detail}])
    assert session.scalar(select(func.count()).select_from(Location)) == before


def test_a_number_without_a_fraction_is_an_integer_as_json_schema_says(
        client: FlaskClient, session: Session, token_for: Any) -> None:
    institution = make_institution(session)
    response = client.post(f"/v1/institutions/{institution.id}/locations", headers=token_for(Role.ADMIN), json={
        "name": "De Hoven", "postcode4": "9712", "municipalityCode": "GM0014", "setting": "open",
        "capacities": [{"validFrom": "2024-01-01", "places": 12.0}]})

    assert response.status_code == 201, response.json
    assert response.json["capacities"] == [{"validFrom": "2024-01-01", "places": 12}]
    assert session.scalar(select(Capacity.places).where(Capacity.location_id == uuid.UUID(response.json["id"]))) == 12


@pytest.mark.parametrize("step", [2.5, "3", True])
def test_a_meldcode_step_is_a_json_integer(
        client: FlaskClient, session: Session, institution_headers: Any, step: Any) -> None:
    headers, location_id = institution_headers
    response = client.post("/v1/incidents", headers=headers, json=incident_body(
        location_id, followUp={"meldcodeStep": step, "reportedTo": ["veiligThuis"], "reportedAt": None}))

    body = problem(response)
    assert {"pointer": "/followUp/meldcodeStep", "detail": NOT_AN_INTEGER} in body["errors"]
    assert incidents(session) == 0


@pytest.mark.parametrize("known", ["true", 1, 0, "yes", None])
def test_a_boolean_is_true_or_false(client: FlaskClient, session: Session, institution_headers: Any,
                                    known: Any) -> None:
    headers, location_id = institution_headers
    response = client.post("/v1/incidents", headers=headers, json=incident_body(
        location_id, kind="absence", absence={"whereaboutsKnown": known, "riskLevel": "green"}))

    body = problem(response)
    detail = "Field may not be null." if known is None else "Not a valid boolean."
    assert {"pointer": "/absence/whereaboutsKnown", "detail": detail} in body["errors"]
    assert incidents(session) == 0


@pytest.mark.parametrize(("query", "status"), [
    ("limit=50", 200), ("limit=4.0", 200), ("limit=1e1", 200), ("limit=7.9", 400), ("limit=2.589e-42", 400),
    ("limit=%EF%BC%94", 400), ("limit=+4", 400), ("limit=0x10", 400), ("limit=1e400", 400),  # %EF%BC%94: full-width 4
    ("active=true", 200), ("active=false", 200), ("active=1", 400), ("active=yes", 400), ("active=True", 400),
])
def test_query_parameters_are_read_as_json_spells_them(
        client: FlaskClient, token_for: Any, query: str, status: int) -> None:
    response = client.get(f"/v1/clients?{query}", headers=token_for(Role.ADMIN))
    assert response.status_code == status, response.get_data(as_text=True)


# --- unknown keys -------------------------------------------------------------------------------------------

HIDDEN = "Unknown field (name not shown)."


@pytest.mark.parametrize("key", ["06-12345678", "111222333", "jan@example.nl", "Kerkstraat 12, 9711 AB",
                                 "bsn111222333", "\ud800", "a" * 65])
def test_an_unknown_key_that_could_be_an_identifier_is_not_echoed(
        client: FlaskClient, session: Session, institution_headers: Any, key: str) -> None:
    headers, location_id = institution_headers
    item = incident_body(location_id) | {key: 1}
    raw = json.dumps({"items": [incident_body(location_id), item]} | {key: 1})

    response = client.post("/v1/incidents/_batch", data=raw, headers=headers | JSON)

    body = problem(response)
    assert body == invalid(body, [{"pointer": "/items/1", "detail": HIDDEN}, {"pointer": "/", "detail": HIDDEN}])
    assert key not in response.get_data(as_text=True)
    assert incidents(session) == 0


def test_an_unknown_key_shaped_like_a_field_name_is_named(client: FlaskClient, institution_headers: Any) -> None:
    headers, location_id = institution_headers
    response = client.post("/v1/incidents", headers=headers, json=incident_body(location_id, residentName="x"))

    body = problem(response)
    assert body == invalid(body, [{"pointer": "/residentName", "detail": "Unknown field."}])


@pytest.mark.parametrize(("name", "pointer", "detail"), [
    ("06-12345678", "/", HIDDEN),
    ("residentRef", "/residentRef", "Unknown field."),
])
def test_an_unknown_query_parameter_is_named_only_when_it_is_safe_to(
        client: FlaskClient, institution_headers: Any, name: str, pointer: str, detail: str) -> None:
    headers, _location = institution_headers
    response = client.get(f"/v1/incidents?{name}=1", headers=headers)

    body = problem(response)
    assert body == invalid(body, [{"pointer": pointer, "detail": detail, "in": "query"}])
    assert "12345678" not in response.get_data(as_text=True)
