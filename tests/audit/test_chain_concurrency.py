"""Concurrent appends to the access log on PostgreSQL (DESIGN §6): requests that really commit, in parallel threads,
take no lock, and once sealed leave a valid chain in which no two events claim the same predecessor; a sealer running
beside them, a key rotation among them and an event that commits after a later one are all linked exactly once.

Like the idempotency concurrency tests, this builds a scratch PostgreSQL database with `alembic upgrade head` and
an app of its own, whatever database the rest of the suite runs on; without PostgreSQL it skips (fails under CI=true).
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections import Counter
from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from service import clock
from service.audit.chain import rotate_chain_key, verify_chain
from service.audit.keys import ChainKeys
from service.audit.models import AccessEvent
from service.audit.sealing import Sealer, seal_everything
from service.audit.service import EventType, append_event
from service.incidents.models import Incident
from tests.conftest import CommittingRegister
from tests.factories import letters

THREADS, REQUESTS = 4, 25


@dataclass
class Register:
    app: Flask
    engine: Engine
    location_id: str
    headers: dict[str, str]


@pytest.fixture
def register(committing_register: CommittingRegister) -> Register:
    _client_id, headers = committing_register.bearer()
    return Register(committing_register.app, committing_register.engine, committing_register.location_id, headers)


def test_parallel_requests_append_one_event_each_to_a_valid_chain(register: Register) -> None:
    with Session(register.engine) as session:
        assert session.scalar(select(func.count()).select_from(AccessEvent)) == 0
    barrier = threading.Barrier(THREADS, timeout=30)
    statuses: list[int] = []
    errors: list[BaseException] = []
    occurred = (clock.now() - dt.timedelta(hours=2)).isoformat(timespec="seconds")

    def run(thread: int) -> None:
        client = register.app.test_client()
        try:
            barrier.wait()
            for n in range(REQUESTS):
                if n % 2:
                    response = client.get("/v1/incidents", headers=register.headers)
                else:
                    response = client.post("/v1/incidents", headers=register.headers, json={
                        "clientReference": f"chain-{thread}-{n}-{letters(6)}",
                        "locationId": register.location_id, "kind": "recruitmentAttempt",
                        "exploitationType": "criminal", "occurredAt": occurred,
                        "indicators": ["approachedAtEntrance"]})
                statuses.append(response.status_code)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a request hung"
    assert not errors, errors
    assert Counter(statuses) == {201: THREADS * 13, 200: THREADS * 12}

    with Session(register.engine) as session:
        assert session.scalar(select(func.count()).select_from(AccessEvent).where(
            AccessEvent.chain_seq.is_not(None))) == 0  # requests only insert; the sealer links
    assert seal_everything(register.app) == THREADS * REQUESTS
    with Session(register.engine) as session:
        result = verify_chain(session, register.app.extensions["chain_keys"])
        events = list(session.scalars(select(AccessEvent).order_by(AccessEvent.seq)))
        incidents = session.scalar(select(func.count()).select_from(Incident))

    assert result.valid, result
    assert result.events == len(events) == THREADS * REQUESTS
    assert Counter(e.event_type for e in events) == {"create": THREADS * 13, "search": THREADS * 12}
    assert incidents == THREADS * 13
    shared = [h for h, n in Counter(e.prev_hash for e in events).items() if n > 1]
    assert shared == [], f"{len(shared)} predecessors claimed twice"
    assert len({e.request_id for e in events}) == THREADS * REQUESTS


def _post(register: Register, client: FlaskClient, reference: str) -> int:
    occurred = (clock.now() - dt.timedelta(hours=2)).isoformat(timespec="seconds")
    return client.post("/v1/incidents", headers=register.headers, json={
        "clientReference": reference, "locationId": register.location_id, "kind": "recruitmentAttempt",
        "exploitationType": "criminal", "occurredAt": occurred, "indicators": ["approachedAtEntrance"]}).status_code


def test_an_event_that_commits_after_a_later_one_is_linked_after_it(register: Register) -> None:
    """PostgreSQL's sequence gives A the lower seq, B commits first and is sealed; A then commits and becomes the
    next link: nothing is skipped, nothing is linked twice, and no one waited for A."""
    keys: ChainKeys = register.app.extensions["chain_keys"]
    with Session(register.engine) as first, Session(register.engine) as second:
        early = append_event(first, keys, event_type=EventType.READ, route="GET /a", outcome=200)
        late = append_event(second, keys, event_type=EventType.READ, route="GET /b", outcome=200)
        assert early.seq < late.seq
        second.commit()
        assert seal_everything(register.app) == 1
        first.commit()
    assert seal_everything(register.app) == 1

    with Session(register.engine) as session:
        events = list(session.scalars(select(AccessEvent).order_by(AccessEvent.chain_seq)))
        assert [e.route for e in events] == ["GET /b", "GET /a"]
        assert events[1].prev_hash == events[0].hash
        result = verify_chain(session, keys)
    assert (result.valid, result.events, result.unsealed) == (True, 2, 0)


def test_a_running_sealer_links_concurrent_requests_across_a_key_rotation(register: Register) -> None:
    old = register.app.extensions["chain_keys"]
    with Session(register.engine) as session:  # the chain starts under version 1
        append_event(session, old, event_type=EventType.READ, route="GET /first", outcome=200)
        session.commit()
    assert seal_everything(register.app) == 1
    ring = ChainKeys({1: old.keys[1], 2: uuid.uuid4().bytes * 2})
    register.app.extensions["chain_keys"] = ring
    statuses: list[int] = []
    errors: list[BaseException] = []
    halfway = threading.Barrier(3, timeout=60)

    def write(thread: int) -> None:
        client = register.app.test_client()
        try:
            for n in range(REQUESTS):
                if n == REQUESTS // 2:
                    halfway.wait()
                statuses.append(_post(register, client, f"seal-{thread}-{n}"))
        except BaseException as exc:
            errors.append(exc)

    sealer = Sealer(register.app, 0.02).start()
    writers = [threading.Thread(target=write, args=(i,)) for i in range(2)]
    for writer in writers:
        writer.start()
    halfway.wait()
    with Session(register.engine) as session:
        rotate_chain_key(session, ring)
        session.commit()
    for writer in writers:
        writer.join(timeout=120)
    assert sealer.stop()
    assert not errors, errors
    assert statuses == [201] * (2 * REQUESTS)
    seal_everything(register.app)  # what the stopped sealer had not reached yet

    with Session(register.engine) as session:
        result = verify_chain(session, ring)
        events = list(session.scalars(select(AccessEvent).order_by(AccessEvent.chain_seq)))
    assert (result.valid, result.unsealed, result.key_version) == (True, 0, 2), result
    assert result.events == len(events) == 1 + 2 * REQUESTS + 1
    handover = next(n for n, e in enumerate(events) if e.event_type == EventType.KEY_ROTATION)
    assert {e.key_version for e in events[:handover + 1]} == {1}
    assert {e.key_version for e in events[handover + 1:]} == {2}
    assert len({e.prev_hash for e in events}) == len(events)
    assert max(e.sealed_at - e.occurred_at for e in events) < dt.timedelta(seconds=10)  # type: ignore[operator]
