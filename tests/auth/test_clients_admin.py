"""API client administration over HTTP: scopes per role, secrets shown once, deactivation and rotation."""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service import clock
from service.auth.models import ApiClient, Role
from tests.factories import make_client, make_institution

PROBLEM_JSON = "application/problem+json"


def client_json(api_client: ApiClient) -> dict[str, Any]:
    def stamp(value: dt.datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": str(api_client.id),
        "name": api_client.name,
        "role": api_client.role.value,
        "institutionId": str(api_client.institution_id) if api_client.institution_id else None,
        "municipalityCodes": list(api_client.municipality_codes),
        "active": api_client.active,
        "createdAt": stamp(api_client.created_at),
        "secretRotatedAt": stamp(api_client.secret_rotated_at),
        "deactivatedAt": stamp(api_client.deactivated_at),
    }


def stored(session: Session, client_id: str) -> ApiClient:
    """The client as the database has it now (not as this session last saw it)."""
    session.expire_all()
    api_client = session.get(ApiClient, uuid.UUID(client_id))
    assert api_client is not None
    return api_client


def count_clients(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(ApiClient))


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def request_token(client, client_id: str, secret: str):  # type: ignore[no-untyped-def]
    return client.post("/v1/oauth/token", data={"grant_type": "client_credentials"},
                       headers=basic(client_id, secret))


@pytest.fixture
def admin(token_for) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return token_for(Role.ADMIN)


# Creating clients -----------------------------------------------------------------------------------------------


@pytest.fixture(params=["institution", "analyst", "analyst-national", "auditor", "admin"])
def valid_client(request, session) -> tuple[dict[str, Any], dict[str, Any]]:  # type: ignore[no-untyped-def]
    """(request body, expected scope in the answer) for each role with a scope that fits it."""
    if request.param == "institution":
        institution_id = str(make_institution(session).id)
        return ({"name": "ECD Noord", "role": "institution", "institutionId": institution_id},
                {"institutionId": institution_id, "municipalityCodes": []})
    if request.param == "analyst":
        return ({"name": "Analist", "role": "analyst", "municipalityCodes": ["GM0034", "GM0014", "GM0014"]},
                {"institutionId": None, "municipalityCodes": ["GM0014", "GM0034"]})
    if request.param == "analyst-national":
        return ({"name": "CBS", "role": "analyst", "municipalityCodes": ["*"]},
                {"institutionId": None, "municipalityCodes": ["*"]})
    if request.param == "auditor":
        return ({"name": "IGJ", "role": "auditor", "municipalityCodes": ["GM0014"]},
                {"institutionId": None, "municipalityCodes": ["GM0014"]})
    return ({"name": "Beheer", "role": "admin"}, {"institutionId": None, "municipalityCodes": []})


def test_a_client_is_created_with_its_secret_shown_once(client, admin, session, valid_client):
    body_in, scope = valid_client

    response = client.post("/v1/clients", headers=admin, json=body_in)

    assert response.status_code == 201, response.json
    body = response.json
    client_id, secret = body["clientId"], body["clientSecret"]
    assert isinstance(secret, str) and len(secret) >= 32
    assert body == {
        "clientId": client_id,
        "clientSecret": secret,
        "client": {"id": client_id, "name": body_in["name"], "role": body_in["role"], **scope, "active": True,
                   "createdAt": body["client"]["createdAt"], "secretRotatedAt": None, "deactivatedAt": None},
    }
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Location"] == f"/v1/clients/{client_id}"
    api_client = stored(session, client_id)
    assert client_json(api_client) == body["client"]
    assert secret not in api_client.secret_hash
    assert api_client.secret_hash.startswith("$argon2")

    # The secret works once issued, and is never shown again.
    assert request_token(client, client_id, secret).status_code == 200
    again = client.get(f"/v1/clients/{client_id}", headers=admin)
    assert again.status_code == 200
    assert again.json == body["client"]
    assert secret not in again.get_data(as_text=True)
    assert "argon2" not in again.get_data(as_text=True)


def problem_400(body: dict[str, Any], detail: str, errors: list[dict[str, str]]) -> dict[str, Any]:
    return {"type": "about:blank", "title": "Invalid input", "status": 400, "detail": detail,
            "instance": body["instance"], "errors": errors}


SCOPE_MISFIT = "The client's role and scope do not fit together."


@pytest.mark.parametrize(("body_in", "errors"), [
    ({"role": "institution"},
     [{"pointer": "/institutionId", "detail": "An institution client needs an institution."}]),
    ({"role": "institution", "institutionId": "00000000-0000-4000-8000-000000000000", "municipalityCodes": ["*"]},
     [{"pointer": "/institutionId", "detail": "No such institution."},
      {"pointer": "/municipalityCodes", "detail": "An institution client is scoped by its institution."}]),
    ({"role": "analyst"},
     [{"pointer": "/municipalityCodes", "detail": "Give municipality codes (GM0014) or '*'."}]),
    ({"role": "auditor", "municipalityCodes": []},
     [{"pointer": "/municipalityCodes", "detail": "Give municipality codes (GM0014) or '*'."}]),
    ({"role": "analyst", "municipalityCodes": ["GM0014", "gm0034", "0014"]},
     [{"pointer": "/municipalityCodes/1", "detail": "Use a CBS code such as GM0014, or '*'."},
      {"pointer": "/municipalityCodes/2", "detail": "Use a CBS code such as GM0014, or '*'."}]),
    ({"role": "auditor", "municipalityCodes": ["*", "GM0014"]},
     [{"pointer": "/municipalityCodes", "detail": "'*' already covers every municipality."}]),
    ({"role": "analyst", "municipalityCodes": ["*", "*"]},
     [{"pointer": "/municipalityCodes", "detail": "'*' already covers every municipality."}]),
    ({"role": "admin", "municipalityCodes": ["GM0014"]},
     [{"pointer": "/municipalityCodes", "detail": "An admin client has no municipality scope."}]),
    ({"role": "admin", "institutionId": "existing"},
     [{"pointer": "/institutionId", "detail": "Only institution clients belong to an institution."}]),
    ({"role": "analyst", "institutionId": "existing", "municipalityCodes": ["GM0014"]},
     [{"pointer": "/institutionId", "detail": "Only institution clients belong to an institution."}]),
], ids=["institution-without-institution", "institution-unknown-and-codes", "analyst-without-codes",
        "auditor-empty-codes", "analyst-bad-codes", "auditor-star-combined", "analyst-star-twice",
        "admin-with-codes", "admin-with-institution", "analyst-with-institution"])
def test_a_scope_that_does_not_fit_the_role_is_refused(client, admin, session, body_in, errors):
    body_in = {"name": "Misfit"} | body_in
    if body_in.get("institutionId") == "existing":
        body_in["institutionId"] = str(make_institution(session).id)
    before = count_clients(session)

    response = client.post("/v1/clients", headers=admin, json=body_in)

    assert response.status_code == 400
    assert response.mimetype == PROBLEM_JSON
    assert response.json == problem_400(response.json, SCOPE_MISFIT, errors)
    assert count_clients(session) == before


def test_an_invalid_client_body_lists_every_field(client, admin, session):
    before = count_clients(session)

    response = client.post("/v1/clients", headers=admin,
                           json={"name": "", "role": "superuser", "institutionId": "nope",
                                 "municipalityCodes": ["GM00140"], "secret": "mine"})

    assert response.status_code == 400
    assert response.mimetype == PROBLEM_JSON
    assert response.json == problem_400(response.json, "5 invalid field(s); see errors.", [
        {"pointer": "/name", "detail": "Length must be between 1 and 200."},
        {"pointer": "/role", "detail": "Must be one of: institution, analyst, auditor, admin."},
        {"pointer": "/institutionId", "detail": "Not a valid UUID."},
        {"pointer": "/municipalityCodes/0", "detail": "Length must be between 1 and 6."},
        {"pointer": "/secret", "detail": "Unknown field."},
    ])
    assert count_clients(session) == before


@pytest.mark.parametrize("role", [Role.INSTITUTION, Role.ANALYST, Role.AUDITOR])
def test_only_admins_administer_clients(client, token_for, session, role):
    headers = token_for(role)
    existing, _secret = make_client(session, role=Role.ADMIN)
    before = count_clients(session)

    attempts = [
        client.post("/v1/clients", headers=headers, json={"name": "x", "role": "admin"}),
        client.get("/v1/clients", headers=headers),
        client.get(f"/v1/clients/{existing.id}", headers=headers),
        client.post(f"/v1/clients/{existing.id}/deactivation", headers=headers),
        client.post(f"/v1/clients/{existing.id}/secret", headers=headers),
    ]

    for response in attempts:
        assert response.status_code == 403, response.request.path
        assert response.mimetype == PROBLEM_JSON
        assert response.json["detail"] == "This client's role may not use this operation."
    assert count_clients(session) == before
    assert stored(session, str(existing.id)).active


# Reading clients --------------------------------------------------------------------------------------------------


def test_an_unknown_client_is_not_found(client, admin):
    for response in (client.get(f"/v1/clients/{uuid.uuid4()}", headers=admin),
                     client.post(f"/v1/clients/{uuid.uuid4()}/deactivation", headers=admin),
                     client.post(f"/v1/clients/{uuid.uuid4()}/secret", headers=admin)):
        assert response.status_code == 404
        assert response.mimetype == PROBLEM_JSON
        assert response.json == {"type": "about:blank", "title": "Not Found", "status": 404,
                                 "detail": "No such client.", "instance": response.json["instance"]}


def test_the_client_list_shows_no_secrets(client, token_for, session):
    institution = make_institution(session)
    analyst, analyst_secret = make_client(session, role=Role.ANALYST, municipality_codes=["GM0014"])
    inst, inst_secret = make_client(session, role=Role.INSTITUTION, institution_id=institution.id)
    admin_client, admin_secret = make_client(session, role=Role.ADMIN)
    headers = token_for(Role.ADMIN, client=admin_client)

    response = client.get("/v1/clients", headers=headers)

    assert response.status_code == 200, response.json
    expected = sorted([analyst, inst, admin_client], key=lambda c: (c.created_at, c.id))
    assert response.json == {"items": [client_json(c) for c in expected], "nextCursor": None}
    text = response.get_data(as_text=True)
    for secret in (analyst_secret, inst_secret, admin_secret):
        assert secret not in text
    assert "argon2" not in text


@pytest.fixture
def mixed_clients(session) -> dict[str, ApiClient]:  # type: ignore[no-untyped-def]
    institution = make_institution(session)
    made = {
        "admin": make_client(session, role=Role.ADMIN)[0],
        "analyst": make_client(session, role=Role.ANALYST, municipality_codes=["GM0014"])[0],
        "retired_analyst": make_client(session, role=Role.ANALYST, municipality_codes=["*"])[0],
        "auditor": make_client(session, role=Role.AUDITOR, municipality_codes=["GM0014"])[0],
        "institution": make_client(session, role=Role.INSTITUTION, institution_id=institution.id)[0],
    }
    made["retired_analyst"].active = False
    made["retired_analyst"].deactivated_at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    session.flush()
    return made


@pytest.mark.parametrize(("query", "names"), [
    ("role=analyst", ["analyst", "retired_analyst"]),
    ("active=false", ["retired_analyst"]),
    ("role=analyst&active=true", ["analyst"]),
    ("role=institution", ["institution"]),
])
def test_the_client_list_filters_by_role_and_active(client, token_for, mixed_clients, query, names):
    headers = token_for(Role.ADMIN, client=mixed_clients["admin"])

    response = client.get(f"/v1/clients?{query}", headers=headers)

    assert response.status_code == 200, response.json
    expected = sorted((mixed_clients[n] for n in names), key=lambda c: (c.created_at, c.id))
    assert response.json == {"items": [client_json(c) for c in expected], "nextCursor": None}


def test_the_client_list_is_paged(client, token_for, mixed_clients):
    headers = token_for(Role.ADMIN, client=mixed_clients["admin"])
    expected = [client_json(c) for c in sorted(mixed_clients.values(), key=lambda c: (c.created_at, c.id))]

    seen, url = [], "/v1/clients?limit=2"
    while url:
        response = client.get(url, headers=headers)
        assert response.status_code == 200, response.json
        seen.extend(response.json["items"])
        url = response.headers.get("Link", "").split(";")[0].strip("<>")
        assert bool(url) == (response.json["nextCursor"] is not None)

    assert seen == expected


def test_an_unknown_role_filter_is_invalid_input(client, admin):
    response = client.get("/v1/clients?role=superuser", headers=admin)

    assert response.status_code == 400
    assert response.mimetype == PROBLEM_JSON
    assert response.json == problem_400(response.json, "1 invalid field(s); see errors.", [
        {"pointer": "/role", "detail": "Must be one of: institution, analyst, auditor, admin.", "in": "query"},
    ])


# Deactivation -------------------------------------------------------------------------------------------------------


def test_deactivation_stops_the_clients_existing_tokens(client, token_for, session, admin):
    institution = make_institution(session)
    target, secret = make_client(session, role=Role.INSTITUTION, institution_id=institution.id)
    their_token = token_for(Role.INSTITUTION, client=target)
    assert client.get("/v1/institutions", headers=their_token).status_code == 200

    response = client.post(f"/v1/clients/{target.id}/deactivation", headers=admin)

    assert response.status_code == 200, response.json
    body = response.json
    assert body["active"] is False
    assert body["deactivatedAt"] is not None
    deactivated_at = dt.datetime.fromisoformat(body["deactivatedAt"])
    assert abs(clock.now() - deactivated_at) < dt.timedelta(minutes=1)
    assert body == client_json(target) | {"active": False, "deactivatedAt": body["deactivatedAt"]}
    assert client_json(stored(session, str(target.id))) == body

    refused = client.get("/v1/institutions", headers=their_token)
    assert refused.status_code == 401
    assert refused.mimetype == PROBLEM_JSON
    assert refused.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert refused.json == {"type": "about:blank", "title": "Unauthorized", "status": 401,
                            "detail": "The access token was revoked or its client deactivated.",
                            "instance": refused.json["instance"]}
    # Nor does the secret get a new token.
    assert request_token(client, str(target.id), secret).status_code == 401


def test_deactivating_twice_keeps_the_first_date(client, session, admin):
    target, _secret = make_client(session, role=Role.ADMIN)

    first = client.post(f"/v1/clients/{target.id}/deactivation", headers=admin)
    second = client.post(f"/v1/clients/{target.id}/deactivation", headers=admin)

    assert first.status_code == second.status_code == 200
    assert second.json == first.json
    assert first.json["active"] is False


# Secret rotation ----------------------------------------------------------------------------------------------------


def test_rotation_replaces_the_secret(client, session, admin):
    target, old_secret = make_client(session, role=Role.ANALYST, municipality_codes=["GM0014"])
    before = request_token(client, str(target.id), old_secret)
    assert before.status_code == 200, before.json

    response = client.post(f"/v1/clients/{target.id}/secret", headers=admin)

    assert response.status_code == 200, response.json
    body = response.json
    new_secret = body["clientSecret"]
    assert new_secret != old_secret
    rotated_at = body["client"]["secretRotatedAt"]
    assert rotated_at is not None
    assert body == {"clientId": str(target.id), "clientSecret": new_secret,
                    "client": client_json(target) | {"secretRotatedAt": rotated_at}}
    assert response.headers["Cache-Control"] == "no-store"
    assert client_json(stored(session, str(target.id))) == body["client"]

    old = request_token(client, str(target.id), old_secret)
    assert old.status_code == 401
    assert old.mimetype == PROBLEM_JSON
    assert old.json == {"type": "about:blank", "title": "Unauthorized", "status": 401,
                        "detail": "Client authentication failed.", "instance": old.json["instance"],
                        "error": "invalid_client", "error_description": "Client authentication failed."}

    new = request_token(client, str(target.id), new_secret)
    assert new.status_code == 200, new.json
    assert new.json == {"access_token": new.json["access_token"], "token_type": "Bearer",
                        "expires_in": new.json["expires_in"]}
    assert new.json["expires_in"] > 0
    assert new.headers["Cache-Control"] == "no-store"

    shown = client.get(f"/v1/clients/{target.id}", headers=admin).get_data(as_text=True)
    assert new_secret not in shown
    assert old_secret not in shown
    assert "argon2" not in shown


def test_a_deactivated_client_gets_no_new_secret(client, session, admin):
    target, _secret = make_client(session, role=Role.ADMIN)
    assert client.post(f"/v1/clients/{target.id}/deactivation", headers=admin).status_code == 200
    hash_before = stored(session, str(target.id)).secret_hash

    response = client.post(f"/v1/clients/{target.id}/secret", headers=admin)

    assert response.status_code == 409
    assert response.mimetype == PROBLEM_JSON
    assert response.json == {"type": "about:blank", "title": "Conflict", "status": 409,
                             "detail": "A deactivated client cannot get a new secret.",
                             "instance": response.json["instance"]}
    after = stored(session, str(target.id))
    assert after.secret_hash == hash_before
    assert after.secret_rotated_at is None
