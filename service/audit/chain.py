"""The access log's hash chain: the sealer that links committed events, key rotation, and verification (the keys
and the signed form: service/audit/keys.py).

Requests insert their event unlinked, in their own transaction, and take no lock (service/audit/service.py); they
sign its content (`mac`), so that an event written by anyone without the key is named once sealed. The sealer links
what has committed, afterwards:

- It takes the committed, unsealed events in `seq` order and gives each the next place in the chain (`chain_seq`,
  assigned here, not by the request), the hash of the event before it, and its own HMAC under the key in force.
- PostgreSQL hands out `seq` values in insert order but transactions commit in any order, so an event with a lower
  seq may commit after the sealer has passed it. It is not lost, nor does the sealer wait for it: the sealer only
  ever sees committed rows and links each unsealed one after the current head, so a late commit becomes a later
  link. The chain is in seal order, which is commit order up to the sealer's lag; `seq` only breaks ties.
  (Sealing only below the smallest in-flight seq would need each sealer to see other hosts' transactions, and a
  time margin alone is not a proof: both were set aside for this.)
- One sealer at a time: on PostgreSQL a transaction-scoped `pg_try_advisory_xact_lock` (a sealer that does not get it
  does nothing this round; no request ever takes it); on SQLite the single writer. Either way `chain_seq` is unique,
  so two sealers that read the same head cannot both commit: the second one's transaction fails and is retried.

Chain keys form a ring of versions (CHAIN_KEYS). A rotation is itself an event (`keyRotation`, naming the new
version): the sealer signs it with the key in force as usual and also with the new key (`handover_hash`), and from
there on uses the new key. Verification walks across the handover and refuses a version change without it.
"""

from __future__ import annotations

import datetime as dt
import hmac
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service import clock
from service.audit.keys import ChainKeys, content_mac, digest
from service.audit.models import AccessEvent
from service.audit.service import EventType, append_event
from service.errors import Conflict

GENESIS = "0" * 64
SEAL_LOCK = 0x52525F5345414C  # "RR_SEAL": held by the one sealer at work, never by a request
SEAL_BATCH = 2000
SEALING_COLUMNS = ("chain_seq", "prev_hash", "hash", "key_version", "handover_hash", "sealed_at")


def handover_to(event: AccessEvent) -> int | None:
    """The key version a rotation event hands over to (None for any other event)."""
    if event.event_type != EventType.KEY_ROTATION:
        return None
    try:
        return int((event.filters or {}).get("toVersion", ""))
    except ValueError:
        return None


@dataclass
class Head:
    chain_seq: int
    hash: str
    key_version: int | None  # the version in force after this event; None before the first event


def chain_head(session: Session) -> Head:
    last = session.scalar(select(AccessEvent).where(AccessEvent.chain_seq.is_not(None))
                          .order_by(AccessEvent.chain_seq.desc()).limit(1))
    if last is None:
        return Head(0, GENESIS, None)
    target = handover_to(last)
    version = target if target is not None and last.handover_hash else last.key_version
    return Head(last.chain_seq or 0, last.hash or "", version)


def seal(session: Session, keys: ChainKeys, limit: int = SEAL_BATCH) -> int:
    """Link up to `limit` committed, unsealed events into the chain, oldest seq first; flush, and return how many.
    0 also when another sealer is at work. Stops before a handover to a version this ring does not hold (a host
    not yet given the new key), so that no later event is signed with the old key by mistake."""
    if session.get_bind().dialect.name == "postgresql" and not session.scalar(
            select(func.pg_try_advisory_xact_lock(SEAL_LOCK))):
        return 0
    pending = list(session.scalars(select(AccessEvent).where(AccessEvent.chain_seq.is_(None))
                                   .order_by(AccessEvent.seq).limit(limit)))
    if not pending:
        return 0
    head = chain_head(session)
    version = keys.active if head.key_version is None else head.key_version  # a new chain starts at the newest
    now, sealed = clock.now(), 0
    for event in pending:
        target = handover_to(event)
        hands_over = target is not None and target > version
        if hands_over and target not in keys.keys:
            break
        event.chain_seq, event.prev_hash, event.key_version, event.sealed_at = head.chain_seq + 1, head.hash, \
            version, now
        event.hash = digest(keys.keys[version], event)
        if hands_over:
            event.handover_hash = digest(keys.keys[target], event)  # type: ignore[index]
            version = target  # type: ignore[assignment]
        head = Head(event.chain_seq, event.hash, version)
        sealed += 1
    session.flush()
    return sealed


def rotate_chain_key(session: Session, keys: ChainKeys) -> AccessEvent:
    """Hand the chain over to the ring's newest key version: append the handover event, which the sealer signs
    with the key in force and with the new one. Refused when the chain is already at (or moving to) that version."""
    head = chain_head(session)
    pending = session.scalars(select(AccessEvent).where(AccessEvent.chain_seq.is_(None),
                                                        AccessEvent.event_type == EventType.KEY_ROTATION))
    moving_to = max([head.key_version or keys.active, *(handover_to(e) or 0 for e in pending)])
    if keys.active <= moving_to:
        raise Conflict(f"The access log is already at key version {moving_to}: add a newer version at the end of "
                       "CHAIN_KEYS first.")
    return append_event(session, keys, event_type=EventType.KEY_ROTATION, route="risk-register audit rotate-key",
                        outcome=200, filters={"toVersion": str(keys.active)})


@dataclass(frozen=True)
class Verification:
    valid: bool
    events: int
    head: str
    first_broken: int | None = None
    problem: str | None = None
    key_version: int | None = None
    unsealed: int = 0
    oldest_unsealed_seconds: float | None = None


def unsealed_tail(session: Session) -> tuple[int, float | None]:
    """How many committed events wait for the sealer, and how long the oldest has waited (seconds)."""
    count, oldest = session.execute(select(func.count(), func.min(AccessEvent.occurred_at))
                                    .where(AccessEvent.chain_seq.is_(None))).one()
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=dt.UTC)
    return count, None if oldest is None else round(max((clock.now() - oldest).total_seconds(), 0.0), 3)


def _broken(event: AccessEvent, previous: str, version: int | None, keys: ChainKeys) -> tuple[str | None, int | None]:
    """What is wrong with `event` following `previous` under `version` (None: all is well), and the version in
    force after it."""
    if event.prev_hash != previous:
        return "its link does not name the event before it (an event was removed, inserted or moved)", version
    if version is None:
        version = event.key_version
    if event.key_version != version:
        return (f"it is signed with key version {event.key_version} where {version} is in force (a key handover is "
                "missing or forged)"), version
    if version not in keys.keys:
        return f"its key version {version} is not in CHAIN_KEYS", version
    if not hmac.compare_digest(event.hash or "", digest(keys.keys[version], event)):
        return "its content does not match its hash", version
    target = handover_to(event)
    if target is not None and target > version:
        if target not in keys.keys:
            return f"it hands over to key version {target}, which is not in CHAIN_KEYS", version
        if not hmac.compare_digest(event.handover_hash or "", digest(keys.keys[target], event)):
            return "its key handover is not signed with the new key (a forged handover)", version
        version = target
    return None, version


def _unsigned(event: AccessEvent, keys: ChainKeys, required: bool) -> str | None:
    """What is wrong with the event's content MAC, written by the request (None: all is well). Events sealed before
    content MACs existed (migration 0011) carry none; once one does, every later one must. The MAC's key version
    may not be older than the version in force at sealing: a retired key signs nothing new."""
    if event.mac is None:
        return "it carries no content MAC: the service did not write it" if required else None
    version = event.mac_version
    if version is None or version not in keys.keys or version < (event.key_version or 0) or \
            not hmac.compare_digest(event.mac, content_mac(keys.keys[version], event)):
        return "its content MAC is wrong: the service did not write it, or not with a key in force"
    return None


def verify_chain(session: Session, keys: ChainKeys, batch: int = 5000) -> Verification:
    """Walk the sealed chain in order and name the first event whose hash, link, key or content MAC is wrong;
    report the unsealed tail beside it (events committed but not yet linked: the sealer's lag)."""
    previous, count, version, macs_required = GENESIS, 0, None, False
    unsealed = unsealed_tail(session)
    stmt = (select(AccessEvent).where(AccessEvent.chain_seq.is_not(None)).order_by(AccessEvent.chain_seq)
            .execution_options(yield_per=batch))
    for event in session.scalars(stmt):
        count += 1
        problem, version = _broken(event, previous, version, keys)
        problem = problem or _unsigned(event, keys, macs_required)
        macs_required = macs_required or event.mac is not None
        if problem is not None:
            return Verification(False, count, previous, event.seq, problem, version, *unsealed)
        previous = event.hash or ""
    return Verification(True, count, previous, None, None, version, *unsealed)
