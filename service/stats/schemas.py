"""Wire shapes of statistics: fixed periods in, released cells out."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from service.periods import PERIOD_TYPES, PeriodField, period_range
from service.registry.schemas import MUNICIPALITY_CODE
from service.schemas import CamelSchema
from service.stats.models import BREAKDOWNS, DELAY_BANDS, GROUPS, MAX_PERIODS
from service.taxonomy.service import load_taxonomy

TAXONOMY = load_taxonomy()
BANDS = ("below998", "below95", "within", "above95", "above998")


ONE_ATTRIBUTE = ("At most one of kind, exploitationType and breakdown: with time and place, a third dimension is "
                 "the most a table may have.")


class Filters(CamelSchema):
    """Place, time and at most one attribute: a kind or exploitation-type filter, or (hotspots) a breakdown."""

    kind = ma.fields.String(validate=ma.validate.OneOf(list(TAXONOMY.kinds)), metadata={
        "description": "Only signals of this kind. Counts become cells of an attribute: shown only for units of at "
                       "least 2K signals, and from K up (a zero too is shown as suppressed)"})
    exploitation_type = ma.fields.String(validate=ma.validate.OneOf(list(TAXONOMY.exploitation_types)), metadata={
        "description": "Only signals of this exploitation type; counted as an attribute, like `kind`"})
    municipality_code = ma.fields.String(validate=MUNICIPALITY_CODE,
                                         metadata={"description": "Narrow to one municipality in scope"})

    @ma.validates_schema
    def _one_attribute(self, data: dict[str, Any], **_: Any) -> None:
        given = [name for name in ("kind", "exploitation_type", "breakdown") if data.get(name) is not None]
        if len(given) > 1:
            raise ma.ValidationError({self.fields[name].data_key or name: [ONE_ATTRIBUTE] for name in given[1:]})


class HotspotArgs(Filters):
    period = PeriodField(required=True, metadata={"example": "2026-Q3"})
    group_by = ma.fields.String(required=True, validate=ma.validate.OneOf(GROUPS))
    breakdown = ma.fields.String(validate=ma.validate.OneOf(list(BREAKDOWNS)), metadata={
        "description": "Counts per code of this dimension in every unit; an attribute like a filter, and not "
                       "together with one"})


# No example: a documented example could not match every periodType.
RANGE_END = {"metadata": {"description": "A fixed period of periodType"}}


class TrendArgs(Filters):
    """Loaded with `periods`: every period from `from` to `to`."""

    period_type = ma.fields.String(required=True, validate=ma.validate.OneOf(PERIOD_TYPES))
    from_ = PeriodField(required=True, data_key="from", **RANGE_END)
    to = PeriodField(required=True, **RANGE_END)
    group_by = ma.fields.String(required=True, validate=ma.validate.OneOf(GROUPS))

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


class FunnelArgs(Filters):
    period = PeriodField(required=True, metadata={"example": "2026-Q3"})
    group_by = ma.fields.String(required=True, validate=ma.validate.OneOf(("institution", "municipality")))


class CellOut(ma.Schema):
    value = ma.fields.Integer(allow_none=True, required=True, metadata={
        "description": "Rounded to base 5 by cell-key perturbation; null when suppressed"})
    suppressed = ma.fields.Boolean(required=True, metadata={"description": "Shown as <10: too few, or dominated"})


def _cell(**kwargs: Any) -> ma.fields.Nested:
    return ma.fields.Nested(CellOut, required=True, **kwargs)


class UnitOut(CamelSchema):
    id = ma.fields.String(required=True, metadata={"description": "Institution or location id, PC4 or CBS code"})
    name = ma.fields.String(required=True)


class PreviousOut(CamelSchema):
    period = ma.fields.String(required=True)
    incidents = _cell()
    residents = _cell()
    places = ma.fields.Float(required=True)
    rate_per_10_places = ma.fields.Float(allow_none=True, required=True)


class BreakdownOut(CamelSchema):
    value = ma.fields.String(required=True)
    incidents = _cell()


class HotspotOut(CamelSchema):
    unit = ma.fields.Nested(UnitOut, required=True)
    incidents = _cell()
    residents = _cell(metadata={"description": "Distinct residents; suppressed whenever `incidents` is"})
    places = ma.fields.Float(required=True, metadata={"description": "Exposure in place-months"})
    rate_per_10_places = ma.fields.Float(allow_none=True, required=True,
                                         metadata={"description": "Released incidents per 10 places per month"})
    expected = ma.fields.Float(allow_none=True, required=True)
    ratio = ma.fields.Float(allow_none=True, required=True, metadata={"description": "Observed / expected"})
    funnel_band = ma.fields.String(allow_none=True, required=True, validate=ma.validate.OneOf(BANDS))
    eb_rate_per_10_places = ma.fields.Float(allow_none=True, required=True,
                                            metadata={"description": "Empirical-Bayes rate; the order of units"})
    previous = ma.fields.Nested(PreviousOut, required=True, allow_none=True, metadata={
        "description": "The period before; null for a suppressed unit, whose companions are never shown"})
    trend = ma.fields.String(required=True, validate=ma.validate.OneOf(("up", "down", "flat", "unknown")))
    breakdown = ma.fields.List(ma.fields.Nested(BreakdownOut))


class ReferenceOut(CamelSchema):
    incidents = _cell()
    places = ma.fields.Float(required=True)
    rate_per_10_places = ma.fields.Float(allow_none=True, required=True)
    overdispersion = ma.fields.Float(required=True)
    overdispersion_applied = ma.fields.Boolean(required=True)


class DominanceOut(CamelSchema):
    n = ma.fields.Integer(required=True)
    max_share = ma.fields.Float(required=True)


class DisclosureOut(CamelSchema):
    k = ma.fields.Integer(required=True)
    dominance = ma.fields.Nested(DominanceOut, required=True)
    rounding_base = ma.fields.Integer(required=True)
    perturbation_table = ma.fields.String(required=True)


class HotspotsOut(CamelSchema):
    period = ma.fields.String(required=True)
    group_by = ma.fields.String(required=True)
    units = ma.fields.List(ma.fields.Nested(HotspotOut), required=True)
    reference = ma.fields.Nested(ReferenceOut, required=True)
    disclosure = ma.fields.Nested(DisclosureOut, required=True)


class PointOut(CamelSchema):
    period = ma.fields.String(required=True)
    incidents = _cell()
    places = ma.fields.Float(required=True)
    rate_per_10_places = ma.fields.Float(allow_none=True, required=True)


class SeriesOut(CamelSchema):
    unit = ma.fields.Nested(UnitOut, required=True)
    series = ma.fields.List(ma.fields.Nested(PointOut), required=True)


class TrendsOut(CamelSchema):
    period_type = ma.fields.String(required=True)
    group_by = ma.fields.String(required=True)
    units = ma.fields.List(ma.fields.Nested(SeriesOut), required=True)
    total = ma.fields.List(ma.fields.Nested(PointOut), required=True)
    disclosure = ma.fields.Nested(DisclosureOut, required=True)


class StagesOut(CamelSchema):
    signals = _cell()
    reached_step2 = _cell()
    reached_step5 = _cell()
    reported = _cell(metadata={"description": "Formally reported (police, ZVH, Veilig Thuis, CoMensha, IGJ)"})
    step2_share = ma.fields.Float(allow_none=True, required=True)
    step5_share = ma.fields.Float(allow_none=True, required=True)
    reported_share = ma.fields.Float(allow_none=True, required=True)
    median_days_to_report = ma.fields.Integer(allow_none=True, required=True, metadata={
        "description": "The first of " + ", ".join(map(str, DELAY_BANDS)) + " days within which half the reports "
                       "were made, read from released counts of reports within each; null below 2K released "
                       "reports", "enum": [*DELAY_BANDS, None]})


class ChangeOut(CamelSchema):
    signals = ma.fields.Integer(allow_none=True, required=True)
    reported = ma.fields.Integer(allow_none=True, required=True)
    still_open = ma.fields.Integer(allow_none=True, required=True)
    reported_share = ma.fields.Float(allow_none=True, required=True)
    decided_in_time_share = ma.fields.Float(allow_none=True, required=True)


class FollowThroughOut(StagesOut):
    decided_in_time = _cell(metadata={
        "description": "Signals reported within `decisionDays` days (a report is the decision the register can "
                       "date); suppressed wherever `reported` is"})
    decided_in_time_share = ma.fields.Float(allow_none=True, required=True)
    still_open = _cell(metadata={"description": "Signals without meldcode step 5 and without a report"})
    change = ma.fields.Nested(ChangeOut, allow_none=True, required=True, metadata={
        "description": "Against the previous period, from released values only: null for a suppressed unit, and "
                       "each figure null where either period's is not released"})


class FunnelUnitOut(FollowThroughOut):
    unit = ma.fields.Nested(UnitOut, required=True)


class FunnelOut(CamelSchema):
    period = ma.fields.String(required=True)
    previous_period = ma.fields.String(required=True)
    group_by = ma.fields.String(required=True)
    decision_days = ma.fields.Integer(required=True, metadata={
        "description": "The follow-up days of the municipality asked about (the data file's default for several)"})
    units = ma.fields.List(ma.fields.Nested(FunnelUnitOut), required=True)
    total = ma.fields.Nested(FollowThroughOut, required=True)
    disclosure = ma.fields.Nested(DisclosureOut, required=True)
