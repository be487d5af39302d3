"""Appending to and verifying the access log's hash chain. Plain functions: a session and values in."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from service import clock
from service.audit.models import AccessEvent
from service.auth.access import Caller
from service.auth.models import Role

GENESIS = "0" * 64
CHAIN_LOCK = 0x52525F4C4F47  # "RR_LOG": one advisory lock for the append, held until commit
MAX_RECORDS = 500  # larger touches are logged as a count with their filters


class EventType:
    CREATE = "create"
    READ = "read"
    SEARCH = "search"
    CORRECT = "correct"
    RETRACT = "retract"
    EXPORT = "export"
    STATISTICS = "statistics"
    AUDIT = "audit"
    RETENTION = "retention"
    ATTESTATION = "attestation"


def chain_key(master_key: bytes) -> bytes:
    """The chain's HMAC key, derived from the master key that lives outside the database."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"access-log-chain/v1").derive(master_key)


def canonical(event: AccessEvent) -> bytes:
    """The bytes the hash covers: every recorded fact of the event and the previous event's hash."""
    return json.dumps({
        "occurredAt": event.occurred_at.astimezone(dt.UTC).isoformat(), "eventType": event.event_type,
        "clientId": str(event.client_id) if event.client_id else None, "role": event.role,
        "actedFor": event.acted_for, "municipalityCode": event.municipality_code, "route": event.route,
        "records": list(event.records or []), "recordCount": event.record_count, "filters": event.filters or {},
        "outcome": event.outcome, "requestId": event.request_id, "prevHash": event.prev_hash,
    }, sort_keys=True, separators=(",", ":"), default=str).encode()


def digest(key: bytes, event: AccessEvent) -> str:
    return hmac.new(key, canonical(event), hashlib.sha256).hexdigest()


def append_event(session: Session, key: bytes, *, event_type: str, route: str, outcome: int,
                 caller: Caller | None = None, municipality_code: str | None = None,
                 records: Iterable[str] = (), record_count: int | None = None,
                 filters: Mapping[str, Any] | None = None, request_id: str | None = None) -> AccessEvent:
    """Append one event at the head of the chain. Call it last before commit: on PostgreSQL the chain's lock is
    held from here to the end of the transaction, so two events never claim the same predecessor."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(CHAIN_LOCK)))
    previous = session.scalar(select(AccessEvent.hash).order_by(AccessEvent.seq.desc()).limit(1))
    records = [str(r) for r in records]
    acted_for = None
    if caller is not None:
        acted_for = str(caller.institution_id) if caller.role is Role.INSTITUTION else ",".join(
            caller.municipality_codes) or None
    event = AccessEvent(
        occurred_at=clock.now(), event_type=event_type, client_id=caller.client_id if caller else None,
        role=caller.role.value if caller else None, acted_for=acted_for, municipality_code=municipality_code,
        route=route, records=records if len(records) <= MAX_RECORDS else [],
        record_count=len(records) if record_count is None else record_count, filters=dict(filters or {}),
        outcome=outcome, request_id=request_id, prev_hash=previous or GENESIS)
    event.hash = digest(key, event)
    session.add(event)
    session.flush()
    return event


@dataclass(frozen=True)
class Verification:
    valid: bool
    events: int
    head: str
    first_broken: int | None = None
    problem: str | None = None


def verify_chain(session: Session, key: bytes, batch: int = 5000) -> Verification:
    """Walk the chain in order and name the first event whose hash or link is wrong."""
    previous, count = GENESIS, 0
    stmt = select(AccessEvent).order_by(AccessEvent.seq).execution_options(yield_per=batch)
    for event in session.scalars(stmt):
        count += 1
        if event.prev_hash != previous:
            return Verification(False, count, previous, event.seq,
                                "its link does not name the event before it (an event was removed, inserted or "
                                "moved)")
        if not hmac.compare_digest(event.hash, digest(key, event)):
            return Verification(False, count, previous, event.seq, "its content does not match its hash")
        previous = event.hash
    return Verification(True, count, previous)


def events_for(caller: Caller) -> Select[tuple[AccessEvent]]:
    """The events an auditor may read: of its municipalities, or all for national scope."""
    return select(AccessEvent).where(caller.scope(AccessEvent.municipality_code))


def find_events(session: Session, caller: Caller, *, occurred_from: dt.datetime | None = None,
                occurred_to: dt.datetime | None = None, client_id: uuid.UUID | None = None,
                event_type: str | None = None) -> Select[tuple[AccessEvent]]:
    stmt = events_for(caller)
    if occurred_from is not None:
        stmt = stmt.where(AccessEvent.occurred_at >= occurred_from)
    if occurred_to is not None:
        stmt = stmt.where(AccessEvent.occurred_at < occurred_to)
    if client_id is not None:
        stmt = stmt.where(AccessEvent.client_id == client_id)
    if event_type is not None:
        stmt = stmt.where(AccessEvent.event_type == event_type)
    return stmt
