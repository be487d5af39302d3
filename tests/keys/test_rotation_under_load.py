"""Rotating keys while the register is in use (issue 19), on a database whose requests really commit (SQLite or
PostgreSQL, as TEST_DATABASE_URL says): writers record incidents for residents being re-keyed and readers search
and read statistics in other threads while `keys rekey` runs; afterwards no resident is split, search finds the
old incidents, released statistics are unchanged, tokens of the old key work until it is retired, and no raw
identifier is stored or logged anywhere. A run that stops halfway resumes and completes.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import threading
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import pytest
from alembic import command
from flask import Flask
from flask_jwt_extended import create_access_token
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from service import create_app
from service.auth import service as auth_service
from service.auth.models import Role
from service.config import Settings
from service.db import make_engine
from service.incidents.models import Incident
from service.incidents.service import IdentityKeys, record_incidents
from service.keys.service import rotate_stored, status
from service.operations import alembic_config
from service.stats import rollups
from tests.factories import letters, make_client, make_institution, make_location
from tests.incidents.test_privacy_canary import database_leaks, log_leaks
from tests.keys.test_rekeying import released_cells
from tests.stats.factories import caller_of, incident_values
from tests.stats.test_rollups import rollup_rows

pytestmark = pytest.mark.clock("2026-11-20")
OCTOBER = dt.datetime(2026, 10, 1, 10, tzinfo=dt.UTC)
# Raw identifiers sent in: none may be stored or logged, before, during or after the rotation.
REFS = {"busy": ["ROTCANARY-B-1", "ROTCANARY-B-2", "ROTCANARY-B-3"],
        "quiet": ["ROTCANARY-Q-1", "ROTCANARY-Q-2", "ROTCANARY-Q-3", "ROTCANARY-Q-4"]}
PLATE = "RT-77-QX"
CANARIES = {"residentRef": (*REFS["busy"], *REFS["quiet"]), "vehiclePlate": (PLATE, "RT77QX")}


@dataclass
class Deployment:
    engine: Engine
    old: Settings
    new: Settings
    apps: dict[str, Flask]
    locations: dict[str, str]
    incidents_of: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    headers: dict[str, dict[str, str]] = field(default_factory=dict)


def _token(app: Flask, engine: Engine, role: Role, **scope: Any) -> dict[str, str]:
    with Session(engine, expire_on_commit=False) as session:
        client, _secret = make_client(session, role=role, **scope)
        session.commit()
    with app.app_context():
        token = create_access_token(identity=str(client.id), additional_claims=auth_service.token_claims(client))
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def deployment(scratch_databases: Any, settings: Settings) -> Any:
    """A register whose incidents are under version 1 of every key, and the same register with a ring that adds
    version 2 (pseudonyms, fingerprints, token signing), as every host has it once the new keys are deployed."""
    url = scratch_databases.create()
    command.upgrade(alembic_config(url), "head")
    master = settings.pseudonym_master_key
    old = settings.with_overrides(database_url=url)
    new = old.with_overrides(pseudonym_key_ring=((1, master), (2, secrets.token_bytes(32))),
                             fingerprint_key_ring=((1, master), (2, secrets.token_bytes(32))),
                             token_secret_ring=(("1", settings.token_secret), ("2", secrets.token_hex(32))))
    apps = {"old": create_app(old), "new": create_app(new)}
    engine = make_engine(url)
    found = Deployment(engine, old, new, apps, {})
    with Session(engine, expire_on_commit=False) as session:
        busy, quiet = make_institution(session), make_institution(session, municipality_code="GM0363")
        places = {"busy": make_location(session, busy), "quiet": make_location(session, quiet)}
        session.commit()
        keys = IdentityKeys.from_settings(old)
        for name, location in places.items():
            refs = REFS[name]
            items = [incident_values(location, resident=refs[i % len(refs)], occurred_at=OCTOBER + dt.timedelta(
                days=i % 28), meldcode_step=2 + i % 4, reported=i % 3 == 0) for i in range(24)]
            items += [incident_values(location, resident=None, occurred_at=OCTOBER) for _ in range(3)]
            for item in items[:4]:
                item["kind"], item["indicators"] = "suspiciousVisitor", ["unknownAdultWaiting"]
                item["visitor"] = {"estimated_age_band": "23plus", "relation_claimed": "friend",
                                   "vehicle_plate": PLATE, "phone_number": None}
            for incident, item in zip(record_incidents(session, caller_of(location.institution_id), items, keys,
                                                       batch=True), items, strict=True):
                if item["resident_ref"]:
                    found.incidents_of[item["resident_ref"]].add(str(incident.id))
            session.commit()
        found.locations = {name: str(location.id) for name, location in places.items()}
        # Tokens signed with key version 1, before the rotation.
        found.headers = {"busy": _token(apps["old"], engine, Role.INSTITUTION, institution_id=busy.id),
                         "quiet": _token(apps["old"], engine, Role.INSTITUTION, institution_id=quiet.id),
                         "analyst": _token(apps["old"], engine, Role.ANALYST, municipality_codes=["GM0363"])}
    yield found
    engine.dispose()
    for app in apps.values():
        app.extensions["database"]["engine"].dispose()


STATISTICS = ["/v1/stats/hotspots?period=2026-10&groupBy=location",
              "/v1/stats/hotspots?period=2026-Q4&groupBy=institution&breakdown=exploitationType",
              "/v1/stats/reporting-funnel?period=2026-10&groupBy=institution"]


def _statistics(app: Flask, headers: dict[str, str]) -> list[Any]:
    client = app.test_client()
    answers = []
    for url in STATISTICS:
        response = client.get(url, headers=headers)
        assert response.status_code == 200, response.json
        answers.append(response.json)
    return answers


def _searched(app: Flask, headers: dict[str, str], ref: str) -> set[str]:
    response = app.test_client().post("/v1/incidents/_search", headers=headers,
                                      json={"residentRef": ref, "limit": 100})
    assert response.status_code == 200, response.json
    return {item["id"] for item in response.json["items"]}


def test_rotation_while_writers_and_readers_run_splits_no_resident_and_changes_no_figure(deployment, caplog):
    caplog.set_level(logging.DEBUG)
    new_app, engine = deployment.apps["new"], deployment.engine
    released_before = _statistics(new_app, deployment.headers["analyst"])
    assert any(cell["value"] for cell in released_cells(released_before)), "the statistics release something"
    errors: list[BaseException] = []
    written: dict[str, set[str]] = defaultdict(set)
    done = threading.Event()

    def write() -> None:  # the busy institution keeps recording incidents of its residents, with a token of key 1
        client, n = new_app.test_client(), 0
        try:
            while not done.is_set() or n < 6:
                ref = REFS["busy"][n % 3]
                response = client.post("/v1/incidents", headers=deployment.headers["busy"], json={
                    "clientReference": f"ROT-{n}-{letters(6)}", "locationId": deployment.locations["busy"],
                    "kind": "suspiciousVisitor", "exploitationType": "criminal",
                    "occurredAt": "2026-11-19T10:00:00+01:00", "residentRef": ref,
                    "indicators": ["unknownAdultWaiting"],
                    "visitor": {"estimatedAgeBand": "23plus", "relationClaimed": "friend", "vehiclePlate": PLATE}})
                assert response.status_code == 201, response.json
                written[ref].add(response.json["id"])
                n += 1
        except BaseException as exc:
            errors.append(exc)

    def read() -> None:  # the quiet institution searches; the analyst reads its municipality's statistics
        try:
            while not done.is_set():
                for ref in REFS["quiet"]:
                    assert _searched(new_app, deployment.headers["quiet"], ref) == deployment.incidents_of[ref]
                assert _statistics(new_app, deployment.headers["analyst"]) == released_before
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write), threading.Thread(target=read)]
    for thread in threads:
        thread.start()
    try:
        pseudonyms = rotate_stored(deployment.new, "pseudonym", engine, batch=1)
        fingerprints = rotate_stored(deployment.new, "fingerprint", engine, batch=2)
    finally:
        done.set()
        for thread in threads:
            thread.join(timeout=120)
    assert not errors, errors
    assert pseudonyms["moved"] == 7 and pseudonyms["pending"] == 0
    assert fingerprints["moved"] >= 8 and fingerprints["pending"] == 0
    # What writers added while the run went on was written in the form its resident had: rerunning moves only
    # residents whose last batch raced them, and leaves nothing behind.
    rotate_stored(deployment.new, "pseudonym", engine)
    assert status(deployment.new, "pseudonym", engine)["stored"] == {"2": 7}

    keys = IdentityKeys.from_settings(deployment.new)
    with Session(engine) as session:
        for name, refs in REFS.items():
            for ref in refs:
                ids = deployment.incidents_of[ref] | written[ref]
                forms = set(session.execute(select(Incident.resident_pseudonym, Incident.resident_key_version)
                                            .where(Incident.id.in_([uuid.UUID(i) for i in ids]))).all())
                institution = session.scalar(select(Incident.institution_id).where(
                    Incident.id == uuid.UUID(next(iter(ids)))))
                assert forms == {(keys.resident(institution, ref), 2)}, f"{ref} is split"
                assert _searched(new_app, deployment.headers[name], ref) == ids
        plates = set(session.execute(select(Incident.visitor_plate_fingerprint,
                                            Incident.visitor_fingerprint_key_version)
                                     .where(Incident.visitor_plate_fingerprint.is_not(None))).all())
        assert plates == {(keys.fingerprint("RT77QX"), 2)}
        assert session.scalar(select(func.count()).select_from(Incident)) == 54 + sum(map(len, written.values()))
    assert _statistics(new_app, deployment.headers["analyst"]) == released_before

    # The incremental rollups equal a rebuild from the incidents (the seed each pseudonym carries is read alike).
    with Session(engine) as session:
        kept = rollup_rows(session)
        rollups.rebuild(session, chunk=10)
        assert rollup_rows(session) == kept
        session.rollback()
    with engine.connect() as connection:
        assert database_leaks(connection, CANARIES) == []
    assert log_leaks(caplog.records, CANARIES) == []


def test_an_interrupted_run_resumes_and_completes(deployment):
    engine, new = deployment.engine, deployment.new
    released_before = _statistics(deployment.apps["new"], deployment.headers["analyst"])
    stopped = rotate_stored(new, "pseudonym", engine, batch=2, max_batches=2)
    assert stopped["moved"] == 4 and stopped["pending"] == 3 and stopped["stored"] == {"1": 3, "2": 4}

    def crash(_moved: int) -> None:
        raise KeyboardInterrupt  # the operator's Ctrl-C, or a lost connection, after a committed batch

    with pytest.raises(KeyboardInterrupt):
        rotate_stored(new, "pseudonym", engine, batch=2, after_batch=crash)
    assert status(new, "pseudonym", engine)["stored"] == {"1": 1, "2": 6}
    assert _statistics(deployment.apps["new"], deployment.headers["analyst"]) == released_before
    for name, refs in REFS.items():
        for ref in refs:
            assert _searched(deployment.apps["new"], deployment.headers[name], ref) == deployment.incidents_of[ref]

    finished = rotate_stored(new, "pseudonym", engine, batch=2)
    assert finished["moved"] == 1 and finished["stored"] == {"2": 7} and finished["pending"] == 0
    assert rotate_stored(new, "pseudonym", engine)["moved"] == 0
    assert _statistics(deployment.apps["new"], deployment.headers["analyst"]) == released_before
