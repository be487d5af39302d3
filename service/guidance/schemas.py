"""Wire shapes of guidance. One schema per direction."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from service.guidance.service import Signal, adviser
from service.openapi import Codes
from service.openapi import code as coded  # RouteFields has a field named code
from service.schemas import CamelSchema, FullMatch, screened
from service.taxonomy.schemas import (
    AGE_BAND,
    EXPLOITATION_TYPE,
    INDICATOR,
    KIND,
    REPORTED_TO,
    RISK_LEVEL,
    TAXONOMY,
)

MELDCODE_STEP = Codes("MeldcodeStep", tuple(TAXONOMY.meldcode_steps),
                      "A step of the meldcode (1 to 5); step 5 is the decision to report.",
                      tuple(f"STEP_{step}" for step in TAXONOMY.meldcode_steps))
ROUTE_SCOPE = Codes("RouteScope", ("national", "municipal"), "Whether a reporting route serves the whole country or "
                    "one municipality or region.")


def _step(**kwargs: Any) -> ma.fields.Integer:
    """A meldcode step: an integer of the MeldcodeStep list."""
    metadata = {"codes": MELDCODE_STEP, **kwargs.pop("metadata", {})}
    return ma.fields.Integer(validate=ma.validate.OneOf(MELDCODE_STEP.values), metadata=metadata, **kwargs)


GUIDANCE_SOURCE = Codes("GuidanceSource", ("override", "dataFile"), "Where a municipality's routes come from: an "
                        "admin's override, or the guidance data file.")


class SignalQuery(CamelSchema):
    """A signal that is not logged yet, described as an incident would be."""

    kind = coded(KIND, required=True, metadata={"description": "What was noticed"})
    exploitation_type = coded(EXPLOITATION_TYPE, required=True, metadata={"description": "The suspected exploitation"})
    resident_age_band = coded(AGE_BAND, load_default="unknown", metadata={"description": "The resident's age band"})
    risk_level = coded(RISK_LEVEL, metadata={"description": "Only for kind absence"})
    indicators = ma.fields.List(coded(INDICATOR), load_default=list,
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
    """A reporting route: where a professional can take a concern, for what, and at which meldcode step."""

    code = ma.fields.String(required=True, validate=[FullMatch(r"^[a-z][A-Za-z0-9]{1,39}$",
                                                               error="Use 2 to 40 letters and digits, camelCase.")],
                            metadata={"description": "The route's code (not a national route's)",
                                      "example": "zorgEnVeiligheidshuis"})
    label_en = ma.fields.String(required=True, validate=[ma.validate.Length(1, 200), screened],
                                metadata={"description": "The route's name in English",
                                          "example": "Care and Safety House Groningen"})
    label_nl = ma.fields.String(required=True, validate=[ma.validate.Length(1, 200), screened],
                                metadata={"description": "The route's name in Dutch",
                                          "example": "Zorg- en Veiligheidshuis Groningen"})
    purpose_en = ma.fields.String(required=True, validate=[ma.validate.Length(1, 300), screened],
                                  metadata={"description": "What it is for, in English"})
    purpose_nl = ma.fields.String(required=True, validate=[ma.validate.Length(1, 300), screened],
                                  metadata={"description": "What it is for, in Dutch"})
    meldcode_steps = ma.fields.List(_step(), required=True, validate=ma.validate.Length(1, 5),
                                    metadata={"description": "The meldcode steps this route belongs to"})
    reported_to = coded(REPORTED_TO, allow_none=True, load_default=None,
                       metadata={"description": "The followUp.reportedTo code of a report made here"})
    phone = ma.fields.String(allow_none=True, load_default=None, validate=FullMatch(
        r"^0(800|900|88|[1-57-9][0-9]{1,2})-[0-9]{2,4}( ?[0-9]{2,4}){0,3}$",
        error="An organisation's number such as 0800-2000 or 050-367 87 00 (no mobile numbers)."),
        metadata={"description": "The organisation's public number", "example": "050-367 87 00"})
    website = ma.fields.String(allow_none=True, load_default=None, validate=FullMatch(
        r"^https://[A-Za-z0-9.-]+\.[a-z]{2,}(/[A-Za-z0-9._~/-]*)?$", error="An https address of a website."),
        metadata={"description": "The organisation's website (shown, never fetched)",
                  "example": "https://www.zvhgroningen.nl"})
    source = ma.fields.String(required=True, validate=[ma.validate.Length(1, 300), screened],
                              metadata={"description": "Where the entry was taken from"})
    date = ma.fields.String(required=True, validate=FullMatch(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", error="A date."),
                            metadata={"description": "When the entry was checked against its source",
                                      "format": "date", "example": "2026-11-01"})


class RouteOut(RouteFields):
    """A reporting route that applies to a signal, national or of the municipality."""

    scope = coded(ROUTE_SCOPE, required=True, metadata={"description": "National or municipal"})


class NextStepOut(CamelSchema):
    """A meldcode step to consider, worded as the meldcode's question."""

    step = _step(required=True, metadata={"description": "The step"})
    label_en = ma.fields.String(required=True, metadata={"description": "The step's name in English"})
    label_nl = ma.fields.String(required=True, metadata={"description": "The step's name in Dutch"})
    question_en = ma.fields.String(required=True, metadata={"description": "The step's question in English"})
    question_nl = ma.fields.String(required=True, metadata={"description": "The step's question in Dutch"})


class GuidanceOut(CamelSchema):
    """Advice, never a decision: the next meldcode step to consider, the routes that apply and why."""

    version = ma.fields.String(required=True, metadata={"description": "Version of the guidance data",
                                                        "example": "2026.1"})
    next_meldcode_step = ma.fields.Nested(NextStepOut, allow_none=True, required=True, metadata={
        "description": "The step to consider next (after the one recorded); null once step 5 or a report is"})
    routes = ma.fields.List(ma.fields.Nested(RouteOut), required=True,
                            metadata={"description": "The reporting routes that apply"})
    rules = ma.fields.List(ma.fields.String(), required=True, metadata={"description": "The rules that fired"})
    reason_en = ma.fields.String(required=True, metadata={"description": "Why, in one line, as the meldcode asks"})
    reason_nl = ma.fields.String(required=True, metadata={"description": "The same in Dutch"})


class MunicipalGuidanceIn(CamelSchema):
    """A municipality's own reporting routes and follow-up days, replacing the data file's."""

    routes = ma.fields.List(ma.fields.Nested(RouteFields), required=True, validate=ma.validate.Length(max=20),
                            metadata={"description": "The municipality's routes (the national ones always apply)"})
    follow_up_days = ma.fields.Integer(required=True, validate=ma.validate.Range(1, 90), metadata={
        "description": "Days after which a signal without a decision joins the follow-up queue"})


class MunicipalGuidanceOut(CamelSchema):
    """A municipality's reporting routes and follow-up days as they apply now."""

    municipality_code = ma.fields.String(required=True, metadata={"description": "The CBS code",
                                                                  "example": "GM0014"})
    source = coded(GUIDANCE_SOURCE, required=True, metadata={"description": "An override or the data file"})
    routes = ma.fields.List(ma.fields.Nested(RouteFields), required=True,
                            metadata={"description": "The municipality's routes"})
    follow_up_days = ma.fields.Integer(required=True, metadata={
        "description": "Days after which a signal without a decision joins the follow-up queue"})
    updated_at = ma.fields.AwareDateTime(allow_none=True, required=True,
                                         metadata={"description": "When an admin last set it; null for the file"})


# A real piece of guidance, from the data file, for the document's examples.
GuidanceOut.EXAMPLE = GuidanceOut().dump(adviser("GM0014").advise(Signal(
    "recruitmentAttempt", "sexual", "16to17", indicators=frozenset({"onlineGrooming"}), meldcode_step=1)))
