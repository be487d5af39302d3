"""A client generated from openapi.yaml by openapi-python-client, as an integrator would make one, runs a care
client's and a municipality's day against the real server: a token by client credentials, an incident recorded with
an Idempotency-Key, a list paged by cursor, a correction with If-Match, a retraction, hotspots and an export."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from service import clock
from service.auth.models import Role
from service.operations import alembic_config
from tests.factories import make_client, make_location
from tests.serving import BIN, free_port, served, suite_clock

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "signal_register_client"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The client package, generated into a temporary folder and imported from there."""
    folder = tmp_path_factory.mktemp("generated")
    result = subprocess.run(  # noqa: S603 - our own tool on our own document
        [str(BIN / "openapi-python-client"), "generate", "--path", str(ROOT / "openapi.yaml"),
         "--config", str(ROOT / "docs" / "openapi-python-client.yaml"), "--meta", "none",
         "--output-path", str(folder / PACKAGE)],
        capture_output=True, text=True, timeout=300, env={"PATH": str(BIN)}, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "warning" not in output.lower() and "error" not in output.lower(), output
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(folder))
        for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
            del sys.modules[name]


@pytest.fixture
def register(tmp_path: Path) -> dict[str, Any]:
    """A migrated SQLite register with a location and one client of each role that reads or writes incidents."""
    url = f"sqlite:///{tmp_path / 'served.sqlite3'}"
    command.upgrade(alembic_config(url), "head")
    engine = create_engine(url)
    with Session(engine, expire_on_commit=False) as session:
        location = make_location(session)
        clients = {role: make_client(session, role=role, **scope) for role, scope in (
            (Role.INSTITUTION, {"institution_id": location.institution_id}),
            (Role.ANALYST, {"municipality_codes": ["GM0014"]}),
            (Role.AUDITOR, {"municipality_codes": ["GM0014"]}))}
        session.commit()
    engine.dispose()
    return {"url": url, "location": location.id,
            "clients": {role: (str(client.id), secret) for role, (client, secret) in clients.items()}}


def _module(package: Any, name: str) -> Any:
    return importlib.import_module(f"{package.__name__}.{name}")


def test_a_generated_client_runs_a_day_against_the_server(generated, register, tmp_path):
    api, models = (lambda name: _module(generated, f"api.{name}")), _module(generated, "models")
    port = free_port()
    env = {"INSTANCE_PATH": str(tmp_path / "instance"), "DATABASE_URL": register["url"],
           "APP_ENV": "development"} | suite_clock()
    argv = [str(BIN / "risk-register"), "serve", "--bind", f"127.0.0.1:{port}", "--workers", "1"]
    with served(argv, env, tmp_path, port) as server:
        base_url = f"{server.url}/v1"

        def session_of(role: Role) -> Any:
            """A client authenticated with a token it fetched itself (client credentials, form fields)."""
            client_id, secret = register["clients"][role]
            token = _module(generated, "api.oauth.obtain_access_token").sync(
                client=generated.Client(base_url=base_url),
                body=models.TokenRequest(grant_type=models.GrantType.CLIENT_CREDENTIALS, client_id=client_id,
                                         client_secret=secret))
            assert isinstance(token, models.TokenOut), token
            return generated.AuthenticatedClient(base_url=base_url, token=token.access_token)

        institution = session_of(Role.INSTITUTION)
        occurred = clock.now() - dt.timedelta(days=3)
        incidents = []
        for n in range(3):
            body = models.IncidentIn(
                client_reference=f"generated-{n}", location_id=register["location"],
                kind=models.Kind.ABSENCE, exploitation_type=models.ExploitationType.CRIMINAL, occurred_at=occurred,
                resident_age_band=models.AgeBand.AGE_16_TO_17, resident_ref=f"CL-gen-{n}",
                absence=models.AbsenceIn(whereabouts_known=False, risk_level=models.RiskLevel.ORANGE))
            key = str(uuid.uuid4())
            record = api("incidents.record_incident")
            first = record.sync_detailed(client=institution, body=body, idempotency_key=key)
            again = record.sync_detailed(client=institution, body=body, idempotency_key=key)
            assert first.status_code == 201 and isinstance(first.parsed, models.AdvisedIncidentOut), first.content
            assert first.parsed.guidance.next_meldcode_step.question_en  # advice comes with every create
            assert again.headers["Idempotent-Replayed"] == "true" and again.parsed.id == first.parsed.id
            assert first.headers["ETag"] == '"1"' and first.parsed.resident_age_band is models.AgeBand.AGE_16_TO_17
            incidents.append(first.parsed)

        listed, cursor = [], generated.types.UNSET
        while True:
            page = api("incidents.list_incidents").sync(client=institution, limit=2, cursor=cursor)
            assert isinstance(page, models.IncidentPage), page
            listed += [incident.id for incident in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert listed == [incident.id for incident in incidents]

        corrected = api("incidents.correct_incident").sync(
            incidents[0].id, client=institution, if_match='"1"',
            body=models.IncidentPatch(reason="Age band corrected after intake",
                                      resident_age_band=models.AgeBand.AGE_12_TO_15))
        assert isinstance(corrected, models.AdvisedIncidentOut), corrected
        assert (corrected.version, corrected.resident_age_band) == (2, models.AgeBand.AGE_12_TO_15)
        stale = api("incidents.correct_incident").sync_detailed(
            incidents[0].id, client=institution, if_match='"1"', body=models.IncidentPatch(reason="Again"))
        assert stale.status_code == 412 and isinstance(stale.parsed, models.Problem)

        retracted = api("incidents.retract_incident").sync(
            incidents[1].id, client=institution, if_match='"1"', body=models.RetractionIn(reason="Recorded twice"))
        assert isinstance(retracted, models.IncidentOut) and retracted.status is models.Status.RETRACTED

        period = f"{occurred.year}-{occurred.month:02d}"
        hotspots = api("stats.get_hotspots").sync(client=session_of(Role.ANALYST), period=period,
                                                  group_by=models.UnitType.INSTITUTION)
        assert isinstance(hotspots, models.HotspotsOut), hotspots
        assert hotspots.period == period and hotspots.group_by is models.UnitType.INSTITUTION
        assert hotspots.disclosure.k >= 1

        export = api("exports.export_incidents").sync_detailed(client=session_of(Role.AUDITOR), from_=period,
                                                                to=period)
        assert export.status_code == 200, export.content
        *rows, end = [json.loads(line) for line in export.content.decode().splitlines()]  # NDJSON by default
        assert sorted(row["id"] for row in rows) == sorted(str(incident.id) for incident in incidents)
        assert export.headers["Export-Row-Count"] == str(len(incidents)) and "metadata" in end
        assert "CL-gen" not in export.content.decode()  # the resident reference never leaves
