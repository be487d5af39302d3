"""Recording, finding, correcting and retracting incidents. Plain functions: a session and values in.

Tenancy lives in `incidents_for`: every query of this module starts from it, so an institution can never reach
another's incidents (they are simply not found).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import secrets
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, make_transient_to_detached

from service import clock
from service.auth.access import Caller
from service.config import KeyRing
from service.db import bulk_insert, bulk_rows
from service.errors import (
    Conflict,
    FieldError,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    field_errors,
)
from service.guidance.service import Adviser, Signal, adviser_of_institution, with_override
from service.guidance.service import adviser as municipal_adviser  # the incidents' own `adviser` is the caller's
from service.incidents.identities import IdentityKeys, fingerprint_at, normalise_phone, normalise_plate
from service.incidents.models import Counted, Incident, Revision, Status
from service.incidents.rules import incident_errors
from service.registry.models import Institution, Location
from service.signals import incidents_changed
from service.taxonomy.service import load_taxonomy

# Wire field (as a JSON pointer below the incident) -> column, for the fields a revision may show.
SHOWN = {
    "clientReference": "client_reference", "locationId": "location_id", "kind": "kind",
    "exploitationType": "exploitation_type", "occurredAt": "occurred_at", "residentAgeBand": "resident_age_band",
    "indicators": "indicators", "absence/endedAt": "absence_ended_at",
    "absence/whereaboutsKnown": "absence_whereabouts_known", "absence/riskLevel": "absence_risk_level",
    "absence/reportedMissingToPolice": "absence_reported_missing_to_police",
    "visitor/estimatedAgeBand": "visitor_estimated_age_band", "visitor/relationClaimed": "visitor_relation_claimed",
    "followUp/meldcodeStep": "meldcode_step", "followUp/reportedTo": "reported_to",
    "followUp/reportedAt": "reported_at",
}
# Fields whose values never leave the incident row: a revision records only that they changed.
HIDDEN = {"residentRef": "resident_pseudonym", "visitor/vehiclePlate": "visitor_plate_fingerprint",
          "visitor/phoneNumber": "visitor_phone_fingerprint", "note": "note"}


def _stored_residents(session: Session, institution_id: uuid.UUID, references: set[str],
                      keys: IdentityKeys) -> dict[str, tuple[str, int]]:
    """The pseudonym (and its key version) to write for each resident reference: the form the resident already
    has in the register, so that a re-keying run never finds one resident under two versions; else the active one.

    The residents' incidents stay locked (FOR KEY SHARE) until the write commits: a re-keying batch that takes
    them waits for it, and one that holds them makes this wait, then read the re-keyed form."""
    ring = keys.pseudonyms
    if len(ring) == 1:
        return {ref: (keys.resident(institution_id, ref), ring.active) for ref in references}
    every = {ref: keys.residents(institution_id, ref) for ref in references}
    chosen = {ref: (forms[ring.active], ring.active) for ref, forms in every.items()}
    # Only other versions' forms need finding: a resident found under none is written under the active one.
    forms = {value: (ref, version) for ref in references
             for version, value in every[ref].items() if version != ring.active}
    stmt = select(Incident.resident_pseudonym).where(Incident.institution_id == institution_id,
                                                     Incident.resident_pseudonym.in_(forms)).order_by(Incident.id)
    for value in session.scalars(stmt.with_for_update(read=True, key_share=True)):
        ref, version = forms[value]  # type: ignore[index]
        chosen[ref] = (value, version)  # type: ignore[assignment]
    return chosen


LIST_ORDER = (Incident.recorded_at, Incident.id)  # the order lists page in: as recorded


@dataclass(frozen=True)
class Advised:
    """An incident with the guidance it gets: what create, batch, correction and follow-up answers show."""

    incident: Incident
    guidance: dict[str, Any]
    reasons: list[str] | None = None  # why it is in the follow-up queue, when it is listed there

    def __getattr__(self, name: str) -> Any:
        return getattr(self.incident, name)


def signal_of(incident: Incident) -> Signal:
    """What guidance reads of a recorded incident."""
    return Signal(incident.kind, incident.exploitation_type, incident.resident_age_band, incident.absence_risk_level,
                  frozenset(incident.indicators), incident.meldcode_step, bool(incident.reported_to))


def adviser(session: Session, caller: Caller) -> Adviser:
    """The guidance of the caller's institution's municipality."""
    return adviser_of_institution(session, caller.institution_id)  # type: ignore[arg-type]


def advised(session: Session, caller: Caller, incidents: Sequence[Incident],
            advice: Adviser | None = None) -> list[Advised]:
    """The incidents with their guidance (one statement however many incidents, none when `advice` is given)."""
    advice = adviser(session, caller) if advice is None else advice
    return [Advised(incident, advice.advise(signal_of(incident))) for incident in incidents]


def incidents_for(caller: Caller) -> Select[tuple[Incident]]:
    """The only way into the incident table: the caller's own institution's incidents."""
    return select(Incident).where(Incident.institution_id == caller.institution_id)


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None else value.astimezone(dt.UTC)


def _columns(values: Mapping[str, Any], keys: IdentityKeys,
             residents: Mapping[str, tuple[str, int]]) -> dict[str, Any]:
    """Column values for validated (snake_case) input; identities become pseudonyms (as `_stored_residents`
    chose them) and fingerprints here."""
    absence = values.get("absence") or {}
    visitor = values.get("visitor") or {}
    follow_up = values.get("follow_up") or {}
    resident = residents[values["resident_ref"]] if values.get("resident_ref") else (None, None)
    plate, phone = visitor.get("vehicle_plate"), visitor.get("phone_number")
    return {
        "client_reference": values["client_reference"],
        "location_id": values["location_id"],
        "kind": values["kind"],
        "exploitation_type": values["exploitation_type"],
        "occurred_at": _utc(values["occurred_at"]),
        "resident_pseudonym": resident[0],
        "resident_key_version": resident[1],
        "resident_age_band": values.get("resident_age_band") or "unknown",
        "indicators": list(values.get("indicators") or []),
        "note": values.get("note"),
        "absence_ended_at": _utc(absence.get("ended_at")),
        "absence_whereabouts_known": absence.get("whereabouts_known"),
        "absence_risk_level": absence.get("risk_level"),
        "absence_reported_missing_to_police": absence.get("reported_missing_to_police"),
        "visitor_estimated_age_band": visitor.get("estimated_age_band"),
        "visitor_relation_claimed": visitor.get("relation_claimed"),
        "visitor_plate_fingerprint": keys.fingerprint(normalise_plate(plate)) if plate else None,
        "visitor_phone_fingerprint": keys.fingerprint(normalise_phone(phone)) if phone else None,
        "visitor_fingerprint_key_version": keys.fingerprints.active if plate or phone else None,
        "meldcode_step": follow_up.get("meldcode_step"),
        "reported_to": list(follow_up.get("reported_to") or []),
        "reported_at": _utc(follow_up.get("reported_at")),
    }


@functools.cache
def _own_locations() -> Select[Any]:
    """The locations among `location_ids` that belong to `institution_id`, with their municipality, the
    institution's, and its guidance override. Built once (on the hot path, building it cost ~0.1 ms a request)."""
    return with_override(
        select(Location.id, Location.municipality_code, Institution.municipality_code)
        .join(Institution, Institution.id == Location.institution_id)
        .where(Location.id.in_(bindparam("location_ids", type_=Location.id.type, expanding=True)),
               Location.institution_id == bindparam("institution_id", type_=Location.institution_id.type)),
        Institution.municipality_code)


FOREIGN_LOCATIONS, REPEATED_REFERENCES = ("Some locations are not this institution's.",
                                          "A clientReference appears twice in the batch.")


def _own_location_rows(session: Session, caller: Caller, location_ids: Iterable[uuid.UUID]) -> list[Any]:
    return session.execute(_own_locations(), {"location_ids": list(set(location_ids)),
                                              "institution_id": caller.institution_id}).all()


def _location_errors(own: Mapping[uuid.UUID, Any], location_ids: Mapping[int, uuid.UUID],
                     pointer: Any) -> list[FieldError]:
    # The same answer whether the location exists elsewhere or not at all: nothing about others leaks.
    return [FieldError(pointer(i, "locationId"), "Not a location of this institution.")
            for i, location_id in location_ids.items() if location_id not in own]


def _repeat_errors(references: Mapping[int, str], pointer: Any) -> list[FieldError]:
    seen: dict[str, int] = {}
    repeated = []
    for i, reference in references.items():
        if reference in seen:
            repeated.append(FieldError(pointer(i, "clientReference"), f"Repeats item {seen[reference]}."))
        seen.setdefault(reference, i)
    return repeated


def _refuse(location_errors: Sequence[FieldError], repeat_errors: Sequence[FieldError] = ()) -> None:
    """One 400 naming every foreign location and every repeated clientReference, if any."""
    if location_errors or repeat_errors:
        detail = " ".join(d for d, errors in ((FOREIGN_LOCATIONS, location_errors),
                                               (REPEATED_REFERENCES, repeat_errors)) if errors)
        raise InvalidInput(detail, errors=[*location_errors, *repeat_errors])


def _check_locations(session: Session, caller: Caller, location_ids: Sequence[uuid.UUID],
                     pointer: Any, references: Sequence[str] = ()) -> tuple[dict[uuid.UUID, str], Adviser]:
    """The caller's own locations among these, with their municipality (the rollups need it), and the guidance
    of the institution's municipality, read in the same statement; others refused, and with them any repeat
    among `references` (a batch's clientReferences), in one answer."""
    rows = _own_location_rows(session, caller, location_ids)
    own = {row[0]: row[1] for row in rows}
    _refuse(_location_errors(own, dict(enumerate(location_ids)), pointer),
            _repeat_errors(dict(enumerate(references)), pointer))
    return own, municipal_adviser(rows[0][2], rows[0][3]) if rows else municipal_adviser(None)


def errors_beside(session: Session, caller: Caller, items: Sequence[Any], pointer: Any) -> list[FieldError]:
    """What `_check_locations` would refuse in a body whose schema validation failed, so that one answer names
    every invalid field: the locations (given as UUIDs) that are not the caller's, and repeated clientReferences
    (given as text). `items` are the body's items as sent; anything of another shape is left to the schema."""
    if caller.institution_id is None:
        return []
    location_ids: dict[int, uuid.UUID] = {}
    references: dict[int, str] = {}
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            continue
        with contextlib.suppress(AttributeError, TypeError, ValueError):
            location_ids[i] = uuid.UUID(item.get("locationId"))
        if isinstance(item.get("clientReference"), str):
            references[i] = item["clientReference"]
    own = {row[0] for row in _own_location_rows(session, caller, location_ids.values())} if location_ids else set()
    return [*_location_errors(dict.fromkeys(own), location_ids, pointer), *_repeat_errors(references, pointer)]


def _refuse_recorded(session: Session, caller: Caller, references: Sequence[str], pointer: Any,
                     new: Sequence[uuid.UUID] = ()) -> None:
    """Raise Conflict naming the items whose clientReference the institution already has (other than `new`)."""
    stmt = incidents_for(caller).with_only_columns(Incident.client_reference, Incident.id) \
        .where(Incident.client_reference.in_(references))
    existing = dict(session.execute(stmt.where(Incident.id.not_in(new)) if new else stmt).all())
    if existing:
        raise Conflict(
            "An incident with this clientReference is already recorded.",
            errors=[FieldError(pointer(i, "clientReference"), "Already recorded.")
                    for i, r in enumerate(references) if r in existing],
            members={"existing": [f"/v1/incidents/{existing[r]}" for r in references if r in existing]},
            headers={"Location": f"/v1/incidents/{next(iter(existing.values()))}"} if len(existing) == 1 else {},
        )


INCIDENT_COLUMNS = tuple(c.name for c in Incident.__table__.columns)


@functools.cache
def _insert_new(dialect_name: str) -> Any:
    """An INSERT (run for all rows at once) that skips, rather than fails on, a clientReference already recorded:
    its row count tells whether any was, so the check costs no statement of its own when none was. Built once per
    dialect (it is on the hot path)."""
    table = Incident.__table__
    stmt = bulk_insert(dialect_name, table, INCIDENT_COLUMNS)
    return stmt.on_conflict_do_nothing(index_elements=[table.c.institution_id, table.c.client_reference]) \
        .execution_options(preserve_rowcount=True)  # SQLAlchemy keeps an INSERT's row count only when asked


def _as_incident(row: dict[str, Any]) -> Incident:
    """The inserted row as an Incident for the rollups and the response, made persistent once added to the
    session (later reads in this transaction get this object, as after a flush): make_transient_to_detached resets
    the history the constructor wrote, so the session does not insert it again (about 30 us an incident)."""
    incident = Incident(**row)
    make_transient_to_detached(incident)
    return incident


def record_incidents(session: Session, caller: Caller, items: Sequence[Mapping[str, Any]], keys: IdentityKeys,
                     *, batch: bool = False) -> list[Incident]:
    """Record validated incidents, all or none, with a fixed number of statements whatever their count."""
    return _record(session, caller, items, keys, batch)[0]


def record_advised(session: Session, caller: Caller, items: Sequence[Mapping[str, Any]], keys: IdentityKeys,
                   *, batch: bool = False) -> list[Advised]:
    """Record validated incidents as `record_incidents` does, with their guidance: what a create answers. The
    guidance costs no statement of its own (the location check reads it)."""
    incidents, advice = _record(session, caller, items, keys, batch)
    return advised(session, caller, incidents, advice)


def _record(session: Session, caller: Caller, items: Sequence[Mapping[str, Any]], keys: IdentityKeys,
            batch: bool) -> tuple[list[Incident], Adviser]:
    def pointer(i: int, field: str) -> str:
        return f"/items/{i}/{field}" if batch else f"/{field}"

    references = [item["client_reference"] for item in items]
    municipalities, advice = _check_locations(session, caller, [item["location_id"] for item in items], pointer,
                                              references)
    now, version = clock.now(), load_taxonomy().version
    residents = _stored_residents(session, caller.institution_id,
                                  {item["resident_ref"] for item in items if item.get("resident_ref")}, keys)
    rows = [{"id": uuid.uuid4(), "institution_id": caller.institution_id, "recorded_at": now,
             "status": Status.ACTIVE, "version": 1, "taxonomy_version": version,
             "record_key": secrets.randbelow(256), "retracted_at": None, **_columns(item, keys, residents)}
            for item in items]
    dialect = session.get_bind().dialect
    try:
        result = session.execute(_insert_new(dialect.name),
                                 bulk_rows(dialect.name, Incident.__table__, INCIDENT_COLUMNS, rows))
    except IntegrityError as exc:
        raise Conflict("An incident with this clientReference was recorded concurrently; retry.") from exc
    counted = len(rows) == 1 or dialect.name == "postgresql" or dialect.supports_sane_multi_rowcount
    if not counted or result.rowcount != len(rows):  # type: ignore[attr-defined]
        # Some were recorded before (or by a concurrent request that committed first): name them. The rows this
        # statement did insert go with the refused request's rollback.
        _refuse_recorded(session, caller, references, pointer, new=[row["id"] for row in rows])
        if counted:
            raise Conflict("An incident with this clientReference was recorded concurrently; retry.")
    incidents = [_as_incident(row) for row in rows]
    session.add_all(incidents)
    incidents_changed.send(session, changes=[(Counted.of(incident), +1) for incident in incidents],
                           municipalities=municipalities)
    return incidents, advice


def get_incident(session: Session, caller: Caller, incident_id: uuid.UUID, *, for_update: bool = False) -> Incident:
    """The caller's incident; for_update locks it, so two corrections of one version cannot both pass If-Match."""
    stmt = incidents_for(caller).where(Incident.id == incident_id)
    incident = session.scalar(stmt.with_for_update() if for_update else stmt)
    if incident is None:
        raise NotFound("No such incident.")
    return incident


def matching_incidents(caller: Caller, keys: IdentityKeys, *, resident_ref: str | None = None,
                       location_id: uuid.UUID | None = None, kind: str | None = None,
                       exploitation_type: str | None = None, status: Status | None = None,
                       occurred_from: dt.datetime | None = None,
                       occurred_to: dt.datetime | None = None) -> Select[tuple[Incident]]:
    """The caller's incidents matching every filter given (page them in the order of LIST_ORDER)."""
    stmt = incidents_for(caller)
    for column, value in ((Incident.location_id, location_id), (Incident.kind, kind),
                          (Incident.exploitation_type, exploitation_type), (Incident.status, status)):
        if value is not None:
            stmt = stmt.where(column == value)
    if occurred_from is not None:
        stmt = stmt.where(Incident.occurred_at >= occurred_from)
    if occurred_to is not None:
        stmt = stmt.where(Incident.occurred_at < occurred_to)
    if resident_ref is not None:
        # Every key version's form: rows still at an older version while a re-keying run goes on are found too.
        stmt = stmt.where(Incident.resident_pseudonym.in_(keys.residents(caller.institution_id, resident_ref).values()))
    return stmt


def check_version(incident: Incident, if_match: str | None) -> None:
    """Optimistic concurrency: the client must name the version it read (its ETag)."""
    if not if_match:
        raise PreconditionRequired('Send If-Match with the ETag of the version you read, e.g. If-Match: "3".')
    # Strong comparison (RFC 9110 §13.1.1): a weak tag never matches.
    tags = {tag.strip().strip('"') for tag in if_match.split(",") if not tag.strip().startswith("W/")}
    if str(incident.version) not in tags and "*" not in tags:
        raise PreconditionFailed(f"The incident has changed since; it is now at version {incident.version}. "
                                 "Read it again and reapply your correction.")


def _values(incident: Incident) -> dict[str, Any]:
    """The incident as validated input (snake_case), without identities, to re-check a corrected whole."""
    return {
        "client_reference": incident.client_reference, "location_id": incident.location_id, "kind": incident.kind,
        "exploitation_type": incident.exploitation_type, "occurred_at": incident.occurred_at,
        "resident_age_band": incident.resident_age_band, "indicators": incident.indicators, "note": incident.note,
        "absence": None if incident.absence_risk_level is None else {
            "ended_at": incident.absence_ended_at, "whereabouts_known": incident.absence_whereabouts_known,
            "risk_level": incident.absence_risk_level,
            "reported_missing_to_police": incident.absence_reported_missing_to_police},
        "visitor": None if incident.visitor_relation_claimed is None else {
            "estimated_age_band": incident.visitor_estimated_age_band,
            "relation_claimed": incident.visitor_relation_claimed},
        "follow_up": {"meldcode_step": incident.meldcode_step, "reported_to": incident.reported_to,
                      "reported_at": incident.reported_at},
    }


def _merged(incident: Incident, patch: Mapping[str, Any]) -> dict[str, Any]:
    """JSON merge patch (RFC 7396) of the incident's values: null clears, nested blocks merge."""
    merged = _values(incident)
    for field, value in patch.items():
        if isinstance(value, Mapping) and isinstance(merged.get(field), Mapping):
            merged[field] = {**merged[field], **value}
        else:
            merged[field] = value
    return merged


def _shown(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return str(value) if isinstance(value, uuid.UUID) else value


FINGERPRINT_COLUMNS = ("visitor_plate_fingerprint", "visitor_phone_fingerprint")


def _align_fingerprints(columns: dict[str, Any], kept: Mapping[str, bool], stored: int | None,
                        ring: KeyRing) -> None:
    """Give a corrected row's fingerprints one key version: kept ones stay where they are unless a new one joins
    them; then both go to the later of the two versions (the stored one may be later than the active one while a
    new key reaches every host)."""
    held = [c for c in FINGERPRINT_COLUMNS if kept[c] and columns[c] is not None]
    new = [c for c in FINGERPRINT_COLUMNS if not kept[c] and columns[c] is not None]
    if not new:
        columns["visitor_fingerprint_key_version"] = stored if held else None
        return
    if held and stored is not None:
        target = max(stored, ring.active)
        for column in held:
            columns[column] = fingerprint_at(ring, columns[column], stored, target)
        for column in new:
            columns[column] = fingerprint_at(ring, columns[column], ring.active, target)
        columns["visitor_fingerprint_key_version"] = target


def correct_incident(session: Session, caller: Caller, incident_id: uuid.UUID, patch: Mapping[str, Any],
                     keys: IdentityKeys, *, if_match: str | None) -> Incident:
    """Apply a correction as a new version with a revision; the corrected whole must pass every rule again."""
    incident = get_incident(session, caller, incident_id, for_update=True)
    check_version(incident, if_match)
    if incident.status is Status.RETRACTED:
        raise Conflict("A retracted incident cannot be corrected.")
    changes = {k: v for k, v in patch.items() if k != "reason"}
    merged = _merged(incident, changes)
    foreign = _location_errors({row[0]: row for row in _own_location_rows(session, caller, [merged["location_id"]])},
                               {0: merged["location_id"]}, lambda _i, field: f"/{field}") \
        if "location_id" in changes else []
    errors = [*field_errors(incident_errors(merged)), *foreign]
    if len(errors) > len(foreign):  # one answer for every invalid field
        raise InvalidInput(f"{len(errors)} invalid field(s) once corrected; see errors.", errors=errors)
    _refuse(foreign)
    if merged["client_reference"] != incident.client_reference:
        _refuse_recorded(session, caller, [merged["client_reference"]], lambda _i, field: f"/{field}")

    resident_ref = merged.get("resident_ref")
    columns = _columns(merged, keys, _stored_residents(session, caller.institution_id, {resident_ref}, keys)
                       if resident_ref else {})
    # Identities are not in `merged`: keep the stored ones unless the patch names them (null clears).
    visitor_patch = changes.get("visitor", {})
    kept = {"resident_pseudonym": "resident_ref" not in changes,
            "visitor_plate_fingerprint": visitor_patch is not None and "vehicle_plate" not in visitor_patch,
            "visitor_phone_fingerprint": visitor_patch is not None and "phone_number" not in visitor_patch}
    for column, keep in kept.items():
        if keep:
            columns[column] = getattr(incident, column)
    if kept["resident_pseudonym"]:
        columns["resident_key_version"] = incident.resident_key_version
    _align_fingerprints(columns, kept, incident.visitor_fingerprint_key_version, keys.fingerprints)

    diff: dict[str, Any] = {}
    for field, column in SHOWN.items():
        old, new = getattr(incident, column), columns[column]
        if old != new:
            diff[field] = {"old": _shown(old), "new": _shown(new)}
    for field, column in HIDDEN.items():
        if getattr(incident, column) != columns[column]:
            diff[field] = {"changed": True}
    if not diff:
        return incident
    before = Counted.of(incident)
    for column, value in columns.items():
        setattr(incident, column, value)
    incident.version += 1
    session.add(Revision(incident_id=incident.id, version=incident.version, action="correction",
                         reason=patch["reason"], client_id=caller.client_id, changes=diff))
    session.flush()
    incidents_changed.send(session, changes=[(before, -1), (Counted.of(incident), +1)])
    return incident


def retract_incident(session: Session, caller: Caller, incident_id: uuid.UUID, reason: str, *,
                     if_match: str | None = None) -> Incident:
    """Withdraw an incident from every statistic; the record and its history stay."""
    incident = get_incident(session, caller, incident_id, for_update=True)
    if if_match is not None:
        check_version(incident, if_match)
    if incident.status is Status.RETRACTED:
        raise Conflict("The incident is already retracted.")
    incidents_changed.send(session, changes=[(Counted.of(incident), -1)])
    incident.status, incident.retracted_at = Status.RETRACTED, clock.now()
    incident.version += 1
    session.add(Revision(incident_id=incident.id, version=incident.version, action="retraction", reason=reason,
                         client_id=caller.client_id, changes={"status": {"old": "active", "new": "retracted"}}))
    session.flush()
    return incident


def revisions_of(session: Session, caller: Caller, incident_id: uuid.UUID) -> list[Revision]:
    incident = get_incident(session, caller, incident_id)
    return list(session.scalars(select(Revision).where(Revision.incident_id == incident.id)
                                .order_by(Revision.version)))
