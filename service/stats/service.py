"""Statistics for analysts: hotspots, trends and the reporting funnel, released under disclosure control.

Every figure is a tally (stats/tallies.py) released cell by cell (stats/disclosure.py). On top of the cell rules:
- a request asks at most one attribute: a kind or exploitation-type filter, or a breakdown (the schemas refuse more);
  the cells of an attribute show only in units of at least 2K incidents, from K up (`released_attribute`);
- a suppressed unit shows nothing beside its suppressed cell: no residents, rate, ratio, band, empirical-Bayes rate,
  trend or previous period, which could tell why it was suppressed or what it holds;
- rates, ratios, shares and the funnel's limits use released values only, and the median days to report is a band
  read from released counts of reports within 1, 3, 7, ... days.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.auth.access import Caller
from service.guidance.service import FINAL_STEP as DECIDED_STEP
from service.guidance.service import adviser_for
from service.incidents.models import Incident, Status
from service.periods import AMSTERDAM, Period
from service.registry.models import Location
from service.stats.disclosure import SUPPRESSED, ZERO, Cell, DisclosureRules, ptable_version, rate
from service.stats.funnel import (
    eb_estimates,
    funnel_bands,
    funnel_limits_many,
    overdispersion,
    rate_change_pvalues,
)
from service.stats.models import CURVE_POINTS, DELAY_BANDS, MEASURES
from service.stats.tallies import (
    Query,
    Tally,
    breakdown_values,
    in_scope,
    incident_tally,
    released_attribute,
    tallies,
    unit_column,
    unit_tallies,
    units_and_places,
)

PER_PLACES = 10  # rates are per 10 places per month
TREND_SIGNIFICANCE = 0.05
MIN_UNITS_FOR_OVERDISPERSION = 10  # winsorising at the 10th and 90th percentiles needs a dozen units or so


def disclosure(rules: DisclosureRules) -> dict[str, Any]:
    return {"k": rules.k, "dominance": {"n": rules.dominance_n, "max_share": rules.dominance_share},
            "rounding_base": rules.base, "perturbation_table": ptable_version()}


def _rounded(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


class Release:
    """How the cells of one request are released: as units' own cells, or, for a filtered request, as attribute
    cells of the units' unfiltered tallies (`gates`, one mapping per period, and the scope's per period)."""

    def __init__(self, rules: DisclosureRules, gates: Sequence[tuple[Mapping[tuple[str, ...], Tally], Tally]]
                 | None = None) -> None:
        self.rules, self.gates = rules, gates

    def cell(self, tally: Tally, measure: str, n: int = 0, key: str | None = None) -> Cell:
        """The released `measure` of a unit (`key`) or of the scope (None) in the n-th period."""
        if self.gates is None:
            return tally.released(measure, self.rules)
        units, whole = self.gates[n]
        return released_attribute(tally, measure, whole if key is None else units.get((key,), Tally()), self.rules)

    def cells(self, tallies: Sequence[Tally], measure: str, n: int, keys: Sequence[str | None]) -> list[Cell]:
        """`cell` of each tally (`keys` gives the units, None the scope), in one pass where no gate applies."""
        if self.gates is None:
            return Tally.released_many(tallies, measure, self.rules)
        return [self.cell(tally, measure, n, key) for tally, key in zip(tallies, keys, strict=True)]

    def residents(self, tallies: Sequence[Tally], incidents: Sequence[Cell]) -> list[Cell]:
        """Distinct residents of each tally: a companion of its incidents, shown only when they are."""
        # A zero is a zero for a unit; in a filtered table it is an attribute's, suppressed like 1..K-1.
        residents = Tally.released_residents_many(tallies, self.rules, zero=ZERO if self.gates is None else SUPPRESSED)
        return [SUPPRESSED if shown.suppressed else cell for shown, cell in zip(incidents, residents, strict=True)]


def _release(session: Session, caller: Caller, query: Query, periods: Sequence[Period],
             rules: DisclosureRules, measures: Sequence[str] = ("incidents",)) -> Release:
    if not query.filtered:
        return Release(rules)
    return Release(rules, unit_tallies(session, caller, query.unfiltered(), periods, measures))


def _figures(session: Session, caller: Caller, query: Query, periods: Sequence[Period], units: Mapping[str, str],
             exposures: Sequence[Mapping[str, float]], rules: DisclosureRules
             ) -> list[tuple[dict[str, dict[str, Any]], Cell, float]]:
    """For each period: released incidents, residents, exposure and rate per unit, and the released total and
    exposure of the scope."""
    release = _release(session, caller, query, periods, rules)
    found = []
    for n, (exposure, (per_unit, whole)) in enumerate(zip(exposures, unit_tallies(session, caller, query, periods),
                                                          strict=True)):
        keys = list(units)
        tallies = [per_unit.get((key,), Tally()) for key in keys]
        incidents = release.cells(tallies, "incidents", n, keys)
        figures = {key: {"incidents": cell, "residents": residents, "places": exposure.get(key, 0.0),
                         "rate": rate(cell, exposure.get(key, 0.0), PER_PLACES)}
                   for key, cell, residents in zip(keys, incidents, release.residents(tallies, incidents), strict=True)}
        [total] = release.cells([whole], "incidents", n, [None])
        found.append((figures, total, sum(exposure.values(), 0.0)))
    return found


def control_limits(expected: Sequence[float], phi: float) -> list[dict[str, float]]:
    """The funnel's 95% and 99.8% limits (counts) for units whose expected counts are `expected`, all at once."""
    lower95, upper95 = funnel_limits_many(expected, 0.95, phi)
    lower998, upper998 = funnel_limits_many(expected, 0.998, phi)
    return [{"lower95": round(a, 2), "upper95": round(b, 2), "lower998": round(c, 2), "upper998": round(d, 2)}
            for a, b, c, d in zip(lower95, upper95, lower998, upper998, strict=True)]


def funnel_curve(reference: float, places: Sequence[float], phi: float) -> list[dict[str, float]]:
    """The limits at CURVE_POINTS exposures spaced evenly on a log scale from half the smallest to a quarter more
    than the largest of `places` (the released units'), so the funnel reaches past every point; empty without
    units or a reference rate."""
    if not places or not reference:
        return []
    exposures = [float(n) for n in np.geomspace(min(places) / 2, max(places) * 1.25, CURVE_POINTS)]
    limits = control_limits([reference * n for n in exposures], phi)
    return [{"places": round(n, 2), "expected": round(reference * n, 2), **at} for n, at in zip(exposures, limits,
                                                                                             strict=True)]


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
    limits = dict(zip(usable, control_limits([expected[k] for k in usable], max(phi, 1.0)), strict=True))
    trend = _trends(figures, previous)
    breakdowns = tallies(session, caller, query, period, breakdown=query.breakdown) if query.breakdown else {}
    unit_tally = tallies(session, caller, query, period) if query.breakdown else {}

    rows, before = [], period.previous().label
    for key, name in units.items():
        f, p = figures[key], previous[key]
        shown = not f["incidents"].suppressed
        row: dict[str, Any] = {
            "unit": {"id": key, "name": name}, "incidents": f["incidents"].as_dict(),
            "residents": f["residents"].as_dict(), "places": round(f["places"], 1),
            "rate_per_10_places": _rounded(f["rate"], 3),
            "expected": _rounded(expected.get(key)),
            "ratio": _rounded(f["incidents"].value / expected[key]) if key in bands else None,
            "funnel_band": bands.get(key),
            "limits": limits.get(key),
            "eb_rate_per_10_places": _rounded(eb[key] * PER_PLACES, 3) if key in eb else None,
            "previous": {"period": before, "incidents": p["incidents"].as_dict(),
                         "residents": p["residents"].as_dict(), "places": round(p["places"], 1),
                         "rate_per_10_places": _rounded(p["rate"], 3)} if shown else None,
            "trend": trend[key],
        }
        if query.breakdown:
            # Every code of the dimension, whatever was recorded: which values appear must not depend on the data.
            unit = unit_tally.get((key,), Tally())
            row["breakdown"] = [
                {"value": v, "incidents": released_attribute(breakdowns.get((key, v), Tally()), "incidents", unit,
                                                             rules).as_dict()}
                for v in breakdown_values(query.breakdown)]
        rows.append(row)
    rows.sort(key=lambda r: (r["eb_rate_per_10_places"] is None, -(r["eb_rate_per_10_places"] or 0), r["unit"]["name"]))
    return {
        "period": period.label, "group_by": query.group_by, "units": rows,
        "reference": {"incidents": total.as_dict(), "places": round(total_places, 1),
                      "rate_per_10_places": _rounded(reference * PER_PLACES if reference is not None else None, 3),
                      "overdispersion": round(phi, 3), "overdispersion_applied": phi > 1,
                      "funnel_curve": funnel_curve(reference or 0.0, [figures[k]["places"] for k in usable],
                                                   max(phi, 1.0))},
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


def _reports_within(session: Session, caller: Caller, query: Query, period: Period
                    ) -> dict[tuple[str, ...], dict[int, Tally]]:
    """Per unit (and () for the scope): for each delay band, the tally of reports made within that many days of the
    signal (active, reported signals of the period)."""
    start = dt.datetime.combine(period.start, dt.time(), AMSTERDAM)
    end = dt.datetime.combine(period.end, dt.time(), AMSTERDAM)
    stmt = (select(unit_column(query.group_by), Incident.institution_id, Incident.resident_pseudonym, Incident.id,
                   Incident.record_key, Incident.occurred_at, Incident.reported_at)
            .join(Location, Location.id == Incident.location_id)
            .where(Incident.status == Status.ACTIVE, Incident.reported_at.is_not(None),
                   Incident.occurred_at >= start, Incident.occurred_at < end, in_scope(caller, query)))
    if query.kind is not None:
        stmt = stmt.where(Incident.kind == query.kind)
    if query.exploitation_type is not None:
        stmt = stmt.where(Incident.exploitation_type == query.exploitation_type)
    within: dict[tuple[str, ...], dict[int, list[tuple[Any, ...]]]] = defaultdict(lambda: defaultdict(list))
    for unit, institution_id, pseudonym, incident_id, record_key, occurred_at, reported_at in session.execute(stmt):
        days = (reported_at - occurred_at).total_seconds() / 86400
        record = (institution_id, pseudonym, incident_id, record_key)
        for band in DELAY_BANDS:
            if days <= band:
                within[(str(unit),)][band].append(record)
                within[()][band].append(record)
    return {key: {band: incident_tally(records) for band, records in bands.items()} for key, bands in within.items()}


def _median_band(reported: Cell, within: Mapping[int, Tally], rules: DisclosureRules) -> int | None:
    """The first band within which half the reports were made, read from released counts; only for at least 2K
    released reports, so that no band rests on a suppressed count."""
    if reported.value is None or reported.value < rules.table_k:
        return None
    for band in DELAY_BANDS:
        made = within.get(band, Tally()).released("incidents", rules)
        if made.value is not None and 2 * made.value >= reported.value:
            return band
    return None


def _follow_through(session: Session, caller: Caller, query: Query, period: Period, days: int
                    ) -> dict[tuple[str, ...], dict[str, Tally]]:
    """Per unit (and () for the scope), of the period's active signals: the tally of those still open (no meldcode
    step 5, nothing reported) and of those decided in time (reported within `days` days of the signal; a report is
    the decision the register can date)."""
    start = dt.datetime.combine(period.start, dt.time(), AMSTERDAM)
    end = dt.datetime.combine(period.end, dt.time(), AMSTERDAM)
    stmt = (select(unit_column(query.group_by), Incident.institution_id, Incident.resident_pseudonym, Incident.id,
                   Incident.record_key, Incident.occurred_at, Incident.reported_at, Incident.reported_to,
                   Incident.meldcode_step)
            .join(Location, Location.id == Incident.location_id)
            .where(Incident.status == Status.ACTIVE, Incident.occurred_at >= start, Incident.occurred_at < end,
                   in_scope(caller, query)))
    if query.kind is not None:
        stmt = stmt.where(Incident.kind == query.kind)
    if query.exploitation_type is not None:
        stmt = stmt.where(Incident.exploitation_type == query.exploitation_type)
    found: dict[tuple[str, ...], dict[str, list[tuple[Any, ...]]]] = defaultdict(lambda: defaultdict(list))
    for unit, institution_id, pseudonym, incident_id, record_key, occurred, reported_at, to, step in \
            session.execute(stmt):
        record = (institution_id, pseudonym, incident_id, record_key)
        if (step or 0) < DECIDED_STEP and not to:
            measure = "open"
        elif reported_at is not None and (reported_at - occurred).total_seconds() <= days * 86400:
            measure = "decided_in_time"
        else:
            continue
        found[(str(unit),)][measure].append(record)
        found[()][measure].append(record)
    return {key: {m: incident_tally(records) for m, records in measures.items()} for key, measures in found.items()}


def _decision_days(session: Session, caller: Caller, query: Query) -> int:
    """The follow-up days of the one municipality asked about (or in scope); the data file's default otherwise."""
    codes = [query.municipality_code] if query.municipality_code else list(caller.municipality_codes)
    return adviser_for(session, codes[0] if len(codes) == 1 and codes[0] != "*" else None).follow_up_days


def _funnel(session: Session, caller: Caller, query: Query, period: Period, rules: DisclosureRules,
            days: int) -> tuple[dict[str, str], dict[str, dict[str, Any]], dict[str, Any]]:
    """The units (id -> name), each unit's stages and the scope's, for one period."""
    units, _ = units_and_places(session, caller, query, [period])
    [(per_unit, whole)] = unit_tallies(session, caller, query, [period], MEASURES)
    release = _release(session, caller, query, [period], rules, MEASURES)
    within = _reports_within(session, caller, query, period)
    through = _follow_through(session, caller, query, period, days)

    def stages(tally: Tally, key: str | None) -> dict[str, Any]:
        cells = {m: release.cell(tally, m, 0, key) for m in MEASURES}
        if cells["incidents"].suppressed:  # the stages of a suppressed unit would tell what it holds
            cells = dict.fromkeys(MEASURES, SUPPRESSED)
        reported = cells["reported"]
        # Released from their own records by the same rules, and only where the stage that holds them is.
        own = through.get(() if key is None else (key,), {})
        # Through `release`, so that in a filtered table they are attribute cells like the stages (a zero too
        # is suppressed there).
        decided = SUPPRESSED if reported.suppressed else release.cell(own.get("decided_in_time", Tally()),
                                                                      "incidents", 0, key)
        still_open = SUPPRESSED if cells["incidents"].suppressed else release.cell(own.get("open", Tally()),
                                                                                   "incidents", 0, key)
        return {
            "signals": cells["incidents"].as_dict(), "reached_step2": cells["step2"].as_dict(),
            "reached_step5": cells["step5"].as_dict(), "reported": reported.as_dict(),
            "step2_share": _share(cells["step2"], cells["incidents"]),
            "step5_share": _share(cells["step5"], cells["incidents"]),
            "reported_share": _share(reported, cells["incidents"]),
            "median_days_to_report": _median_band(reported, within.get(() if key is None else (key,), {}), rules),
            "decided_in_time": decided.as_dict(), "decided_in_time_share": _share(decided, cells["incidents"]),
            "still_open": still_open.as_dict(),
        }

    return units, {key: stages(per_unit.get((key,), Tally()), key) for key in units}, stages(whole, None)


CHANGED = ("signals", "reported", "still_open")
CHANGED_SHARES = ("reported_share", "decided_in_time_share")


def _change(now: Mapping[str, Any], before: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Now against the previous period, from released values only (null where either is not released)."""
    if before is None or now["signals"].get("suppressed"):
        return None
    change: dict[str, Any] = {}
    for name in CHANGED:
        a, b = now[name].get("value"), before[name].get("value")
        change[name] = None if a is None or b is None else a - b
    for name in CHANGED_SHARES:
        change[name] = None if now[name] is None or before[name] is None else round(now[name] - before[name], 3)
    return change


def reporting_funnel(session: Session, caller: Caller, query: Query, period: Period,
                     rules: DisclosureRules) -> dict[str, Any]:
    """Per unit: signals, those that reached meldcode step 2 and 5, those formally reported, those decided within
    the municipality's follow-up days and those still open, and the change against the previous period."""
    days = _decision_days(session, caller, query)
    units, rows, total = _funnel(session, caller, query, period, rules, days)
    _, previous_rows, previous_total = _funnel(session, caller, query, period.previous(), rules, days)
    listed = [{"unit": {"id": key, "name": name}, **rows[key], "change": _change(rows[key], previous_rows.get(key))}
              for key, name in units.items()]
    listed.sort(key=lambda r: r["unit"]["name"])
    return {"period": period.label, "previous_period": period.previous().label, "group_by": query.group_by,
            "decision_days": days, "units": listed, "total": {**total, "change": _change(total, previous_total)},
            "disclosure": disclosure(rules)}

