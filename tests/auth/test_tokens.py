"""OAuth client credentials, revocation, JWKS, and the token attacks each answered 401 problem+json."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service import create_app
from service.auth.models import RevokedToken, Role
from service.http import PROBLEM_JSON
from tests.factories import make_client, make_institution

PROTECTED = "/v1/institutions"


def _token(client, client_id: str, secret: str, **form: str):  # type: ignore[no-untyped-def]
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return client.post("/v1/oauth/token", data={"grant_type": "client_credentials", **form},
                       headers={"Authorization": f"Basic {basic}"})


def _claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _assert_refused(response, detail_part: str = "") -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM_JSON
    assert response.json["status"] == 401 and detail_part in response.json["detail"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.fixture
def admin(session):  # type: ignore[no-untyped-def]
    return make_client(session, role=Role.ADMIN)


@pytest.fixture
def valid_token(client, admin) -> str:  # type: ignore[no-untyped-def]
    response = _token(client, str(admin[0].id), admin[1])
    assert response.status_code == 200
    return response.json["access_token"]


def test_client_credentials_with_basic_auth(client, admin, settings):
    response = _token(client, str(admin[0].id), admin[1])
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store" and response.headers["Pragma"] == "no-cache"
    body = response.json
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    claims = _claims(body["access_token"])
    assert claims["sub"] == str(admin[0].id) and claims["role"] == "admin"
    assert claims["iss"] == settings.token_issuer and claims["aud"] == settings.token_audience
    assert claims["exp"] - claims["iat"] == 900 and len(claims["jti"]) >= 32
    assert "inst" not in claims and "muni" not in claims
    assert client.get(PROTECTED, headers={"Authorization": f"Bearer {body['access_token']}"}).status_code == 200


def test_client_credentials_with_form_fields_and_scoped_claims(client, session):
    institution = make_institution(session)
    inst_client, secret = make_client(session, role=Role.INSTITUTION, institution_id=institution.id)
    analyst, analyst_secret = make_client(session, role=Role.ANALYST, municipality_codes=["GM0014", "GM0034"])
    inst = client.post("/v1/oauth/token", data={"grant_type": "client_credentials",
                                                 "client_id": str(inst_client.id), "client_secret": secret})
    assert _claims(inst.json["access_token"])["inst"] == str(institution.id)
    muni = _token(client, str(analyst.id), analyst_secret)
    assert _claims(muni.json["access_token"])["muni"] == ["GM0014", "GM0034"]


@pytest.mark.parametrize("case", ["wrong secret", "unknown client", "malformed id", "no credentials"])
def test_bad_client_credentials_are_invalid_client(client, admin, case):
    client_id, secret = str(admin[0].id), admin[1]
    if case == "wrong secret":
        response = _token(client, client_id, secret + "x")
    elif case == "unknown client":
        response = _token(client, "00000000-0000-0000-0000-000000000000", secret)
    elif case == "malformed id":
        response = _token(client, "not-a-uuid", secret)
    else:
        response = client.post("/v1/oauth/token", data={"grant_type": "client_credentials"})
    assert response.status_code == 401 and response.mimetype == PROBLEM_JSON
    assert response.json["error"] == "invalid_client"
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert secret not in response.get_data(as_text=True)


def test_grant_type_errors_follow_rfc6749(client, admin):
    client_id, secret = str(admin[0].id), admin[1]
    unsupported = _token(client, client_id, secret, grant_type="password")
    assert (unsupported.status_code, unsupported.json["error"]) == (400, "unsupported_grant_type")
    missing = client.post("/v1/oauth/token", data={"client_id": client_id, "client_secret": secret})
    assert (missing.status_code, missing.json["error"]) == (400, "invalid_request")
    twice = _token(client, client_id, secret, client_secret=secret)
    assert (twice.status_code, twice.json["error"]) == (400, "invalid_request")


def test_deactivated_client_gets_no_token(client, admin, session):
    admin[0].active = False
    session.flush()
    assert _token(client, str(admin[0].id), admin[1]).json["error"] == "invalid_client"


def test_alg_none_is_refused(client, valid_token):
    forged = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims(valid_token))}."
    _assert_refused(client.get(PROTECTED, headers={"Authorization": f"Bearer {forged}"}))


def test_token_signed_with_another_key_is_refused(client, valid_token):
    forged = jwt.encode(_claims(valid_token), "another-key-of-sufficient-length-123456", algorithm="HS256")
    _assert_refused(client.get(PROTECTED, headers={"Authorization": f"Bearer {forged}"}))


@pytest.mark.parametrize("claim, value", [("aud", "urn:someone-else"), ("iss", "urn:evil"),
                                          ("exp", int(time.time()) - 10), ("role", "superuser")])
def test_tampered_claims_signed_with_our_key_are_refused(client, valid_token, settings, claim, value):
    claims = _claims(valid_token) | {claim: value}
    forged = jwt.encode(claims, settings.token_secret, algorithm="HS256")
    _assert_refused(client.get(PROTECTED, headers={"Authorization": f"Bearer {forged}"}))


@pytest.mark.parametrize("claim", ["jti", "role", "exp", "aud", "iss", "sub"])
def test_token_missing_a_claim_is_refused(client, valid_token, settings, claim):
    claims = _claims(valid_token)
    del claims[claim]
    forged = jwt.encode(claims, settings.token_secret, algorithm="HS256")
    _assert_refused(client.get(PROTECTED, headers={"Authorization": f"Bearer {forged}"}))


def test_edited_role_claim_is_refused(client, session, settings):
    analyst, secret = make_client(session, role=Role.ANALYST, municipality_codes=["GM0014"])
    token = _token(client, str(analyst.id), secret).json["access_token"]
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    edited = f"{header}.{_b64(claims | {'role': 'admin'})}.{signature}"
    _assert_refused(client.get(PROTECTED, headers={"Authorization": f"Bearer {edited}"}))


def test_revoked_token_is_refused_on_next_request(client, admin, valid_token):
    headers = {"Authorization": f"Bearer {valid_token}"}
    assert client.get(PROTECTED, headers=headers).status_code == 200
    revoked = client.post("/v1/oauth/revoke", data={"token": valid_token, "client_id": str(admin[0].id),
                                                   "client_secret": admin[1]})
    assert revoked.status_code == 200 and revoked.headers["Cache-Control"] == "no-store"
    _assert_refused(client.get(PROTECTED, headers=headers), "revoked")
    again = client.post("/v1/oauth/revoke", data={"token": valid_token, "client_id": str(admin[0].id),
                                                 "client_secret": admin[1]})
    assert again.status_code == 200


def test_deactivated_clients_tokens_are_refused(client, admin, valid_token, session):
    headers = {"Authorization": f"Bearer {valid_token}"}
    assert client.get(PROTECTED, headers=headers).status_code == 200
    admin[0].active = False
    session.flush()
    _assert_refused(client.get(PROTECTED, headers=headers), "deactivated")


def test_revoking_someone_elses_token_is_answered_as_garbage_and_revokes_nothing(client, session, valid_token):
    # A different answer for a genuine token of another client would tell an attacker which tokens are real.
    other, secret = make_client(session, role=Role.ADMIN)
    form = {"client_id": str(other.id), "client_secret": secret}
    theirs = client.post("/v1/oauth/revoke", data=form | {"token": valid_token})
    garbage = client.post("/v1/oauth/revoke", data=form | {"token": "garbage"})

    varying = {"X-Request-ID": "", "RateLimit": ""}  # a fresh id per request, and one request fewer remaining
    assert (theirs.status_code, theirs.get_data(), dict(theirs.headers.items()) | varying) == (
        garbage.status_code, garbage.get_data(), dict(garbage.headers.items()) | varying)
    assert theirs.status_code == 200
    assert session.scalar(select(func.count()).select_from(RevokedToken)) == 0
    assert client.get(PROTECTED, headers={"Authorization": f"Bearer {valid_token}"}).status_code == 200


def test_revoking_garbage_is_200_and_needs_client_auth(client, admin):
    ok = client.post("/v1/oauth/revoke", data={"token": "garbage", "client_id": str(admin[0].id),
                                              "client_secret": admin[1]})
    assert ok.status_code == 200
    anonymous = client.post("/v1/oauth/revoke", data={"token": "garbage"})
    assert (anonymous.status_code, anonymous.json["error"]) == (401, "invalid_client")


def test_missing_and_malformed_authorization(client):
    missing = client.get(PROTECTED)
    assert missing.status_code == 401 and missing.mimetype == PROBLEM_JSON
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    _assert_refused(client.get(PROTECTED, headers={"Authorization": "Bearer not.a.token"}))
    assert client.get(PROTECTED, headers={"Authorization": "Token abc"}).status_code == 401


def test_hs256_publishes_no_token_keys(app, client):
    # Only the keys of signed statements (attestations, service/signing.py): an HS256 key is never published.
    assert client.get("/v1/oauth/jwks.json").json == {"keys": app.extensions["signing_keys"].jwks()}


@pytest.fixture(scope="module")
def es256_keys() -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


def test_es256_tokens_verify_against_published_jwks(settings, es256_keys, connection):
    private, public = es256_keys
    app = create_app(settings.with_overrides(token_algorithm="ES256", token_private_key=private,
                                             token_public_key=public))
    app.extensions["database"]["sessionmaker"].configure(bind=connection, join_transaction_mode="create_savepoint")
    with Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False) as session:
        admin, secret = make_client(session, role=Role.ADMIN)
        session.commit()
    http = app.test_client()
    token = _token(http, str(admin.id), secret).json["access_token"]
    header = jwt.get_unverified_header(token)
    keys = http.get("/v1/oauth/jwks.json").json["keys"]
    statement_kids = [k["kid"] for k in app.extensions["signing_keys"].jwks()]
    assert header["alg"] == "ES256" and [k["kid"] for k in keys] == [header["kid"], *statement_kids]
    verifying_key = jwt.PyJWK(keys[0]).key
    claims = jwt.decode(token, verifying_key, algorithms=["ES256"], audience=settings.token_audience)
    assert claims["role"] == "admin"
    assert http.get(PROTECTED, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    # Algorithm confusion: an HS256 token keyed with the public key must not pass.
    forged_header = _b64({"alg": "HS256", "typ": "JWT"})
    signing_input = f"{forged_header}.{_b64(claims)}".encode()
    signature = base64.urlsafe_b64encode(hmac.new(public.encode(), signing_input, hashlib.sha256).digest())
    confused = f"{signing_input.decode()}.{signature.decode().rstrip('=')}"
    _assert_refused(http.get(PROTECTED, headers={"Authorization": f"Bearer {confused}"}))
