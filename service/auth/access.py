"""Who is calling: token verification, the `requires` decorator and `current_caller()`."""

from __future__ import annotations

import copy
import datetime as dt
import hmac
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from flask import Flask, Response, current_app, g, request
from flask_jwt_extended import JWTManager, get_jwt, verify_jwt_in_request
from flask_smorest.utils import deepupdate
from sqlalchemy import ColumnElement, true

from service.auth.models import Role
from service.auth.service import NATIONAL, token_refused
from service.config import Settings, TokenKeys
from service.db import db
from service.http import problem, view_handler

PUBLIC: frozenset[Role] = frozenset()
# Operators' routes (/metrics): no OAuth client, but the static METRICS_TOKEN that Prometheus can be given.
OPERATOR: frozenset[str] = frozenset({"operator"})
REQUIRED_CLAIMS = ("sub", "role", "jti", "iss", "aud", "iat", "exp")


@dataclass(frozen=True)
class Caller:
    """The verified client behind this request and what it may see."""

    client_id: uuid.UUID
    role: Role
    institution_id: uuid.UUID | None
    municipality_codes: tuple[str, ...]

    @property
    def national(self) -> bool:
        return NATIONAL in self.municipality_codes

    def covers(self, municipality_code: str) -> bool:
        return self.national or municipality_code in self.municipality_codes

    def scope(self, municipality: ColumnElement[str]) -> ColumnElement[bool]:
        """The condition that keeps a query inside the caller's municipalities: every query of analysts' and
        auditors' data starts from it (true for national scope)."""
        return true() if self.national else municipality.in_(self.municipality_codes)


def current_caller() -> Caller:
    """The caller of a route guarded by `requires` (its token is verified by then)."""
    return g.caller


def _caller_from_claims(claims: dict[str, Any]) -> Caller:
    inst = claims.get("inst")
    return Caller(uuid.UUID(claims["sub"]), Role(claims["role"]), uuid.UUID(inst) if inst else None,
                  tuple(claims.get("muni") or ()))


def requires(*roles: Role) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare the roles a route allows; `authorize_request` enforces it before any input is read."""

    def declare(view: Callable[..., Any]) -> Callable[..., Any]:
        view.roles = frozenset(roles)  # type: ignore[attr-defined]
        view._apidoc = deepupdate(  # type: ignore[attr-defined]
            copy.deepcopy(getattr(view, "_apidoc", {})),
            {"manual_doc": {"security": [{"bearerAuth": []}], "x-roles": sorted(r.value for r in roles)}},
        )
        return view

    return declare


def authorize_request() -> Response | None:
    """Verify the token and the caller's role for the route about to run. Routes declare no role: refused."""
    handler = view_handler(current_app.view_functions.get(request.endpoint or ""))
    if handler is None:
        return None  # routing errors and automatic OPTIONS answer without a caller
    roles = getattr(handler, "roles", None)
    if roles == PUBLIC:
        return None
    if roles == OPERATOR:
        return _operator_refused(current_app.extensions["settings"].metrics_token)
    verify_jwt_in_request()
    caller = _caller_from_claims(get_jwt())
    g.caller, g.client_id = caller, str(caller.client_id)
    if roles is None or caller.role not in roles:
        return problem(403, "This client's role may not use this operation.")
    return None


def _operator_refused(expected: str) -> Response | None:
    """None for a request bearing the operators' token; without one configured, the route is not served at all."""
    if not expected:
        return problem(404, "Not served: set METRICS_TOKEN to scrape the metrics.")
    given = request.headers.get("Authorization", "").removeprefix("Bearer ")
    if hmac.compare_digest(given.encode(), expected.encode()):
        return None
    return problem(401, "Send the operators' token: Authorization: Bearer <METRICS_TOKEN>.",
                   headers={"WWW-Authenticate": "Bearer"})


def operator(view: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a route for operators: it takes METRICS_TOKEN as its bearer token, not an OAuth access token."""
    view.roles = OPERATOR  # type: ignore[attr-defined]
    return view


def public(view: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a route as needing no token (the role matrix test insists every route says which)."""
    view.roles = PUBLIC  # type: ignore[attr-defined]
    return view


def _refuse(detail: str) -> Response:
    return problem(401, detail, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


def _claims_complete(_header: dict[str, Any], claims: dict[str, Any]) -> bool:
    # flask-jwt-extended fills a missing jti with None, so presence alone proves nothing.
    if any(claims.get(name) in (None, "") for name in REQUIRED_CLAIMS) or claims.get("type") != "access":
        return False
    try:
        caller = _caller_from_claims(claims)
    except (ValueError, KeyError, TypeError):
        return False
    if caller.role is Role.INSTITUTION:
        return caller.institution_id is not None
    return caller.role is Role.ADMIN or bool(caller.municipality_codes)


def _refused(_header: dict[str, Any], claims: dict[str, Any]) -> bool:
    return token_refused(db.session, str(claims.get("jti", "")), str(claims.get("sub", "")))


def jwks(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    """The public signing keys by kid, the active one and those whose tokens may still be valid (empty for
    HS256, whose keys are shared secrets and never published)."""
    if settings.token_algorithm == "HS256":
        return {"keys": []}
    algorithm = jwt.get_algorithm_by_name(settings.token_algorithm)
    keys = []
    for kid, public_key in settings.token_keys.verifying:
        key = json.loads(algorithm.to_jwk(algorithm.prepare_key(public_key)))
        keys.append(key | {"kid": kid, "use": "sig", "alg": settings.token_algorithm})
    return {"keys": keys}


def _verifying_key(keys: TokenKeys) -> Callable[[dict[str, Any], dict[str, Any]], str]:
    def verifying_key(header: dict[str, Any], _claims: dict[str, Any]) -> str:
        key = keys.verifying_key(header.get("kid"))
        if key is None:  # a retired key, or one never ours: refused like a bad signature
            raise jwt.InvalidTokenError("unknown signing key")
        return key

    return verifying_key


def init_app(app: Flask, settings: Settings) -> None:
    """Pin the algorithm, verify issuer, audience, expiry and revocation, and answer refusals as problems."""
    app.config.update(
        JWT_ALGORITHM=settings.token_algorithm,
        JWT_DECODE_ALGORITHMS=[settings.token_algorithm],
        JWT_SECRET_KEY=settings.token_secret,
        JWT_PRIVATE_KEY=settings.token_private_key,
        JWT_PUBLIC_KEY=settings.token_public_key,
        JWT_ENCODE_ISSUER=settings.token_issuer,
        JWT_DECODE_ISSUER=settings.token_issuer,
        JWT_ENCODE_AUDIENCE=settings.token_audience,
        JWT_DECODE_AUDIENCE=settings.token_audience,
        JWT_ACCESS_TOKEN_EXPIRES=dt.timedelta(seconds=settings.token_lifetime_seconds),
        JWT_TOKEN_LOCATION=["headers"],
        JWT_DECODE_LEEWAY=0,
        JWT_COOKIE_CSRF_PROTECT=False,
    )
    app.before_request(authorize_request)
    manager = JWTManager(app)
    # Several keys by kid (risk-register keys): the active one signs, every listed one verifies until retired.
    keys = settings.token_keys
    manager.encode_key_loader(lambda _identity: keys.signing_key)
    manager.decode_key_loader(_verifying_key(keys))
    manager.additional_headers_loader(lambda _identity: {"kid": keys.active})
    manager.token_in_blocklist_loader(_refused)
    manager.token_verification_loader(_claims_complete)
    manager.unauthorized_loader(lambda _reason: problem(
        401, "Send an access token: Authorization: Bearer <token>.", headers={"WWW-Authenticate": "Bearer"}))
    manager.invalid_token_loader(lambda _reason: _refuse("The access token is not valid."))
    manager.expired_token_loader(lambda _h, _c: _refuse("The access token has expired."))
    manager.revoked_token_loader(lambda _h, _c: _refuse("The access token was revoked or its client deactivated."))
    manager.token_verification_failed_loader(lambda _h, _c: _refuse("The access token lacks required claims."))
    manager.needs_fresh_token_loader(lambda _h, _c: _refuse("The access token is not valid."))
    manager.user_lookup_error_loader(lambda _h, _c: _refuse("The access token is not valid."))
