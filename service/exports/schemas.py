"""Wire shapes of exports: the periods asked, and the exported row (one shape for the NDJSON schema, the CSV column
order and the OpenAPI document)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from service.periods import PeriodField
from service.schemas import CamelSchema
from service.spreadsheet import CsvArgs


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
    institution and location named beside their ids."""

    id = ma.fields.UUID(required=True)
    institution_id = ma.fields.UUID(required=True)
    institution_name = ma.fields.String(required=True, metadata={
        "description": "The institution's name as the registry holds it now, so an auditor can read the export "
                       "without the registry (which auditors may not read)"})
    location_id = ma.fields.UUID(required=True)
    location_name = ma.fields.String(required=True, metadata={"description": "The location's name, as it is now"})
    client_reference = ma.fields.String(required=True)
    kind = ma.fields.String(required=True)
    exploitation_type = ma.fields.String(required=True)
    resident_age_band = ma.fields.String(required=True)
    indicators = ma.fields.List(ma.fields.String(), required=True)
    occurred_at = ma.fields.AwareDateTime(required=True)
    recorded_at = ma.fields.AwareDateTime(required=True)
    status = ma.fields.String(required=True)
    version = ma.fields.Integer(required=True)
    taxonomy_version = ma.fields.String(required=True)
    resident_pseudonym = ma.fields.String(allow_none=True, required=True)
    absence_ended_at = ma.fields.AwareDateTime(allow_none=True, required=True)
    absence_whereabouts_known = ma.fields.Boolean(allow_none=True, required=True)
    absence_risk_level = ma.fields.String(allow_none=True, required=True)
    absence_reported_missing_to_police = ma.fields.Boolean(allow_none=True, required=True)
    visitor_estimated_age_band = ma.fields.String(allow_none=True, required=True)
    visitor_relation_claimed = ma.fields.String(allow_none=True, required=True)
    meldcode_step = ma.fields.Integer(allow_none=True, required=True)
    reported_to = ma.fields.List(ma.fields.String(), required=True)
    reported_at = ma.fields.AwareDateTime(allow_none=True, required=True)


COLUMNS = tuple(field.data_key for field in ExportRow().fields.values())
