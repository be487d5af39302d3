"""Forgetting what the register no longer needs (DESIGN §6), each purpose with its own period.

| what | kept | why |
|---|---|---|
| incidents, their revisions and rollup contributions | RETENTION_YEARS (5) after occurredAt | long enough to
  show a pattern when a young person meets the justice system; no longer than that purpose needs |
| idempotency keys | 24 hours | a client retries within minutes; a day covers an outage |
| revoked-token entries | until the token's own expiry | after that the token is refused anyway |
| access events | never purged by the service (at least 5 years) | NEN 7513 asks at least five years |
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from service import clock
from service.audit.keys import ChainKeys
from service.audit.service import EventType, append_event
from service.auth.service import purge_revoked_tokens
from service.incidents.idempotency import purge_expired
from service.incidents.models import Counted, Incident, Revision
from service.schemas import camelcase
from service.stats import rollups

CHUNK = 1000


@dataclass(frozen=True)
class Purged:
    incidents: int
    revisions: int
    idempotency_keys: int
    revoked_tokens: int


def cutoff(years: int, now: dt.datetime | None = None) -> dt.datetime:
    now = now or clock.now()
    try:
        return now.replace(year=now.year - years)
    except ValueError:  # 29 February
        return now.replace(year=now.year - years, day=28)


def purge(session: Session, keys: ChainKeys, *, years: int, dry_run: bool = False,
          now: dt.datetime | None = None) -> Purged:
    """Delete incidents that occurred before the cutoff (with revisions and rollup contributions), expired
    idempotency keys and revocations; log one access event with the counts. A dry run does all of it inside a
    savepoint that it rolls back, so its counts are exactly what the real purge would remove."""
    if dry_run:
        savepoint = session.begin_nested()
        try:
            return _purge(session, keys, cutoff(years, now), now)
        finally:
            savepoint.rollback()
    return _purge(session, keys, cutoff(years, now), now)


def _purge(session: Session, keys: ChainKeys, older_than: dt.datetime, now: dt.datetime | None) -> Purged:
    rollups.hold(session)  # chunk after chunk touches rollup rows in no single order: writers wait, not deadlock
    rollups.fold(session)  # what is pending first, so the purge takes away only what was added
    incidents = revisions = 0
    while True:
        chunk = list(session.scalars(select(Incident).where(Incident.occurred_at < older_than).limit(CHUNK)))
        if not chunk:
            break
        ids = [incident.id for incident in chunk]
        rollups.apply(session, [(Counted.of(incident), -1) for incident in chunk])
        revisions += session.execute(delete(Revision).where(Revision.incident_id.in_(ids))).rowcount or 0
        incidents += session.execute(delete(Incident).where(Incident.id.in_(ids))).rowcount or 0
        session.expunge_all()
    rollups.prune(session)
    purged = Purged(incidents, revisions, purge_expired(session, now), purge_revoked_tokens(session, now))
    append_event(session, keys, event_type=EventType.RETENTION, route="risk-register retention purge", outcome=200,
                 record_count=incidents,
                 filters={"occurredBefore": older_than.isoformat()}
                 | {camelcase(k): str(v) for k, v in asdict(purged).items()})
    return purged
