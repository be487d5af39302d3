"""Keeping rollups in step with incidents: a change leaves a pending row in its own transaction, folded in later.

Two kinds, both written here and nowhere else:
- cells (`incident_rollup`, `resident_rollup`): per week or month, location, kind, exploitation type and age band;
  they answer filtered and broken-down statistics;
- unit summaries (`unit_tally`, `unit_resident`): per month, quarter or year and unit, with distinct residents and
  the largest contributions of single residents kept by each fold; they answer the unfiltered ones in one row per unit.

A new incident adds +1 to its rows; a retraction -1; a correction -1 to the old rows and +1 to the new. Deltas of a
whole batch are summed per row first, then written with one upsert per table, in sorted order, so concurrent
writers lock rows in one order and cannot deadlock each other; a purge or a rebuild, which apply changes in many
rounds, first `hold` the tables. A resident's row that falls to zero is deleted in the same transaction.

The write path does not do this itself: `defer` (the receiver of signals.incidents_changed) inserts one
`rollup_pending` row per change, in the change's transaction, so a committed change is never lost and a rolled back
one never counted. `fold` applies whatever is pending, a chunk at a time, and deletes it, under one lock for all
folders (PostgreSQL: a transaction-scoped advisory lock; SQLite: its single writer), so each change is folded
exactly once. On PostgreSQL the database sums a chunk itself with the rebuild's statements (each change weighted by
its sign) and upserts the sums; only each resident's unit rows come back, to follow distinct residents and top
contributions. Elsewhere `apply` sums in Python. Every statistics read folds first (tallies.py), so no released
figure lags a committed change; a background folder in each app process (folding.py) and `risk-register stats fold`
keep the backlog small. A purge, a rebuild and a re-keying rename fold or clear what is pending first.
"""

from __future__ import annotations

import functools
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sqlalchemy import BigInteger, bindparam, case, delete, func, insert, select, text, tuple_, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from service.db import bulk_insert, bulk_rows
from service.incidents.identities import SEED_HEX
from service.incidents.models import Counted, Incident, Status
from service.periods import MONTH, UNIT_PERIOD_TYPES, WEEK, labels_of
from service.registry.models import Location
from service.stats.disclosure import contributor_noise, resident_key
from service.stats.models import (
    KEY_SUMS,
    MEASURED,
    MEASURES,
    NOISE_SUMS,
    TOP,
    TOPS,
    PendingChange,
    ResidentRollup,
    Rollup,
    UnitResident,
    UnitTally,
)

Table = type[Rollup] | type[ResidentRollup] | type[UnitTally] | type[UnitResident]
UnitKey = tuple[str, str, str, str, str]  # period type, period, level, unit, municipality code ('' for all)
FOLD_LOCK = 0x52525F464F4C44  # "RR_FOLD": held by whoever writes the rollups, until its transaction ends
FOLD_BATCH = 10_000  # pending changes a background round folds at most


def _measures(incident: Counted) -> tuple[str, ...]:
    """The measures an incident counts in: every signal; step 2 and 5 reached; formally reported."""
    counted = {"incidents": True, "step2": incident.meldcode_step >= 2, "step5": incident.meldcode_step >= 5,
               "reported": incident.reported}
    return tuple(m for m, yes in counted.items() if yes)


def _cells(incident: Counted, labels: Mapping[str, str]) -> tuple[tuple[str, str, uuid.UUID, str, str, str], ...]:
    return tuple((grain, labels[grain], incident.location_id, incident.kind, incident.exploitation_type,
                  incident.age_band) for grain in (WEEK, MONTH))


def _units(incident: Counted, labels: Mapping[str, str], municipality_code: str) -> tuple[UnitKey, ...]:
    """The unit summaries it counts in: its location, its institution, and its institution in the municipality.

    A location's municipality never changes (the registry has no such update), so it can be taken at write time.
    """
    location, institution = str(incident.location_id), str(incident.institution_id)
    return tuple(unit for period_type in UNIT_PERIOD_TYPES for unit in (
        (period_type, labels[period_type], "location", location, municipality_code),
        (period_type, labels[period_type], "institution", institution, ""),
        (period_type, labels[period_type], "institution", institution, municipality_code)))


@dataclass
class _Deltas:
    cells: dict[tuple, Counter[str]]
    residents: dict[tuple, Counter[str]]
    units: dict[UnitKey, Counter[str]]
    unit_residents: dict[tuple, Counter[str]]


def _deltas(changes: Sequence[tuple[Counted, int]], municipalities: Mapping[uuid.UUID, str]) -> _Deltas:
    deltas = _Deltas(defaultdict(Counter), defaultdict(Counter), defaultdict(Counter), defaultdict(Counter))
    for incident, sign in changes:
        pseudonym = incident.resident_pseudonym
        # The contributor's noise: of its resident, or of the incident itself when it names none.
        noise = contributor_noise(pseudonym or str(incident.id))
        labels = labels_of(incident.occurred_at)
        cells, units = _cells(incident, labels), _units(incident, labels, municipalities[incident.location_id])
        for measure in _measures(incident):
            for cell in cells:
                deltas.cells[cell][measure] += sign
                deltas.cells[cell][KEY_SUMS[measure]] += sign * incident.record_key
                deltas.cells[cell][NOISE_SUMS[measure]] += sign * noise
                if pseudonym:
                    deltas.residents[(*cell, pseudonym)][measure] += sign
            for unit in units:
                deltas.units[unit][measure] += sign
                deltas.units[unit][KEY_SUMS[measure]] += sign * incident.record_key
                deltas.units[unit][NOISE_SUMS[measure]] += sign * noise
                if pseudonym:
                    deltas.units[unit][f"{measure}_of_residents"] += sign
                    deltas.unit_residents[(*unit, pseudonym)][measure] += sign
    return deltas


def _columns(table: Table) -> tuple[list[str], list[str]]:
    keys = [column.name for column in table.__table__.primary_key.columns]
    return keys, [c.name for c in table.__table__.columns if c.name not in keys]


@functools.cache
def _upsert_statement(dialect_name: str, table: Table, returning: tuple[str, ...] = ()) -> Any:
    """INSERT ... ON CONFLICT DO UPDATE adding the deltas; built once per dialect and table (it is on the hot path)."""
    keys, values = _columns(table)
    columns = table.__table__.c
    stmt = bulk_insert(dialect_name, table.__table__, (*keys, *values))
    stmt = stmt.on_conflict_do_update(index_elements=keys, set_={v: columns[v] + stmt.excluded[v] for v in values})
    return stmt.returning(*[columns[c] for c in (*keys, *returning)]) if returning else stmt


def _upsert(session: Session, table: Table, deltas: Mapping[tuple, Counter[str]],
            returning: tuple[str, ...] = ()) -> dict[tuple, dict[str, int]]:
    """Add the deltas; with `returning`, every row is written (zero deltas too) and its values after the change
    are returned by key."""
    keys, values = _columns(table)
    rows = [dict(zip(keys, cell, strict=True)) | {v: delta.get(v, 0) for v in values}
            for cell, delta in sorted(deltas.items(), key=itemgetter(0))
            if returning or any(delta.values())]
    if not rows:
        return {}
    dialect_name = session.get_bind().dialect.name
    result = session.execute(_upsert_statement(dialect_name, table, returning),
                             bulk_rows(dialect_name, table.__table__, (*keys, *values), rows))
    if not returning:
        return {}
    return {tuple(row[: len(keys)]): dict(zip(returning, row[len(keys):], strict=True)) for row in result}


def _next_tops(tops: list[int], old: int, new: int) -> list[int] | None:
    """The TOP largest contributions after one resident's went from `old` to `new`; None when only a recount can say.

    `tops` is descending and padded with zeros; everything outside it is at most its smallest value. A contribution
    from outside that grows past the smallest takes its place; one from within (a tie with the smallest counts as
    within) is replaced by its new value, unless that falls below the smallest: then a contribution from outside
    the top, which these values do not show, may take its place.
    """
    smallest = tops[-1]
    if new == old or (old < smallest and new <= smallest):
        return tops
    if old < smallest:
        return sorted([*tops[:-1], new], reverse=True)
    if old not in tops or new < smallest:
        return None
    rest = tops.copy()
    rest.remove(old)
    return sorted([*rest, new], reverse=True)


def _tops_after(before: Mapping[str, int], moves: Sequence[tuple[dict[str, int], dict[str, int]]]
                ) -> dict[str, int] | None:
    """A unit's top columns after its residents' moves (before, after), one at a time; None if a recount is needed."""
    tops: dict[str, int] = {}
    for measure in MEASURES:
        values: list[int] | None = [before[c] for c in TOPS[measure]]
        for old, new in moves:
            values = _next_tops(values, old[measure], new[measure]) if values is not None else None
        if values is None:
            return None
        tops |= dict(zip(TOPS[measure], values, strict=True))
    return tops


def _recounted_tops(session: Session, keys: Sequence[UnitKey]) -> dict[UnitKey, dict[str, int]]:
    """The largest contributions per measure, counted again from `unit_resident` for these units."""
    key_columns = [UnitResident.__table__.c[c] for c in _columns(UnitTally)[0]]
    ranked = select(*key_columns, *[UnitResident.__table__.c[m] for m in MEASURES], *[
        func.row_number().over(partition_by=key_columns, order_by=UnitResident.__table__.c[m].desc()).label(f"{m}_rank")
        for m in MEASURES]).where(tuple_(*key_columns).in_(keys)).subquery()
    found: dict[UnitKey, dict[str, int]] = {key: dict.fromkeys(c for m in MEASURES for c in TOPS[m]) for key in keys}
    for row in session.execute(select(*[ranked.c[c.name] for c in key_columns], *[
            func.max(case((ranked.c[f"{m}_rank"] == i + 1, ranked.c[m]), else_=0))
            for m in MEASURES for i in range(TOP)]).group_by(*[ranked.c[c.name] for c in key_columns])):
        found[tuple(row[: len(key_columns)])] = dict(zip([c for m in MEASURES for c in TOPS[m]],
                                                          row[len(key_columns):], strict=True))
    return {key: {c: v or 0 for c, v in tops.items()} for key, tops in found.items()}


def _forget_left(session: Session, table: type[ResidentRollup] | type[UnitResident],
                 after: Mapping[tuple, Mapping[str, int]]) -> None:
    """Delete the rows of residents who no longer count there (a retraction, or a correction of the resident):
    a pseudonym must not stay in the rollups after the incidents that brought it are gone."""
    left = [key for key, values in after.items() if not any(values.values())]
    if left:
        keys = [table.__table__.c[c] for c in _columns(table)[0]]
        session.execute(delete(table.__table__).where(tuple_(*keys).in_(left)))


def _write_summaries(session: Session, units: dict[UnitKey, Counter[str]],
                     unit_residents: dict[tuple, Counter[str]]) -> None:
    """Write the unit summaries: counts add up; distinct residents and top contributions follow each resident's
    contribution before and after the change (read back from `unit_resident`, whose rows this transaction locks)."""
    after = _upsert(session, UnitResident, unit_residents, returning=MEASURES) if unit_residents else {}
    _follow_residents(session, units, unit_residents, after)


def _follow_residents(session: Session, units: dict[UnitKey, Counter[str]],
                      unit_residents: Mapping[tuple, Counter[str]], after: Mapping[tuple, Mapping[str, int]]) -> None:
    """With `unit_resident` written (each resident's values `after` the deltas `unit_residents`): forget who left,
    then add the units' deltas `units` with their distinct residents, and follow their top contributions."""
    _forget_left(session, UnitResident, after)
    moves: dict[UnitKey, list[tuple[dict[str, int], dict[str, int]]]] = defaultdict(list)
    for (*key, pseudonym), delta in unit_residents.items():
        new = after.get((*key, pseudonym))
        if new is None:
            continue  # all deltas zero: nothing was written
        old = {m: new[m] - delta[m] for m in MEASURES}
        unit = tuple(key)
        if (old["incidents"] > 0) != (new["incidents"] > 0):
            sign = 1 if new["incidents"] > 0 else -1
            units[unit]["residents"] += sign
            units[unit]["residents_key_sum"] += sign * resident_key(pseudonym)
            units[unit]["residents_noise_sum"] += sign * contributor_noise(pseudonym)
        moves[unit].append((old, new))  # type: ignore[index]
        units.setdefault(unit, Counter())  # type: ignore[arg-type]
    current = _upsert(session, UnitTally, units, returning=tuple(c for m in MEASURES for c in TOPS[m]))
    changed: dict[UnitKey, dict[str, int]] = {}
    recount = []
    for unit, pairs in moves.items():
        tops = _tops_after(current[unit], pairs)
        if tops is None:
            recount.append(unit)
        elif any(current[unit][c] != v for c, v in tops.items()):
            changed[unit] = tops
    if recount:
        changed |= _recounted_tops(session, recount)
    if changed:
        keys = _columns(UnitTally)[0]
        session.execute(update(UnitTally), [dict(zip(keys, unit, strict=True)) | tops
                                            for unit, tops in sorted(changed.items())])


def defer(session: Session, changes: Iterable[tuple[Counted, int]], **_: Any) -> None:
    """Leave each (incident as counted, +1 or -1) pending, in the change's transaction; retracted incidents count
    nowhere. The receiver of signals.incidents_changed (create_app connects it): one INSERT for the whole change."""
    rows = [{"sign": sign, "incident_id": incident.id, "institution_id": incident.institution_id,
             "location_id": incident.location_id, "occurred_at": incident.occurred_at, "kind": incident.kind,
             "exploitation_type": incident.exploitation_type, "age_band": incident.age_band,
             "resident_pseudonym": incident.resident_pseudonym, "record_key": incident.record_key,
             "meldcode_step": incident.meldcode_step, "reported": incident.reported}
            for incident, sign in changes if incident.active]
    if rows:
        session.execute(insert(PendingChange.__table__), rows)


def _take_fold_lock(session: Session) -> None:
    """On PostgreSQL, wait until no other transaction writes the rollups, and keep them until this one ends.
    SQLite lets one writer in at a time anyway (a request takes the write lock when it begins)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(FOLD_LOCK)))


FOLD_CHUNK = 5000


def fold(session: Session, limit: int | None = None) -> int:
    """Apply the pending changes (all, or the oldest `limit`) to the rollups and delete them; how many were folded.

    Nothing pending costs one indexed read and no lock. Otherwise the fold lock is taken before the pending rows
    are read, so a folder that had to wait finds what the one before it folded gone: none is applied twice.
    """
    pending = PendingChange.__table__
    if session.execute(select(pending.c.seq).limit(1)).first() is None:
        return 0
    _take_fold_lock(session)
    in_sql = session.get_bind().dialect.name == "postgresql"
    folded = 0
    while limit is None or folded < limit:
        # A chunk at a time: a backlog of 100,000 changes folds in bounded memory (a worker keeps its peak).
        chunk = FOLD_CHUNK if limit is None else min(FOLD_CHUNK, limit - folded)
        taken = _fold_chunk_in_sql(session, chunk) if in_sql else _fold_chunk(session, chunk)
        folded += taken
        if taken < chunk:
            break
    return folded


def _fold_chunk(session: Session, chunk: int) -> int:
    """Take the oldest `chunk` pending changes and apply them as one batch; how many."""
    pending = PendingChange.__table__
    rows = session.execute(delete(pending).where(pending.c.seq.in_(
        select(pending.c.seq).order_by(pending.c.seq).limit(chunk).scalar_subquery()))
        .returning(*pending.c)).mappings().all()
    apply(session, [(Counted(row["incident_id"], True, row["institution_id"], row["location_id"], row["occurred_at"],
                             row["kind"], row["exploitation_type"], row["age_band"], row["resident_pseudonym"],
                             row["record_key"], row["meldcode_step"], row["reported"]), row["sign"]) for row in rows])
    return len(rows)


def _fold_chunk_in_sql(session: Session, chunk: int) -> int:
    """`_fold_chunk` on PostgreSQL: the sums of `apply` computed by the database from the pending rows themselves
    (the rebuild's statements, each change weighted by its sign, added by upsert), so no change travels to Python
    and back; only each resident's unit rows come back, to follow distinct residents and top contributions. The
    chunk is named by its sequence numbers: committed and, under the fold lock, nobody else's to take."""
    pending = PendingChange.__table__
    seqs = session.scalars(select(pending.c.seq).order_by(pending.c.seq).limit(chunk)).all()
    if not seqs:
        return 0
    taken = {"seqs": list(seqs)}
    zero = session.execute(_FOLD_CELLS, taken).all()
    _forget_left(session, ResidentRollup, {tuple(row): {} for row in zero})
    after: dict[tuple, dict[str, int]] = {}
    deltas: dict[tuple, Counter[str]] = {}
    width = len(_columns(UnitResident)[0])
    for row in session.execute(_FOLD_UNIT_RESIDENTS, taken):
        key = tuple(row[:width])
        after[key] = dict(zip(MEASURES, row[width: width + len(MEASURES)], strict=True))
        deltas[key] = Counter(dict(zip(MEASURES, row[width + len(MEASURES):], strict=True)))
    _follow_residents(session, defaultdict(Counter), deltas, after)
    session.execute(_FOLD_TAKEN, taken)
    return len(seqs)


def apply(session: Session, changes: Iterable[tuple[Counted, int]],
          municipalities: Mapping[uuid.UUID, str] | None = None) -> None:
    """Add each (incident as counted, +1 or -1) to the rollups now; retracted incidents count nowhere. For a fold,
    and for a purge or a rebuild, which hold the rollups (and fold what was pending first).

    `municipalities` may give the municipality of locations the caller has just read; others are looked up.
    """
    counted = [(incident, sign) for incident, sign in changes if incident.active]
    if not counted:
        return
    deltas = _deltas(counted, _municipalities(session, [incident for incident, _ in counted], municipalities))
    _upsert(session, Rollup, deltas.cells)
    # Only a change that takes something away can leave a resident's row at zero: only then read them back.
    shrinks = any(sign < 0 for _, sign in counted)
    _forget_left(session, ResidentRollup,
                 _upsert(session, ResidentRollup, deltas.residents, returning=MEASURES if shrinks else ()))
    _write_summaries(session, deltas.units, deltas.unit_residents)


def rename_residents(session: Session, renames: Mapping[str, str], residents: Sequence[Counted]) -> None:
    """Rename residents' rows after their pseudonyms were re-keyed (the receiver of signals.pseudonyms_rekeyed;
    `residents` are their incidents as counted before): counts, record keys and noise stay, as the contributor seed
    does. Each row is found by its whole key, in sorted order, as writers lock rows. What was pending is folded
    first, under its old names (the fold lock then keeps other folders out until this transaction ends)."""
    fold(session)
    _take_fold_lock(session)
    counted = [incident for incident in residents if incident.active and incident.resident_pseudonym in renames]
    if not counted:
        return
    known = _municipalities(session, counted)
    cells, units = set(), set()
    for incident in counted:
        labels = labels_of(incident.occurred_at)
        cells |= {(*cell, incident.resident_pseudonym) for cell in _cells(incident, labels)}
        units |= {(*unit, incident.resident_pseudonym)
                  for unit in _units(incident, labels, known[incident.location_id])}
    for table, keys in ((ResidentRollup, cells), (UnitResident, units)):
        names = _columns(table)[0]
        column = table.__table__.c
        stmt = update(table.__table__).where(*[column[n] == bindparam(f"old_{n}") for n in names]) \
            .values(resident_pseudonym=bindparam("new_pseudonym"))
        session.execute(stmt, [{f"old_{n}": v for n, v in zip(names, key, strict=True)}
                               | {"new_pseudonym": renames[key[-1]]} for key in sorted(keys, key=str)])


def _municipalities(session: Session, counted: Sequence[Counted],
                    given: Mapping[uuid.UUID, str] | None = None) -> dict[uuid.UUID, str]:
    """The municipality of each counted incident's location: those given, the others looked up."""
    known = dict(given or {})
    if missing := {incident.location_id for incident in counted} - known.keys():
        known |= dict(session.execute(select(Location.id, Location.municipality_code).where(
            Location.id.in_(missing))).all())
    return known


def hold(session: Session, *, incidents: bool = False) -> None:
    """On PostgreSQL, keep other writers out of the rollups (and, with `incidents`, out of the incidents) until
    this transaction ends. For a purge or a rebuild: they touch rows in no single order, so a writer must wait
    for them rather than deadlock with them. Tables are taken in the order writers take them. SQLite lets one
    writer in at a time anyway. The fold lock comes first, as every folder takes it before any rollup row."""
    if session.get_bind().dialect.name != "postgresql":
        return
    _take_fold_lock(session)
    if incidents:
        session.execute(text("LOCK TABLE incident IN SHARE MODE"))
    session.execute(text("LOCK TABLE incident_rollup, resident_rollup, unit_resident, unit_tally "
                         "IN SHARE ROW EXCLUSIVE MODE"))


def prune(session: Session) -> None:
    """Drop rows whose counts are all zero: after a purge nothing may remain of the purged residents."""
    for table in (ResidentRollup, Rollup, UnitResident, UnitTally):
        _keys, values = _columns(table)
        session.execute(delete(table).where(*[getattr(table, v) == 0 for v in values]))


def rebuild(session: Session, chunk: int = 5000) -> int:
    """Recompute every rollup from the active incidents (after a restore or a purge, or to check the folds).

    On PostgreSQL in set-based SQL (`_REBUILD`); elsewhere through `apply`, a chunk of incidents at a time.
    """
    hold(session, incidents=True)
    # Nothing pending is lost: every change pending here has committed with its incident, which is counted below.
    for table in (PendingChange, ResidentRollup, Rollup, UnitResident, UnitTally):
        session.execute(delete(table))
    if session.get_bind().dialect.name == "postgresql":
        for statement in _REBUILD:
            session.execute(text(statement))
        return session.scalar(select(func.count()).select_from(Incident).where(Incident.status == Status.ACTIVE)) or 0
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


def _seed_byte(identity: str, index: int) -> str:
    """SQL for `disclosure._byte`: a byte of the contributor seed, carried by a re-keyed pseudonym or hashed."""
    return (f"CASE WHEN length({identity}) = 64 AND substr({identity}, {SEED_HEX + 1}, 1) = '.' "
            f"THEN get_byte(decode(substr({identity}, 1, {SEED_HEX}), 'hex'), {index}) "
            f"ELSE get_byte(sha256(convert_to({identity}, 'UTF8')), {index}) END")


# The rebuild on PostgreSQL. `counted` is every active incident with its local period labels and the measures it
# counts in (as Counted.of); the statements fill the four tables as `apply` would, summed in one pass each.
_COUNTED = f"""
WITH local AS (
    SELECT i.*, l.municipality_code, i.occurred_at AT TIME ZONE 'Europe/Amsterdam' AS moment,
           2 * {_seed_byte("coalesce(i.resident_pseudonym, i.id::text)", 1)} - 255 AS noise
    FROM incident i JOIN location l ON l.id = i.location_id WHERE i.status = 'active'
), counted AS (
    SELECT *, 1 AS incidents,
           CASE WHEN coalesce(meldcode_step, 0) >= 2 THEN 1 ELSE 0 END AS step2,
           CASE WHEN coalesce(meldcode_step, 0) >= 5 THEN 1 ELSE 0 END AS step5,
           CASE WHEN json_typeof(reported_to) = 'array' AND json_array_length(reported_to) > 0 THEN 1 ELSE 0 END
               AS reported
    FROM local
)"""  # noqa: S608 - fixed fragments only
_CELLS = """
CROSS JOIN LATERAL (VALUES ('week', to_char(moment, 'IYYY-"W"IW')), ('month', to_char(moment, 'YYYY-MM')))
    AS b(grain, period)"""
_UNITS = """
CROSS JOIN LATERAL (VALUES ('month', to_char(moment, 'YYYY-MM')), ('quarter', to_char(moment, 'YYYY-"Q"Q')),
                           ('year', to_char(moment, 'YYYY'))) AS p(period_type, period)
CROSS JOIN LATERAL (VALUES ('location', location_id::text, municipality_code),
                           ('institution', institution_id::text, ''),
                           ('institution', institution_id::text, municipality_code)) AS u(level, unit, municipality)"""
_SUM_TERMS = tuple(t for m in MEASURES for t in (f"sum({m})", f"sum({m} * record_key)", f"sum({m} * noise)"))
_SUMS = ", ".join(_SUM_TERMS)  # as MEASURED
_RANKS = ", ".join(f"row_number() OVER (PARTITION BY period_type, period, level, unit, municipality_code "
                   f"ORDER BY {m} DESC) AS {m}_rank" for m in MEASURES)
_RESIDENT_SUMS = ", ".join(
    f"sum({m}) AS {m}_of_residents, " + ", ".join(f"max(CASE WHEN {m}_rank = {i} THEN {m} ELSE 0 END) AS {top}"
                                                  for i, top in enumerate(TOPS[m], start=1))
    for m in MEASURES)
_OF_RESIDENTS = ("residents", "residents_key_sum", "residents_noise_sum",
                 *(c for m in MEASURES for c in (f"{m}_of_residents", *TOPS[m])))
_RESIDENT_COLUMNS = ", ".join(f"coalesce(r.{c}, 0)" for c in _OF_RESIDENTS)


def _into(table: Table, columns: Iterable[str]) -> str:
    """INSERT INTO with the columns named, in the order the SELECT below gives them (not the table's order)."""
    return f"INSERT INTO {table.__tablename__} ({', '.join(columns)})"


_CELL_KEY = ("grain", "period", "location_id", "kind", "exploitation_type", "age_band")
_REBUILD = (  # fixed fragments only: nothing from input is formatted into them
    f"""{_into(Rollup, (*_CELL_KEY, *MEASURED))} {_COUNTED}
    SELECT b.grain, b.period, location_id, kind, exploitation_type, resident_age_band, {_SUMS}
    FROM counted {_CELLS} GROUP BY 1, 2, 3, 4, 5, 6""",  # noqa: S608
    f"""{_into(ResidentRollup, (*_CELL_KEY, "resident_pseudonym", *MEASURES))} {_COUNTED}
    SELECT b.grain, b.period, location_id, kind, exploitation_type, resident_age_band, resident_pseudonym,
           sum(incidents), sum(step2), sum(step5), sum(reported)
    FROM counted {_CELLS} WHERE resident_pseudonym IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6, 7""",  # noqa: S608
    f"""{_into(UnitResident, (*_columns(UnitTally)[0], "resident_pseudonym", *MEASURES))} {_COUNTED}
    SELECT p.period_type, p.period, u.level, u.unit, u.municipality, resident_pseudonym,
           sum(incidents), sum(step2), sum(step5), sum(reported)
    FROM counted {_UNITS} WHERE resident_pseudonym IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6""",  # noqa: S608
    f"""{_into(UnitTally, (*_columns(UnitTally)[0], *MEASURED, *_OF_RESIDENTS))} {_COUNTED}, tallied AS (
        SELECT p.period_type, p.period, u.level, u.unit, u.municipality AS municipality_code, {_SUMS}
        FROM counted {_UNITS} GROUP BY 1, 2, 3, 4, 5
    ), ranked AS (
        SELECT *, {_seed_byte("resident_pseudonym", 0)} AS resident_key,
               2 * {_seed_byte("resident_pseudonym", 1)} - 255 AS resident_noise, {_RANKS}
        FROM unit_resident
    ), residents AS (
        SELECT period_type, period, level, unit, municipality_code, count(*) AS residents,
               sum(resident_key) AS residents_key_sum, sum(resident_noise) AS residents_noise_sum, {_RESIDENT_SUMS}
        FROM ranked GROUP BY 1, 2, 3, 4, 5
    )
    SELECT t.*, {_RESIDENT_COLUMNS}
    FROM tallied t LEFT JOIN residents r USING (period_type, period, level, unit, municipality_code)""",  # noqa: S608
)


# The fold on PostgreSQL (`_fold_chunk_in_sql`): the rebuild's sums over the pending changes taken (`:seqs`), each
# counted with its sign, added to what the rows hold. New rows get zeros in the columns a fold does not add to
# (the columns' defaults are the ORM's, not the database's).
_PENDING = f"""
WITH counted AS (
    SELECT p.location_id, p.institution_id, p.kind, p.exploitation_type, p.age_band AS resident_age_band,
           p.resident_pseudonym, p.record_key, l.municipality_code,
           p.occurred_at AT TIME ZONE 'Europe/Amsterdam' AS moment,
           2 * {_seed_byte("coalesce(p.resident_pseudonym, p.incident_id::text)", 1)} - 255 AS noise,
           p.sign AS incidents, CASE WHEN p.meldcode_step >= 2 THEN p.sign ELSE 0 END AS step2,
           CASE WHEN p.meldcode_step >= 5 THEN p.sign ELSE 0 END AS step5,
           CASE WHEN p.reported THEN p.sign ELSE 0 END AS reported
    FROM rollup_pending p JOIN location l ON l.id = p.location_id WHERE p.seq = ANY(:seqs)
)"""  # noqa: S608 - fixed fragments only


def _adding(table: Table, columns: Iterable[str]) -> str:
    """ON CONFLICT of the table's key, adding these columns of the new row to the stored one."""
    name = table.__tablename__
    return (f"ON CONFLICT ({', '.join(_columns(table)[0])}) DO UPDATE SET "
            + ", ".join(f"{c} = {name}.{c} + EXCLUDED.{c}" for c in columns))


_UNIT_KEY = _columns(UnitTally)[0]
_RESIDENT_KEY = (*_CELL_KEY, "resident_pseudonym")
_OF_RESIDENTS_ADDED = tuple(f"{m}_of_residents" for m in MEASURES)
_FOLLOWED = ("residents", "residents_key_sum", "residents_noise_sum", *(c for m in MEASURES for c in TOPS[m]))
_FOLD_CELLS = text(f"""{_PENDING}, cells AS (
    {_into(Rollup, (*_CELL_KEY, *MEASURED))}
    SELECT b.grain, b.period, location_id, kind, exploitation_type, resident_age_band, {_SUMS}
    FROM counted {_CELLS} GROUP BY 1, 2, 3, 4, 5, 6
    HAVING {" OR ".join(f"{term} <> 0" for term in _SUM_TERMS)}  -- as apply, which writes no all-zero cell
    {_adding(Rollup, MEASURED)}
), units AS (
    {_into(UnitTally, (*_UNIT_KEY, *MEASURED, *_OF_RESIDENTS_ADDED, *_FOLLOWED))}
    SELECT p.period_type, p.period, u.level, u.unit, u.municipality, {_SUMS},
           {", ".join(f"sum(CASE WHEN resident_pseudonym IS NULL THEN 0 ELSE {m} END)" for m in MEASURES)},
           {", ".join("0" for _ in _FOLLOWED)}
    FROM counted {_UNITS} GROUP BY 1, 2, 3, 4, 5
    {_adding(UnitTally, (*MEASURED, *_OF_RESIDENTS_ADDED))}
), residents AS (
    {_into(ResidentRollup, (*_RESIDENT_KEY, *MEASURES))}
    SELECT b.grain, b.period, location_id, kind, exploitation_type, resident_age_band, resident_pseudonym,
           sum(incidents), sum(step2), sum(step5), sum(reported)
    FROM counted {_CELLS} WHERE resident_pseudonym IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6, 7
    {_adding(ResidentRollup, MEASURES)}
    RETURNING {", ".join((*_RESIDENT_KEY, *MEASURES))}
)
SELECT {", ".join(_RESIDENT_KEY)} FROM residents WHERE {" AND ".join(f"{m} = 0" for m in MEASURES)}
""").bindparams(bindparam("seqs", type_=postgresql.ARRAY(BigInteger())))  # noqa: S608 - fixed fragments only
_FOLD_UNIT_RESIDENTS = text(f"""{_PENDING}, deltas AS (
    SELECT p.period_type, p.period, u.level, u.unit, u.municipality AS municipality_code, resident_pseudonym,
           sum(incidents) AS incidents, sum(step2) AS step2, sum(step5) AS step5, sum(reported) AS reported
    FROM counted {_UNITS} WHERE resident_pseudonym IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6
), written AS (
    {_into(UnitResident, (*_UNIT_KEY, "resident_pseudonym", *MEASURES))}
    SELECT * FROM deltas {_adding(UnitResident, MEASURES)}
    RETURNING *
)
SELECT {", ".join(f"w.{c}" for c in (*_UNIT_KEY, "resident_pseudonym", *MEASURES))},
       {", ".join(f"d.{m}" for m in MEASURES)}
FROM written w JOIN deltas d USING ({", ".join((*_UNIT_KEY, "resident_pseudonym"))})
""").bindparams(bindparam("seqs", type_=postgresql.ARRAY(BigInteger())))  # noqa: S608 - fixed fragments only
_FOLD_TAKEN = text("DELETE FROM rollup_pending WHERE seq = ANY(:seqs)").bindparams(
    bindparam("seqs", type_=postgresql.ARRAY(BigInteger())))
