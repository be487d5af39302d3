"""Appending to and reading the access log (its chain: service/audit/chain.py). Plain functions: a session and
values in."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from service import clock
from service.audit.keys import ChainKeys, content_mac
from service.audit.models import AccessEvent
from service.auth.access import Caller
from service.auth.models import Role

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
    KEY_ROTATION = "keyRotation"


def append_event(session: Session, keys: ChainKeys, *, event_type: str, route: str, outcome: int,
                 caller: Caller | None = None, municipality_code: str | None = None,
                 records: Iterable[str] = (), record_count: int | None = None,
                 filters: Mapping[str, Any] | None = None, request_id: str | None = None) -> AccessEvent:
    """Insert one event, unsealed, in the caller's transaction: it exists exactly when the work it records commits.
    No lock and no read of the chain: the sealer (service/audit/chain.py) links it after it commits. The event's
    content is signed here with the ring's newest key (`mac`), so that the sealer cannot be handed an event the
    service did not write without verification noticing."""
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
        outcome=outcome, request_id=request_id, mac_version=keys.active)
    event.mac = content_mac(keys.keys[keys.active], event)
    session.add(event)
    session.flush()
    return event


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
