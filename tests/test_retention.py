"""Retention (DESIGN §6): the purge forgets what is past its period, leaves statistics as a rebuild
would compute them, logs what it removed, and a dry run changes nothing.

Old incidents are recorded through the service with a Caller (it does not re-check the input rules), so their
rollup contributions are real ones for the purge to take back.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session

from service import clock, create_app
from service.audit.chain import verify_chain
from service.audit.keys import ChainKeys
from service.audit.models import AccessEvent
from service.auth.access import Caller
from service.auth.models import RevokedToken, Role
from service.cli import main
from service.db import db
from service.incidents.models import IdempotencyKey, Incident, Revision
from service.incidents.service import IdentityKeys, correct_incident, record_incidents, retract_incident
from service.retention import Purged, purge
from service.stats.models import ResidentRollup, Rollup
from service.stats.rollups import fold, rebuild
from tests.factories import make_client, make_institution, make_location, seal_access_log

YEARS = 5


def years_ago(years: int, now: dt.datetime) -> dt.datetime:
    try:
        return now.replace(year=now.year - years)
    except ValueError:
        return now.replace(year=now.year - years, day=28)


def values(location_id: uuid.UUID, occurred_at: dt.datetime, reference: str, resident: str | None) -> dict[str, Any]:
    return {"client_reference": reference, "location_id": location_id, "kind": "recruitmentAttempt",
            "exploitation_type": "criminal", "occurred_at": occurred_at, "resident_ref": resident,
            "resident_age_band": "16to17", "indicators": ["approachedAtEntrance"], "note": "Bij het hek.",
            "follow_up": {"meldcode_step": 2, "reported_to": [], "reported_at": None}}


def rollups(session: Session) -> dict[str, set[tuple[Any, ...]]]:
    """Every rollup row that counts something (a cell brought back to zero counts nothing, like an absent one),
    after folding what is pending, as a statistics read does."""
    session.expire_all()
    fold(session)
    snapshot = {}
    for table in (Rollup, ResidentRollup):
        columns = list(table.__table__.columns)
        keys = {c.name for c in table.__table__.primary_key.columns}
        measured = [i for i, c in enumerate(columns) if c.name not in keys]
        rows = session.execute(select(*columns)).all()
        snapshot[table.__tablename__] = {tuple(str(v) for v in row) for row in rows
                                         if any(row[i] for i in measured)}
    return snapshot


class Seeded:
    def __init__(self, app: Flask, session: Session) -> None:
        self.now = clock.now()
        self.keys = IdentityKeys.from_settings(app.extensions["settings"])
        institution = make_institution(session)
        locations = [make_location(session, institution).id for _ in range(2)]
        client, _secret = make_client(session, role=Role.INSTITUTION, institution_id=institution.id)
        self.client_id = client.id
        caller = Caller(client.id, Role.INSTITUTION, institution.id, ())
        limit = years_ago(YEARS, self.now)
        moments = {
            "old": years_ago(6, self.now), "old corrected": years_ago(6, self.now) + dt.timedelta(days=30),
            "old retracted": years_ago(7, self.now), "just expired": limit - dt.timedelta(days=1),
            "just kept": limit + dt.timedelta(days=1), "four years": years_ago(4, self.now),
            "recent": self.now - dt.timedelta(days=3), "recent corrected": self.now - dt.timedelta(days=2),
        }
        incidents = record_incidents(session, caller, [
            values(locations[i % 2], moment, f"RET-{i}", "R-1" if i % 3 else None)
            for i, moment in enumerate(moments.values())], self.keys, batch=True)
        self.ids = {name: incident.id for name, incident in zip(moments, incidents, strict=True)}
        # A resident seen only long ago: after the purge nothing of them may remain.
        [only_old] = record_incidents(session, caller, [values(locations[0], moments["old"], "RET-only-old",
                                                               "R-ONLY-OLD")], self.keys)
        self.ids["only old"] = only_old.id
        for name in ("old corrected", "recent corrected"):
            correct_incident(session, caller, self.ids[name], {"reason": "Leeftijd", "resident_age_band": "12to15"},
                             self.keys, if_match='"1"')
        retract_incident(session, caller, self.ids["old retracted"], "Dubbel")
        self.expired = {"old", "old corrected", "old retracted", "just expired", "only old"}
        self.kept = set(moments) - self.expired
        for key, expires in (("expired-key", self.now - dt.timedelta(minutes=1)),
                             ("fresh-key", self.now + dt.timedelta(hours=23))):
            session.add(IdempotencyKey(client_id=client.id, key_hash=key, request_hash="0" * 64, response_status=201,
                                       response_body="{}", created_at=expires - dt.timedelta(hours=24),
                                       expires_at=expires))
        for jti, expires in (("expired-jti", self.now - dt.timedelta(minutes=1)),
                             ("fresh-jti", self.now + dt.timedelta(minutes=10))):
            session.add(RevokedToken(jti=jti, client_id=client.id, expires_at=expires))
        session.flush()

    def incident_ids(self, names: set[str]) -> set[uuid.UUID]:
        return {self.ids[name] for name in names}


@pytest.fixture
def seeded(app: Flask, session: Session) -> Seeded:
    return Seeded(app, session)


def state(session: Session, seeded: Seeded) -> dict[str, Any]:
    session.expire_all()
    return {
        "incidents": set(session.scalars(select(Incident.id).where(
            Incident.id.in_(seeded.incident_ids(seeded.expired | seeded.kept))))),
        "revisions": set(session.execute(select(Revision.incident_id, Revision.version))),
        "keys": set(session.scalars(select(IdempotencyKey.key_hash)
                                    .where(IdempotencyKey.client_id == seeded.client_id))),
        "tokens": set(session.scalars(select(RevokedToken.jti).where(RevokedToken.client_id == seeded.client_id))),
        "events": session.scalar(select(func.count()).select_from(AccessEvent)),
        "rollups": rollups(session),
    }


def test_the_purge_removes_what_has_expired_and_keeps_the_rest(
        app: Flask, session: Session, seeded: Seeded) -> None:
    before = state(session, seeded)
    assert before["incidents"] == seeded.incident_ids(seeded.expired | seeded.kept)
    assert len(before["revisions"]) == 3

    purged = purge(session, app.extensions["chain_keys"], years=YEARS)

    after = state(session, seeded)
    assert purged == Purged(incidents=5, revisions=2, idempotency_keys=1, revoked_tokens=1)
    assert after["incidents"] == seeded.incident_ids(seeded.kept)
    assert after["revisions"] == {(seeded.ids["recent corrected"], 2)}
    assert after["keys"] == {"fresh-key"}
    assert after["tokens"] == {"fresh-jti"}
    assert after["rollups"] != before["rollups"]


def test_statistics_after_a_purge_equal_a_rebuild(app: Flask, session: Session, seeded: Seeded) -> None:
    assert rollups(session)["resident_rollup"]  # the seeded residents are counted

    purge(session, app.extensions["chain_keys"], years=YEARS)
    incremental = rollups(session)
    counted = rebuild(session)

    assert counted == len(seeded.kept)
    assert rollups(session) == incremental


def test_the_purge_is_logged_with_its_counts_and_keeps_the_chain_valid(
        app: Flask, session: Session, seeded: Seeded) -> None:
    keys = app.extensions["chain_keys"]
    events = state(session, seeded)["events"]

    purge(session, app.extensions["chain_keys"], years=YEARS)
    assert seal_access_log(session, keys) >= 1

    session.expire_all()
    assert session.scalar(select(func.count()).select_from(AccessEvent)) == events + 1  # none removed, one added
    event = session.scalar(select(AccessEvent).order_by(AccessEvent.seq.desc()).limit(1))
    assert event is not None
    assert (event.event_type, event.outcome, event.record_count) == ("retention", 200, 5)
    assert event.route == "risk-register retention purge"
    assert (event.client_id, event.role, event.records) == (None, None, [])
    assert {k: event.filters[k] for k in ("incidents", "revisions", "idempotencyKeys", "revokedTokens")} == {
        "incidents": "5", "revisions": "2", "idempotencyKeys": "1", "revokedTokens": "1"}
    cutoff = dt.datetime.fromisoformat(event.filters["occurredBefore"])
    assert abs(cutoff - years_ago(YEARS, seeded.now)) < dt.timedelta(minutes=5)
    assert verify_chain(session, keys).valid


def test_a_dry_run_changes_nothing_and_counts_the_incidents_and_revisions(
        app: Flask, session: Session, seeded: Seeded) -> None:
    before = state(session, seeded)

    counted = purge(session, app.extensions["chain_keys"], years=YEARS, dry_run=True)

    assert (counted.incidents, counted.revisions) == (5, 2)
    assert state(session, seeded) == before  # the access log included: a dry run writes no event


def test_a_dry_run_counts_the_expired_keys_and_revocations_too(
        app: Flask, session: Session, seeded: Seeded) -> None:
    counted = purge(session, app.extensions["chain_keys"], years=YEARS, dry_run=True)

    assert counted == Purged(incidents=5, revisions=2, idempotency_keys=1, revoked_tokens=1)


def test_nothing_to_purge_is_still_logged(app: Flask, session: Session) -> None:
    purged = purge(session, app.extensions["chain_keys"], years=YEARS,
                   now=dt.datetime(2001, 1, 1, tzinfo=dt.UTC))

    assert (purged.incidents, purged.revisions) == (0, 0)
    event = session.scalar(select(AccessEvent).order_by(AccessEvent.seq.desc()).limit(1))
    assert event is not None and event.event_type == "retention" and event.record_count == 0


# --- the command ------------------------------------------------------------------------------------------------------


def test_the_command_purges_and_its_dry_run_prints_camel_case_json(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'retention.sqlite3'}"
    env = {"INSTANCE_PATH": str(tmp_path / "instance"), "DATABASE_URL": url, "APP_ENV": "development"}
    runner = CliRunner()
    upgraded = runner.invoke(main, ["db", "upgrade"], env=env)
    assert upgraded.exit_code == 0, upgraded.output
    app = create_app(env)  # the command's instance folder, so the same development keys
    now = clock.now()
    with app.app_context():
        institution = make_institution(db.session)
        location = make_location(db.session, institution)
        caller = Caller(uuid.uuid4(), Role.INSTITUTION, institution.id, ())
        record_incidents(db.session, caller, [values(location.id, years_ago(6, now), "CLI-old", "R-9"),
                                              values(location.id, now - dt.timedelta(days=1), "CLI-new", "R-9")],
                         IdentityKeys.from_settings(app.extensions["settings"]), batch=True)
        db.finish(commit=True)
    app.extensions["database"]["engine"].dispose()
    engine = create_engine(url)

    def count(table: str) -> int:
        with engine.connect() as connection:
            return connection.scalar(text(f"SELECT count(*) FROM {table}"))  # noqa: S608

    dry = runner.invoke(main, ["retention", "purge", "--dry-run"], env=env)

    assert dry.exit_code == 0, dry.output
    reported = json.loads(dry.output)
    assert set(reported) == {"dryRun", "incidents", "revisions", "idempotencyKeys", "revokedTokens"}
    assert reported["dryRun"] is True
    assert (reported["incidents"], reported["revisions"]) == (1, 0)
    assert (count("incident"), count("access_event")) == (2, 0)

    done = runner.invoke(main, ["retention", "purge"], env=env)

    assert done.exit_code == 0, done.output
    assert json.loads(done.output) == {"dryRun": False, "incidents": 1, "revisions": 0, "idempotencyKeys": 0,
                                       "revokedTokens": 0}
    assert (count("incident"), count("access_event")) == (1, 1)
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT event_type FROM access_event")) == "retention"
    engine.dispose()
    assert json.loads(runner.invoke(main, ["audit", "seal"], env=env).output)["sealed"] == 1
    verified = runner.invoke(main, ["audit", "verify"], env=env)
    assert verified.exit_code == 0, verified.output
    assert json.loads(verified.output) | {"head": "h"} == {
        "valid": True, "events": 1, "head": "h", "firstBroken": None, "problem": None, "keyVersion": 1,
        "unsealed": 0, "oldestUnsealedSeconds": None}


def test_nothing_of_a_purged_resident_remains_in_the_rollups(app: Flask, session: Session, seeded: Seeded) -> None:
    purged = {p for p in session.scalars(select(Incident.resident_pseudonym).where(
        Incident.id.in_(seeded.incident_ids(seeded.expired)))) if p}
    kept = {p for p in session.scalars(select(Incident.resident_pseudonym).where(
        Incident.id.in_(seeded.incident_ids(seeded.kept)))) if p}
    assert purged - kept, "the seed must have a resident who only appears in purged incidents"

    purge(session, app.extensions["chain_keys"], years=YEARS)

    remaining = set(session.scalars(select(ResidentRollup.resident_pseudonym)))
    assert not (purged - kept) & remaining
    zero_cells = session.scalar(select(func.count()).select_from(Rollup).where(Rollup.incidents == 0,
                                                                               Rollup.step2 == 0))
    assert zero_cells == 0


def test_a_purge_and_a_concurrent_write_to_the_same_rollups_both_commit(committing_register: Any,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL. A purge applies its chunks one after another, each in its own row order; a writer touching the
    same rollup rows in between would deadlock with it unless the purge holds the rollup tables from the start."""
    import threading

    from service import retention
    from service.stats import rollups
    from tests.stats.factories import KEYS, caller_of, incident_values

    engine, institution = committing_register.engine, committing_register.institution_id
    location, caller = uuid.UUID(committing_register.location_id), caller_of(committing_register.institution_id)
    # Two residents in pseudonym order; the purge meets the last one first (one incident per chunk).
    refs = sorted((f"R-{i}" for i in range(20)), key=lambda r: KEYS.resident(institution, r))
    low, high = refs[0], refs[-1]
    long_ago = dt.datetime(2019, 2, 10, 12, tzinfo=dt.UTC)
    with Session(engine) as session:
        for resident in (high, low):
            record_incidents(session, caller, [incident_values(location, resident=resident, occurred_at=long_ago)],
                             KEYS)
            session.commit()
    monkeypatch.setattr(retention, "CHUNK", 1)
    first_chunk_applied, errors = threading.Event(), []
    apply = rollups.apply

    def apply_then_pause(session: Session, changes: Any, municipalities: Any = None) -> None:
        apply(session, changes, municipalities)
        if threading.current_thread().name == "purge" and not first_chunk_applied.is_set():
            first_chunk_applied.set()
            threading.Event().wait(1.5)  # the writer runs now, between the purge's chunks

    monkeypatch.setattr(rollups, "apply", apply_then_pause)

    def run(name: str, work: Any) -> None:
        with Session(engine) as session:
            try:
                work(session)
                session.commit()
            except Exception as exc:
                errors.append((name, type(exc).__name__))
                session.rollback()

    def write(session: Session) -> None:  # both residents, in the purge cutoff's year (after the cutoff)
        first_chunk_applied.wait(10)
        record_incidents(session, caller, [incident_values(location, resident=r,
                                                           occurred_at=dt.datetime(2019, 9, 1, 12, tzinfo=dt.UTC))
                                           for r in (low, high)], KEYS, batch=True)

    threads = [threading.Thread(target=run, name="purge", args=("purge", lambda s: purge(
                   s, ChainKeys({1: b"a" * 32}), years=7, now=dt.datetime(2026, 6, 1, tzinfo=dt.UTC)))),
               threading.Thread(target=run, args=("write", write))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert errors == []
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Incident)) == 2  # the two written after the cutoff
