"""Token signing keys by kid (issue 19): the active key signs, every key in the ring verifies, so tokens of the
previous key stay valid until they expire; once retired, they are refused. HS256 (secrets in configuration) and
ES256/RS256 (public keys in the JWKS) alike."""

from __future__ import annotations

import base64
import secrets
from typing import Any

import jwt
import pytest
from flask import Flask
from sqlalchemy.orm import Session

from service import create_app
from service.auth.models import Role
from service.config import Settings, key_id
from service.http import PROBLEM_JSON
from service.keys.service import new_signing_key
from tests.factories import make_client

PROTECTED = "/v1/institutions"


def _app(settings: Settings, connection: Any, **overrides: Any) -> Flask:
    app = create_app(settings.with_overrides(**overrides))
    app.extensions["database"]["sessionmaker"].configure(bind=connection, join_transaction_mode="create_savepoint")
    return app


@pytest.fixture
def admin(connection: Any) -> tuple[str, str]:
    with Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False) as session:
        client, secret = make_client(session, role=Role.ADMIN)
        session.commit()
    return str(client.id), secret


def _issue(app: Flask, admin: tuple[str, str]) -> str:
    basic = base64.b64encode(f"{admin[0]}:{admin[1]}".encode()).decode()
    response = app.test_client().post("/v1/oauth/token", data={"grant_type": "client_credentials"},
                                      headers={"Authorization": f"Basic {basic}"})
    assert response.status_code == 200, response.json
    return response.json["access_token"]


def _token_keys(app: Any) -> list[dict[str, Any]]:
    """The JWKS without the attestation keys the service also publishes there."""
    attestation = {key["kid"] for key in app.extensions.get("published_keys", ())}
    return [key for key in app.test_client().get("/v1/oauth/jwks.json").json["keys"] if key["kid"] not in attestation]


def _status(app: Flask, token: str) -> int:
    response = app.test_client().get(PROTECTED, headers={"Authorization": f"Bearer {token}"})
    if response.status_code == 401:
        assert response.mimetype == PROBLEM_JSON and response.json["detail"] == "The access token is not valid."
    return response.status_code


def test_hs256_tokens_of_the_previous_secret_work_until_it_is_retired(settings, connection, admin):
    old, new = settings.token_secret, secrets.token_hex(32)
    before = _app(settings, connection)
    rotated = _app(settings, connection, token_secret_ring=(("1", old), ("2", new)))
    retired = _app(settings, connection, token_secret_ring=(("2", new),))

    old_token, new_token = _issue(before, admin), _issue(rotated, admin)
    assert jwt.get_unverified_header(old_token)["kid"] == "1"
    assert jwt.get_unverified_header(new_token)["kid"] == "2"
    jwt.decode(new_token, new, algorithms=["HS256"], audience=settings.token_audience)  # signed with the newest
    # A token from before key rings carries no kid: it is checked with the oldest secret.
    claims = jwt.decode(old_token, old, algorithms=["HS256"], audience=settings.token_audience)
    legacy = jwt.encode(claims, old, algorithm="HS256")
    assert "kid" not in jwt.get_unverified_header(legacy)

    assert [_status(rotated, t) for t in (old_token, legacy, new_token)] == [200, 200, 200]
    assert [_status(retired, t) for t in (old_token, legacy, new_token)] == [401, 401, 200]
    assert _status(before, new_token) == 401  # a host without the new secret does not know kid 2
    # A kid naming the new secret does not make a token signed with the old one valid.
    forged = jwt.encode(claims, old, algorithm="HS256", headers={"kid": "2"})
    assert _status(rotated, forged) == 401
    # And the old ones expire as ever: the same token, its lifetime over.
    expired = jwt.encode(claims | {"exp": claims["iat"] - 1}, old, algorithm="HS256", headers={"kid": "1"})
    response = rotated.test_client().get(PROTECTED, headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401 and response.json["detail"] == "The access token has expired."


@pytest.mark.parametrize("algorithm", ["ES256", "RS256"])
def test_asymmetric_keys_are_published_by_kid_until_retired(settings, connection, admin, algorithm):
    old_kid, old_private, old_public = new_signing_key(algorithm)
    new_kid, new_private, new_public = new_signing_key(algorithm)
    assert old_kid == key_id(old_public) != new_kid
    before = _app(settings, connection, token_algorithm=algorithm, token_private_key=old_private,
                  token_public_key=old_public)
    rotated = _app(settings, connection, token_algorithm=algorithm,
                   token_private_key_ring=((new_kid, new_private),),
                   token_public_key_ring=((old_kid, old_public), (new_kid, new_public)))
    retired = _app(settings, connection, token_algorithm=algorithm, token_private_key_ring=((new_kid, new_private),),
                   token_public_key_ring=((new_kid, new_public),))

    old_token, new_token = _issue(before, admin), _issue(rotated, admin)
    assert jwt.get_unverified_header(old_token)["kid"] == old_kid
    assert jwt.get_unverified_header(new_token)["kid"] == new_kid
    published = _token_keys(rotated)
    assert [(k["kid"], k["alg"], k["use"]) for k in published] == [(old_kid, algorithm, "sig"),
                                                                   (new_kid, algorithm, "sig")]
    for token in (old_token, new_token):  # a relying party verifies either with the published set
        kid = jwt.get_unverified_header(token)["kid"]
        [key] = [jwt.PyJWK(k).key for k in published if k["kid"] == kid]
        jwt.decode(token, key, algorithms=[algorithm], audience=settings.token_audience)

    assert [_status(rotated, t) for t in (old_token, new_token)] == [200, 200]
    assert [_status(retired, t) for t in (old_token, new_token)] == [401, 200]
    assert [k["kid"] for k in _token_keys(retired)] == [new_kid]
