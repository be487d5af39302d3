"""A signed statement of every signal an institution recorded about one resident, for the young person's lawyer
or a court: what was recorded and when, how it was followed up, corrected or retracted, and where its creation sits
in the access log's hash chain. Never the note, never an identity. Tenancy as everywhere: an institution's
pseudonyms are keyed per institution, so another institution's resident simply has no signals here."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from service import clock
from service.audit.models import AccessEvent
from service.audit.service import EventType
from service.auth.access import Caller
from service.errors import DomainError
from service.incidents.models import Incident, Revision
from service.incidents.service import IdentityKeys, incidents_for

STATEMENT_TYPE = "signalAttestation"
STATEMENT_VERSION = 1
REQUEST_WINDOW = dt.timedelta(minutes=10)  # a create's access event is appended before its request ends
WINDOWS_PER_QUERY = 200  # SQLite refuses an expression tree deeper than 1,000


class AttestationUnavailable(DomainError):
    """No signing key is configured (production without ATTESTATION_PRIVATE_KEY)."""

    status = 503
    title = "Service Unavailable"


def _when(value: dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(dt.UTC).isoformat()


def _creations(session: Session, incidents: Sequence[Incident]) -> dict[uuid.UUID, AccessEvent]:
    """The access event that recorded each incident's creation: the first successful create event naming it,
    appended in the request that recorded it (so within minutes after its recordedAt)."""
    wanted = {str(incident.id): incident.id for incident in incidents}
    found: dict[uuid.UUID, AccessEvent] = {}
    for start in range(0, len(incidents), WINDOWS_PER_QUERY):  # a resident may have thousands of signals
        windows = [and_(AccessEvent.occurred_at >= incident.recorded_at,
                        AccessEvent.occurred_at <= incident.recorded_at + REQUEST_WINDOW)
                   for incident in incidents[start:start + WINDOWS_PER_QUERY]]
        events = session.scalars(select(AccessEvent).where(
            AccessEvent.event_type == EventType.CREATE, AccessEvent.outcome < 300, or_(*windows))
            .order_by(AccessEvent.seq))
        for event in events:
            for record in event.records or []:
                if record in wanted and (wanted[record] not in found or event.seq < found[wanted[record]].seq):
                    found[wanted[record]] = event
    return found


def _revisions(session: Session, incidents: Sequence[Incident]) -> dict[uuid.UUID, list[dict[str, Any]]]:
    found: dict[uuid.UUID, list[dict[str, Any]]] = {incident.id: [] for incident in incidents}
    if incidents:
        for revision in session.scalars(select(Revision).where(Revision.incident_id.in_(list(found)))
                                        .order_by(Revision.incident_id, Revision.version)):
            # Which fields changed, and when; not the reason's text nor values of the note or identities.
            found[revision.incident_id].append({"version": revision.version, "action": revision.action,
                                                "changedAt": _when(revision.changed_at),
                                                "fields": sorted(revision.changes)})
    return found


def _signal(incident: Incident, revisions: list[dict[str, Any]], event: AccessEvent | None) -> dict[str, Any]:
    absence = incident.absence
    return {
        "id": str(incident.id), "clientReference": incident.client_reference, "kind": incident.kind,
        "exploitationType": incident.exploitation_type, "occurredAt": _when(incident.occurred_at),
        "recordedAt": _when(incident.recorded_at), "residentAgeBand": incident.resident_age_band,
        "indicators": list(incident.indicators), "taxonomyVersion": incident.taxonomy_version,
        "absence": None if absence is None else {
            "endedAt": _when(absence["ended_at"]), "riskLevel": absence["risk_level"],
            "whereaboutsKnown": absence["whereabouts_known"],
            "reportedMissingToPolice": absence["reported_missing_to_police"]},
        "followUp": {"meldcodeStep": incident.meldcode_step, "reportedTo": list(incident.reported_to),
                     "reportedAt": _when(incident.reported_at)},
        "status": incident.status.value, "retractedAt": _when(incident.retracted_at), "version": incident.version,
        "revisions": revisions,
        # Its place in the hash chain: `chainSeq` and `hash` once sealed (within about a second of the create).
        "accessLog": None if event is None else {"seq": event.seq, "chainSeq": event.chain_seq, "hash": event.hash,
                                                 "occurredAt": _when(event.occurred_at)},
    }


def commitment(salt: str, resident_ref: str) -> str:
    """What binds a statement to its resident without naming them: SHA-256 over the salt, a NUL and the residentRef.
    Whoever is given the salt and the client number can check it; the statement alone reveals nothing."""
    return hashlib.sha256(f"{salt}\0{resident_ref}".encode()).hexdigest()


def attest(session: Session, caller: Caller, keys: IdentityKeys, resident_ref: str,
           issuer: str) -> tuple[dict[str, Any], list[uuid.UUID], str]:
    """The statement (unsigned) of every signal the caller's institution recorded about this resident, in the order
    they occurred, the ids it names, and the salt of its commitment to the resident (returned to the caller only,
    never part of the statement)."""
    forms = keys.residents(caller.institution_id, resident_ref).values()  # type: ignore[arg-type]
    incidents = list(session.scalars(incidents_for(caller).where(Incident.resident_pseudonym.in_(forms))
                                     .order_by(Incident.occurred_at, Incident.id)))
    revisions, creations = _revisions(session, incidents), _creations(session, incidents)
    salt = secrets.token_urlsafe(16)
    statement = {
        "type": STATEMENT_TYPE, "version": STATEMENT_VERSION, "iss": issuer, "issuedAt": _when(clock.now()),
        "institutionId": str(caller.institution_id),
        "id": str(uuid.uuid4()),
        "subject": {
            "description": "The resident named in the request, by the institution's own client number, which is not "
                           "part of this statement",
            "commitment": commitment(salt, resident_ref),
            "commitmentMethod": "SHA-256 (hex) of the salt, one NUL byte and the residentRef, UTF-8"},
        "signals": [_signal(incident, revisions[incident.id], creations.get(incident.id)) for incident in incidents],
    }
    return statement, [incident.id for incident in incidents], salt
