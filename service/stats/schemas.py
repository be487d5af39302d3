"""Wire shapes of statistics: fixed periods in, released cells out."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from service.openapi import Codes, code, member_names
from service.periods import PERIOD_TYPES, PeriodField, period_range
from service.registry.schemas import MUNICIPALITY_CODE
from service.schemas import CamelSchema
from service.spreadsheet import CsvArgs
from service.stats.models import BREAKDOWNS, CURVE_POINTS, DELAY_BANDS, GROUPS, MAX_PERIODS
from service.taxonomy.schemas import EXPLOITATION_TYPE, KIND

BANDS = ("below998", "below95", "within", "above95", "above998")
UNIT_TYPE = Codes("UnitType", GROUPS, "What a unit of a statistic is: an institution, a location, a postcode area "
                  "(PC4) or a municipality.")
FUNNEL_UNIT_TYPE = Codes("FunnelUnitType", ("institution", "municipality"),
                         "What a unit of the reporting funnel is: an institution or a municipality.")
BREAKDOWN = Codes("Breakdown", tuple(BREAKDOWNS), "A dimension to break counts down by: kind, exploitationType or "
                  "ageBand (of the resident).")
PERIOD_TYPE = Codes("PeriodType", PERIOD_TYPES, "The length of the periods of a trend.")
FUNNEL_BAND = Codes("FunnelBand", BANDS, "Where a unit's rate lies on the funnel plot against the reference: "
                    "below the 99.8% or 95% control limit, within them, or above the 95% or 99.8% limit.")
TREND = Codes("Trend", ("up", "down", "flat", "unknown"),
              "How the rate changed since the period before; unknown when either period was suppressed.")
REPORTING_DELAY = Codes("ReportingDelay", DELAY_BANDS, "A number of days within which reports are counted.",
                        member_names(DELAY_BANDS, "WITHIN"))


ONE_ATTRIBUTE = ("At most one of kind, exploitationType and breakdown: with time and place, a third dimension is "
                 "the most a table may have.")


class Filters(CamelSchema):
    """Place, time and at most one attribute: a kind or exploitation-type filter, or (hotspots) a breakdown."""

    kind = code(KIND, metadata={
        "description": "Only signals of this kind. Counts become cells of an attribute: shown only for units of at "
                       "least 2K signals, and from K up (a zero too is shown as suppressed)"})
    exploitation_type = code(EXPLOITATION_TYPE, metadata={
        "description": "Only signals of this exploitation type; counted as an attribute, like `kind`"})
    municipality_code = ma.fields.String(validate=MUNICIPALITY_CODE,
                                         metadata={"description": "Narrow to one municipality in scope",
                                                   "example": "GM0014"})

    @ma.validates_schema
    def _one_attribute(self, data: dict[str, Any], **_: Any) -> None:
        given = [name for name in ("kind", "exploitation_type", "breakdown") if data.get(name) is not None]
        if len(given) > 1:
            raise ma.ValidationError({self.fields[name].data_key or name: [ONE_ATTRIBUTE] for name in given[1:]})


PERIOD = {"description": "A fixed period: a month (2026-03), quarter (2026-Q3), ISO week (2026-W10) or year (2026)",
          "example": "2026-Q3"}
GROUP_BY = {"description": "What the units (rows) are"}


class FunnelPlotArgs(Filters):
    period = PeriodField(required=True, metadata=PERIOD)
    group_by = code(UNIT_TYPE, required=True, metadata=GROUP_BY)


class HotspotArgs(FunnelPlotArgs, CsvArgs):
    breakdown = code(BREAKDOWN, metadata={
        "description": "Counts per code of this dimension in every unit; an attribute like a filter, and not "
                       "together with one"})


# Examples that go together: a quarter from and to for periodType quarter.
RANGE_END = "A fixed period of periodType"


class TrendArgs(Filters, CsvArgs):
    """Loaded with `periods`: every period from `from` to `to`."""

    period_type = code(PERIOD_TYPE, required=True, metadata={"example": "quarter"})
    from_ = PeriodField(required=True, data_key="from", metadata={"description": RANGE_END, "example": "2026-Q1"})
    to = PeriodField(required=True, metadata={"description": RANGE_END, "example": "2026-Q3"})
    group_by = code(UNIT_TYPE, required=True, metadata=GROUP_BY)

    def on_bind_field(self, field_name: str, field_obj: ma.fields.Field) -> None:
        if field_name != "from_":
            super().on_bind_field(field_name, field_obj)

    @ma.validates_schema
    def _a_range(self, data: dict[str, Any], **_: Any) -> None:
        wrong = {wire: [f"Give a {data['period_type']}, like the periodType."]
                 for name, wire in (("from_", "from"), ("to", "to")) if data[name].type != data["period_type"]}
        if wrong:
            raise ma.ValidationError(wrong)
        try:
            period_range(data["from_"], data["to"], MAX_PERIODS)
        except ValueError as exc:
            raise ma.ValidationError({"to": [str(exc)]}) from None

    @ma.post_load
    def _periods(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        return data | {"periods": period_range(data.pop("from_"), data.pop("to"), MAX_PERIODS)}


class FunnelArgs(Filters, CsvArgs):
    period = PeriodField(required=True, metadata=PERIOD)
    group_by = code(FUNNEL_UNIT_TYPE, required=True, metadata=GROUP_BY)


class CellOut(ma.Schema):
    """A released count: rounded and perturbed, or suppressed (null) when it could identify someone."""

    value = ma.fields.Integer(allow_none=True, required=True, metadata={
        "description": "Rounded to base 5 by cell-key perturbation; null when suppressed"})
    suppressed = ma.fields.Boolean(required=True, metadata={"description": "Shown as <10: too few, or dominated"})


def _cell(**kwargs: Any) -> ma.fields.Nested:
    return ma.fields.Nested(CellOut, required=True, **kwargs)


class UnitOut(CamelSchema):
    """What a row of a statistic is about: an institution, location, postcode area or municipality."""

    id = ma.fields.String(required=True, metadata={"description": "Institution or location id, PC4 or CBS code",
                                                   "example": "GM0014"})
    name = ma.fields.String(required=True, metadata={"description": "A name to show", "example": "Groningen"})


PERIOD_OUT = {"description": "The period", "example": "2026-Q3"}
UNIT = {"description": "The unit"}


PLACE_MONTHS = ("Exposure in place-months: the places of each location times the months (of 30.44 days) they "
                "existed in the period, so far for the current period. Named `places` since v1.0; a place-month is "
                "one place for one month")
RATE = "Released incidents per 10 place-months (per 10 places per month); null when suppressed or without places"


def _places() -> ma.fields.Float:
    return ma.fields.Float(required=True, metadata={"description": PLACE_MONTHS})


def _rate(description: str = RATE) -> ma.fields.Float:
    return ma.fields.Float(allow_none=True, required=True, metadata={"description": description})


class LimitsOut(CamelSchema):
    """The funnel's control limits as counts, like `incidents` and `expected` (divide by `places` and multiply by
    10 for the rate scale): exact Poisson limits, widened when overdispersion is applied."""

    lower95 = ma.fields.Float(required=True, metadata={"description": "The lower 95% limit"})
    upper95 = ma.fields.Float(required=True, metadata={"description": "The upper 95% limit"})
    lower998 = ma.fields.Float(required=True, metadata={"description": "The lower 99.8% limit"})
    upper998 = ma.fields.Float(required=True, metadata={"description": "The upper 99.8% limit"})


class CurvePointOut(LimitsOut):
    """One point of the funnel's two curves: the limits at one exposure."""

    places = _places()
    expected = ma.fields.Float(required=True, metadata={"description": "The reference rate times `places`"})


class PreviousOut(CamelSchema):
    """The same unit in the period before."""

    period = ma.fields.String(required=True, metadata=PERIOD_OUT)
    incidents = _cell(metadata={"description": "Signals"})
    residents = _cell(metadata={"description": "Distinct residents"})
    places = _places()
    rate_per_10_places = _rate()


class BreakdownOut(CamelSchema):
    """The signals of one code of the breakdown's dimension."""

    value = ma.fields.String(required=True, metadata={"description": "The code (a kind, exploitation type or age "
                                                                     "band)", "example": "sexual"})
    incidents = _cell(metadata={"description": "Signals with this code"})


class HotspotOut(CamelSchema):
    """One unit on the funnel plot: its released counts, rate and how it compares with the reference."""

    unit = ma.fields.Nested(UnitOut, required=True, metadata=UNIT)
    incidents = _cell(metadata={"description": "Signals"})
    residents = _cell(metadata={"description": "Distinct residents; suppressed whenever `incidents` is"})
    places = _places()
    rate_per_10_places = _rate()
    expected = ma.fields.Float(allow_none=True, required=True, metadata={
        "description": "The reference rate times `places`: the count the unit would have at the scope's rate"})
    ratio = ma.fields.Float(allow_none=True, required=True, metadata={"description": "Observed / expected"})
    funnel_band = code(FUNNEL_BAND, allow_none=True, required=True)
    limits = ma.fields.Nested(LimitsOut, required=True, allow_none=True, metadata={
        "description": "The limits at this unit's expected count; null where `funnelBand` is"})
    eb_rate_per_10_places = ma.fields.Float(allow_none=True, required=True,
                                            metadata={"description": "Empirical-Bayes rate; the order of units"})
    previous = ma.fields.Nested(PreviousOut, required=True, allow_none=True, metadata={
        "description": "The period before; null for a suppressed unit, whose companions are never shown"})
    trend = code(TREND, required=True)
    breakdown = ma.fields.List(ma.fields.Nested(BreakdownOut), metadata={
        "description": "Signals per code of the breakdown asked for; absent without one"})


class ReferenceOut(CamelSchema):
    """All units together: the rate every unit is compared with."""

    incidents = _cell(metadata={"description": "Signals"})
    places = _places()
    rate_per_10_places = _rate("The scope's released incidents per 10 place-months: the funnel's centre line")
    overdispersion = ma.fields.Float(required=True, metadata={
        "description": "How much more the units vary than chance alone would make them (1: not at all)"})
    overdispersion_applied = ma.fields.Boolean(required=True, metadata={
        "description": "Whether the control limits were widened for overdispersion"})
    funnel_curve = ma.fields.List(ma.fields.Nested(CurvePointOut), required=True, metadata={
        "description": f"The limits at {CURVE_POINTS} exposures spaced evenly on a log scale from half the smallest "
                       "to 1.25 times the largest `places` of the units with limits: the two funnels to draw. Empty "
                       "without such units"})


class DominanceOut(CamelSchema):
    """The dominance rule: a cell is suppressed when its n largest contributors hold more than maxShare."""

    n = ma.fields.Integer(required=True, metadata={"description": "Contributors counted", "example": 2})
    max_share = ma.fields.Float(required=True, metadata={"description": "Largest share allowed", "example": 0.75})


class DisclosureOut(CamelSchema):
    """The disclosure control applied to every count of the response."""

    k = ma.fields.Integer(required=True, metadata={"description": "Counts below k are suppressed", "example": 10})
    dominance = ma.fields.Nested(DominanceOut, required=True, metadata={"description": "The dominance rule"})
    rounding_base = ma.fields.Integer(required=True, metadata={"description": "Released counts are multiples of it",
                                                               "example": 5})
    perturbation_table = ma.fields.String(required=True, metadata={
        "description": "The version of the cell-key perturbation table", "example": "2026.2"})


class HotspotsOut(CamelSchema):
    """Units of one period on a funnel plot, ordered by their Empirical-Bayes rate."""

    period = ma.fields.String(required=True, metadata=PERIOD_OUT)
    group_by = code(UNIT_TYPE, required=True, metadata=GROUP_BY)
    units = ma.fields.List(ma.fields.Nested(HotspotOut), required=True, metadata={
        "description": "Highest Empirical-Bayes rate first"})
    reference = ma.fields.Nested(ReferenceOut, required=True, metadata={"description": "All units together"})
    disclosure = ma.fields.Nested(DisclosureOut, required=True, metadata={"description": "How counts were protected"})


class PointOut(CamelSchema):
    """One period of a trend."""

    period = ma.fields.String(required=True, metadata=PERIOD_OUT)
    incidents = _cell(metadata={"description": "Signals"})
    places = _places()
    rate_per_10_places = _rate()


class SeriesOut(CamelSchema):
    """The trend of one unit."""

    unit = ma.fields.Nested(UnitOut, required=True, metadata=UNIT)
    series = ma.fields.List(ma.fields.Nested(PointOut), required=True, metadata={"description": "Oldest first"})


class TrendsOut(CamelSchema):
    """Signals per period and unit, and for all units together."""

    period_type = code(PERIOD_TYPE, required=True)
    group_by = code(UNIT_TYPE, required=True, metadata=GROUP_BY)
    units = ma.fields.List(ma.fields.Nested(SeriesOut), required=True, metadata={"description": "One per unit"})
    total = ma.fields.List(ma.fields.Nested(PointOut), required=True,
                           metadata={"description": "All units together, oldest first"})
    disclosure = ma.fields.Nested(DisclosureOut, required=True, metadata={"description": "How counts were protected"})


SHARE = "Share of signals {}: a fraction from 0 to 1, null when either count is suppressed"


class StagesOut(CamelSchema):
    """How many signals reached each stage, from noticed to formally reported."""

    signals = _cell(metadata={"description": "Signals recorded"})
    reached_step2 = _cell(metadata={"description": "Signals that reached meldcode step 2 (consultation)"})
    reached_step5 = _cell(metadata={"description": "Signals that reached meldcode step 5 (decide: help or report)"})
    reported = _cell(metadata={"description": "Formally reported (police, ZVH, Veilig Thuis, CoMensha, IGJ)"})
    step2_share = ma.fields.Float(allow_none=True, required=True,
                                  metadata={"description": SHARE.format("that reached step 2")})
    step5_share = ma.fields.Float(allow_none=True, required=True,
                                  metadata={"description": SHARE.format("that reached step 5")})
    reported_share = ma.fields.Float(allow_none=True, required=True,
                                     metadata={"description": SHARE.format("formally reported")})
    median_days_to_report = ma.fields.Integer(allow_none=True, required=True, metadata={
        "description": "The first of " + ", ".join(map(str, DELAY_BANDS)) + " days within which half the reports "
                       "were made, read from released counts of reports within each; null below 2K released "
                       "reports", "codes": REPORTING_DELAY})


class ChangeOut(CamelSchema):
    """The change against the previous period, from released values only."""

    signals = ma.fields.Integer(allow_none=True, required=True, metadata={"description": "Change in signals"})
    reported = ma.fields.Integer(allow_none=True, required=True, metadata={"description": "Change in reported"})
    still_open = ma.fields.Integer(allow_none=True, required=True, metadata={"description": "Change in still open"})
    reported_share = ma.fields.Float(allow_none=True, required=True, metadata={
        "description": "Change in the share reported"})
    decided_in_time_share = ma.fields.Float(allow_none=True, required=True, metadata={
        "description": "Change in the share decided in time"})


class FollowThroughOut(StagesOut):
    """The funnel's stages, and whether signals got a decision in time."""

    decided_in_time = _cell(metadata={
        "description": "Signals reported within `decisionDays` days (a report is the decision the register can "
                       "date); suppressed wherever `reported` is"})
    decided_in_time_share = ma.fields.Float(allow_none=True, required=True, metadata={
        "description": "decidedInTime / signals, from released values; null where either is suppressed"})
    still_open = _cell(metadata={"description": "Signals without meldcode step 5 and without a report"})
    change = ma.fields.Nested(ChangeOut, allow_none=True, required=True, metadata={
        "description": "Against the previous period, from released values only: null for a suppressed unit, and "
                       "each figure null where either period's is not released"})


class FunnelUnitOut(FollowThroughOut):
    """The reporting funnel of one unit."""

    unit = ma.fields.Nested(UnitOut, required=True, metadata=UNIT)


class FunnelOut(CamelSchema):
    """Where signals do not become reports: the funnel per unit and for all units together."""

    period = ma.fields.String(required=True, metadata=PERIOD_OUT)
    previous_period = ma.fields.String(required=True, metadata={"description": "The period compared with",
                                                                "example": "2026-Q2"})
    group_by = code(FUNNEL_UNIT_TYPE, required=True, metadata=GROUP_BY)
    decision_days = ma.fields.Integer(required=True, metadata={
        "description": "The follow-up days of the municipality asked about (the data file's default for several)"})
    units = ma.fields.List(ma.fields.Nested(FunnelUnitOut), required=True, metadata={"description": "One per unit"})
    total = ma.fields.Nested(FollowThroughOut, required=True, metadata={"description": "All units together"})
    disclosure = ma.fields.Nested(DisclosureOut, required=True, metadata={"description": "How counts were protected"})
