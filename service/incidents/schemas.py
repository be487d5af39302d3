"""Wire shapes of incidents. One schema per direction; write-only fields are load_only and never dumped."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import marshmallow as ma

from service.auth.access import current_caller
from service.db import db
from service.errors import FieldError
from service.guidance.schemas import GuidanceOut
from service.incidents.identities import normalise_phone, normalise_plate
from service.incidents.models import Status
from service.incidents.rules import incident_errors
from service.incidents.service import errors_beside
from service.openapi import Codes, code
from service.pagination import PageArgs, page_schema
from service.schemas import CamelSchema, FullMatch, StrictSchema, screened
from service.taxonomy.schemas import (
    AGE_BAND,
    EXPLOITATION_TYPE,
    INDICATOR,
    KIND,
    RELATION_CLAIMED,
    REPORTED_TO,
    RISK_LEVEL,
)
from service.taxonomy.service import load_taxonomy

MAX_BATCH = 500
TAXONOMY_VERSION = load_taxonomy().version
REVISION_ACTION = Codes("RevisionAction", ("correction", "retraction"), "What a revision did to the incident.")
NOTE_LENGTH = 500


def _normalisable(normalise: Any, what: str) -> Any:
    def check(value: str) -> None:
        try:
            normalise(value)
        except ValueError:
            raise ma.ValidationError(f"Not a valid {what}.") from None

    return check


def _unique(values: list[Any]) -> None:
    if len(values) != len(set(values)):
        raise ma.ValidationError("Each code may appear once.")


UNIQUE = {"uniqueItems": True}
# Not blank as Python's str.strip() sees it (ECMAScript's \s lacks U+001C-U+001F and U+0085, hence the explicit
# range), and text (service.schemas.TEXT_PATTERN): one pattern, because a field documents one.
NOT_BLANK = ma.validate.Regexp(r"^(?![\s\u001c-\u001f\u0085]*$)[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]*$",
                               error="Must not be blank.")
CLIENT_REFERENCE = FullMatch(r"^[A-Za-z0-9._/-]{1,64}$",
                             error="Use 1 to 64 letters, digits and the characters . _ / - (no spaces).")
REASON = ma.fields.String(required=True, validate=[ma.validate.Length(1, NOTE_LENGTH), screened],
                          metadata={"description": "Why; screened like a note (no identifying data)",
                                    "example": "Recorded twice; see signal-2026-0041"})


def _required(new: bool) -> dict[str, Any]:
    return {"required": True} if new else {}


def _default(new: bool, value: Any) -> dict[str, Any]:
    # A merge patch has no defaults: a field left out keeps its stored value.
    return {"load_default": value} if new else {}


def _described(schema: type[ma.Schema], description: str) -> type[ma.Schema]:
    schema.__doc__ = description
    return schema


def _absence(new: bool) -> type[ma.Schema]:
    return _described(CamelSchema.from_dict({
        "ended_at": ma.fields.AwareDateTime(allow_none=True, metadata={"description": "Absent still when omitted"}),
        "whereabouts_known": ma.fields.Boolean(**_required(new), metadata={
            "description": "Whether staff knew where the resident was"}),
        "risk_level": code(RISK_LEVEL, **_required(new)),
        "reported_missing_to_police": ma.fields.Boolean(**_default(new, False), metadata={
            "description": "Whether the resident was reported missing to the police"}),
    }, name="AbsenceIn" if new else "AbsencePatch"), "An absence: required for kind absence, refused for others."
                      if new else "Changes to the absence block; fields left out keep their value.")


def _visitor(new: bool) -> type[ma.Schema]:
    return _described(CamelSchema.from_dict({
        "estimated_age_band": code(AGE_BAND, **_default(new, "unknown"), metadata={
            "description": "How old staff estimate the visitor to be"}),
        "vehicle_plate": ma.fields.String(
            load_only=True, allow_none=True,
            validate=[ma.validate.Length(max=20), _normalisable(normalise_plate, "plate")],
            metadata={"description": "Write-only. Stored only as a keyed fingerprint of the normalised plate"}),
        "phone_number": ma.fields.String(
            load_only=True, allow_none=True,
            validate=[ma.validate.Length(max=30), _normalisable(normalise_phone, "phone number")],
            metadata={"description": "Write-only. Stored only as a keyed fingerprint of the E.164 number"}),
        "relation_claimed": code(RELATION_CLAIMED, **_default(new, "unknown")),
    }, name="VisitorIn" if new else "VisitorPatch"), "A suspicious visitor: required for kind suspiciousVisitor, "
                      "refused for others. Plate and phone number are kept only as fingerprints." if new
                      else "Changes to the visitor block; fields left out keep their value.")


def _follow_up(new: bool) -> type[ma.Schema]:
    return _described(CamelSchema.from_dict({
        "meldcode_step": ma.fields.Integer(allow_none=True, validate=ma.validate.Range(1, 5),
                                           metadata={"description": "Highest meldcode step reached (1-5)"}),
        "reported_to": ma.fields.List(code(REPORTED_TO), **_default(new, list), validate=_unique, metadata={
            **UNIQUE, "description": "Authorities the signal was formally reported to, each once"}),
        "reported_at": ma.fields.AwareDateTime(allow_none=True, metadata={"description": "When it was first reported"}),
    }, name="FollowUpIn" if new else "FollowUpPatch"), "What was done with the signal: the meldcode step reached "
                      "and the formal reports made." if new
                      else "Changes to the follow-up block; fields left out keep their value.")


def _incident_fields(new: bool) -> dict[str, ma.fields.Field]:
    """The fields a client writes: a new incident requires the core ones, a correction requires none."""
    required = _required(new)

    def default(value: Any) -> dict[str, Any]:
        return _default(new, value)

    return {
        "client_reference": ma.fields.String(
            **required, validate=[CLIENT_REFERENCE, screened],
            metadata={"description": "The institution's own id for the signal, unique per institution: 1 to 64 "
                                     "letters, digits and . _ / -, holding no identifying data (a UUID will do)"}),
        "location_id": ma.fields.UUID(**required, metadata={
            "description": "One of the institution's own locations (GET /institutions/{institutionId}/locations)"}),
        "kind": code(KIND, **required),
        "exploitation_type": code(EXPLOITATION_TYPE, **required),
        "occurred_at": ma.fields.AwareDateTime(**required, metadata={"description": "With offset; not in the future"}),
        "resident_ref": ma.fields.String(
            load_only=True, allow_none=True, validate=[ma.validate.Length(1, 100), NOT_BLANK, screened],
            metadata={"description": "Write-only: the institution's own client number. Never stored, logged or "
                                     "returned; kept as an HMAC pseudonym under the institution's key. Refused "
                                     "when it is (or holds) a BSN, phone number or other identifying data"}),
        "resident_age_band": code(AGE_BAND, **default("unknown"), metadata={"description": "The resident's age band"}),
        "indicators": ma.fields.List(code(INDICATOR), **default(list), validate=[ma.validate.Length(max=40), _unique],
                                     metadata={**UNIQUE, "description": "What staff noticed: codes that apply to "
                                                                        "the kind, each once (GET /taxonomy)"}),
        "note": ma.fields.String(allow_none=True, validate=[ma.validate.Length(max=NOTE_LENGTH), screened],
                                 metadata={"description": "Seen only by the writing institution; refused when it "
                                                          "holds identifying data"}),
        "absence": ma.fields.Nested(_absence(new), allow_none=True, metadata={"description": "Only for kind absence"}),
        "visitor": ma.fields.Nested(_visitor(new), allow_none=True,
                                    metadata={"description": "Only for kind suspiciousVisitor"}),
        "follow_up": ma.fields.Nested(_follow_up(new), allow_none=True,
                                      metadata={"description": "What was done with the signal, when known"}),
    }


class IncidentIn(CamelSchema.from_dict(_incident_fields(new=True), name="IncidentBase")):  # type: ignore[misc]
    """A new signal. Give the block of its kind: `absence` for absence, `visitor` for suspiciousVisitor."""

    EXAMPLE = {
        "clientReference": "signal-2026-0042",
        "locationId": "5f0c8a4e-2b1d-4c3e-9f6a-7d8e9a0b1c2d",
        "kind": "absence",
        "exploitationType": "sexual",
        "occurredAt": "2026-11-02T14:30:00+01:00",
        "residentRef": "CL-20417",
        "residentAgeBand": "16to17",
        "indicators": ["offeredMoneyOrGifts"],
        "absence": {"endedAt": None, "whereaboutsKnown": False, "riskLevel": "orange",
                    "reportedMissingToPolice": True},
        "followUp": {"meldcodeStep": 2, "reportedTo": ["veiligThuis"], "reportedAt": "2026-11-02T16:00:00+01:00"},
    }

    @ma.validates_schema(skip_on_field_errors=False)
    def _whole(self, data: dict[str, Any], **_: Any) -> None:
        errors = incident_errors(data)
        if errors:
            raise ma.ValidationError(errors)

    def errors_beside(self, body: Any) -> list[FieldError]:
        """A location that is not the caller's, for an answer that names every invalid field when the schema
        refused the body (service/arguments.py asks)."""
        return errors_beside(db.session, current_caller(), [body], lambda _i, field: f"/{field}")


class IncidentPatch(CamelSchema.from_dict(_incident_fields(new=False), name="IncidentFields")):  # type: ignore[misc]
    """A JSON merge patch: fields left out keep their value; null clears an optional one. `reason` is required."""

    EXAMPLE = {"residentAgeBand": "12to15", "reason": "Age band corrected after intake"}

    reason = REASON

    def errors_beside(self, body: Any) -> list[FieldError]:
        """A location that is not the caller's, for an answer that names every invalid field when the schema
        refused the patch (service/arguments.py asks)."""
        return errors_beside(db.session, current_caller(), [body], lambda _i, field: f"/{field}")


class BatchIn(CamelSchema):
    """Up to 500 new signals, recorded all or none."""

    items = ma.fields.List(ma.fields.Nested(IncidentIn), required=True, validate=ma.validate.Length(1, MAX_BATCH),
                           metadata={"description": f"1 to {MAX_BATCH} incidents, recorded all or none"})

    def errors_beside(self, body: Any) -> list[FieldError]:
        """Foreign locations and repeated clientReferences among the items, for an answer that names every
        invalid field when the schema refused the body (service/arguments.py asks)."""
        items = body.get("items") if isinstance(body, dict) else None
        # Only a batch of a size it may have: a longer one is refused for its length, and not looked up.
        return errors_beside(db.session, current_caller(),
                             items if isinstance(items, list) and len(items) <= MAX_BATCH else [],
                             lambda i, field: f"/items/{i}/{field}")


class RetractionIn(CamelSchema):
    """Why the incident is retracted."""

    EXAMPLE = {"reason": "Recorded twice; see signal-2026-0041"}
    reason = REASON


class AbsenceOut(CamelSchema):
    """An absence: when it ended, whether the resident's whereabouts were known, and the risk assessed."""

    ended_at = ma.fields.AwareDateTime(allow_none=True, required=True,
                                       metadata={"description": "When the resident was back; null while absent"})
    whereabouts_known = ma.fields.Boolean(required=True, metadata={
        "description": "Whether staff knew where the resident was"})
    risk_level = code(RISK_LEVEL, required=True)
    reported_missing_to_police = ma.fields.Boolean(required=True, metadata={
        "description": "Whether the resident was reported missing to the police"})


class VisitorOut(CamelSchema):
    """A suspicious visitor as recorded: the plate and phone number are never returned, only whether one was
    given."""

    estimated_age_band = code(AGE_BAND, required=True, metadata={
        "description": "How old staff estimate the visitor to be"})
    relation_claimed = code(RELATION_CLAIMED, required=True)
    vehicle_plate_recorded = ma.fields.Boolean(required=True, metadata={
        "description": "A vehicle plate was given (it is kept only as a fingerprint)"})
    phone_number_recorded = ma.fields.Boolean(required=True, metadata={
        "description": "A phone number was given (it is kept only as a fingerprint)"})


class FollowUpOut(CamelSchema):
    """What was done with the signal: the meldcode step reached and the formal reports made."""

    meldcode_step = ma.fields.Integer(allow_none=True, required=True,
                                      metadata={"description": "Highest meldcode step reached (1-5)"})
    reported_to = ma.fields.List(code(REPORTED_TO), required=True,
                                 metadata={"description": "Authorities the signal was formally reported to"})
    reported_at = ma.fields.AwareDateTime(allow_none=True, required=True,
                                          metadata={"description": "When it was first reported"})


class IncidentOut(CamelSchema):
    """A recorded signal as its institution sees it. Identifying fields are never returned."""

    EXAMPLE = {
        "id": "0d7c2e4a-6b1f-4a8e-b3c9-2f5d8e1a7c40", "institutionId": "9a3e5c1b-7d2f-4e6a-8b0c-1f4d7e2a5b93",
        "clientReference": "signal-2026-0042", "locationId": "5f0c8a4e-2b1d-4c3e-9f6a-7d8e9a0b1c2d",
        "kind": "absence", "exploitationType": "sexual", "occurredAt": "2026-11-02T14:30:00+01:00",
        "recordedAt": "2026-11-02T15:02:11+01:00", "residentRecorded": True, "residentAgeBand": "16to17",
        "indicators": ["offeredMoneyOrGifts"], "note": None,
        "absence": {"endedAt": None, "whereaboutsKnown": False, "riskLevel": "orange",
                    "reportedMissingToPolice": True},
        "visitor": None,
        "followUp": {"meldcodeStep": 2, "reportedTo": ["veiligThuis"], "reportedAt": "2026-11-02T16:00:00+01:00"},
        "status": "active", "version": 1, "taxonomyVersion": TAXONOMY_VERSION, "retractedAt": None,
    }

    id = ma.fields.UUID(required=True, metadata={"description": "The incident's id in the register"})
    institution_id = ma.fields.UUID(required=True, metadata={"description": "The recording institution"})
    client_reference = ma.fields.String(required=True, metadata={
        "description": "The institution's own id for the signal", "example": "signal-2026-0042"})
    location_id = ma.fields.UUID(required=True, metadata={"description": "The location it happened at"})
    kind = code(KIND, required=True)
    exploitation_type = code(EXPLOITATION_TYPE, required=True)
    occurred_at = ma.fields.AwareDateTime(required=True, metadata={"description": "When it happened"})
    recorded_at = ma.fields.AwareDateTime(required=True, metadata={"description": "When the register received it"})
    resident_recorded = ma.fields.Boolean(required=True,
                                          metadata={"description": "A residentRef was given (it is not returned)"})
    resident_age_band = code(AGE_BAND, required=True, metadata={"description": "The resident's age band"})
    indicators = ma.fields.List(code(INDICATOR), required=True, metadata={"description": "What staff noticed"})
    note = ma.fields.String(allow_none=True, required=True, metadata={
        "description": "Free text seen only by the writing institution",
        "example": "Unknown car waited at the gate for an hour"})
    absence = ma.fields.Nested(AbsenceOut, allow_none=True, required=True,
                               metadata={"description": "For kind absence; otherwise null"})
    visitor = ma.fields.Nested(VisitorOut, allow_none=True, required=True,
                               metadata={"description": "For kind suspiciousVisitor; otherwise null"})
    follow_up = ma.fields.Nested(FollowUpOut, allow_none=True, required=True,
                                 metadata={"description": "What was done with the signal; null when not given"})
    status = ma.fields.Enum(Status, by_value=True, required=True)
    version = ma.fields.Integer(required=True, metadata={
        "description": "Goes up by one with every correction and the retraction; send it back in If-Match (the ETag)"})
    taxonomy_version = ma.fields.String(required=True, metadata={
        "description": "The taxonomy version the incident was checked against", "example": TAXONOMY_VERSION})
    retracted_at = ma.fields.AwareDateTime(allow_none=True, required=True,
                                           metadata={"description": "When it was retracted; null while active"})


class AdvisedIncidentOut(IncidentOut):
    """An incident as recorded, with guidance on what to consider next."""

    EXAMPLE = IncidentOut.EXAMPLE | {"guidance": GuidanceOut.EXAMPLE}
    guidance = ma.fields.Nested(GuidanceOut, required=True, metadata={
        "description": "Advice, never a decision: the next meldcode step to consider, the reporting routes that "
                       "apply, and why in one line"})


class BatchOut(CamelSchema):
    """The recorded incidents, in the order sent."""

    items = ma.fields.List(ma.fields.Nested(AdvisedIncidentOut), required=True,
                           metadata={"description": "The recorded incidents, in the order sent, each with guidance"})


_INCIDENT_OUT, _GUIDANCE_OUT = IncidentOut(), GuidanceOut()  # built once: an instance deep-copies its fields


def batch_body(items: Sequence[Any]) -> dict[str, Any]:
    """What `BatchOut().dump({"items": items})` gives for advised incidents, with each distinct guidance object
    (an adviser gives one per outcome: 47 in the benchmark's 500 items) dumped once, not once an item."""
    guidance: dict[int, dict[str, Any]] = {}
    body = []
    for item in items:
        if id(item.guidance) not in guidance:
            guidance[id(item.guidance)] = _GUIDANCE_OUT.dump(item.guidance)
        body.append(_INCIDENT_OUT.dump(item) | {"guidance": guidance[id(item.guidance)]})
    return {"items": body}


class IncidentFilters(PageArgs):
    location_id = ma.fields.UUID(metadata={"description": "Only incidents at this location"})
    kind = code(KIND)
    exploitation_type = code(EXPLOITATION_TYPE)
    status = ma.fields.Enum(Status, by_value=True, metadata={"description": "Only active or only retracted ones"})
    occurred_from = ma.fields.AwareDateTime(metadata={"description": "Inclusive"})
    occurred_to = ma.fields.AwareDateTime(metadata={"description": "Exclusive"})


RESIDENT_LOOKUP = {"load_only": True, "validate": [ma.validate.Length(1, 100), NOT_BLANK]}


class IncidentSearch(IncidentFilters):
    """The list's filters, and a resident, for POST /incidents/_search."""

    EXAMPLE = {"residentRef": "CL-20417", "status": "active", "limit": 50}
    resident_ref = ma.fields.String(**RESIDENT_LOOKUP, metadata={
        "description": "Finds this resident's incidents; sent in the body because it must never travel in a URL"})


class AttestationIn(CamelSchema):
    """Whose signals to attest: a resident of the calling institution."""

    EXAMPLE = {"residentRef": "CL-20417"}
    resident_ref = ma.fields.String(required=True, **RESIDENT_LOOKUP, metadata={
        "description": "The institution's own client number of the resident; in the body, never in a URL"})


class AttestationOut(CamelSchema):
    """A signed statement of every signal the institution recorded about one resident."""

    jws = ma.fields.String(required=True, metadata={
        "description": "The signed statement: a compact JWS (ES256) whose payload is `statement` as JSON. Verify "
                       "it with the key its `kid` names in /v1/oauth/jwks.json, or offline with "
                       "`risk-register attestation verify`"})
    kid = ma.fields.String(required=True, metadata={"description": "The signing key's id (RFC 7638 thumbprint)"})
    subject_salt = ma.fields.String(required=True, metadata={
        "description": "The salt of the statement's `subject.commitment`: keep it with the statement, apart from it. "
                       "With it and the client number, anyone can check that the statement is about that resident; "
                       "without it the statement names no one", "example": "q3Vd0w2yY1bXGc8fLr5mTA"})
    statement = ma.fields.Dict(required=True, metadata={
        "description": "The payload, for reading: every signal the institution recorded about the resident (dates, "
                       "kind, exploitation type, indicators, meldcode step, reports, corrections and retraction "
                       "with their dates, the create's access event in the hash chain), never the note"})


IncidentPage = page_schema(IncidentOut, "IncidentPage")


class FollowUpItemOut(AdvisedIncidentOut):
    """A signal that waits for follow-up, with why it waits and the guidance for it."""

    EXAMPLE = AdvisedIncidentOut.EXAMPLE | {"reasons": ["undecided"]}
    reasons = ma.fields.List(ma.fields.String(), required=True, metadata={
        "description": "Why it waits: undecided (meldcode step below 5 and nothing reported, on the municipality's "
                       "follow-up day), unreportedRedRisk (an absence at risk level red that nobody reported), "
                       "openAbsence (no endedAt 24 hours after it began)"})


FollowUpPage = page_schema(FollowUpItemOut, "FollowUpPage")


class RevisionOut(CamelSchema):
    """One correction or the retraction of an incident: who, when, why and what changed."""

    version = ma.fields.Integer(required=True, metadata={"description": "The version this change made"})
    action = code(REVISION_ACTION, required=True)
    reason = ma.fields.String(required=True, metadata={"description": "Why, as the institution gave it",
                                                       "example": "Wrong location chosen"})
    client_id = ma.fields.UUID(required=True, metadata={"description": "The API client that made the change"})
    changed_at = ma.fields.AwareDateTime(required=True, metadata={"description": "When"})
    changes = ma.fields.Dict(required=True, metadata={
        "description": "Per changed field: old and new values; for write-only fields and the note only "
                       "`changed: true`"})


class RevisionList(CamelSchema):
    """An incident's corrections and retraction, oldest first."""

    items = ma.fields.List(ma.fields.Nested(RevisionOut), required=True,
                           metadata={"description": "Oldest first"})


class IdempotencyHeader(StrictSchema):
    idempotency_key = ma.fields.String(data_key="Idempotency-Key", validate=ma.validate.Length(1, 255), metadata={
        "example": "4c1f6a52-0e8b-4d3f-a2c7-9b5e1d0f3a68",
        "description": "Makes a retry safe: the same key and body within 24 hours replay the first response; "
                       "another body is 422; while the first is still running, 409."})


class IfMatchHeader(StrictSchema):
    if_match = ma.fields.String(data_key="If-Match", metadata={
        "example": '"1"',
        "description": "The ETag of the version being corrected, e.g. \"3\". Required: 428 without it, 412 when "
                       "the incident has changed since."})
