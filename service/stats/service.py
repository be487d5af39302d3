"""Statistics for analysts: hotspots, trends and the reporting funnel, released under disclosure control.

Every figure is read from the rollups (rows in proportion to units and periods) and released cell by cell:
a cell's key is its records' key sum mod 256, totals are cells of their own, and rates, ratios and shares are
computed from released values only. Scope lives in `_asked_municipality`, `_in_scope` (cells, capacities) and
`_single_scope` (unit summaries): an analyst's query never leaves its municipalities.

`tallies` reads the unit summaries (one row per unit) whenever they answer the question: no kind or exploitation
type filter, no breakdown, a month, quarter or year, grouping by location, institution or municipality, and a scope
of the whole country or one municipality. Anything else is summed from the cell rollups. Both give the same tally.
"""

from __future__ import annotations

import datetime as dt
import heapq
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Date, Integer, Select, case, func, literal, select, true, union_all
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

from service import clock
from service.auth.access import Caller
from service.errors import Forbidden
from service.incidents.models import Incident, Status
from service.registry.models import Capacity, Institution, Location
from service.stats.disclosure import Cell, DisclosureRules, ptable_version, rate, release, resident_key
from service.stats.funnel import eb_estimates, funnel_bands, overdispersion, rate_change_pvalues
from service.stats.models import KEY_SUMS, MEASURES, TOP, TOPS, ResidentRollup, Rollup, UnitTally
from service.stats.periods import AMSTERDAM, DAYS_PER_MONTH, UNIT_PERIOD_TYPES, Period
from service.taxonomy.service import load_taxonomy

PER_PLACES = 10  # rates are per 10 places per month
TREND_SIGNIFICANCE = 0.05
MIN_UNITS_FOR_OVERDISPERSION = 10  # winsorising at the 10th and 90th percentiles needs a dozen units or so
GROUPS = ("institution", "location", "postcode4", "municipality")
BREAKDOWNS = {"kind": "kind", "exploitationType": "exploitation_type", "ageBand": "age_band"}
RESIDENTS = ("residents", "residents_key_sum")


def tally_columns(measures: Sequence[str]) -> tuple[str, ...]:
    """What a tally of these measures counts besides their top contributions (columns of a unit summary)."""
    return (*RESIDENTS, *(n for m in measures for n in (m, KEY_SUMS[m], f"{m}_of_residents")))


@dataclass(frozen=True)
class Query:
    """What an analyst asked: place grouping, optional filters and at most one breakdown."""

    group_by: str
    kind: str | None = None
    exploitation_type: str | None = None
    municipality_code: str | None = None
    breakdown: str | None = None


@dataclass
class Tally:
    """One cell or unit: its residents and, per measure, counts and key sums (`counted`) and the largest
    contributions of single residents (descending, at most TOP). Never released as such."""

    counts: dict[str, int] = field(default_factory=dict)
    tops: dict[str, list[int]] = field(default_factory=dict)

    @classmethod
    def merged(cls, tallies: Iterable[Tally], measures: Sequence[str] | None = None) -> Tally:
        """Tallies of different residents (other institutions') as one: counts add up, the largest stay largest.
        With `measures`, only the columns of those measures (and the residents)."""
        tallies = list(tallies)
        measures = MEASURES if measures is None else measures
        counts = {name: sum(t.counts.get(name, 0) for t in tallies) for name in tally_columns(measures)}
        tops = {m: heapq.nlargest(TOP, (v for t in tallies for v in t.tops.get(m, ()))) for m in measures}
        return cls(counts, tops)

    def released(self, measure: str, rules: DisclosureRules) -> Cell:
        count = self.counts.get(measure, 0)
        # Incidents without a resident are contributors of one each (the NK rule of official statistics).
        without = min(max(count - self.counts.get(f"{measure}_of_residents", 0), 0), rules.dominance_n)
        top = sorted([c for c in self.tops.get(measure, []) if c > 0] + [1] * without, reverse=True)
        return release(count, self.counts.get(KEY_SUMS[measure], 0) % 256, top[: rules.dominance_n], rules)

    def released_residents(self, rules: DisclosureRules) -> Cell:
        present = self.counts.get("residents", 0)
        return release(present, self.counts.get("residents_key_sum", 0) % 256, [1] if present else [], rules)


def _of_residents(residents: Mapping[str, Counter[str]], measures: Sequence[str]) -> Tally:
    """The resident part of a tally from each resident's contributions."""
    present = [pseudonym for pseudonym, c in residents.items() if c["incidents"] > 0]
    tally = Tally(Counter({"residents": len(present), "residents_key_sum": sum(resident_key(p) for p in present)}))
    for measure in measures:
        tally.counts[f"{measure}_of_residents"] = sum(c[measure] for c in residents.values())
        tally.tops[measure] = sorted((c[measure] for c in residents.values() if c[measure] > 0), reverse=True)[:TOP]
    return tally


def _unit_column(group_by: str) -> Any:
    return {"institution": Location.institution_id, "location": Location.id, "postcode4": Location.postcode4,
            "municipality": Location.municipality_code}[group_by]


def _asked_municipality(caller: Caller, query: Query) -> str | None:
    """The municipality the query names, if any; one outside the caller's scope is refused."""
    if query.municipality_code is not None and not caller.covers(query.municipality_code):
        raise Forbidden("This client's scope does not include that municipality.")
    return query.municipality_code


def _in_scope(caller: Caller, query: Query) -> Any:
    """The scope condition on locations (cell rollups, capacities)."""
    if (municipality := _asked_municipality(caller, query)) is not None:
        return Location.municipality_code == municipality
    if caller.national:
        return True
    return Location.municipality_code.in_(caller.municipality_codes)


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
    """Every unit in scope that has a location, by key, with its name (institutions and locations by name); and for
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
    unit = _unit_column(query.group_by)
    name = {"institution": Institution.name, "location": Location.name}.get(query.group_by, unit)
    units: dict[str, str] = {}
    exposures: list[dict[str, float]] = [{} for _ in periods]
    for n, key, unit_name, place_days in session.execute(
            select(bounds.c.n, unit, name, func.sum(history.c.places * case((days > 0, days), else_=0)))
            .select_from(Location).join(Institution, Institution.id == Location.institution_id)
            .outerjoin(history, history.c.location_id == Location.id).join(bounds, true())
            .where(_in_scope(caller, query)).group_by(bounds.c.n, unit, name)):
        units[str(key)] = unit_name
        exposures[n][str(key)] = (place_days or 0) / DAYS_PER_MONTH
    return units, exposures


def _filtered(stmt: Select[Any], table: Any, caller: Caller, query: Query, period: Period) -> Select[Any]:
    stmt = (stmt.join(Location, Location.id == table.location_id)
            .where(table.grain == period.grain, table.period.in_(period.buckets), _in_scope(caller, query)))
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
    if (scope is None or breakdown or query.kind is not None or query.exploitation_type is not None
            or period_type not in UNIT_PERIOD_TYPES or (by_unit and query.group_by == "postcode4")):
        return None
    return scope


def from_summaries(session: Session, caller: Caller, query: Query, periods: Sequence[Period], *, by_unit: bool,
                breakdown: str | None, measures: Sequence[str] = MEASURES) -> list[dict[tuple[str, ...], Tally]] | None:
    """Tallies from the unit summaries for each of these periods (of one type), in one read; None when the
    summaries do not answer this question."""
    scope = _summary_scope(caller, query, periods[0].type, by_unit=by_unit, breakdown=breakdown)
    if scope is None:
        return None
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
        parts[period][(unit,) if by_unit else ()].append(Tally(dict(zip(names, values[: len(names)], strict=True)), {
            m: values[len(names) + TOP * i: len(names) + TOP * (i + 1)] for i, m in enumerate(measures)}))
    return [{key: found[0] if len(found) == 1 else Tally.merged(found) for key, found in parts[p.label].items()}
            for p in periods]


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
    """Tallies summed from the cell rollups: any filter, breakdown, period and scope."""
    grouping = ([_unit_column(query.group_by)] if by_unit else []) + (
        [getattr(Rollup, BREAKDOWNS[breakdown])] if breakdown else [])
    sums = [func.sum(getattr(Rollup, m)) for m in measures] + [func.sum(getattr(Rollup, KEY_SUMS[m])) for m in measures]
    counts: dict[tuple[str, ...], Counter[str]] = defaultdict(Counter)
    stmt = _filtered(select(*grouping, *sums), Rollup, caller, query, period)
    for row in session.execute(stmt.group_by(*grouping) if grouping else stmt):
        key = tuple(str(v) for v in row[: len(grouping)])
        values = row[len(grouping):]
        for i, measure in enumerate(measures):
            counts[key][measure] = int(values[i] or 0)
            counts[key][KEY_SUMS[measure]] = int(values[len(measures) + i] or 0)
    resident_grouping = ([_unit_column(query.group_by)] if by_unit else []) + (
        [getattr(ResidentRollup, BREAKDOWNS[breakdown])] if breakdown else [])
    stmt = _filtered(select(*resident_grouping, ResidentRollup.resident_pseudonym,
                            *[func.sum(getattr(ResidentRollup, m)) for m in measures]),
                     ResidentRollup, caller, query, period)
    residents: dict[tuple[str, ...], dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    for row in session.execute(stmt.group_by(*resident_grouping, ResidentRollup.resident_pseudonym)):
        key = tuple(str(v) for v in row[: len(resident_grouping)])
        pseudonym, values = row[len(resident_grouping)], row[len(resident_grouping) + 1:]
        for i, measure in enumerate(measures):
            residents[key][pseudonym][measure] = int(values[i] or 0)
    found: dict[tuple[str, ...], Tally] = {}
    for key in counts.keys() | residents.keys():
        found[key] = _of_residents(residents.get(key, {}), measures)
        found[key].counts.update(counts.get(key, Counter()))
    return found


def breakdown_values(breakdown: str) -> list[str]:
    taxonomy = load_taxonomy()
    return list({"kind": taxonomy.kinds, "exploitationType": taxonomy.exploitation_types,
                 "ageBand": taxonomy.age_bands}[breakdown])


def disclosure(rules: DisclosureRules) -> dict[str, Any]:
    return {"k": rules.k, "dominance": {"n": rules.dominance_n, "max_share": rules.dominance_share},
            "rounding_base": rules.base, "perturbation_table": ptable_version()}


def _rounded(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def _figures(session: Session, caller: Caller, query: Query, periods: Sequence[Period], units: Mapping[str, str],
             exposures: Sequence[Mapping[str, float]], rules: DisclosureRules
             ) -> list[tuple[dict[str, dict[str, Any]], Cell, float]]:
    """For each period: released incidents, residents, exposure and rate per unit, and the released total and
    exposure of the scope."""
    found = []
    for exposure, (per_unit, whole) in zip(exposures, unit_tallies(session, caller, query, periods), strict=True):
        figures = {}
        for key in units:
            tally = per_unit.get((key,), Tally())
            places = exposure.get(key, 0.0)
            incidents = tally.released("incidents", rules)
            figures[key] = {"incidents": incidents, "residents": tally.released_residents(rules), "places": places,
                            "rate": rate(incidents, places, PER_PLACES)}
        found.append((figures, whole.released("incidents", rules), sum(exposure.values(), 0.0)))
    return found


def _trends(now: Mapping[str, Mapping[str, Any]], before: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """Per unit, up or down only when the change in rate is beyond chance (exact conditional test of two Poisson
    rates, rate_change_pvalues); unknown when a count is suppressed or a period has no places."""
    trends = {key: "unknown" for key in now}
    tested = [key for key, f in now.items() if f["incidents"].value is not None and f["places"]
              and before[key]["incidents"].value is not None and before[key]["places"]]
    counts = [now[key]["incidents"].value for key in tested]
    previous = [before[key]["incidents"].value for key in tested]
    shares = [now[key]["places"] / (now[key]["places"] + before[key]["places"]) for key in tested]
    for key, pvalue in zip(tested, rate_change_pvalues(counts, previous, shares), strict=True):
        f, b = now[key], before[key]
        if pvalue >= TREND_SIGNIFICANCE:  # also when both counts are 0: p = 1
            trends[key] = "flat"
        else:
            trends[key] = "up" if f["incidents"].value / f["places"] > b["incidents"].value / b["places"] else "down"
    return trends


def hotspots(session: Session, caller: Caller, query: Query, period: Period, rules: DisclosureRules) -> dict[str, Any]:
    """Each unit against the scope's reference rate on a funnel plot, ordered by its empirical-Bayes rate."""
    both = [period, period.previous()]
    units, exposures = units_and_places(session, caller, query, both)
    (figures, total, total_places), (previous, _, _) = _figures(session, caller, query, both, units, exposures, rules)
    reference = rate(total, total_places, 1.0)
    released = [k for k, f in figures.items() if f["incidents"].value is not None and f["places"] > 0]
    expected = {k: reference * figures[k]["places"] for k in released} if reference else {}
    usable = [k for k in released if expected.get(k, 0) > 0]
    phi = overdispersion([figures[k]["incidents"].value for k in usable], [expected[k] for k in usable]) \
        if len(usable) >= MIN_UNITS_FOR_OVERDISPERSION else 1.0
    eb = dict(zip(usable, eb_estimates([figures[k]["incidents"].value for k in usable],
                                       [figures[k]["places"] for k in usable]), strict=True)) if usable else {}
    bands = dict(zip(usable, funnel_bands([figures[k]["incidents"].value for k in usable],
                                          [expected[k] for k in usable], max(phi, 1.0)), strict=True))
    trend = _trends(figures, previous)
    breakdowns = (tallies(session, caller, query, period, breakdown=query.breakdown)
                  if query.breakdown else {})

    rows, before = [], period.previous().label
    for key, name in units.items():
        f, p = figures[key], previous[key]
        row: dict[str, Any] = {
            "unit": {"id": key, "name": name}, "incidents": f["incidents"].as_dict(),
            "residents": f["residents"].as_dict(), "places": round(f["places"], 1),
            "rate_per_10_places": _rounded(f["rate"], 3),
            "expected": _rounded(expected.get(key)),
            "ratio": _rounded(f["incidents"].value / expected[key]) if key in bands else None,
            "funnel_band": bands.get(key),
            "eb_rate_per_10_places": _rounded(eb[key] * PER_PLACES, 3) if key in eb else None,
            "previous": {"period": before, "incidents": p["incidents"].as_dict(),
                         "residents": p["residents"].as_dict(), "places": round(p["places"], 1),
                         "rate_per_10_places": _rounded(p["rate"], 3)},
            "trend": trend[key],
        }
        if query.breakdown:
            # Every code of the dimension, zeros included: which values appear must not depend on what was
            # recorded and later retracted.
            row["breakdown"] = [
                {"value": v, "incidents": breakdowns.get((key, v), Tally()).released("incidents", rules).as_dict()}
                for v in breakdown_values(query.breakdown)]
        rows.append(row)
    rows.sort(key=lambda r: (r["eb_rate_per_10_places"] is None, -(r["eb_rate_per_10_places"] or 0), r["unit"]["name"]))
    return {
        "period": period.label, "group_by": query.group_by, "units": rows,
        "reference": {"incidents": total.as_dict(), "places": round(total_places, 1),
                      "rate_per_10_places": _rounded(reference * PER_PLACES if reference is not None else None, 3),
                      "overdispersion": round(phi, 3), "overdispersion_applied": phi > 1},
        "disclosure": disclosure(rules),
    }


def trends(session: Session, caller: Caller, query: Query, periods: Sequence[Period],
           rules: DisclosureRules) -> dict[str, Any]:
    """A released series per unit, period by period, with the same cell rules as hotspots."""
    units, exposures = units_and_places(session, caller, query, periods)
    series: dict[str, list[dict[str, Any]]] = {key: [] for key in units}
    totals = []
    for period, (figures, total, total_places) in zip(
            periods, _figures(session, caller, query, periods, units, exposures, rules), strict=True):
        for key in units:
            f = figures[key]
            series[key].append({"period": period.label, "incidents": f["incidents"].as_dict(),
                                "places": round(f["places"], 1), "rate_per_10_places": _rounded(f["rate"], 3)})
        totals.append({"period": period.label, "incidents": total.as_dict(), "places": round(total_places, 1),
                       "rate_per_10_places": _rounded(rate(total, total_places, PER_PLACES), 3)})
    return {"period_type": periods[0].type, "group_by": query.group_by,
            "units": [{"unit": {"id": key, "name": name}, "series": series[key]} for key, name in units.items()],
            "total": totals, "disclosure": disclosure(rules)}


def _share(part: Cell, whole: Cell) -> float | None:
    if part.value is None or not whole.value:
        return None
    return round(part.value / whole.value, 3)


def _median_days(session: Session, caller: Caller, query: Query, period: Period,
                 by_unit: bool = True) -> dict[str, float]:
    """Median days from occurrence to formal report, per unit or ('') for the scope (reported incidents only)."""
    start = dt.datetime.combine(period.start, dt.time(), AMSTERDAM)
    end = dt.datetime.combine(period.end, dt.time(), AMSTERDAM)
    unit = _unit_column(query.group_by) if by_unit else literal("")
    stmt = (select(unit, Incident.occurred_at, Incident.reported_at)
            .join(Location, Location.id == Incident.location_id)
            .where(Incident.status == Status.ACTIVE, Incident.reported_at.is_not(None),
                   Incident.occurred_at >= start, Incident.occurred_at < end, _in_scope(caller, query)))
    if query.kind is not None:
        stmt = stmt.where(Incident.kind == query.kind)
    if query.exploitation_type is not None:
        stmt = stmt.where(Incident.exploitation_type == query.exploitation_type)
    days: dict[str, list[float]] = defaultdict(list)
    for key, occurred_at, reported_at in session.execute(stmt):
        days[str(key)].append((reported_at - occurred_at).total_seconds() / 86400)
    return {key: statistics.median(values) for key, values in days.items()}


def reporting_funnel(session: Session, caller: Caller, query: Query, period: Period,
                     rules: DisclosureRules) -> dict[str, Any]:
    """Per unit: signals, those that reached meldcode step 2 and 5, and those formally reported."""
    units, _ = units_and_places(session, caller, query, [period])
    [(per_unit, whole)] = unit_tallies(session, caller, query, [period], MEASURES)
    medians = _median_days(session, caller, query, period)

    def stages(tally: Tally, median: float | None) -> dict[str, Any]:
        cells = {m: tally.released(m, rules) for m in MEASURES}
        reported = cells["reported"]
        return {
            "signals": cells["incidents"].as_dict(), "reached_step2": cells["step2"].as_dict(),
            "reached_step5": cells["step5"].as_dict(), "reported": reported.as_dict(),
            "step2_share": _share(cells["step2"], cells["incidents"]),
            "step5_share": _share(cells["step5"], cells["incidents"]),
            "reported_share": _share(reported, cells["incidents"]),
            # A median of a suppressed group would describe too few reports to publish.
            "median_days_to_report": round(median) if median is not None and reported.value else None,
        }

    rows = [{"unit": {"id": key, "name": name},
             **stages(per_unit.get((key,), Tally()), medians.get(key))} for key, name in units.items()]
    rows.sort(key=lambda r: r["unit"]["name"])
    overall = _median_days(session, caller, query, period, by_unit=False).get("")
    return {"period": period.label, "group_by": query.group_by, "units": rows, "total": stages(whole, overall),
            "disclosure": disclosure(rules)}
