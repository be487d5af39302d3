"""Idempotency across a pseudonym key rotation (issue 19): a key kept under the old version still replays its
first answer once the new version is active, another body under it is still refused, and new keys are kept under
the active version only."""

from __future__ import annotations

import secrets
from typing import Any

from flask import Flask
from flask_jwt_extended import create_access_token
from sqlalchemy import select

from service import create_app
from service.auth import service as auth_service
from service.auth.models import Role
from service.incidents.idempotency import key_hash
from service.incidents.models import IdempotencyKey
from tests.factories import make_client, make_institution, make_location
from tests.incidents.factories import incident_body


def _app(settings: Any, connection: Any, **overrides: Any) -> Flask:
    app = create_app(settings.with_overrides(**overrides))
    app.extensions["database"]["sessionmaker"].configure(bind=connection, join_transaction_mode="create_savepoint")
    return app


def test_a_replay_survives_the_rotation_and_new_keys_use_the_active_version(settings, connection, session):
    new_key = secrets.token_bytes(32)
    before = _app(settings, connection)
    rotated = _app(settings, connection, pseudonym_key_ring=((1, settings.pseudonym_master_key), (2, new_key)))
    institution = make_institution(session)
    location = make_location(session, institution)
    client, _secret = make_client(session, role=Role.INSTITUTION, institution_id=institution.id)
    with before.app_context():
        token = create_access_token(identity=str(client.id), additional_claims=auth_service.token_claims(client))
    headers = {"Authorization": f"Bearer {token}"}
    body = incident_body(location.id)

    first = before.test_client().post("/v1/incidents", json=body, headers=headers | {"Idempotency-Key": "k-1"})
    assert first.status_code == 201
    replay = rotated.test_client().post("/v1/incidents", json=body, headers=headers | {"Idempotency-Key": "k-1"})
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.get_data() == first.get_data()
    other = rotated.test_client().post("/v1/incidents", json=incident_body(location.id),
                                       headers=headers | {"Idempotency-Key": "k-1"})
    assert other.status_code == 422

    fresh = rotated.test_client().post("/v1/incidents", json=incident_body(location.id),
                                       headers=headers | {"Idempotency-Key": "k-2"})
    assert fresh.status_code == 201 and "Idempotent-Replayed" not in fresh.headers
    kept = set(session.scalars(select(IdempotencyKey.key_hash).where(IdempotencyKey.client_id == client.id)))
    assert kept == {key_hash(settings.pseudonym_master_key, "k-1"), key_hash(new_key, "k-2")}
