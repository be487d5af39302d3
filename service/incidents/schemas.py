"""Wire shapes of incidents. One schema per direction; write-only fields are load_only and never dumped."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from service.guidance.schemas import GuidanceOut
from service.incidents.identities import normalise_phone, normalise_plate
from service.incidents.models import Status
from service.incidents.rules import incident_errors
from service.pagination import PageArgs, page_schema
from service.schemas import CamelSchema, FullMatch, StrictSchema, screened
from service.taxonomy.service import load_taxonomy

TAXONOMY = load_taxonomy()
MAX_BATCH = 500
NOTE_LENGTH = 500


def _one_of(codes: Any) -> ma.validate.OneOf:
    return ma.validate.OneOf(list(codes))


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
AGE_BAND = {"validate": _one_of(TAXONOMY.age_bands)}
REASON = ma.fields.String(required=True, validate=[ma.validate.Length(1, NOTE_LENGTH), screened],
                          metadata={"description": "Why; screened like a note (no identifying data)"})


def _required(new: bool) -> dict[str, Any]:
    return {"required": True} if new else {}


def _default(new: bool, value: Any) -> dict[str, Any]:
    # A merge patch has no defaults: a field left out keeps its stored value.
    return {"load_default": value} if new else {}


def _absence(new: bool) -> type[ma.Schema]:
    return CamelSchema.from_dict({
        "ended_at": ma.fields.AwareDateTime(allow_none=True, metadata={"description": "Absent still when omitted"}),
        "whereabouts_known": ma.fields.Boolean(**_required(new)),
        "risk_level": ma.fields.String(**_required(new), validate=_one_of(TAXONOMY.risk_levels)),
        "reported_missing_to_police": ma.fields.Boolean(**_default(new, False)),
    }, name="AbsenceIn" if new else "AbsencePatch")


def _visitor(new: bool) -> type[ma.Schema]:
    return CamelSchema.from_dict({
        "estimated_age_band": ma.fields.String(**_default(new, "unknown"), **AGE_BAND),
        "vehicle_plate": ma.fields.String(
            load_only=True, allow_none=True,
            validate=[ma.validate.Length(max=20), _normalisable(normalise_plate, "plate")],
            metadata={"description": "Write-only. Stored only as a keyed fingerprint of the normalised plate"}),
        "phone_number": ma.fields.String(
            load_only=True, allow_none=True,
            validate=[ma.validate.Length(max=30), _normalisable(normalise_phone, "phone number")],
            metadata={"description": "Write-only. Stored only as a keyed fingerprint of the E.164 number"}),
        "relation_claimed": ma.fields.String(**_default(new, "unknown"), validate=_one_of(TAXONOMY.relations_claimed)),
    }, name="VisitorIn" if new else "VisitorPatch")


def _follow_up(new: bool) -> type[ma.Schema]:
    return CamelSchema.from_dict({
        "meldcode_step": ma.fields.Integer(allow_none=True, validate=ma.validate.Range(1, 5),
                                           metadata={"description": "Highest meldcode step reached (1-5)"}),
        "reported_to": ma.fields.List(ma.fields.String(validate=_one_of(TAXONOMY.reported_to)),
                                      **_default(new, list), validate=_unique, metadata=UNIQUE),
        "reported_at": ma.fields.AwareDateTime(allow_none=True),
    }, name="FollowUpIn" if new else "FollowUpPatch")


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
        "location_id": ma.fields.UUID(**required),
        "kind": ma.fields.String(**required, validate=_one_of(TAXONOMY.kinds)),
        "exploitation_type": ma.fields.String(**required, validate=_one_of(TAXONOMY.exploitation_types)),
        "occurred_at": ma.fields.AwareDateTime(**required, metadata={"description": "With offset; not in the future"}),
        "resident_ref": ma.fields.String(
            load_only=True, allow_none=True, validate=[ma.validate.Length(1, 100), NOT_BLANK, screened],
            metadata={"description": "Write-only: the institution's own client number. Never stored, logged or "
                                     "returned; kept as an HMAC pseudonym under the institution's key. Refused "
                                     "when it is (or holds) a BSN, phone number or other identifying data"}),
        "resident_age_band": ma.fields.String(**default("unknown"), **AGE_BAND),
        "indicators": ma.fields.List(ma.fields.String(validate=_one_of(TAXONOMY.indicators)), **default(list),
                                     validate=[ma.validate.Length(max=40), _unique], metadata=UNIQUE),
        "note": ma.fields.String(allow_none=True, validate=[ma.validate.Length(max=NOTE_LENGTH), screened],
                                 metadata={"description": "Seen only by the writing institution; refused when it "
                                                          "holds identifying data"}),
        "absence": ma.fields.Nested(_absence(new), allow_none=True, metadata={"description": "Only for kind absence"}),
        "visitor": ma.fields.Nested(_visitor(new), allow_none=True,
                                    metadata={"description": "Only for kind suspiciousVisitor"}),
        "follow_up": ma.fields.Nested(_follow_up(new), allow_none=True),
    }


class IncidentIn(CamelSchema.from_dict(_incident_fields(new=True), name="IncidentBase")):  # type: ignore[misc]
    @ma.validates_schema(skip_on_field_errors=False)
    def _whole(self, data: dict[str, Any], **_: Any) -> None:
        errors = incident_errors(data)
        if errors:
            raise ma.ValidationError(errors)


class IncidentPatch(CamelSchema.from_dict(_incident_fields(new=False), name="IncidentFields")):  # type: ignore[misc]
    """A JSON merge patch: fields left out keep their value; null clears an optional one."""

    reason = REASON


class BatchIn(CamelSchema):
    items = ma.fields.List(ma.fields.Nested(IncidentIn), required=True, validate=ma.validate.Length(1, MAX_BATCH),
                           metadata={"description": f"1 to {MAX_BATCH} incidents, recorded all or none"})


class RetractionIn(CamelSchema):
    reason = REASON


class AbsenceOut(CamelSchema):
    ended_at = ma.fields.AwareDateTime(allow_none=True, required=True)
    whereabouts_known = ma.fields.Boolean(required=True)
    risk_level = ma.fields.String(required=True)
    reported_missing_to_police = ma.fields.Boolean(required=True)


class VisitorOut(CamelSchema):
    estimated_age_band = ma.fields.String(required=True)
    relation_claimed = ma.fields.String(required=True)
    vehicle_plate_recorded = ma.fields.Boolean(required=True)
    phone_number_recorded = ma.fields.Boolean(required=True)


class FollowUpOut(CamelSchema):
    meldcode_step = ma.fields.Integer(allow_none=True, required=True)
    reported_to = ma.fields.List(ma.fields.String(), required=True)
    reported_at = ma.fields.AwareDateTime(allow_none=True, required=True)


class IncidentOut(CamelSchema):
    id = ma.fields.UUID(required=True)
    institution_id = ma.fields.UUID(required=True)
    client_reference = ma.fields.String(required=True)
    location_id = ma.fields.UUID(required=True)
    kind = ma.fields.String(required=True)
    exploitation_type = ma.fields.String(required=True)
    occurred_at = ma.fields.AwareDateTime(required=True)
    recorded_at = ma.fields.AwareDateTime(required=True)
    resident_recorded = ma.fields.Boolean(required=True,
                                          metadata={"description": "A residentRef was given (it is not returned)"})
    resident_age_band = ma.fields.String(required=True)
    indicators = ma.fields.List(ma.fields.String(), required=True)
    note = ma.fields.String(allow_none=True, required=True)
    absence = ma.fields.Nested(AbsenceOut, allow_none=True, required=True)
    visitor = ma.fields.Nested(VisitorOut, allow_none=True, required=True)
    follow_up = ma.fields.Nested(FollowUpOut, allow_none=True, required=True)
    status = ma.fields.Enum(Status, by_value=True, required=True)
    version = ma.fields.Integer(required=True)
    taxonomy_version = ma.fields.String(required=True)
    retracted_at = ma.fields.AwareDateTime(allow_none=True, required=True)


class AdvisedIncidentOut(IncidentOut):
    guidance = ma.fields.Nested(GuidanceOut, required=True, metadata={
        "description": "Advice, never a decision: the next meldcode step to consider, the reporting routes that "
                       "apply, and why in one line"})


class BatchOut(CamelSchema):
    items = ma.fields.List(ma.fields.Nested(AdvisedIncidentOut), required=True)


class IncidentFilters(PageArgs):
    location_id = ma.fields.UUID()
    kind = ma.fields.String(validate=_one_of(TAXONOMY.kinds))
    exploitation_type = ma.fields.String(validate=_one_of(TAXONOMY.exploitation_types))
    status = ma.fields.Enum(Status, by_value=True)
    occurred_from = ma.fields.AwareDateTime(metadata={"description": "Inclusive"})
    occurred_to = ma.fields.AwareDateTime(metadata={"description": "Exclusive"})


RESIDENT_LOOKUP = {"load_only": True, "validate": [ma.validate.Length(1, 100), NOT_BLANK]}


class IncidentSearch(IncidentFilters):
    resident_ref = ma.fields.String(**RESIDENT_LOOKUP, metadata={
        "description": "Finds this resident's incidents; sent in the body because it must never travel in a URL"})


class AttestationIn(CamelSchema):
    resident_ref = ma.fields.String(required=True, **RESIDENT_LOOKUP, metadata={
        "description": "The institution's own client number of the resident; in the body, never in a URL"})


class AttestationOut(CamelSchema):
    jws = ma.fields.String(required=True, metadata={
        "description": "The signed statement: a compact JWS (ES256) whose payload is `statement` as JSON. Verify "
                       "it with the key its `kid` names in /v1/oauth/jwks.json, or offline with "
                       "`risk-register attestation verify`"})
    kid = ma.fields.String(required=True, metadata={"description": "The signing key's id (RFC 7638 thumbprint)"})
    statement = ma.fields.Dict(required=True, metadata={
        "description": "The payload, for reading: every signal the institution recorded about the resident (dates, "
                       "kind, exploitation type, indicators, meldcode step, reports, corrections and retraction "
                       "with their dates, the create's access event in the hash chain), never the note"})


IncidentPage = page_schema(IncidentOut, "IncidentPage")


class FollowUpItemOut(AdvisedIncidentOut):
    reasons = ma.fields.List(ma.fields.String(), required=True, metadata={
        "description": "Why it waits: undecided (meldcode step below 5 and nothing reported, on the municipality's "
                       "follow-up day), unreportedRedRisk (an absence at risk level red that nobody reported), "
                       "openAbsence (no endedAt 24 hours after it began)"})


FollowUpPage = page_schema(FollowUpItemOut, "FollowUpPage")


class RevisionOut(CamelSchema):
    version = ma.fields.Integer(required=True)
    action = ma.fields.String(required=True, metadata={"description": "correction or retraction"})
    reason = ma.fields.String(required=True)
    client_id = ma.fields.UUID(required=True)
    changed_at = ma.fields.AwareDateTime(required=True)
    changes = ma.fields.Dict(required=True, metadata={
        "description": "Per changed field: old and new values; for write-only fields and the note only "
                       "`changed: true`"})


class RevisionList(CamelSchema):
    items = ma.fields.List(ma.fields.Nested(RevisionOut), required=True)


class IdempotencyHeader(StrictSchema):
    idempotency_key = ma.fields.String(data_key="Idempotency-Key", validate=ma.validate.Length(1, 255), metadata={
        "description": "Makes a retry safe: the same key and body within 24 hours replay the first response; "
                       "another body is 422; while the first is still running, 409."})


class IfMatchHeader(StrictSchema):
    if_match = ma.fields.String(data_key="If-Match", metadata={
        "description": "The ETag of the version being corrected, e.g. \"3\". Required: 428 without it, 412 when "
                       "the incident has changed since."})
