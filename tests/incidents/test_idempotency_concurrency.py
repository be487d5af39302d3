"""Idempotency under concurrency on PostgreSQL (DESIGN §7): a key is held by a transaction, not by a read.

These tests need real commits and real parallel transactions, so each builds its own scratch PostgreSQL database
with `alembic upgrade head` and its own app, whatever database the rest of the suite runs on. Without PostgreSQL
they skip (and fail under CI=true). The scratch databases are dropped at the end of the session.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from service import clock
from service.auth.models import Role
from service.incidents.idempotency import _lock_id, key_hash
from service.incidents.models import IdempotencyKey, Incident
from tests.conftest import CommittingRegister

ROUNDS = 10


@dataclass
class Register:
    """A migrated PostgreSQL database, an app on it whose requests really commit, and an institution client."""

    app: Flask
    engine: Engine
    client_id: uuid.UUID
    location_id: str
    headers: dict[str, str]

    def client(self) -> FlaskClient:
        """A test client of its own (one per thread) that sends the institution's token."""
        client = self.app.test_client()
        client.environ_base["HTTP_AUTHORIZATION"] = self.headers["Authorization"]
        return client

    def incidents(self, client_reference: str) -> int:
        with Session(self.engine) as session:
            return session.scalar(select(func.count()).select_from(Incident)
                                  .where(Incident.client_reference == client_reference)) or 0


@pytest.fixture
def register(committing_register: CommittingRegister) -> Register:
    client_id, headers = committing_register.bearer()
    return Register(committing_register.app, committing_register.engine, client_id, committing_register.location_id,
                    headers)


def incident(location_id: str, reference: str) -> dict[str, Any]:
    occurred = (clock.now() - dt.timedelta(hours=2)).isoformat(timespec="seconds")
    return {"clientReference": reference, "locationId": location_id, "kind": "recruitmentAttempt",
            "exploitationType": "criminal", "occurredAt": occurred, "residentRef": "R-1001",
            "indicators": ["approachedAtEntrance", "offeredMoneyOrGifts"]}


def post(client: FlaskClient, body: dict[str, Any], key: str) -> TestResponse:
    headers = {"Authorization": client.environ_base["HTTP_AUTHORIZATION"], "Idempotency-Key": key}
    return client.post("/v1/incidents", json=body, headers=headers)


def in_parallel(*calls: Callable[[], TestResponse]) -> list[TestResponse]:
    """Run the calls at the same moment, one thread each; re-raise whatever a thread raised."""
    barrier = threading.Barrier(len(calls), timeout=30)
    results: list[TestResponse | None] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(i: int, call: Callable[[], TestResponse]) -> None:
        try:
            barrier.wait()
            results[i] = call()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a request hung"
    if errors:
        raise errors[0]
    return [result for result in results if result is not None]


def assert_in_flight_conflict(response: TestResponse) -> None:
    assert response.status_code == 409, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert response.headers["Retry-After"] == "1"
    assert response.json["status"] == 409


def test_a_key_held_by_another_transaction_is_409_with_retry_after_then_201_once_released(
        register: Register) -> None:
    key, body = "held-key", incident(register.location_id, "held-1")
    with register.engine.connect() as other:
        other.begin()
        hashed = key_hash(register.app.extensions["settings"].pseudonym_master_key, key)
        other.execute(select(func.pg_advisory_xact_lock(_lock_id(register.client_id, hashed))))

        held = register.app.test_client().post("/v1/incidents", json=body,
                                               headers=register.headers | {"Idempotency-Key": key})

        assert_in_flight_conflict(held)
        assert register.incidents("held-1") == 0
        other.rollback()

    retried = register.app.test_client().post("/v1/incidents", json=body,
                                              headers=register.headers | {"Idempotency-Key": key})

    assert retried.status_code == 201, retried.json
    assert "Idempotent-Replayed" not in retried.headers
    assert register.incidents("held-1") == 1


def test_two_requests_racing_with_one_key_record_one_incident(register: Register) -> None:
    clients = [register.client(), register.client()]
    for round_ in range(ROUNDS):
        key, reference = f"race-key-{round_}", f"race-{round_}"
        body = incident(register.location_id, reference)

        responses = in_parallel(*(functools.partial(post, client, body, key) for client in clients))

        assert register.incidents(reference) == 1, f"round {round_}"
        codes = sorted(r.status_code for r in responses)
        assert codes in ([201, 201], [201, 409]), f"round {round_}: {[r.get_data(as_text=True) for r in responses]}"
        created = [r for r in responses if r.status_code == 201]
        assert len({r.get_data() for r in created}) == 1, f"round {round_}: a replay differs from the original"
        if len(created) == 2:
            assert sorted(r.headers.get("Idempotent-Replayed", "") for r in created) == ["", "true"]
        for conflict in (r for r in responses if r.status_code == 409):
            assert_in_flight_conflict(conflict)
    with Session(register.engine) as session:
        keys = session.scalar(select(func.count()).select_from(IdempotencyKey)
                              .where(IdempotencyKey.client_id == register.client_id))
    assert keys == ROUNDS


def test_two_requests_racing_with_one_client_reference_and_different_keys_give_one_201_and_one_409(
        register: Register) -> None:
    clients = [register.client(), register.client()]
    for round_ in range(ROUNDS):
        reference = f"same-ref-{round_}"
        body = incident(register.location_id, reference)

        responses = in_parallel(functools.partial(post, clients[0], body, f"ref-a-{round_}"),
                                functools.partial(post, clients[1], body, f"ref-b-{round_}"))

        assert sorted(r.status_code for r in responses) == [201, 409], (
            f"round {round_}: {[r.get_data(as_text=True) for r in responses]}")
        conflict = next(r for r in responses if r.status_code == 409)
        assert conflict.mimetype == "application/problem+json"
        assert register.incidents(reference) == 1


def test_a_replay_after_commit_answers_the_same_bytes_and_records_nothing_new(register: Register) -> None:
    body, headers = incident(register.location_id, "replay-1"), register.headers | {"Idempotency-Key": "replay-key"}
    first = register.app.test_client().post("/v1/incidents", json=body, headers=headers)
    assert first.status_code == 201, first.json

    again = register.app.test_client().post("/v1/incidents", json=dict(reversed(body.items())), headers=headers)

    assert again.status_code == 201
    assert again.get_data() == first.get_data()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["ETag"] == first.headers["ETag"]
    assert register.incidents("replay-1") == 1
    with register.engine.connect() as connection:
        assert connection.scalar(text("SELECT count(*) FROM idempotency_key WHERE key_hash = :hashed"), {
            "hashed": key_hash(register.app.extensions["settings"].pseudonym_master_key, "replay-key")}) == 1


def test_the_stored_request_hash_is_keyed_so_it_cannot_be_reversed(client, session, token_for, settings):
    """A plain hash of a body that holds a client number could be matched by trying every client number."""
    import hashlib
    import json as jsonlib

    from sqlalchemy import select as select_

    from service.incidents.idempotency import request_hash, request_hash_key
    from service.incidents.models import IdempotencyKey
    from tests.factories import make_location as make_location_
    from tests.incidents.factories import incident_body

    location = make_location_(session)
    headers = token_for(Role.INSTITUTION, institution_id=location.institution_id) | {"Idempotency-Key": "hash-1"}
    body = incident_body(location.id, residentRef="CL-0042")
    assert client.post("/v1/incidents", json=body, headers=headers).status_code == 201

    stored = session.scalar(select_(IdempotencyKey.request_hash).where(
        IdempotencyKey.key_hash == key_hash(settings.pseudonym_master_key, "hash-1")))
    canonical = jsonlib.dumps(["POST", "/v1/incidents", body], sort_keys=True, separators=(",", ":"))
    assert stored != hashlib.sha256(canonical.encode()).hexdigest()
    assert stored == request_hash(request_hash_key(settings.pseudonym_master_key), "POST", "/v1/incidents", body)
