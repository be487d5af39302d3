"""Concurrent appends to the access log on PostgreSQL (DESIGN §6): requests that really commit, in parallel threads,
leave a valid chain in which no two events claim the same predecessor.

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
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from service import clock
from service.audit.models import AccessEvent
from service.audit.service import verify_chain
from service.incidents.models import Incident
from tests.conftest import CommittingRegister

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
                        "clientReference": f"chain-{thread}-{n}-{uuid.uuid4().hex[:6]}",
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
        result = verify_chain(session, register.app.extensions["chain_key"])
        events = list(session.scalars(select(AccessEvent).order_by(AccessEvent.seq)))
        incidents = session.scalar(select(func.count()).select_from(Incident))

    assert result.valid, result
    assert result.events == len(events) == THREADS * REQUESTS
    assert Counter(e.event_type for e in events) == {"create": THREADS * 13, "search": THREADS * 12}
    assert incidents == THREADS * 13
    shared = [h for h, n in Counter(e.prev_hash for e in events).items() if n > 1]
    assert shared == [], f"{len(shared)} predecessors claimed twice"
    assert len({e.request_id for e in events}) == THREADS * REQUESTS
