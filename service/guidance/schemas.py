"""Wire shapes of guidance. One schema per direction."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from service.schemas import CamelSchema, FullMatch, screened
from service.taxonomy.service import load_taxonomy

TAXONOMY = load_taxonomy()


def _one_of(codes: Any) -> ma.validate.OneOf:
    return ma.validate.OneOf(list(codes))


class SignalQuery(CamelSchema):
    """A signal that is not logged yet, described as an incident would be."""

    kind = ma.fields.String(required=True, validate=_one_of(TAXONOMY.kinds))
    exploitation_type = ma.fields.String(required=True, validate=_one_of(TAXONOMY.exploitation_types))
    resident_age_band = ma.fields.String(load_default="unknown", validate=_one_of(TAXONOMY.age_bands))
    risk_level = ma.fields.String(validate=_one_of(TAXONOMY.risk_levels),
                                  metadata={"description": "Only for kind absence"})
    indicators = ma.fields.List(ma.fields.String(validate=_one_of(TAXONOMY.indicators)), load_default=list,
                                validate=ma.validate.Length(max=40),
                                metadata={"description": "Repeat the parameter for each indicator"})
    meldcode_step = ma.fields.Integer(validate=ma.validate.Range(1, 5),
                                      metadata={"description": "The meldcode step reached; none when omitted"})
    reported = ma.fields.Boolean(load_default=False, metadata={"description": "Already reported to any body"})

    @ma.validates_schema(skip_on_field_errors=True)
    def _whole(self, data: dict[str, Any], **_: Any) -> None:
        errors: dict[str, list[str]] = {}
        wrong = TAXONOMY.invalid_indicators(data["kind"], data["indicators"])
        if wrong:
            errors["indicators"] = [f"Not an indicator of kind {data['kind']}: {', '.join(wrong)}."]
        if data.get("risk_level") is not None and data["kind"] != "absence":
            errors["riskLevel"] = ["Only for kind absence."]
        if errors:
            raise ma.ValidationError(errors)


class RouteFields(CamelSchema):
    code = ma.fields.String(required=True, validate=[FullMatch(r"^[a-z][A-Za-z0-9]{1,39}$",
                                                               error="Use 2 to 40 letters and digits, camelCase.")])
    label_en = ma.fields.String(required=True, validate=[ma.validate.Length(1, 200), screened])
    label_nl = ma.fields.String(required=True, validate=[ma.validate.Length(1, 200), screened])
    purpose_en = ma.fields.String(required=True, validate=[ma.validate.Length(1, 300), screened])
    purpose_nl = ma.fields.String(required=True, validate=[ma.validate.Length(1, 300), screened])
    meldcode_steps = ma.fields.List(ma.fields.Integer(validate=_one_of(TAXONOMY.meldcode_steps)), required=True,
                                    validate=ma.validate.Length(1, 5),
                                    metadata={"description": "The meldcode steps this route belongs to"})
    reported_to = ma.fields.String(allow_none=True, load_default=None, validate=_one_of(TAXONOMY.reported_to),
                                   metadata={"description": "The followUp.reportedTo code of a report made here"})
    phone = ma.fields.String(allow_none=True, load_default=None, validate=FullMatch(
        r"^0(800|900|88|[1-57-9][0-9]{1,2})-[0-9]{2,4}( ?[0-9]{2,4}){0,3}$",
        error="An organisation's number such as 0800-2000 or 050-367 87 00 (no mobile numbers)."),
        metadata={"description": "The organisation's public number"})
    website = ma.fields.String(allow_none=True, load_default=None, validate=FullMatch(
        r"^https://[A-Za-z0-9.-]+\.[a-z]{2,}(/[A-Za-z0-9._~/-]*)?$", error="An https address of a website."),
        metadata={"description": "The organisation's website (shown, never fetched)"})
    source = ma.fields.String(required=True, validate=[ma.validate.Length(1, 300), screened])
    date = ma.fields.String(required=True, validate=FullMatch(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", error="A date."),
                            metadata={"description": "When the entry was checked against its source"})


class RouteOut(RouteFields):
    scope = ma.fields.String(required=True, metadata={"description": "national or municipal"})


class NextStepOut(CamelSchema):
    step = ma.fields.Integer(required=True)
    label_en = ma.fields.String(required=True)
    label_nl = ma.fields.String(required=True)
    question_en = ma.fields.String(required=True)
    question_nl = ma.fields.String(required=True)


class GuidanceOut(CamelSchema):
    version = ma.fields.String(required=True, metadata={"description": "Version of the guidance data"})
    next_meldcode_step = ma.fields.Nested(NextStepOut, allow_none=True, required=True, metadata={
        "description": "The step to consider next (after the one recorded); null once step 5 or a report is"})
    routes = ma.fields.List(ma.fields.Nested(RouteOut), required=True)
    rules = ma.fields.List(ma.fields.String(), required=True, metadata={"description": "The rules that fired"})
    reason_en = ma.fields.String(required=True, metadata={"description": "Why, in one line, as the meldcode asks"})
    reason_nl = ma.fields.String(required=True)


class MunicipalGuidanceIn(CamelSchema):
    routes = ma.fields.List(ma.fields.Nested(RouteFields), required=True, validate=ma.validate.Length(max=20))
    follow_up_days = ma.fields.Integer(required=True, validate=ma.validate.Range(1, 90), metadata={
        "description": "Days after which a signal without a decision joins the follow-up queue"})


class MunicipalGuidanceOut(CamelSchema):
    municipality_code = ma.fields.String(required=True)
    source = ma.fields.String(required=True, metadata={"description": "override (set by an admin) or dataFile"})
    routes = ma.fields.List(ma.fields.Nested(RouteFields), required=True)
    follow_up_days = ma.fields.Integer(required=True)
    updated_at = ma.fields.AwareDateTime(allow_none=True, required=True)
