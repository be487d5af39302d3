"""OAuth 2.0 token, revocation and JWKS endpoints; API client administration."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any
from urllib.parse import unquote_plus

from flask import current_app, request
from flask.views import MethodView
from flask_jwt_extended import create_access_token, decode_token
from jwt import InvalidTokenError
from sqlalchemy import Select

from service.auth import service
from service.auth.access import jwks, public, requires
from service.auth.models import ApiClient, Role
from service.auth.schemas import (
    ClientArgs,
    ClientCredentialsOut,
    ClientIn,
    ClientOut,
    JwksOut,
    RevocationRequest,
    TokenOut,
    TokenRequest,
)
from service.db import db
from service.errors import DomainError
from service.http import CREATED_AT, Blueprint, checks_secrets
from service.pagination import LINK_HEADER, page_schema, paginated

oauth = Blueprint("oauth", __name__, url_prefix="/v1/oauth",
                  description="OAuth 2.0 client credentials (RFC 6749 §4.4) and revocation (RFC 7009)")
clients = Blueprint("clients", __name__, url_prefix="/v1/clients",
                    description="API clients and their secrets (admin)")
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class OAuthError(DomainError):
    """An RFC 6749 §5.2 error: the problem body also carries `error` and `error_description`."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description, members={"error": error, "error_description": description},
                         headers=({"WWW-Authenticate": 'Basic realm="risk-register"'} if status == 401 else {})
                         | NO_STORE)
        self.status = status
        self.title = "Unauthorized" if status == 401 else "Bad Request"


def _authenticated_client(form: dict[str, Any]) -> ApiClient:
    """RFC 6749 §2.3.1: HTTP Basic (form-encoded id and secret) or the form fields, not both."""
    basic = request.authorization
    if basic is not None and basic.type == "basic":
        if form.get("client_secret"):
            raise OAuthError(400, "invalid_request", "Authenticate the client one way, not two.")
        client_id, secret = unquote_plus(basic.username or ""), unquote_plus(basic.password or "")
    else:
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
    client = service.authenticate_client(db.session, client_id, secret) if client_id and secret else None
    if client is None:
        raise OAuthError(401, "invalid_client", "Client authentication failed.")
    return client


@oauth.route("/token")
class Token(MethodView):
    @checks_secrets
    @oauth.arguments(TokenRequest, location="form")
    @oauth.response(200, TokenOut, headers={"Cache-Control": {"description": "no-store: keep the token out of caches",
                                                               "schema": {"type": "string"}}})
    @oauth.alt_response(401, response="UNAUTHORIZED", description="Client authentication failed (invalid_client)")
    @public
    def post(self, form: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        """Obtain an access token

        Client credentials grant. The token lives for TOKEN_LIFETIME_SECONDS (15 minutes by default); ask for a
        new one rather than refreshing. Errors carry RFC 6749 `error` and `error_description` members.
        """
        if form["grant_type"] != "client_credentials":
            raise OAuthError(400, "unsupported_grant_type", "Only client_credentials is supported.")
        client = _authenticated_client(form)
        token = create_access_token(identity=str(client.id), additional_claims=service.token_claims(client))
        lifetime = current_app.config["JWT_ACCESS_TOKEN_EXPIRES"]
        return ({"access_token": token, "token_type": "Bearer", "expires_in": int(lifetime.total_seconds())},
                NO_STORE)


@oauth.route("/revoke")
class Revoke(MethodView):
    @checks_secrets
    @oauth.arguments(RevocationRequest, location="form")
    @oauth.response(200)
    @oauth.alt_response(401, response="UNAUTHORIZED", description="Client authentication failed (invalid_client)")
    @public
    def post(self, form: dict[str, Any]) -> tuple[str, dict[str, str]]:
        """Revoke an access token

        RFC 7009: the authenticated client may revoke its own tokens. Every other token (another client's, an
        unknown or a malformed one) is answered 200 exactly the same, and left as it is: the answer does not
        tell which tokens exist.
        """
        client = _authenticated_client(form)
        try:
            claims = decode_token(form["token"], allow_expired=True)
        except InvalidTokenError:
            return "", NO_STORE
        # RFC 7009 §2.2 allows 200 for a token the client may not revoke; a refusal would confirm it is genuine.
        if claims.get("sub") == str(client.id):
            service.revoke_token(db.session, claims["jti"], client.id,
                                 dt.datetime.fromtimestamp(claims["exp"], dt.UTC))
        return "", NO_STORE


@oauth.route("/jwks.json")
class Jwks(MethodView):
    @oauth.doc(operationId="getSigningKeys")
    @oauth.response(200, JwksOut)
    @public
    def get(self) -> dict[str, Any]:
        """Public signing keys

        The JSON Web Key Set that verifies access tokens when an asymmetric algorithm (ES256, RS256) is
        configured (none for HS256), and the ES256 keys of the service's signed statements (attestations),
        earlier ones included so that older statements still verify.
        """
        tokens = jwks(current_app.extensions["settings"])
        # Keys other parts of the service publish (create_app hands them in; auth knows nothing of them).
        return {"keys": tokens["keys"] + list(current_app.extensions.get("published_keys", ()))}


ClientPage = page_schema(ClientOut, "ClientPage")


@clients.route("")
class Clients(MethodView):
    @clients.arguments(ClientArgs, location="query", as_kwargs=True)
    @clients.response(200, ClientPage, headers={"Link": LINK_HEADER})
    @requires(Role.ADMIN)
    @paginated(ApiClient.created_at, ApiClient.id)
    def get(self, role: Role | None = None, active: bool | None = None) -> Select[tuple[ApiClient]]:
        """List API clients"""
        return service.client_query(role, active)

    @clients.arguments(ClientIn)
    @clients.response(201, ClientCredentialsOut, headers={"Location": CREATED_AT})
    @requires(Role.ADMIN)
    def post(self, data: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
        """Register an API client

        The secret is in this response only; it is stored as an Argon2 hash and cannot be shown again.
        """
        client, secret = service.create_client(db.session, **data)
        return _credentials(client, secret), 201, NO_STORE | {"Location": f"/v1/clients/{client.id}"}


def _credentials(client: ApiClient, secret: str) -> dict[str, Any]:
    return {"client_id": client.id, "client_secret": secret, "client": client}


@clients.route("/<uuid:clientId>")
class ClientItem(MethodView):
    @clients.response(200, ClientOut)
    @requires(Role.ADMIN)
    def get(self, clientId: uuid.UUID) -> ApiClient:
        """Get an API client"""
        return service.get_client(db.session, clientId)


@clients.route("/<uuid:clientId>/deactivation")
class ClientDeactivation(MethodView):
    @clients.response(200, ClientOut)
    @requires(Role.ADMIN)
    def post(self, clientId: uuid.UUID) -> ApiClient:
        """Deactivate an API client

        Irreversible. The client gets no new tokens and its current tokens are refused on their next use.
        """
        return service.deactivate_client(db.session, clientId)


@clients.route("/<uuid:clientId>/secret")
class ClientSecret(MethodView):
    @clients.response(200, ClientCredentialsOut)
    @clients.alt_response(409, response="CONFLICT", description="The client is deactivated")
    @requires(Role.ADMIN)
    def post(self, clientId: uuid.UUID) -> tuple[dict[str, Any], dict[str, str]]:
        """Rotate an API client's secret

        Returns the new secret once. Tokens issued under the old secret stay valid until they expire.
        """
        client, secret = service.rotate_secret(db.session, clientId)
        return _credentials(client, secret), NO_STORE
