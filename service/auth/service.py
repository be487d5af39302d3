"""API clients, their secrets, and the tokens issued to them. Plain functions: a session and values in."""

from __future__ import annotations

import datetime as dt
import functools
import re
import secrets
import uuid
from collections.abc import Sequence

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Select, bindparam, delete, exists, select
from sqlalchemy.orm import Session

from service import clock
from service.auth.models import ApiClient, RevokedToken, Role
from service.errors import Conflict, FieldError, InvalidInput, NotFound

MUNICIPALITY_CODE = re.compile(r"GM[0-9]{4}")
NATIONAL = "*"

_hasher = PasswordHasher()
# Verifying against a throwaway hash when the client is unknown keeps both paths equally slow.
_UNKNOWN_CLIENT_HASH = _hasher.hash(secrets.token_urlsafe(32))


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def _institution_exists(session: Session, institution_id: uuid.UUID) -> bool:
    """Looked up through the client's foreign key: the registry is a layer above and is not imported here."""
    [reference] = ApiClient.__table__.c.institution_id.foreign_keys
    return session.scalar(select(reference.column).where(reference.column == institution_id)) is not None


def _check_scope(session: Session, role: Role, institution_id: uuid.UUID | None,
                 municipality_codes: Sequence[str]) -> None:
    errors = []
    if role is Role.INSTITUTION:
        if institution_id is None:
            errors.append(FieldError("/institutionId", "An institution client needs an institution."))
        elif not _institution_exists(session, institution_id):
            errors.append(FieldError("/institutionId", "No such institution."))
        if municipality_codes:
            errors.append(FieldError("/municipalityCodes", "An institution client is scoped by its institution."))
    elif role in (Role.ANALYST, Role.AUDITOR):
        if not municipality_codes:
            errors.append(FieldError("/municipalityCodes", "Give municipality codes (GM0014) or '*'."))
        for i, code in enumerate(municipality_codes):
            if code != NATIONAL and not MUNICIPALITY_CODE.fullmatch(code):
                errors.append(FieldError(f"/municipalityCodes/{i}", "Use a CBS code such as GM0014, or '*'."))
        if NATIONAL in municipality_codes and len(municipality_codes) > 1:
            errors.append(FieldError("/municipalityCodes", "'*' already covers every municipality."))
    if role is not Role.INSTITUTION and institution_id is not None:
        errors.append(FieldError("/institutionId", "Only institution clients belong to an institution."))
    if role is Role.ADMIN and municipality_codes:
        errors.append(FieldError("/municipalityCodes", "An admin client has no municipality scope."))
    if errors:
        raise InvalidInput("The client's role and scope do not fit together.", errors=errors)


def create_client(session: Session, *, name: str, role: Role, institution_id: uuid.UUID | None = None,
                  municipality_codes: Sequence[str] = ()) -> tuple[ApiClient, str]:
    """Register a client; the secret is returned here and never again."""
    _check_scope(session, role, institution_id, municipality_codes)
    secret = new_secret()
    client = ApiClient(name=name, role=role, institution_id=institution_id,
                       municipality_codes=sorted(set(municipality_codes)), secret_hash=_hasher.hash(secret))
    session.add(client)
    session.flush()
    return client, secret


def get_client(session: Session, client_id: uuid.UUID) -> ApiClient:
    client = session.get(ApiClient, client_id)
    if client is None:
        raise NotFound("No such client.")
    return client


def rotate_secret(session: Session, client_id: uuid.UUID) -> tuple[ApiClient, str]:
    """Replace a client's secret. Tokens already issued stay valid until they expire or are revoked."""
    client = get_client(session, client_id)
    if not client.active:
        raise Conflict("A deactivated client cannot get a new secret.")
    secret = new_secret()
    client.secret_hash = _hasher.hash(secret)
    client.secret_rotated_at = clock.now()
    session.flush()
    return client, secret


def deactivate_client(session: Session, client_id: uuid.UUID) -> ApiClient:
    """Stop a client: it gets no new tokens, and its existing tokens are refused on their next use."""
    client = get_client(session, client_id)
    if client.active:
        client.active = False
        client.deactivated_at = clock.now()
        session.flush()
    return client


def authenticate_client(session: Session, client_id: str, secret: str) -> ApiClient | None:
    """The active client with this id and secret, or None. Takes as long for unknown ids as for known ones."""
    try:
        client = session.get(ApiClient, uuid.UUID(client_id))
    except ValueError:
        client = None
    try:
        _hasher.verify(client.secret_hash if client else _UNKNOWN_CLIENT_HASH, secret)
    except (VerificationError, InvalidHashError):
        return None
    if client is None or not client.active:
        return None
    if _hasher.check_needs_rehash(client.secret_hash):
        client.secret_hash = _hasher.hash(secret)
    return client


def token_claims(client: ApiClient) -> dict[str, object]:
    """The claims that say who a token speaks for: role, and institution or municipality scope."""
    claims: dict[str, object] = {"role": client.role.value}
    if client.role is Role.INSTITUTION:
        claims["inst"] = str(client.institution_id)
    elif client.role in (Role.ANALYST, Role.AUDITOR):
        claims["muni"] = list(client.municipality_codes)
    return claims


def revoke_token(session: Session, jti: str, client_id: uuid.UUID, expires_at: dt.datetime) -> None:
    """Refuse the token with this id from now on (idempotent)."""
    if session.get(RevokedToken, jti) is None:
        session.add(RevokedToken(jti=jti, client_id=client_id, expires_at=expires_at))
        session.flush()


def purge_revoked_tokens(session: Session, now: dt.datetime | None = None) -> int:
    """Forget revocations of tokens that have expired anyway; returns how many."""
    result = session.execute(delete(RevokedToken).where(RevokedToken.expires_at <= (now or clock.now())))
    return result.rowcount or 0


def token_refused(session: Session, jti: str, client_id: str) -> bool:
    """A token is refused when it was revoked or its client is gone or deactivated (one query)."""
    try:
        ident = uuid.UUID(client_id)
    except ValueError:
        return True
    row = session.execute(_client_and_revocation(), {"jti": jti, "client_id": ident}).first()
    return row is None or not row[0] or bool(row[1])


@functools.cache
def _client_and_revocation() -> Select[tuple[bool, bool]]:
    """Whether the client is active, and whether the token `jti` is revoked. Built once: it runs on every request."""
    revoked = exists().where(RevokedToken.jti == bindparam("jti", type_=RevokedToken.jti.type))
    return select(ApiClient.active, revoked).where(ApiClient.id == bindparam("client_id", type_=ApiClient.id.type))


def client_query(role: Role | None = None, active: bool | None = None) -> Select[tuple[ApiClient]]:
    stmt = select(ApiClient)
    if role is not None:
        stmt = stmt.where(ApiClient.role == role)
    if active is not None:
        stmt = stmt.where(ApiClient.active == active)
    return stmt
