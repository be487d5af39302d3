"""Reading tallies for statistics: what the rollups hold for units and cells in an analyst's scope, never released.

Scope lives in `_asked_municipality`, `_in_scope` (cells, capacities) and `_single_scope` (unit summaries): an
analyst's query never leaves its municipalities.

`tallies` reads the unit summaries (one row per unit and institution) whenever they answer the question: no kind or
exploitation type filter, no breakdown, a month, quarter or year, grouping by location, institution or
municipality, and a scope of the whole country or one municipality. Anything else is summed from the cell rollups.
Both give the same tally, kept per institution: a cell shared by several institutions is released as the sum of
their parts (see disclosure).
"""

from __future__ import annotations

import datetime as dt
import heapq
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from sqlalchemy import Date, Integer, Select, case, func, literal, select, true, union_all
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

from service import clock
from service.auth.access import Caller
from service.errors import Forbidden
from service.periods import DAYS_PER_MONTH, UNIT_PERIOD_TYPES, Period
from service.registry.models import Capacity, Institution, Location
from service.registry.service import municipality_list
from service.stats import rollups
from service.stats.disclosure import (
    SUPPRESSED,
    ZERO,
    Cell,
    DisclosureRules,
    Part,
    contributor_noise,
    release,
    release_many,
    resident_key,
)
from service.stats.models import (
    BREAKDOWNS,
    KEY_SUMS,
    MEASURES,
    NOISE_SUMS,
    TOP,
    TOPS,
    ResidentRollup,
    Rollup,
    UnitTally,
)
from service.taxonomy.service import load_taxonomy

RESIDENTS = ("residents", "residents_key_sum", "residents_noise_sum")


def tally_columns(measures: Sequence[str]) -> tuple[str, ...]:
    """What a tally of these measures counts besides their top contributions (columns of a unit summary)."""
    return (*RESIDENTS, *(n for m in measures for n in (m, KEY_SUMS[m], NOISE_SUMS[m], f"{m}_of_residents")))


@dataclass(frozen=True)
class Query:
    """What an analyst asked: place grouping, at most one attribute (a filter or a breakdown) and a municipality."""

    group_by: str
    kind: str | None = None
    exploitation_type: str | None = None
    municipality_code: str | None = None
    breakdown: str | None = None

    @property
    def filtered(self) -> bool:
        return self.kind is not None or self.exploitation_type is not None

    def unfiltered(self) -> Query:
        """The same places without the attribute: the units whose size decides whether attribute cells show."""
        return Query(self.group_by, municipality_code=self.municipality_code)


@dataclass
class Tally:
    """One cell or unit as counted, never released as such: `counts` per column summed over its institutions'
    `parts` (each a Counter of the same columns), and per measure the largest contributions of single residents
    (descending, at most TOP)."""

    counts: Counter[str] = field(default_factory=Counter)
    tops: dict[str, list[int]] = field(default_factory=dict)
    parts: list[Counter[str]] = field(default_factory=list)

    @classmethod
    def part(cls, counts: Mapping[str, int], tops: Mapping[str, Sequence[int]]) -> Tally:
        """One institution's tally (its counts are its one part: a tally is never changed once made)."""
        counted = Counter(counts)
        return cls(counted, {m: list(values) for m, values in tops.items()}, [counted])

    @classmethod
    def merged(cls, tallies: Iterable[Tally], measures: Sequence[str] | None = None) -> Tally:
        """Tallies of different institutions (no resident is shared: pseudonyms are per institution) as one: counts
        add up, the largest contributions stay largest, each institution's part is kept (as it is: never changed).
        With `measures`, counts and contributions of only those measures (and the residents)."""
        tallies = list(tallies)
        names = tally_columns(MEASURES if measures is None else measures)
        measures = MEASURES if measures is None else measures
        parts = [part for t in tallies for part in t.parts]
        counts = Counter({n: sum(part[n] for part in parts) for n in names})
        tops = {m: heapq.nlargest(TOP, (v for t in tallies for v in t.tops.get(m, ()))) for m in measures}
        return cls(counts, tops, parts)

    def _top(self, measure: str, rules: DisclosureRules) -> list[int]:
        """The largest contributors' counts; incidents without a resident are contributors of one each (the NK rule
        of official statistics)."""
        count = self.counts.get(measure, 0)
        without = min(max(count - self.counts.get(f"{measure}_of_residents", 0), 0), rules.dominance_n)
        return sorted([c for c in self.tops.get(measure, []) if c > 0] + [1] * without, reverse=True)[
            : rules.dominance_n]

    def _parts(self, *columns: str) -> list[tuple[int, int, int]]:
        """Each institution's part of these columns: (count, key sum, noise sum)."""
        of = itemgetter(*columns)  # a Counter gives 0 for a column it lacks
        return [of(p) for p in self.parts]

    def released(self, measure: str, rules: DisclosureRules, *, zero: Cell = ZERO) -> Cell:
        parts = [Part(*part) for part in self._parts(measure, KEY_SUMS[measure], NOISE_SUMS[measure])]
        return release(self.counts.get(measure, 0), self._top(measure, rules), parts, rules, zero=zero)

    def released_residents(self, rules: DisclosureRules, *, zero: Cell = ZERO) -> Cell:
        present = self.counts.get("residents", 0)
        parts = [Part(*part) for part in self._parts(*RESIDENTS)]
        return release(present, [1] if present else [], parts, rules, zero=zero)

    @staticmethod
    def released_many(tallies: Sequence[Tally], measure: str, rules: DisclosureRules, *, zero: Cell = ZERO
                      ) -> list[Cell]:
        """`released` of each of these tallies, in one pass (release_many)."""
        return release_many([t.counts.get(measure, 0) for t in tallies], [t._top(measure, rules) for t in tallies],
                            [t._parts(measure, KEY_SUMS[measure], NOISE_SUMS[measure]) for t in tallies], rules,
                            zero=zero)

    @staticmethod
    def released_residents_many(tallies: Sequence[Tally], rules: DisclosureRules, *, zero: Cell = ZERO
                                ) -> list[Cell]:
        """`released_residents` of each of these tallies, in one pass (release_many)."""
        present = [t.counts.get("residents", 0) for t in tallies]
        return release_many(present, [[1] if n else [] for n in present], [t._parts(*RESIDENTS) for t in tallies],
                            rules, zero=zero)

    def releases_attributes(self, rules: DisclosureRules) -> bool:
        """Whether cells of an attribute (a filter or breakdown) of this unit may show: it is released and has at
        least 2K incidents. Otherwise all of them are suppressed, zeros included."""
        return self.counts.get("incidents", 0) >= rules.table_k and not self.released("incidents", rules).suppressed


def released_attribute(tally: Tally, measure: str, unit: Tally, rules: DisclosureRules) -> Cell:
    """An attribute cell: released from K up, and only inside a unit that releases attributes."""
    return tally.released(measure, rules, zero=SUPPRESSED) if unit.releases_attributes(rules) else SUPPRESSED


def _of_residents(residents: Mapping[str, Counter[str]], measures: Sequence[str]) -> tuple[Counter[str],
                                                                                          dict[str, list[int]]]:
    """The resident part of one institution's tally from each of its residents' contributions."""
    present = [pseudonym for pseudonym, c in residents.items() if c["incidents"] > 0]
    counts = Counter({"residents": len(present), "residents_key_sum": sum(resident_key(p) for p in present),
                      "residents_noise_sum": sum(contributor_noise(p) for p in present)})
    tops = {}
    for measure in measures:
        counts[f"{measure}_of_residents"] = sum(c[measure] for c in residents.values())
        tops[measure] = sorted((c[measure] for c in residents.values() if c[measure] > 0), reverse=True)[:TOP]
    return counts, tops


def unit_column(group_by: str) -> Any:
    return {"institution": Location.institution_id, "location": Location.id, "postcode4": Location.postcode4,
            "municipality": Location.municipality_code}[group_by]


def _asked_municipality(caller: Caller, query: Query) -> str | None:
    """The municipality the query names, if any; one outside the caller's scope is refused."""
    if query.municipality_code is not None and not caller.covers(query.municipality_code):
        raise Forbidden("This client's scope does not include that municipality.")
    return query.municipality_code


def in_scope(caller: Caller, query: Query) -> Any:
    """The scope condition on locations (cell rollups, capacities, incidents)."""
    if (municipality := _asked_municipality(caller, query)) is not None:
        return Location.municipality_code == municipality
    return caller.scope(Location.municipality_code)


class days_between(FunctionElement[int]):
    """SQL: the number of days from date `start` to date `end` (negative when end is earlier)."""

    type = Integer()
    inherit_cache = True


@compiles(days_between)
def _days_between(element: days_between, compiler: Any, **kw: Any) -> str:
    end, start = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"({end} - {start})"


@compiles(days_between, "sqlite")
def _days_between_sqlite(element: days_between, compiler: Any, **kw: Any) -> str:
    end, start = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"CAST(julianday({end}) - julianday({start}) AS INTEGER)"


def units_and_places(session: Session, caller: Caller, query: Query, periods: Sequence[Period]
                     ) -> tuple[dict[str, str], list[dict[str, float]]]:
    """Every unit in scope that has a location, by key, with its name (institutions and locations by name,
    municipalities by their official CBS name, PC4 by itself); and for
    each period the exposure per unit: places times the days they existed in the period so far, in months of
    30.44 days. One read for all of it."""
    # The current period counts only the days that have begun: its places are not exposed to the future.
    tomorrow = clock.today() + dt.timedelta(days=1)
    bounds = union_all(*[select(literal(n).label("n"), literal(p.start, Date()).label("start"),
                                literal(min(p.end, tomorrow), Date()).label("end")) for n, p in enumerate(periods)]
                       ).subquery()
    history = select(Capacity.location_id, Capacity.valid_from, Capacity.places, func.lead(Capacity.valid_from).over(
        partition_by=Capacity.location_id, order_by=Capacity.valid_from).label("until")).subquery()
    until = func.coalesce(history.c.until, bounds.c.end)
    days = days_between(case((until < bounds.c.end, until), else_=bounds.c.end),
                        case((history.c.valid_from > bounds.c.start, history.c.valid_from), else_=bounds.c.start))
    unit = unit_column(query.group_by)
    name = {"institution": Institution.name, "location": Location.name}.get(query.group_by, unit)
    units: dict[str, str] = {}
    exposures: list[dict[str, float]] = [{} for _ in periods]
    for n, key, unit_name, place_days in session.execute(
            select(bounds.c.n, unit, name, func.sum(history.c.places * case((days > 0, days), else_=0)))
            .select_from(Location).join(Institution, Institution.id == Location.institution_id)
            .outerjoin(history, history.c.location_id == Location.id).join(bounds, true())
            .where(in_scope(caller, query)).group_by(bounds.c.n, unit, name)):
        unit_key = str(key)
        units[unit_key] = municipality_list().name(key) if query.group_by == "municipality" else unit_name
        exposures[n][unit_key] = (place_days or 0) / DAYS_PER_MONTH
    return units, exposures


def _filtered(stmt: Select[Any], table: Any, caller: Caller, query: Query, period: Period) -> Select[Any]:
    stmt = (stmt.join(Location, Location.id == table.location_id)
            .where(table.grain == period.grain, table.period.in_(period.buckets), in_scope(caller, query)))
    if query.kind is not None:
        stmt = stmt.where(table.kind == query.kind)
    if query.exploitation_type is not None:
        stmt = stmt.where(table.exploitation_type == query.exploitation_type)
    return stmt


def _single_scope(caller: Caller, query: Query) -> str | None:
    """The scope of the unit summaries: '' for the whole country, a municipality code for one municipality, None
    for several."""
    if (municipality := _asked_municipality(caller, query)) is not None:
        return municipality
    if caller.national:
        return ""
    return caller.municipality_codes[0] if len(caller.municipality_codes) == 1 else None


def _summary_scope(caller: Caller, query: Query, period_type: str, *, by_unit: bool,
                   breakdown: str | None) -> str | None:
    """The scope ('' or a municipality) when the unit summaries answer this question; None when they do not."""
    scope = _single_scope(caller, query)
    if (scope is None or breakdown or query.filtered or period_type not in UNIT_PERIOD_TYPES
            or (by_unit and query.group_by == "postcode4")):
        return None
    return scope


def from_summaries(session: Session, caller: Caller, query: Query, periods: Sequence[Period], *, by_unit: bool,
                   breakdown: str | None, measures: Sequence[str] = MEASURES
                   ) -> list[dict[tuple[str, ...], Tally]] | None:
    """Tallies from the unit summaries for each of these periods (of one type), in one read; None when the
    summaries do not answer this question."""
    scope = _summary_scope(caller, query, periods[0].type, by_unit=by_unit, breakdown=breakdown)
    if scope is None:
        return None
    rollups.fold(session)  # what committed changes left pending counts too
    table = UnitTally.__table__.c
    stmt = select(UnitTally.__table__).where(table.period_type == periods[0].type,
                                             table.period.in_([p.label for p in periods]))
    if by_unit and query.group_by == "location":
        stmt, key = stmt.where(table.level == "location"), table.unit
        if scope:
            stmt = stmt.where(table.municipality_code == scope)
    elif by_unit and query.group_by == "municipality":
        # A municipality is the merge of its institutions' parts in it.
        stmt, key = stmt.where(table.level == "institution", table.municipality_code != ""), table.municipality_code
        if scope:
            stmt = stmt.where(table.municipality_code == scope)
    else:
        # The institutions in the scope ('' is each institution as a whole); the scope's total is their merge.
        stmt, key = stmt.where(table.level == "institution", table.municipality_code == scope), table.unit
    names = tally_columns(measures)
    parts: dict[str, dict[tuple[str, ...], list[Tally]]] = {p.label: defaultdict(list) for p in periods}
    for period, unit, *values in session.execute(stmt.with_only_columns(table.period, key, *[
            table[c] for c in names], *[table[c] for m in measures for c in TOPS[m]])):
        counts, tops = values[: len(names)], values[len(names):]
        parts[period][(unit,) if by_unit else ()].append(Tally.part(
            dict(zip(names, counts, strict=True)), {m: tops[TOP * i: TOP * (i + 1)] for i, m in enumerate(measures)}))
    return [{key: found[0] if len(found) == 1 else Tally.merged(found, measures)
             for key, found in parts[p.label].items()} for p in periods]


def unit_tallies(session: Session, caller: Caller, query: Query, periods: Sequence[Period],
                 measures: Sequence[str] = ("incidents",)) -> list[tuple[dict[tuple[str, ...], Tally], Tally]]:
    """For each period (of one type): tallies per unit, and the tally of the whole scope."""
    per_unit = from_summaries(session, caller, query, periods, by_unit=True, breakdown=None, measures=measures)
    if per_unit is None:
        return [(from_cells(session, caller, query, p, measures, by_unit=True, breakdown=None),
                 tallies(session, caller, query, p, measures, by_unit=False).get((), Tally())) for p in periods]
    if query.group_by == "institution":  # the scope's total is its institutions' merge
        return [(units, Tally.merged(units.values(), measures)) for units in per_unit]
    wholes = from_summaries(session, caller, query, periods, by_unit=False, breakdown=None, measures=measures) or []
    return [(units, whole.get((), Tally())) for units, whole in zip(per_unit, wholes, strict=True)]


def tallies(session: Session, caller: Caller, query: Query, period: Period,
            measures: Sequence[str] = ("incidents",), *, by_unit: bool = True,
            breakdown: str | None = None) -> dict[tuple[str, ...], Tally]:
    """Tallies per unit (and breakdown value), or one tally for the whole scope when by_unit is False."""
    summarised = from_summaries(session, caller, query, [period], by_unit=by_unit, breakdown=breakdown,
                                measures=measures)
    if summarised is not None:
        return summarised[0]
    return from_cells(session, caller, query, period, measures, by_unit=by_unit, breakdown=breakdown)


def from_cells(session: Session, caller: Caller, query: Query, period: Period, measures: Sequence[str], *,
               by_unit: bool, breakdown: str | None) -> dict[tuple[str, ...], Tally]:
    """Tallies summed from the cell rollups, per institution and then merged: any filter, breakdown, period and
    scope."""
    rollups.fold(session)  # what committed changes left pending counts too
    grouping = ([unit_column(query.group_by)] if by_unit else []) + (
        [getattr(Rollup, BREAKDOWNS[breakdown])] if breakdown else [])
    sums = [func.sum(getattr(Rollup, column)) for m in measures for column in (m, KEY_SUMS[m], NOISE_SUMS[m])]
    counts: dict[tuple[tuple[str, ...], str], Counter[str]] = defaultdict(Counter)
    stmt = _filtered(select(*grouping, Location.institution_id, *sums), Rollup, caller, query, period)
    for row in session.execute(stmt.group_by(*grouping, Location.institution_id)):
        key = (tuple(str(v) for v in row[: len(grouping)]), str(row[len(grouping)]))
        values = row[len(grouping) + 1:]
        for i, measure in enumerate(measures):
            for j, column in enumerate((measure, KEY_SUMS[measure], NOISE_SUMS[measure])):
                counts[key][column] = int(values[3 * i + j] or 0)
    resident_grouping = ([unit_column(query.group_by)] if by_unit else []) + (
        [getattr(ResidentRollup, BREAKDOWNS[breakdown])] if breakdown else [])
    stmt = _filtered(select(*resident_grouping, Location.institution_id, ResidentRollup.resident_pseudonym,
                            *[func.sum(getattr(ResidentRollup, m)) for m in measures]),
                     ResidentRollup, caller, query, period)
    residents: dict[tuple[tuple[str, ...], str], dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    for row in session.execute(stmt.group_by(*resident_grouping, Location.institution_id,
                                             ResidentRollup.resident_pseudonym)):
        key = (tuple(str(v) for v in row[: len(resident_grouping)]), str(row[len(resident_grouping)]))
        pseudonym, values = row[len(resident_grouping) + 1], row[len(resident_grouping) + 2:]
        for i, measure in enumerate(measures):
            residents[key][pseudonym][measure] = int(values[i] or 0)
    parts: dict[tuple[str, ...], list[Tally]] = defaultdict(list)
    for key in counts.keys() | residents.keys():
        resident_counts, tops = _of_residents(residents.get(key, {}), measures)
        resident_counts.update(counts.get(key, Counter()))  # update, not +: noise sums may be negative
        parts[key[0]].append(Tally.part(resident_counts, tops))
    return {key: Tally.merged(found, measures) for key, found in parts.items()}


def incident_tally(records: Iterable[tuple[uuid.UUID, str | None, uuid.UUID, int]]) -> Tally:
    """The tally of these incidents, given as (institution id, resident pseudonym, id, record key): for counts the
    rollups do not keep (reports within a number of days)."""
    by_institution: dict[uuid.UUID, list[tuple[str | None, uuid.UUID, int]]] = defaultdict(list)
    for institution_id, *incident in records:
        by_institution[institution_id].append(tuple(incident))  # type: ignore[arg-type]
    parts = []
    for incidents in by_institution.values():
        residents: dict[str, Counter[str]] = defaultdict(Counter)
        counts: Counter[str] = Counter()
        for pseudonym, incident_id, record_key in incidents:
            counts.update({"incidents": 1, "key_sum": record_key,
                           "noise_sum": contributor_noise(pseudonym or str(incident_id))})
            if pseudonym:
                residents[pseudonym]["incidents"] += 1
        resident_counts, tops = _of_residents(residents, ("incidents",))
        resident_counts.update(counts)
        parts.append(Tally.part(resident_counts, tops))
    return Tally.merged(parts, ("incidents",))


def breakdown_values(breakdown: str) -> list[str]:
    taxonomy = load_taxonomy()
    return list({"kind": taxonomy.kinds, "exploitationType": taxonomy.exploitation_types,
                 "ageBand": taxonomy.age_bands}[breakdown])
