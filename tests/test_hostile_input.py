"""Hostile input over every operation of the OpenAPI document.

The operations and their fields are read from the app's own document: every string, integer and boolean in a
request body (nested objects and arrays included), query parameter, header parameter and path parameter. Into each
goes every hostile value of its type, one at a time, in an otherwise valid request: identifiers (e-mail, phone,
IBAN, address, date of birth, BSN in its many spellings), a lone surrogate, NUL, JSON nested 200,000 deep, numbers
that are not integers, booleans that are not booleans. Each answer must be a 4xx problem+json that does not echo
the value and changes no table (the refused request's access event aside). Unknown keys and hostile request ids
are sent to every operation too. At the end no table holds any of the identifiers as they were sent.

A few fields may accept an identifier, because they take one by design and never keep it as sent: a visitor's
plate and phone number (fingerprinted), a search's or an attestation's residentRef (never stored), an
Idempotency-Key (hashed), and the OAuth fields that are ignored or answered alike whatever they hold (RFC 6749
scope, RFC 7009 token).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import yaml
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from service import clock
from service.auth.models import Role
from service.http import PROBLEM_JSON
from tests.factories import make_client, make_institution, make_location
from tests.incidents.factories import incident_body

DEEP = object()  # JSON nested 200,000 deep in place of the value (was a 500: RecursionError)
DEPTH = 200_000


@dataclass(frozen=True)
class Hostile:
    label: str
    value: Any
    marks: tuple[str, ...] = ()  # what must not come back, nor be stored: the identifier as sent
    identifier: bool = True  # False: malformed, refused even where identifiers are accepted


IDENTIFIERS = [
    Hostile("e-mail", "jan.devries@example.nl", ("jan.devries",)),
    Hostile("phone", "06-12345678", ("12345678",)),
    Hostile("IBAN", "NL91ABNA0417164300", ("0417164300",)),
    Hostile("address", "Kerkstraat 12, 9711 AB", ("9711 AB",)),
    Hostile("date of birth", "12-03-2010", ("12-03-2010",)),
    Hostile("BSN in a sentence", "Jongere met BSN 111222333 opgehaald", ("111222333",)),
    Hostile("BSN with dashes", "111-222-333", ("111-222-333",)),
    Hostile("BSN with no-break spaces", "BSN 111\u00a0222\u00a0333", ("111\u00a0222\u00a0333",)),
    Hostile("birth date, two-digit year", "geb. 12-03-10", ("12-03-10",)),
    Hostile("postcode and huisnummer", "postcode 9712 CD huisnummer 12", ("9712 CD",)),
    Hostile("key holding a citizen service number", "CL-0042-111222333", ("111222333",)),
]
STRINGS = [*IDENTIFIERS,
           Hostile("lone surrogate", "\ud800x", ("\\ud800",), identifier=False),
           Hostile("NUL", "a\u0000b", ("a\\u0000b",), identifier=False),
           Hostile("nested 200,000 deep", DEEP, identifier=False)]
INTEGERS = [Hostile(str(v), v, identifier=False) for v in (7.9, 2.5, 2.589e-42, "4", True, [4])] + [
    Hostile("nested 200,000 deep", DEEP, identifier=False)]
BOOLEANS = [Hostile(repr(v), v, identifier=False) for v in ("true", 1, 0, "yes", [True])] + [
    Hostile("nested 200,000 deep", DEEP, identifier=False)]
BODY_VALUES = {"string": STRINGS, "integer": INTEGERS, "boolean": BOOLEANS}
# What can travel in a query string or a form: text only (a lone surrogate cannot be written in UTF-8).
TEXT_VALUES = {"string": [*IDENTIFIERS, Hostile("NUL", "a\u0000b", ("a\\u0000b",), identifier=False)],
               "integer": [Hostile(v, v, identifier=False) for v in ("7.9", "2.5", "2.589e-42", "true", "4x")],
               "boolean": [Hostile(v, v, identifier=False) for v in ("1", "0", "yes", "True")]}
REQUEST_IDS = [Hostile("bare BSN", "111222333", ("111222333",)),
               *(h for h in IDENTIFIERS if h.label in ("phone", "key holding a citizen service number"))]
UNKNOWN_KEYS = [Hostile("phone as a key", "06-12345678", ("12345678",)),
                Hostile("e-mail as a key", "jan.devries@example.nl", ("jan.devries",))]

# (path, pointer) that may accept an identifier: see the module docstring. "*" is any operation.
MAY_ACCEPT_IDENTIFIERS = {
    ("*", "/visitor/vehiclePlate"), ("*", "/visitor/phoneNumber"),
    ("*", "/items/0/visitor/vehiclePlate"), ("*", "/items/0/visitor/phoneNumber"),
    ("/incidents/_search", "/residentRef"), ("/incidents/_attestation", "/residentRef"),
    ("*", "header Idempotency-Key"),
    ("/oauth/token", "/scope"), ("/oauth/revoke", "/token"), ("/oauth/revoke", "/token_type_hint"),
}
# Tables a refused request may write to: its access event, and the count of the token endpoints' rate limit.
MAY_GROW = {"access_event", "rate_limit_hit", "alembic_version"}


# --- the document ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    where: str  # body, query, header or path
    pointer: str  # a JSON pointer into the body, or the parameter's name
    type: str


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    role: str | None
    media_type: str | None
    fields: tuple[Field, ...]

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.path}"


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    for choice in schema.get("anyOf", []):
        if choice.get("type") != "null":
            return _resolve(document, choice)
    return schema


def _type(schema: dict[str, Any]) -> str | None:
    types = schema.get("type", "string" if "enum" in schema else None)
    types = [t for t in ([types] if isinstance(types, str) else types or []) if t != "null"]
    return types[0] if types else None


def _leaves(document: dict[str, Any], schema: dict[str, Any], pointer: str = "") -> Iterator[tuple[str, str]]:
    schema = _resolve(document, schema)
    kind = _type(schema)
    if kind == "object":
        for name, child in schema.get("properties", {}).items():
            if not child.get("readOnly"):
                yield from _leaves(document, child, f"{pointer}/{name}")
    elif kind == "array":
        yield from _leaves(document, schema["items"], f"{pointer}/0")
    elif kind in BODY_VALUES:
        yield pointer, kind


def _parameter_type(document: dict[str, Any], schema: dict[str, Any]) -> str:
    """A parameter's type; a repeated one (an array) has its items' type, which each repetition carries."""
    schema = _resolve(document, schema)
    if _type(schema) == "array":
        schema = _resolve(document, schema["items"])
    return _type(schema) or "string"


def operations(document: dict[str, Any]) -> list[Operation]:
    found = []
    for path, item in document["paths"].items():
        for method, spec in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            fields = [Field(p["in"], p["name"], _parameter_type(document, p["schema"]))
                      for p in spec.get("parameters", [])]
            content = spec.get("requestBody", {}).get("content", {})
            media_type = next(iter(content), None)  # every operation takes one media type
            if media_type is not None:
                fields += [Field("body", pointer, kind)
                           for pointer, kind in _leaves(document, content[media_type]["schema"])]
            found.append(Operation(method, path, (spec.get("x-roles") or [None])[0], media_type, tuple(fields)))
    return found


# --- a valid request for every operation -------------------------------------------------------------------


@dataclass
class World:
    """What the requests refer to: an institution, its location and incidents, a client per role."""

    ids: dict[str, str]
    tokens: dict[str, dict[str, str]]
    secret: str
    serial: Iterator[int] = field(default_factory=lambda: iter(range(1, 10**9)))

    def reference(self) -> str:
        return f"HOSTILE-{next(self.serial)}"


def _year() -> str:
    return str(clock.today().year - 1)


# (method, path) -> (body or form, query) of a valid request. An operation missing here fails the test below.
BASES: dict[tuple[str, str], Callable[[World, str], tuple[dict[str, Any] | None, dict[str, Any]]]] = {
    ("post", "/oauth/token"): lambda w, _p: (
        {"grant_type": "client_credentials", "client_id": w.ids["clientId"], "client_secret": w.secret,
         "scope": "all"}, {}),
    ("post", "/oauth/revoke"): lambda w, _p: (
        {"token": "not-a-token", "token_type_hint": "access_token", "client_id": w.ids["clientId"],
         "client_secret": w.secret}, {}),
    ("get", "/oauth/jwks.json"): lambda _w, _p: (None, {}),
    ("get", "/clients"): lambda _w, _p: (None, {"limit": 5, "role": "admin", "active": "true"}),
    ("post", "/clients"): lambda w, _p: ({"name": f"Systeem {w.reference()}", "role": "admin",
                                          "municipalityCodes": []}, {}),
    ("get", "/clients/{clientId}"): lambda _w, _p: (None, {}),
    ("post", "/clients/{clientId}/deactivation"): lambda _w, _p: (None, {}),
    ("post", "/clients/{clientId}/secret"): lambda _w, _p: (None, {}),
    ("get", "/institutions"): lambda _w, _p: (None, {"limit": 5}),
    ("post", "/institutions"): lambda w, _p: ({"name": f"Instelling {w.reference()}", "sector": "youthCare",
                                               "municipalityCode": "GM0014"}, {}),
    ("get", "/institutions/{institutionId}"): lambda _w, _p: (None, {}),
    ("get", "/institutions/{institutionId}/locations"): lambda _w, _p: (None, {"limit": 5}),
    ("post", "/institutions/{institutionId}/locations"): lambda w, _p: (
        {"name": f"Locatie {w.reference()}", "postcode4": "9712", "municipalityCode": "GM0014", "setting": "open",
         "capacities": [{"validFrom": "2024-01-01", "places": 12}]}, {}),
    ("get", "/institutions/{institutionId}/locations/{locationId}"): lambda _w, _p: (None, {}),
    ("post", "/institutions/{institutionId}/locations/{locationId}/capacities"): lambda _w, _p: (
        {"validFrom": "2025-06-01", "places": 14}, {}),
    ("get", "/taxonomy"): lambda _w, _p: (None, {}),
    ("get", "/guidance"): lambda _w, _p: (None, {"kind": "absence", "exploitationType": "sexual",
                                                 "residentAgeBand": "16to17", "riskLevel": "red",
                                                 "indicators": "lateReturn", "meldcodeStep": 2, "reported": "false"}),
    ("get", "/guidance/municipalities/{municipalityCode}"): lambda _w, _p: (None, {}),
    ("put", "/guidance/municipalities/{municipalityCode}"): lambda _w, _p: ({"followUpDays": 7, "routes": [{
        "code": "zorgEnVeiligheidshuis", "labelEn": "Care and Safety House", "labelNl": "Zorg- en Veiligheidshuis",
        "purposeEn": "Case consultation", "purposeNl": "Casusoverleg", "meldcodeSteps": [2, 5],
        "reportedTo": "zorgEnVeiligheidshuis", "phone": "050-0000000", "website": "https://zvh.example.org",
        "source": "Gemeente", "date": "2026-11-30"}]}, {}),
    ("delete", "/guidance/municipalities/{municipalityCode}"): lambda _w, _p: (None, {}),
    ("get", "/incidents"): lambda w, _p: (None, {"limit": 5, "locationId": w.ids["locationId"], "kind": "absence",
                                                 "exploitationType": "sexual", "status": "active",
                                                 "occurredFrom": "2026-01-01T00:00:00+01:00",
                                                 "occurredTo": "2026-02-01T00:00:00+01:00"}),
    ("post", "/incidents"): lambda w, p: (_incident(w, p), {}),
    ("post", "/incidents/_attestation"): lambda _w, _p: ({"residentRef": "CL-0042"}, {}),
    ("post", "/incidents/_batch"): lambda w, p: ({"items": [_incident(w, p.removeprefix("/items/0"))]}, {}),
    ("post", "/incidents/_search"): lambda w, _p: (
        {"residentRef": "CL-0042", "limit": 5, "locationId": w.ids["locationId"], "kind": "absence",
         "exploitationType": "sexual", "status": "active", "occurredFrom": "2026-01-01T00:00:00+01:00",
         "occurredTo": "2026-02-01T00:00:00+01:00"}, {}),
    ("get", "/incidents/follow-up"): lambda _w, _p: (None, {"limit": 5}),
    ("get", "/incidents/{incidentId}"): lambda _w, _p: (None, {}),
    ("patch", "/incidents/{incidentId}"): lambda _w, _p: ({"reason": "Correctie na overleg"}, {}),
    ("post", "/incidents/{incidentId}/retraction"): lambda _w, _p: ({"reason": "Dubbel gemeld"}, {}),
    ("get", "/incidents/{incidentId}/revisions"): lambda _w, _p: (None, {}),
    # One attribute (a filter or a breakdown) per statistics request: a hostile value in another is refused anyway.
    ("get", "/stats/hotspots"): lambda _w, _p: (None, {"period": _year(), "groupBy": "institution",
                                                       "municipalityCode": "GM0014", "breakdown": "ageBand"}),
    ("get", "/stats/hotspots/funnel-plot"): lambda _w, _p: (None, {"period": _year(), "groupBy": "location",
                                                                   "municipalityCode": "GM0014",
                                                                   "kind": "absence"}),
    ("get", "/stats/trends"): lambda _w, _p: (None, {"periodType": "year", "from": _year(), "to": _year(),
                                                     "groupBy": "municipality", "kind": "absence",
                                                     "municipalityCode": "GM0014"}),
    ("get", "/stats/reporting-funnel"): lambda _w, _p: (None, {"period": _year(), "groupBy": "institution",
                                                               "exploitationType": "sexual",
                                                               "municipalityCode": "GM0014"}),
    ("get", "/exports/incidents"): lambda _w, _p: (None, {"from": f"{_year()}-01", "to": f"{_year()}-06"}),
    ("get", "/audit-events"): lambda w, _p: (None, {"limit": 5, "occurredFrom": "2026-01-01T00:00:00+01:00",
                                                    "occurredTo": "2026-02-01T00:00:00+01:00",
                                                    "clientId": w.ids["clientId"], "eventType": "read"}),
    ("get", "/audit-events/_verify"): lambda _w, _p: (None, {}),
}
HEADERS = {"Idempotency-Key": lambda w: f"key-{w.reference()}", "If-Match": lambda _w: '"1"'}


def _incident(world: World, pointer: str) -> dict[str, Any]:
    """A valid incident whose kind has the block the pointer goes into."""
    kind = {"/visitor": "suspiciousVisitor", "/absence": "absence"}.get(pointer[:8].rstrip("/"),
                                                                        "recruitmentAttempt")
    return incident_body(world.ids["locationId"], kind=kind, clientReference=world.reference())


def _plant(body: Any, parts: list[str], value: Any) -> Any:
    """`body` with `value` at the pointer's parts, creating the objects and arrays on the way."""
    if not parts:
        return value
    head, rest = parts[0], parts[1:]
    if head.isdigit():
        items = list(body) if isinstance(body, list) and body else [{} if rest else None]
        items[int(head)] = _plant(items[int(head)], rest, value)
        return items
    inner = dict(body) if isinstance(body, dict) else {}
    inner[head] = _plant(inner.get(head), rest, value)
    return inner


# --- sending and judging -----------------------------------------------------------------------------------


def _json_text(body: Any) -> str:
    raw = json.dumps(body)  # a lone surrogate travels as its escape, which is valid JSON
    return raw.replace('"__DEEP__"', "[" * DEPTH + "]" * DEPTH)


@dataclass
class Judge:
    client: FlaskClient
    connection: Connection
    world: World
    failures: list[str] = field(default_factory=list)
    marks: set[str] = field(default_factory=set)

    def counts(self) -> dict[str, int]:
        tables = [t for t in inspect(self.connection).get_table_names() if t not in MAY_GROW]
        quote_name = self.connection.dialect.identifier_preparer.quote
        counts = ", ".join(f"(SELECT count(*) FROM {quote_name(t)})" for t in tables)  # noqa: S608 (the catalogue's)
        row = self.connection.execute(text(f"SELECT {counts}")).one()
        return dict(zip(tables, row, strict=True))

    def send(self, operation: Operation, what: str, hostile: Hostile, *, may_accept: bool, body: Any = None,
             query: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
             path: str | None = None) -> None:
        label = f"{operation} {what} = {hostile.label}"
        self.marks.update(hostile.marks)
        url = "/v1" + (path or _path(operation.path, self.world)) + (f"?{urlencode(query)}" if query else "")
        headers = self.world.tokens.get(operation.role or "", {}) | _base_headers(operation, self.world) | (
            headers or {})
        before = self.counts()
        if body is None:
            response = self.client.open(url, method=operation.method.upper(), headers=headers)
        elif operation.media_type == "application/x-www-form-urlencoded":
            response = self.client.open(url, method=operation.method.upper(), headers=headers, data=body)
        else:
            response = self.client.open(url, method=operation.method.upper(), data=_json_text(body),
                                        headers=headers | {"Content-Type": "application/json"})
        accepted = response.status_code < 400
        if not (400 <= response.status_code < 500 or (accepted and may_accept and hostile.identifier)):
            self.failures.append(f"{label}: {response.status_code} {response.get_data(as_text=True)[:300]}")
        elif not accepted and response.mimetype != PROBLEM_JSON:
            self.failures.append(f"{label}: {response.status_code} as {response.mimetype}")
        echoed = _echoed(response, hostile.marks)
        if echoed:
            self.failures.append(f"{label}: echoed {echoed}")
        if not accepted and self.counts() != before:
            self.failures.append(f"{label}: a refused request changed {_changed(before, self.counts())}")

    def stored(self) -> list[str]:
        """Every column that holds one of the identifiers as it was sent."""
        found = []
        for table in inspect(self.connection).get_table_names():
            result = self.connection.execute(text(f"SELECT * FROM {table}"))  # noqa: S608 (names from the catalogue)
            columns = list(result.keys())
            for row in result:
                for column, value in zip(columns, row, strict=True):
                    stored = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
                    found += [f"{table}.{column}: {m!r}" for m in self.marks if m in stored or _escaped(m) in stored]
        return found


def _escaped(mark: str) -> str:
    return json.dumps(mark)[1:-1]


def _echoed(response: TestResponse, marks: tuple[str, ...]) -> list[str]:
    shown = response.get_data(as_text=True) + "\n" + "\n".join(f"{k}: {v}" for k, v in response.headers.items())
    return [m for m in marks if m in shown or _escaped(m) in shown]


def _changed(before: dict[str, int], after: dict[str, int]) -> list[str]:
    return [f"{table} {before[table]} -> {after[table]}" for table in before if before[table] != after[table]]


def _path(template: str, world: World) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: world.ids[m.group(1)], template)


def _may_accept(operation: Operation, pointer: str) -> bool:
    return ("*", pointer) in MAY_ACCEPT_IDENTIFIERS or (operation.path, pointer) in MAY_ACCEPT_IDENTIFIERS


# --- the tests ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def document(app: Flask) -> dict[str, Any]:
    return app.test_client().get("/v1/openapi.json").json


@pytest.fixture
def world(client: FlaskClient, session: Session, token_for: Any) -> World:
    institution = make_institution(session)
    location = make_location(session, institution)
    oauth_client, secret = make_client(session, role=Role.ADMIN)
    tokens = {"admin": token_for(Role.ADMIN, oauth_client),
              "institution": token_for(Role.INSTITUTION, institution_id=institution.id),
              "analyst": token_for(Role.ANALYST, municipality_codes=["GM0014"]),
              "auditor": token_for(Role.AUDITOR, municipality_codes=["GM0014"])}
    created = client.post("/v1/incidents", headers=tokens["institution"], json=incident_body(location.id))
    assert created.status_code == 201, created.json
    ids = {"institutionId": str(institution.id), "locationId": str(location.id), "incidentId": created.json["id"],
           "clientId": str(oauth_client.id), "municipalityCode": "GM0014"}
    return World(ids, tokens, secret)


# Parametrized from the committed document, which tests/test_openapi.py holds equal to the app's.
OPERATIONS = [str(op) for op in operations(yaml.safe_load((Path(__file__).parent.parent / "openapi.yaml").read_text()))]


def _base_headers(operation: Operation, world: World) -> dict[str, str]:
    return {name: make(world) for name, make in HEADERS.items()
            if any(f.where == "header" and f.pointer == name for f in operation.fields)}


def test_every_operation_has_a_valid_request_to_start_from(
        document: dict[str, Any], client: FlaskClient, world: World) -> None:
    assert [str(op) for op in operations(document)] == OPERATIONS
    assert sorted(f"{op.method} {op.path}" for op in operations(document)) == sorted(f"{m} {p}" for m, p in BASES)
    # Valid, so that in each hostile request the hostile value is the one thing wrong. The retraction last: after
    # it the incident cannot be corrected.
    for operation in sorted(operations(document), key=lambda op: op.path.endswith("/retraction")):
        body, query = BASES[(operation.method, operation.path)](world, "")
        url = "/v1" + _path(operation.path, world) + (f"?{urlencode(query)}" if query else "")
        headers = world.tokens.get(operation.role or "", {}) | _base_headers(operation, world)
        if operation.path == "/oauth/token" or operation.path.startswith("/clients/{clientId}/"):
            headers = {}  # these authenticate with the client's own secret, or would change it
            if operation.path != "/oauth/token":
                continue
        kwargs: dict[str, Any] = ({"data": body} if operation.media_type != "application/json" else {"json": body}) \
            if body is not None else {}
        response = client.open(url, method=operation.method.upper(), headers=headers, **kwargs)
        assert response.status_code < 300, f"{operation}: {response.status_code} {response.get_data(as_text=True)}"


@pytest.mark.parametrize("name", OPERATIONS)
def test_hostile_input_is_refused_without_echo_and_changes_nothing(
        name: str, document: dict[str, Any], client: FlaskClient, connection: Connection, world: World) -> None:
    operation = next(op for op in operations(document) if str(op) == name)
    judge = Judge(client, connection, world)
    base = BASES[(operation.method, operation.path)]

    for target in operation.fields:
        if target.where == "body":
            for hostile in BODY_VALUES[target.type]:
                body, query = base(world, target.pointer)
                planted = _plant(body, target.pointer.strip("/").split("/"),
                                 "__DEEP__" if hostile.value is DEEP else hostile.value)
                if operation.media_type != "application/json" and (hostile.value is DEEP or
                                                                   not isinstance(hostile.value, str)):
                    continue  # a form carries text only
                if operation.media_type != "application/json" and "\ud800" in hostile.value:
                    continue
                judge.send(operation, target.pointer, hostile, body=planted, query=query,
                           may_accept=_may_accept(operation, target.pointer))
        elif target.where == "query":
            for hostile in TEXT_VALUES[target.type]:
                body, query = base(world, "")
                judge.send(operation, f"?{target.pointer}", hostile, body=body, query=query | {
                    target.pointer: hostile.value}, may_accept=False)
        elif target.where == "header":
            for hostile in IDENTIFIERS:
                body, query = base(world, "")
                judge.send(operation, f"header {target.pointer}", hostile, body=body, query=query,
                           headers={target.pointer: hostile.value},
                           may_accept=_may_accept(operation, f"header {target.pointer}"))
        elif target.where == "path":
            for hostile in IDENTIFIERS:
                body, query = base(world, "")
                path = _path(operation.path.replace("{" + target.pointer + "}", quote(hostile.value, safe="")),
                             world)
                judge.send(operation, f"path {target.pointer}", hostile, body=body, query=query, path=path,
                           may_accept=False)

    # The caller's headers travel with every operation: a request id is never echoed nor kept when it could
    # name someone, and an unknown key or query parameter is never echoed either.
    body, query = base(world, "")
    for hostile in REQUEST_IDS:
        judge.send(operation, "header X-Request-ID", hostile, body=body, query=query,
                   headers={"X-Request-ID": hostile.value}, may_accept=True)
    if operation.media_type == "application/json":
        judge.send(operation, "whole body", STRINGS[-1], body="__DEEP__", query=query, may_accept=False)
    for hostile in UNKNOWN_KEYS:
        if operation.media_type == "application/json":
            judge.send(operation, "unknown key", hostile, body=(base(world, "")[0] or {}) | {hostile.value: 1},
                       query=query, may_accept=False)
        elif operation.method == "get":
            # Refused where the operation reads a query; ignored (never echoed) where it reads none.
            judge.send(operation, "unknown query parameter", hostile, query=query | {hostile.value: "1"},
                       may_accept=not any(f.where == "query" for f in operation.fields))

    assert judge.failures == []
    assert judge.stored() == []
