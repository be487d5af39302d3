"""Contract fuzzing: Schemathesis generates requests from the app's own OpenAPI document and runs every check
(server errors, status codes, content types, headers, response schemas, negative data rejection, positive data
acceptance, ignored auth, unsupported methods) in-process, with a token of an allowed role for each operation.

Some rules cannot be written in OpenAPI: an incident's block must match its kind, `occurredAt` lies in the last
ten years, a period must not be in the future, a location must be the caller's own, a cursor comes from a previous
page. For positive cases a hook repairs generated requests with the service's own rules (never a copy of them),
so "schema-valid" means valid for the service too; negative cases are left as generated.

FUZZ_EXAMPLES sets the examples per operation (`make test`: 15; `make fuzz`: 300).
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import string
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from alembic import command
from flask import Flask
from flask_jwt_extended import create_access_token
from hypothesis import HealthCheck, settings
from schemathesis.generation import GenerationMode
from schemathesis.generation.meta import TestPhase

from service import clock, create_app
from service.auth import service as auth
from service.auth.models import Role
from service.config import Settings
from service.db import db
from service.incidents.rules import BLOCK_OF_KIND
from service.operations import alembic_config
from service.taxonomy.service import load_taxonomy
from tests.factories import make_institution, make_location

# Valid periods are drawn from 2025 and 2026.
pytestmark = [pytest.mark.clock("2026-11-20"), pytest.mark.slow]

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "15"))


@pytest.fixture(scope="module")
def fuzz_app(scratch_databases, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """An app on a database of its own whose requests really commit, with one client per role."""
    url = scratch_databases.create()
    command.upgrade(alembic_config(url), "head")
    app = create_app(Settings(environment="test", instance_path=Path(tmp_path_factory.mktemp("fuzz")),
                              database_url=url, token_secret=secrets.token_hex(32),
                              pseudonym_master_key=secrets.token_bytes(32), rate_limit="100000 per minute",
                              token_rate_limit="100000 per minute"))
    with app.app_context():
        institution = make_institution(db.session)
        location = make_location(db.session, institution)
        tokens = {}
        for role in Role:
            scope: dict[str, Any] = {"institution_id": institution.id} if role is Role.INSTITUTION else {}
            if role in (Role.ANALYST, Role.AUDITOR):
                scope["municipality_codes"] = ["GM0014"]
            client, _ = auth.create_client(db.session, name=f"fuzz {role.value}", role=role, **scope)
            tokens[role.value] = create_access_token(identity=str(client.id),
                                                     additional_claims=auth.token_claims(client))
        context = {"app": app, "tokens": tokens, "location_id": str(location.id),
                   "institution_id": str(institution.id)}
        db.finish(commit=True)
    return context


def _recent(hours: int = 2) -> str:
    return (clock.now() - dt.timedelta(hours=hours)).isoformat()


def _repair_incident(item: dict[str, Any], location_id: str, serial: str) -> dict[str, Any]:
    """Make a schema-valid incident valid for the service: its block, indicators, times and location."""
    taxonomy = load_taxonomy()
    kind = item["kind"]
    item["locationId"] = location_id
    item["clientReference"] = f"fuzz-{serial}"
    item["occurredAt"] = _recent()
    item["indicators"] = [i for i in item.get("indicators") or [] if i in taxonomy.indicators_for(kind)]
    for block in ("absence", "visitor"):
        item.pop(block, None)
    if BLOCK_OF_KIND.get(kind) == "absence":
        item["absence"] = {"whereaboutsKnown": True, "riskLevel": "green"}
    if BLOCK_OF_KIND.get(kind) == "visitor":
        item["visitor"] = {}
    item.pop("followUp", None)
    item.pop("note", None)  # free text is screened; its rules are tested by hand
    if item.get("residentRef") is not None:
        item["residentRef"] = f"CL-{serial}"
    return item


def _serial() -> str:
    """A fresh reference part in letters only: random digits may spell a BSN or a phone number, which screening
    rightly refuses in references."""
    return "".join(secrets.choice(string.ascii_lowercase) for _ in range(12))


def _repair(case: Any, context: dict[str, Any]) -> None:
    path, serial = case.operation.path, _serial()
    if isinstance(case.query, dict):
        case.query.pop("cursor", None)  # cursors come from the previous page, not from a generator
        if path.startswith("/stats/"):
            for extra in [name for name in ("kind", "exploitationType", "breakdown") if name in case.query][1:]:
                case.query.pop(extra)  # one attribute per table, as the parameters' descriptions say
        if path == "/guidance":  # indicators of the kind asked, a risk level for an absence (as described)
            case.query["indicators"] = []
            if case.query.get("kind") != "absence":
                case.query.pop("riskLevel", None)
        for name in ("period", "from", "to"):
            if name in case.query:
                case.query[name] = {"week": "2026-W10", "month": "2026-03", "quarter": "2026-Q1",
                                    "year": "2025"}.get(case.query.get("periodType", ""), "2026-Q1")
    if case.headers and "Idempotency-Key" in case.headers:
        case.headers["Idempotency-Key"] = serial  # a key reused for another body is a 422 by design
    if not isinstance(case.body, dict):
        return
    case.body.pop("cursor", None)
    if path == "/incidents":
        _repair_incident(case.body, context["location_id"], serial)
    elif path == "/incidents/_batch":
        case.body["items"] = [_repair_incident(item, context["location_id"], f"{serial}-{n}")
                              for n, item in enumerate(case.body.get("items") or [])]
    elif path == "/incidents/_search":
        case.body.pop("locationId", None)
    elif path == "/incidents/{incidentId}":
        for key in ("kind", "absence", "visitor", "occurredAt", "locationId", "followUp", "note", "indicators",
                    "clientReference"):
            case.body.pop(key, None)
    elif path == "/clients":
        role = case.body.get("role")
        case.body.pop("institutionId", None)
        case.body["municipalityCodes"] = ["GM0014"] if role in ("analyst", "auditor") else []
        if role == "institution":
            case.body["institutionId"] = context["institution_id"]
    elif path == "/institutions/{institutionId}/locations" and "capacities" in case.body:
        dates = {c["validFrom"]: c for c in case.body["capacities"]}
        case.body["capacities"] = list(dates.values()) or [{"validFrom": "2024-01-01", "places": 1}]


@pytest.fixture(scope="module")
def fuzz_schema(fuzz_app: dict[str, Any]) -> Any:
    app: Flask = fuzz_app["app"]
    schema = schemathesis.openapi.from_wsgi("/v1/openapi.json", app)

    @schema.hook("map_case")
    def repair(_ctx: Any, case: Any) -> Any:
        if case.meta is None or case.meta.generation.mode is GenerationMode.POSITIVE:
            _repair(case, fuzz_app)
        return case

    TOKENS.update(fuzz_app["tokens"])
    CONTEXT.update(fuzz_app)
    return schema


TOKENS: dict[str, str] = {}
CONTEXT: dict[str, Any] = {}


def _role(case: Any, _context: Any = None) -> str | None:
    roles = case.operation.definition.raw.get("x-roles")
    return roles[0] if roles else None


@schemathesis.auth(refresh_interval=None, cache_by_key=_role, retry_on=[])
class TokenOfAnAllowedRole:
    """A bearer token of the first role the operation allows; Schemathesis also tries without and with bad ones."""

    def get(self, case: Any, _context: Any) -> str | None:
        role = _role(case)
        return TOKENS[role] if role else None

    def set(self, case: Any, token: str | None, _context: Any) -> None:
        if token:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}


schema = schemathesis.pytest.from_fixture("fuzz_schema")


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much, HealthCheck.data_too_large])
def test_the_api_keeps_its_contract(case: Any) -> None:
    if case.meta is not None and case.meta.phase.name is TestPhase.EXAMPLES:
        # The document's examples reach the test as Hypothesis explicit examples, which no map_case hook sees; they
        # are positive cases, so they get the same repair (a cursor of another list, three attributes at once).
        _repair(case, CONTEXT)
    case.call_and_validate()
