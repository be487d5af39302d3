"""The access log's hash chain under tampering (DESIGN §6): edits, deletions, insertions and reordering done behind
the service's back, with plain SQL on the test's connection, are each found and the first broken event named.

verify_chain, GET /v1/audit-events/_verify and `risk-register audit verify` must agree.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from service import create_app
from service.audit.chain import GENESIS, Verification, verify_chain
from service.audit.keys import ChainKeys, canonical
from service.audit.models import AccessEvent
from service.audit.service import EventType, append_event
from service.auth.access import Caller
from service.auth.models import Role
from service.db import db
from tests.factories import as_table_owner, seal_access_log

EVENTS = 5
TABLE = AccessEvent.__table__
CONTENT = [c.name for c in TABLE.columns if c.name not in ("seq", "chain_seq")]  # a row's place stays put


def _caller() -> Caller:
    return Caller(uuid.uuid4(), Role.INSTITUTION, uuid.uuid4(), ())


@pytest.fixture
def key(app: Flask) -> ChainKeys:
    return app.extensions["chain_keys"]


@pytest.fixture
def connection(connection: Connection) -> Connection:
    """The test's connection, acting as the database's owner behind the service's back."""
    as_table_owner(connection)
    return connection


@pytest.fixture
def chain(session: Session, key: ChainKeys) -> list[int]:
    """Five events appended by the service and sealed; their seqs."""
    events = [append_event(session, key, event_type=EventType.READ, route="GET /v1/incidents/<uuid:incidentId>",
                           outcome=200, caller=_caller(), municipality_code="GM0014", records=[f"record-{n}"],
                           request_id=f"chain-{n}") for n in range(EVENTS)]
    seal_access_log(session, key)
    return [event.seq for event in events]


def verify(session: Session, key: ChainKeys) -> Verification:
    session.expire_all()  # the chain is read again from the rows, not from the session's memory
    return verify_chain(session, key)


def row(connection: Connection, seq: int) -> dict[str, Any]:
    return dict(connection.execute(select(TABLE).where(TABLE.c.seq == seq)).mappings().one())


def test_an_untouched_chain_is_valid(session: Session, key: ChainKeys, chain: list[int]) -> None:
    result = verify(session, key)

    assert result.valid is True
    assert result.first_broken is None and result.problem is None
    assert result.events >= EVENTS
    last = session.get(AccessEvent, chain[-1])
    assert result.head == last.hash  # type: ignore[union-attr]
    first = session.scalar(select(AccessEvent).order_by(AccessEvent.seq).limit(1))
    assert first.prev_hash == GENESIS  # type: ignore[union-attr]


def test_each_event_links_to_the_one_before(session: Session, chain: list[int]) -> None:
    events = [session.get(AccessEvent, seq) for seq in chain]

    for before, after in itertools.pairwise(events):
        assert after.prev_hash == before.hash  # type: ignore[union-attr]


@pytest.mark.parametrize("column, value", [
    ("route", "GET /v1/incidents"),
    ("outcome", 403),
    ("records", "[]"),
    ("request_id", "someone-else"),
])
def test_an_edited_event_is_named_for_its_content(
        column: str, value: Any, session: Session, connection: Connection, key: ChainKeys, chain: list[int]) -> None:
    middle = chain[2]

    connection.execute(text(f"UPDATE access_event SET {column} = :value WHERE seq = :seq"),  # noqa: S608
                       {"value": value, "seq": middle})

    result = verify(session, key)
    assert result.valid is False
    assert result.first_broken == middle
    assert "content" in (result.problem or "")


def test_an_edit_that_also_recomputes_the_hash_without_the_key_is_found(
        session: Session, connection: Connection, key: ChainKeys, chain: list[int]) -> None:
    middle = session.get(AccessEvent, chain[2])
    middle.outcome = 500  # type: ignore[union-attr]
    forged = hashlib.sha256(canonical(middle)).hexdigest()  # type: ignore[arg-type]
    session.expunge(middle)  # type: ignore[arg-type]

    connection.execute(text("UPDATE access_event SET outcome = 500, hash = :hash WHERE seq = :seq"),
                       {"hash": forged, "seq": chain[2]})

    result = verify(session, key)
    assert (result.valid, result.first_broken) == (False, chain[2])


def test_a_deleted_event_breaks_the_link_of_the_next(
        session: Session, connection: Connection, key: ChainKeys, chain: list[int]) -> None:
    connection.execute(text("DELETE FROM access_event WHERE seq = :seq"), {"seq": chain[2]})

    result = verify(session, key)
    assert result.valid is False
    assert result.first_broken == chain[3]
    assert "link" in (result.problem or "")


def _forge(connection: Connection, template: dict[str, Any], seq: int | None, prev_hash: str, **changes: Any) -> int:
    """Insert a copy of `template` linked to `prev_hash`, hashed with plain SHA-256 (no key); at `seq`, or at the
    next seq the database gives out and at the head of the chain (as the service's own appends would get). Returns
    its seq."""
    values = template | changes | {"prev_hash": prev_hash,
                                   "occurred_at": template["occurred_at"] + dt.timedelta(milliseconds=1)}
    values.pop("seq")
    values["hash"] = hashlib.sha256(canonical(AccessEvent(**values))).hexdigest()
    if seq is not None:
        values["seq"] = seq
    else:
        values["chain_seq"] += 1
    return connection.execute(TABLE.insert().values(values).returning(TABLE.c.seq)).scalar_one()


def test_a_forged_event_at_the_head_is_found(
        session: Session, connection: Connection, key: ChainKeys, chain: list[int]) -> None:
    last = row(connection, chain[-1])

    forged_seq = _forge(connection, last, None, last["hash"], records=["record-forged"])
    assert forged_seq > chain[-1]

    result = verify(session, key)
    assert (result.valid, result.first_broken) == (False, forged_seq)
    assert "content" in (result.problem or "")


def test_a_forged_event_stays_found_once_the_service_appends_after_it(
        session: Session, connection: Connection, key: ChainKeys, chain: list[int]) -> None:
    last = row(connection, chain[-1])
    forged_seq = _forge(connection, last, None, last["hash"])
    session.expire_all()

    appended = append_event(session, key, event_type=EventType.AUDIT, route="GET /v1/audit-events", outcome=200)
    seal_access_log(session, key)

    assert appended.seq > forged_seq
    result = verify(session, key)
    assert (result.valid, result.first_broken) == (False, forged_seq)


def test_a_forged_event_slipped_into_a_gap_is_found(
        session: Session, connection: Connection, key: ChainKeys, chain: list[int]) -> None:
    """Remove event 3 and put a forgery in its place that links to event 2: event 4's link no longer matches."""
    removed = row(connection, chain[2])
    connection.execute(text("DELETE FROM access_event WHERE seq = :seq"), {"seq": chain[2]})

    _forge(connection, removed, chain[2], removed["prev_hash"], outcome=404)

    result = verify(session, key)
    assert (result.valid, result.first_broken) == (False, chain[2])


def _swap(connection: Connection, a: int, b: int) -> None:
    """Exchange the whole content of two rows, each keeping its seq (hash is unique, so via a placeholder)."""
    first, second = row(connection, a), row(connection, b)
    connection.execute(TABLE.update().where(TABLE.c.seq == a).values(hash="placeholder"))
    connection.execute(TABLE.update().where(TABLE.c.seq == b).values({c: first[c] for c in CONTENT}))
    connection.execute(TABLE.update().where(TABLE.c.seq == a).values({c: second[c] for c in CONTENT}))


@pytest.mark.parametrize("a, b", [(1, 2), (1, 3), (3, 4)])
def test_reordered_events_are_found_at_the_first_moved(
        a: int, b: int, session: Session, connection: Connection, key: ChainKeys, chain: list[int]) -> None:
    _swap(connection, chain[a], chain[b])

    result = verify(session, key)
    assert (result.valid, result.first_broken) == (False, chain[a])
    assert "link" in (result.problem or "")


@pytest.mark.parametrize("tamper", ["edit", "delete", "insert", "reorder"])
def test_the_verify_endpoint_names_the_same_first_broken_event(
        tamper: str, client: FlaskClient, session: Session, connection: Connection, key: ChainKeys, chain: list[int],
        token_for: Any) -> None:
    auditor = token_for(Role.AUDITOR)
    before = client.get("/v1/audit-events/_verify", headers=auditor)
    assert before.status_code == 200
    assert before.json["valid"] is True and before.json["firstBroken"] is None

    if tamper == "edit":
        connection.execute(text("UPDATE access_event SET outcome = 201 WHERE seq = :seq"), {"seq": chain[2]})
    elif tamper == "delete":
        connection.execute(text("DELETE FROM access_event WHERE seq = :seq"), {"seq": chain[2]})
    elif tamper == "insert":
        removed = row(connection, chain[2])
        connection.execute(text("DELETE FROM access_event WHERE seq = :seq"), {"seq": chain[2]})
        _forge(connection, removed, chain[2], removed["prev_hash"])
    else:
        _swap(connection, chain[1], chain[2])
    expected = verify(session, key)
    assert expected.valid is False

    response = client.get("/v1/audit-events/_verify", headers=auditor)

    assert response.status_code == 200
    body = response.json
    waited = body.pop("oldestUnsealedSeconds")
    assert body == {"valid": False, "events": expected.events, "head": expected.head,
                             "firstBroken": expected.first_broken, "problem": expected.problem, "keyVersion": 1,
                             "unsealed": 1}  # the first _verify request's own event, which nothing sealed yet
    assert 0 <= waited < 60


# --- the command ------------------------------------------------------------------------------------------------------


def test_the_cli_verifies_the_chain_and_exits_1_when_it_is_broken(tmp_path: Path) -> None:
    from service import cli

    if not hasattr(cli, "audit_verify"):
        pytest.skip("`risk-register audit verify` is not in service/cli.py yet")
    runner = CliRunner()
    url = f"sqlite:///{tmp_path / 'audit.sqlite3'}"
    env = {"INSTANCE_PATH": str(tmp_path / "instance"), "DATABASE_URL": url, "APP_ENV": "development"}
    assert runner.invoke(cli.main, ["db", "upgrade"], env=env).exit_code == 0
    app = create_app(env)  # the same instance folder: the same development key as the command's
    with app.app_context():
        for n in range(EVENTS):
            append_event(db.session, app.extensions["chain_keys"], event_type=EventType.READ, route="GET /x",
                         outcome=200, caller=_caller(), records=[f"record-{n}"])
        db.finish(commit=True)
    assert json.loads(runner.invoke(cli.main, ["audit", "seal"], env=env).output)["sealed"] == EVENTS
    app.extensions["database"]["engine"].dispose()

    valid = runner.invoke(cli.main, ["audit", "verify"], env=env)
    assert valid.exit_code == 0, valid.output
    reported = json.loads(valid.output)
    assert reported["valid"] is True and reported["events"] == EVENTS and reported["firstBroken"] is None

    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE access_event SET outcome = 403 WHERE seq = 3"))
    engine.dispose()
    broken = runner.invoke(cli.main, ["audit", "verify"], env=env)

    assert broken.exit_code == 1, broken.output
    reported = json.loads(broken.output)
    assert set(reported) == {"valid", "events", "head", "firstBroken", "problem", "keyVersion", "unsealed",
                             "oldestUnsealedSeconds"}
    assert (reported["valid"], reported["firstBroken"]) == (False, 3)
    assert "content" in reported["problem"]
