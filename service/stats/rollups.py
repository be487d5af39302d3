"""Keeping rollups in step with incidents, in the same transaction as the change that moves them.

A new incident adds +1 to its cells; a retraction adds -1; a correction adds -1 to the old cells and +1 to the new.
Deltas of a whole batch are summed per cell first, then written with one upsert per table.
"""

from __future__ import annotations

import functools
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from service.incidents.models import Incident, Status
from service.stats.models import ResidentRollup, Rollup
from service.stats.periods import buckets_of


@dataclass(frozen=True)
class Counted:
    """What the rollups know of an incident; taken before a correction so the old cells can be left."""

    active: bool
    cells: tuple[tuple[str, str, uuid.UUID, str, str, str], ...]
    resident_pseudonym: str | None
    record_key: int
    measures: tuple[str, ...]

    @classmethod
    def of(cls, incident: Incident) -> Counted:
        step = incident.meldcode_step or 0
        counted = {"incidents": True, "step2": step >= 2, "step5": step >= 5, "reported": bool(incident.reported_to)}
        cells = tuple((grain, period, incident.location_id, incident.kind, incident.exploitation_type,
                       incident.resident_age_band) for grain, period in buckets_of(incident.occurred_at).items())
        return cls(incident.status is Status.ACTIVE, cells, incident.resident_pseudonym, incident.record_key,
                   tuple(m for m, yes in counted.items() if yes))


def _deltas(changes: Iterable[tuple[Counted, int]]) -> tuple[dict[tuple, Counter[str]], dict[tuple, Counter[str]]]:
    cells: dict[tuple, Counter[str]] = defaultdict(Counter)
    residents: dict[tuple, Counter[str]] = defaultdict(Counter)
    for incident, sign in changes:
        if not incident.active:
            continue
        for cell in incident.cells:
            for measure in incident.measures:
                key = "key_sum" if measure == "incidents" else f"{measure}_key_sum"
                cells[cell][measure] += sign
                cells[cell][key] += sign * incident.record_key
                if incident.resident_pseudonym:
                    residents[(*cell, incident.resident_pseudonym)][measure] += sign
    return cells, residents


def _columns(table: type[Rollup] | type[ResidentRollup]) -> tuple[list[str], list[str]]:
    keys = [column.name for column in table.__table__.primary_key.columns]
    return keys, [c.name for c in table.__table__.columns if c.name not in keys]


@functools.cache
def _upsert_statement(dialect_name: str, table: type[Rollup] | type[ResidentRollup]) -> Any:
    """INSERT ... ON CONFLICT DO UPDATE adding the deltas; built once per dialect and table (it is on the hot path)."""
    keys, values = _columns(table)
    stmt = (postgresql if dialect_name == "postgresql" else sqlite).insert(table)
    return stmt.on_conflict_do_update(index_elements=keys,
                                      set_={v: getattr(table, v) + getattr(stmt.excluded, v) for v in values})


def _upsert(session: Session, table: type[Rollup] | type[ResidentRollup], deltas: dict[tuple, Counter[str]]) -> None:
    keys, values = _columns(table)
    # Sorted, so concurrent transactions lock rows in one order and cannot deadlock each other.
    rows = [dict(zip(keys, cell, strict=True)) | {v: delta.get(v, 0) for v in values}
            for cell, delta in sorted(deltas.items(), key=lambda item: tuple(map(str, item[0]))) if any(delta.values())]
    if rows:
        session.execute(_upsert_statement(session.get_bind().dialect.name, table), rows)


def apply(session: Session, changes: Iterable[tuple[Counted, int]]) -> None:
    """Add each (incident as counted, +1 or -1) to the rollups; retracted incidents count nowhere."""
    cells, residents = _deltas(changes)
    _upsert(session, Rollup, cells)
    _upsert(session, ResidentRollup, residents)


def prune(session: Session) -> None:
    """Drop cells whose counts are all zero: after a purge nothing may remain of the purged residents."""
    for table in (ResidentRollup, Rollup):
        _keys, values = _columns(table)
        session.execute(delete(table).where(*[getattr(table, v) == 0 for v in values]))


def rebuild(session: Session, chunk: int = 5000) -> int:
    """Recompute every rollup from the incidents (after a restore, a purge, or to check the incremental path)."""
    session.execute(delete(ResidentRollup))
    session.execute(delete(Rollup))
    count, last_id = 0, None
    while True:
        stmt = select(Incident).where(Incident.status == Status.ACTIVE).order_by(Incident.id).limit(chunk)
        if last_id is not None:
            stmt = stmt.where(Incident.id > last_id)
        incidents = list(session.scalars(stmt))
        if not incidents:
            return count
        apply(session, ((Counted.of(incident), +1) for incident in incidents))
        count, last_id = count + len(incidents), incidents[-1].id
        session.expunge_all()
