"""Idempotency keys (Stripe, IETF draft-ietf-httpapi-idempotency-key-header): safe retries of a create.

A key is held for the length of the transaction that does the work; the first successful response is stored in
that same transaction, so a key is remembered exactly when its work was committed.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from service import clock
from service.errors import Conflict, Unprocessable
from service.incidents.models import IdempotencyKey

KEPT_FOR = dt.timedelta(hours=24)


@dataclass(frozen=True)
class Outcome:
    status: int
    body: str
    replayed: bool


def request_hash(key: bytes, method: str, path: str, body: Any) -> str:
    """What makes two requests 'the same': method, path and the JSON body regardless of key order.

    Keyed (HMAC): the body holds residentRef, plate and phone, and a plain hash of it could be reversed by
    trying every client number against a copy of the database."""
    canonical = json.dumps([method, path, body], sort_keys=True, separators=(",", ":"), default=str)
    return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()


@functools.cache
def request_hash_key(master_key: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"idempotency-request/v1").derive(master_key)


@functools.cache
def _key_hash_key(master_key: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"idempotency-key/v1").derive(master_key)


def key_hash(master_key: bytes, key: str) -> str:
    """The Idempotency-Key as it is kept: HMAC-SHA256 under a key derived from the master key, so that a key
    built from a client number cannot be read, or tried against, in a copy of the database."""
    return hmac.new(_key_hash_key(master_key), key.encode(), hashlib.sha256).hexdigest()


def _lock_id(client_id: uuid.UUID, hashed_key: str) -> int:
    digest = hashlib.sha256(client_id.bytes + hashed_key.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _hold(session: Session, client_id: uuid.UUID, hashed_key: str) -> None:
    """Hold the key until this transaction ends; a second holder is told to wait (409), not queued."""
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres and not session.scalar(select(func.pg_try_advisory_xact_lock(_lock_id(client_id, hashed_key)))):
        raise Conflict("A request with this Idempotency-Key is still being processed; retry shortly.",
                           headers={"Retry-After": "1"})
    # SQLite has a single writer: a second request waits for the first to commit, then replays its answer.


def run_once(session: Session, client_id: uuid.UUID, hashed_keys: Sequence[str] | None, fingerprints: Sequence[str],
             work: Callable[[], tuple[int, Any]]) -> Outcome:
    """Do `work` once per (client, key): replay the stored response for the same request, refuse another.

    `hashed_keys` is the Idempotency-Key as `key_hash` keeps it under every pseudonym key version (None: no key
    was sent): the first (the active version) is stored, any is found, and the last (the oldest, which every host
    has while a new key is deployed) is held. `fingerprints` is the request's hash under the same versions."""
    if hashed_keys is None:
        status, body = work()
        return Outcome(status, json.dumps(body), replayed=False)
    _hold(session, client_id, hashed_keys[-1])
    stored = session.scalars(select(IdempotencyKey).where(IdempotencyKey.client_id == client_id,
                                                          IdempotencyKey.key_hash.in_(hashed_keys))).first()
    if stored is not None and stored.expires_at > clock.now():
        if stored.request_hash not in fingerprints:
            raise Unprocessable("This Idempotency-Key was used for a different request; use a new key.")
        return Outcome(stored.response_status, stored.response_body, replayed=True)
    if stored is not None:
        session.delete(stored)
        session.flush()
    status, body = work()
    text = json.dumps(body)
    now = clock.now()
    session.add(IdempotencyKey(client_id=client_id, key_hash=hashed_keys[0], request_hash=fingerprints[0],
                               response_status=status, response_body=text, created_at=now,
                               expires_at=now + KEPT_FOR))
    session.flush()
    return Outcome(status, text, replayed=False)


def purge_expired(session: Session, now: dt.datetime | None = None) -> int:
    """Forget keys past their 24 hours; returns how many."""
    result = session.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at <= (now or clock.now())))
    return result.rowcount or 0
