"""Wire shapes of exports: the periods asked, and the exported row (one shape for the NDJSON schema, the CSV column
order and the OpenAPI document)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from service.incidents.models import Status
from service.openapi import Codes, code
from service.periods import PeriodField
from service.schemas import CamelSchema
from service.spreadsheet import CsvArgs
from service.taxonomy.schemas import (
    AGE_BAND,
    EXPLOITATION_TYPE,
    INDICATOR,
    KIND,
    RELATION_CLAIMED,
    REPORTED_TO,
    RISK_LEVEL,
)


class ExportArgs(CsvArgs):
    """Loaded as the first and last Period (`from_` and `to`), and the delimiter of a CSV export."""

    from_ = PeriodField(required=True, data_key="from", metadata={
        "description": "First fixed period: 2026-01, 2026-Q1, 2026-W02 or 2026", "example": "2026-01"})
    to = PeriodField(required=True, metadata={"description": "Last fixed period (inclusive)", "example": "2026-06"})

    def on_bind_field(self, field_name: str, field_obj: ma.fields.Field) -> None:
        if field_name != "from_":
            super().on_bind_field(field_name, field_obj)

    @ma.validates_schema
    def _in_order(self, data: dict[str, Any], **_: Any) -> None:
        if data["to"].end <= data["from_"].start:
            raise ma.ValidationError({"to": ["Must not be before from."]})


class ExportRow(CamelSchema):
    """One incident as exported: no note, no plate or phone fingerprint, the pseudonym re-keyed for exports; the
    institution and location named beside their ids. The CSV has these columns in this order."""

    id = ma.fields.UUID(required=True, metadata={"description": "The incident's id"})
    institution_id = ma.fields.UUID(required=True, metadata={"description": "The recording institution"})
    institution_name = ma.fields.String(required=True, metadata={
        "description": "The institution's name as the registry holds it now, so an auditor can read the export "
                       "without the registry (which auditors may not read)"})
    location_id = ma.fields.UUID(required=True, metadata={"description": "The location"})
    location_name = ma.fields.String(required=True, metadata={"description": "The location's name, as it is now"})
    client_reference = ma.fields.String(required=True, metadata={"description": "The institution's own id",
                                                                 "example": "signal-2026-0042"})
    kind = code(KIND, required=True)
    exploitation_type = code(EXPLOITATION_TYPE, required=True)
    resident_age_band = code(AGE_BAND, required=True, metadata={"description": "The resident's age band"})
    indicators = ma.fields.List(code(INDICATOR), required=True, metadata={"description": "What staff noticed"})
    occurred_at = ma.fields.AwareDateTime(required=True, metadata={"description": "When it happened"})
    recorded_at = ma.fields.AwareDateTime(required=True, metadata={"description": "When the register received it"})
    status = code(Codes.of_enum(Status), required=True)
    version = ma.fields.Integer(required=True, metadata={"description": "1, plus one per correction and retraction"})
    taxonomy_version = ma.fields.String(required=True, metadata={"description": "The taxonomy version it was "
                                                                                "checked against"})
    resident_pseudonym = ma.fields.String(allow_none=True, required=True, metadata={
        "description": "The same resident has the same pseudonym across one institution's rows; keyed for "
                       "exports, so it matches no other pseudonym. Null without a residentRef"})
    absence_ended_at = ma.fields.AwareDateTime(allow_none=True, required=True,
                                               metadata={"description": "absence.endedAt"})
    absence_whereabouts_known = ma.fields.Boolean(allow_none=True, required=True,
                                                  metadata={"description": "absence.whereaboutsKnown"})
    absence_risk_level = code(RISK_LEVEL, allow_none=True, required=True,
                              metadata={"description": "absence.riskLevel"})
    absence_reported_missing_to_police = ma.fields.Boolean(allow_none=True, required=True, metadata={
        "description": "absence.reportedMissingToPolice"})
    visitor_estimated_age_band = code(AGE_BAND, allow_none=True, required=True,
                                      metadata={"description": "visitor.estimatedAgeBand"})
    visitor_relation_claimed = code(RELATION_CLAIMED, allow_none=True, required=True,
                                    metadata={"description": "visitor.relationClaimed"})
    meldcode_step = ma.fields.Integer(allow_none=True, required=True,
                                      metadata={"description": "followUp.meldcodeStep"})
    reported_to = ma.fields.List(code(REPORTED_TO), required=True, metadata={"description": "followUp.reportedTo"})
    reported_at = ma.fields.AwareDateTime(allow_none=True, required=True,
                                          metadata={"description": "followUp.reportedAt"})


COLUMNS = tuple(field.data_key for field in ExportRow().fields.values())
