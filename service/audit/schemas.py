"""Wire shapes of the access log."""

from __future__ import annotations

import marshmallow as ma

from service.audit.service import EventType
from service.auth.models import Role
from service.openapi import Codes, code
from service.pagination import PageArgs, page_schema
from service.schemas import CamelSchema
from service.spreadsheet import CsvArgs

EVENT_TYPES = [v for k, v in vars(EventType).items() if not k.startswith("_")]
EVENT_TYPE = Codes("EventType", tuple(EVENT_TYPES), "What a request did: created, read, searched, corrected, "
                   "retracted or exported incidents, asked for statistics, read the access log, or purged by "
                   "retention.")


class EventArgs(PageArgs, CsvArgs):
    occurred_from = ma.fields.AwareDateTime(metadata={"description": "Inclusive"})
    occurred_to = ma.fields.AwareDateTime(metadata={"description": "Exclusive"})
    client_id = ma.fields.UUID(metadata={"description": "Only events of this API client"})
    event_type = code(EVENT_TYPE)


class EventOut(CamelSchema):
    """One access event: who did what to which records, chained to the event before by its hash."""

    seq = ma.fields.Integer(required=True, metadata={"description": "Position in the log, from 1 without gaps"})
    occurred_at = ma.fields.AwareDateTime(required=True, metadata={"description": "When"})
    event_type = code(EVENT_TYPE, required=True)
    client_id = ma.fields.UUID(allow_none=True, required=True,
                               metadata={"description": "The API client; null for the service's own jobs"})
    role = code(Codes.of_enum(Role), allow_none=True, required=True)
    acted_for = ma.fields.String(allow_none=True, required=True,
                                 metadata={"description": "Institution id, or the municipality scope"})
    municipality_code = ma.fields.String(allow_none=True, required=True, metadata={
        "description": "The municipality of the records touched, when one", "example": "GM0014"})
    route = ma.fields.String(required=True, metadata={"description": "The route pattern asked for",
                                                      "example": "/v1/incidents/<uuid:incidentId>"})
    records = ma.fields.List(ma.fields.String(), required=True, metadata={"description": "Incident ids touched"})
    record_count = ma.fields.Integer(allow_none=True, required=True,
                                     metadata={"description": "How many records were touched"})
    filters = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String(), required=True, metadata={
        "description": "The filters of a search or statistic (a residentRef only as `given`)"})
    outcome = ma.fields.Integer(required=True, metadata={"description": "HTTP status of the request"})
    request_id = ma.fields.String(allow_none=True, required=True,
                                  metadata={"description": "The request's X-Request-ID"})
    chain_seq = ma.fields.Integer(allow_none=True, required=True, metadata={
        "description": "Place in the hash chain; null until the event is sealed (shortly after it commits)"})
    key_version = ma.fields.Integer(allow_none=True, required=True, metadata={"description": "Chain key version"})
    prev_hash = ma.fields.String(allow_none=True, required=True,
                                 metadata={"description": "The hash of the event before; null until sealed"})
    hash = ma.fields.String(allow_none=True, required=True, metadata={
        "description": "This event's hash, over its fields and prevHash; null until sealed"})
    handover_hash = ma.fields.String(allow_none=True, required=True, metadata={
        "description": "On a key rotation event: the event signed with the new key version"})


EventPage = page_schema(EventOut, "AccessEventPage")


class VerificationOut(CamelSchema):
    """The outcome of checking every event's hash and link."""

    valid = ma.fields.Boolean(required=True, metadata={"description": "Whether the whole chain is intact"})
    events = ma.fields.Integer(required=True, metadata={"description": "Events checked"})
    head = ma.fields.String(required=True, metadata={
        "description": "Hash of the last valid sealed event: keep it elsewhere to detect later removal of the tail"})
    first_broken = ma.fields.Integer(allow_none=True, required=True,
                                     metadata={"description": "seq of the first event whose hash or link is wrong"})
    problem = ma.fields.String(allow_none=True, required=True,
                               metadata={"description": "What is wrong at firstBroken; null when valid"})
    key_version = ma.fields.Integer(allow_none=True, required=True,
                                    metadata={"description": "Chain key version in force at the head"})
    unsealed = ma.fields.Integer(required=True, metadata={
        "description": "Committed events not yet sealed into the chain (not covered by this verification)"})
    oldest_unsealed_seconds = ma.fields.Float(allow_none=True, required=True,
                                              metadata={"description": "How long the oldest unsealed event has waited"})
