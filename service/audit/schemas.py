"""Wire shapes of the access log."""

from __future__ import annotations

import marshmallow as ma

from service.audit.service import EventType
from service.pagination import PageArgs, page_schema
from service.schemas import CamelSchema

EVENT_TYPES = [v for k, v in vars(EventType).items() if not k.startswith("_")]


class EventArgs(PageArgs):
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
    chain_seq = ma.fields.Integer(allow_none=True, required=True, metadata={
        "description": "Place in the hash chain; null until the event is sealed (shortly after it commits)"})
    key_version = ma.fields.Integer(allow_none=True, required=True, metadata={"description": "Chain key version"})
    prev_hash = ma.fields.String(allow_none=True, required=True)
    hash = ma.fields.String(allow_none=True, required=True)
    handover_hash = ma.fields.String(allow_none=True, required=True, metadata={
        "description": "On a key rotation event: the event signed with the new key version"})


EventPage = page_schema(EventOut, "AccessEventPage")


class VerificationOut(CamelSchema):
    valid = ma.fields.Boolean(required=True)
    events = ma.fields.Integer(required=True, metadata={"description": "Events checked"})
    head = ma.fields.String(required=True, metadata={
        "description": "Hash of the last valid sealed event: keep it elsewhere to detect later removal of the tail"})
    first_broken = ma.fields.Integer(allow_none=True, required=True,
                                     metadata={"description": "seq of the first event whose hash or link is wrong"})
    problem = ma.fields.String(allow_none=True, required=True)
    key_version = ma.fields.Integer(allow_none=True, required=True,
                                    metadata={"description": "Chain key version in force at the head"})
    unsealed = ma.fields.Integer(required=True, metadata={
        "description": "Committed events not yet sealed into the chain (not covered by this verification)"})
    oldest_unsealed_seconds = ma.fields.Float(allow_none=True, required=True,
                                              metadata={"description": "How long the oldest unsealed event has waited"})
