"""Wire shapes of the access log."""

from __future__ import annotations

import marshmallow as ma

from service.audit.service import EventType
from service.pagination import PageArgs, page_schema
from service.schemas import CamelSchema
from service.spreadsheet import CsvArgs

EVENT_TYPES = [v for k, v in vars(EventType).items() if not k.startswith("_")]


class EventArgs(PageArgs, CsvArgs):
    occurred_from = ma.fields.AwareDateTime(metadata={"description": "Inclusive"})
    occurred_to = ma.fields.AwareDateTime(metadata={"description": "Exclusive"})
    client_id = ma.fields.UUID()
    event_type = ma.fields.String(validate=ma.validate.OneOf(EVENT_TYPES))


class EventOut(CamelSchema):
    seq = ma.fields.Integer(required=True)
    occurred_at = ma.fields.AwareDateTime(required=True)
    event_type = ma.fields.String(required=True)
    client_id = ma.fields.UUID(allow_none=True, required=True)
    role = ma.fields.String(allow_none=True, required=True)
    acted_for = ma.fields.String(allow_none=True, required=True,
                                 metadata={"description": "Institution id, or the municipality scope"})
    municipality_code = ma.fields.String(allow_none=True, required=True)
    route = ma.fields.String(required=True)
    records = ma.fields.List(ma.fields.String(), required=True, metadata={"description": "Incident ids touched"})
    record_count = ma.fields.Integer(allow_none=True, required=True)
    filters = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String(), required=True)
    outcome = ma.fields.Integer(required=True, metadata={"description": "HTTP status of the request"})
    request_id = ma.fields.String(allow_none=True, required=True)
    prev_hash = ma.fields.String(required=True)
    hash = ma.fields.String(required=True)


EventPage = page_schema(EventOut, "AccessEventPage")


class VerificationOut(CamelSchema):
    valid = ma.fields.Boolean(required=True)
    events = ma.fields.Integer(required=True, metadata={"description": "Events checked"})
    head = ma.fields.String(required=True, metadata={
        "description": "Hash of the last valid event: keep it elsewhere to detect later removal of the tail"})
    first_broken = ma.fields.Integer(allow_none=True, required=True,
                                     metadata={"description": "seq of the first event whose hash or link is wrong"})
    problem = ma.fields.String(allow_none=True, required=True)
