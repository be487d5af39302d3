"""Domain tests: the incident service functions called directly, with a Caller and the test's session."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from typing import Any

import pytest
from sqlalchemy import event, func, select

from service.auth.access import Caller
from service.auth.models import Role
from service.errors import Conflict, InvalidInput, NotFound, PreconditionFailed, PreconditionRequired
from service.guidance.models import MunicipalityGuidance
from service.guidance.service import adviser_of_institution
from service.incidents import schemas, service
from service.incidents.identities import fingerprint_phone, fingerprint_plate
from service.incidents.models import Incident, Revision, Status
from service.incidents.rules import incident_errors
from service.incidents.schemas import IncidentIn
from service.incidents.service import IdentityKeys
from service.registry.models import Institution, Location
from service.taxonomy.service import load_taxonomy
from tests.factories import make_institution, make_location
from tests.incidents.factories import OMIT, incident_body

KEYS = IdentityKeys(master=b"k" * 32, version=1)
HEX64 = re.compile(r"[0-9a-f]{64}")
REASON = "Verkeerd ingevoerd."


def caller_of(institution: Institution) -> Caller:
    return Caller(uuid.uuid4(), Role.INSTITUTION, institution.id, ())


def item(location: Location, **overrides: Any) -> dict[str, Any]:
    """A validated (snake_case) incident, as the schema hands it to the service."""
    return IncidentIn().load(incident_body(location.id, **overrides))


class Tenant:
    def __init__(self, session: Any) -> None:
        self.institution = make_institution(session)
        self.location = make_location(session, self.institution)
        self.caller = caller_of(self.institution)


@pytest.fixture
def a(session) -> Tenant:  # type: ignore[no-untyped-def]
    return Tenant(session)


@pytest.fixture
def b(session) -> Tenant:  # type: ignore[no-untyped-def]
    return Tenant(session)


def record(session: Any, tenant: Tenant, **overrides: Any) -> Incident:
    return service.record_incidents(session, tenant.caller, [item(tenant.location, **overrides)], KEYS)[0]


# --- recording ---------------------------------------------------------------------------------------------------


def test_record_stores_a_pseudonym_not_the_reference(session, a):
    incident = record(session, a, residentRef="CL-123")

    stored = session.execute(select(Incident.resident_pseudonym, Incident.resident_key_version)
                             .where(Incident.id == incident.id)).one()
    assert HEX64.fullmatch(stored.resident_pseudonym)
    assert "CL-123" not in stored.resident_pseudonym
    assert stored.resident_pseudonym == KEYS.resident(a.institution.id, "CL-123")
    assert stored.resident_key_version == 1
    assert (incident.status, incident.version, incident.taxonomy_version) == (
        Status.ACTIVE, 1, load_taxonomy().version)
    assert 0 <= incident.record_key < 256


def test_the_same_reference_is_one_pseudonym_per_institution(session, a, b):
    first = record(session, a, residentRef="CL-123")
    second = record(session, a, residentRef="CL-123")
    third = record(session, a, residentRef="CL-124")
    elsewhere = record(session, b, residentRef="CL-123")

    assert first.resident_pseudonym == second.resident_pseudonym
    assert third.resident_pseudonym != first.resident_pseudonym
    assert elsewhere.resident_pseudonym != first.resident_pseudonym
    assert HEX64.fullmatch(elsewhere.resident_pseudonym)


def test_without_a_resident_nothing_is_pseudonymised(session, a):
    incident = record(session, a, residentRef=OMIT)
    assert (incident.resident_pseudonym, incident.resident_key_version, incident.resident_recorded) == (
        None, None, False)


def test_plate_and_phone_fingerprints_match_across_institutions_and_spellings(session, a, b):
    here = record(session, a, kind="suspiciousVisitor",
                  visitor={"vehiclePlate": "12-ABC-3", "phoneNumber": "06 12345678", "relationClaimed": "friend"})
    there = record(session, b, kind="suspiciousVisitor",
                   visitor={"vehiclePlate": "12abc3", "phoneNumber": "+31 6 1234 5678", "relationClaimed": "other"})

    assert here.visitor_plate_fingerprint == there.visitor_plate_fingerprint
    assert here.visitor_phone_fingerprint == there.visitor_phone_fingerprint
    assert here.visitor_plate_fingerprint == fingerprint_plate(KEYS.master, "12 ABC 3")
    assert here.visitor_phone_fingerprint == fingerprint_phone(KEYS.master, "+31612345678")
    assert HEX64.fullmatch(here.visitor_plate_fingerprint) and HEX64.fullmatch(here.visitor_phone_fingerprint)
    assert here.visitor_plate_fingerprint != here.visitor_phone_fingerprint
    assert here.visitor == {"estimated_age_band": "unknown", "relation_claimed": "friend",
                            "vehicle_plate_recorded": True, "phone_number_recorded": True}


def test_times_are_stored_in_utc(session, a):
    local = dt.datetime.now(dt.timezone(dt.timedelta(hours=2))).replace(microsecond=0) - dt.timedelta(hours=3)
    incident = record(session, a, occurredAt=local.isoformat(), followUp=OMIT)
    session.expire(incident)
    assert incident.occurred_at == local and incident.occurred_at.utcoffset() == dt.timedelta(0)


def test_foreign_location_and_duplicate_reference_are_refused(session, a, b):
    with pytest.raises(InvalidInput) as refused:
        service.record_incidents(session, a.caller, [item(a.location), item(b.location)], KEYS, batch=True)
    assert [(e.pointer, e.detail) for e in refused.value.errors] == [
        ("/items/1/locationId", "Not a location of this institution.")]

    existing = record(session, a, clientReference="REF-1")
    with pytest.raises(Conflict) as conflict:
        service.record_incidents(session, a.caller, [item(a.location, clientReference="REF-1")], KEYS)
    assert [(e.pointer, e.detail) for e in conflict.value.errors] == [("/clientReference", "Already recorded.")]
    assert conflict.value.extra["members"] == {"existing": [f"/v1/incidents/{existing.id}"]}
    assert conflict.value.extra["headers"] == {"Location": f"/v1/incidents/{existing.id}"}
    assert session.scalar(select(func.count()).select_from(Incident)) == 1


def _statements(session: Any, tenant: Tenant, items: list[dict[str, Any]]) -> tuple[int, list[str]]:
    connection = session.connection()
    seen: list[str] = []

    def count(_conn, _cursor, statement, _params, _context, _executemany):  # type: ignore[no-untyped-def]
        seen.append(statement.split(None, 1)[0].upper())

    event.listen(connection, "before_cursor_execute", count)
    try:
        recorded = service.record_incidents(session, tenant.caller, items, KEYS, batch=True)
    finally:
        event.remove(connection, "before_cursor_execute", count)
    assert len(recorded) == len(items)
    return len(seen), seen


def test_a_batch_of_500_costs_as_many_statements_as_one_item(session, a):
    template = item(a.location, kind="suspiciousVisitor")
    session.connection()  # the savepoint is opened before counting

    one, one_kinds = _statements(session, a, [{**template, "client_reference": "ONE"}])
    many, many_kinds = _statements(session, a, [{**template, "client_reference": f"MANY-{i}"} for i in range(500)])

    message = (f"write path: {one} statements for 1 item ({one_kinds}), {many} for 500 ({many_kinds}); at ingest "
               "time 2: SELECT own locations, one bulk INSERT that skips recorded clientReferences")
    assert one == many, message
    assert many_kinds == one_kinds, message
    assert many_kinds[:2] == ["SELECT", "INSERT"], message
    # Then the rollups: the locations' municipalities, one upsert per rollup table (cells, resident cells, unit
    # residents, unit summaries) and one UPDATE of the unit summaries' top contributions.
    assert many <= 9, message
    assert session.scalar(select(func.count()).select_from(Incident)) == 501


# --- corrections -------------------------------------------------------------------------------------------------


def test_correction_writes_a_revision_with_the_diff(session, a):
    incident = record(session, a, exploitationType="criminal", residentAgeBand="16to17")
    old_occurred = incident.occurred_at
    new_occurred = old_occurred - dt.timedelta(hours=1)

    corrected = service.correct_incident(
        session, a.caller, incident.id,
        {"exploitation_type": "sexual", "resident_age_band": "12to15", "occurred_at": new_occurred,
         "note": "Andere notitie.", "reason": REASON}, KEYS, if_match='"1"')

    assert corrected.version == 2
    assert (corrected.exploitation_type, corrected.resident_age_band, corrected.occurred_at) == (
        "sexual", "12to15", new_occurred)
    revision = session.scalars(select(Revision).where(Revision.incident_id == incident.id)).one()
    assert (revision.version, revision.action, revision.reason, revision.client_id) == (
        2, "correction", REASON, a.caller.client_id)
    assert revision.changes == {
        "exploitationType": {"old": "criminal", "new": "sexual"},
        "residentAgeBand": {"old": "16to17", "new": "12to15"},
        "occurredAt": {"old": old_occurred.isoformat(), "new": new_occurred.isoformat()},
        "note": {"changed": True},
    }
    assert service.revisions_of(session, a.caller, incident.id) == [revision]


def test_correcting_the_resident_keeps_only_a_pseudonym(session, a):
    incident = record(session, a, residentRef="CL-1")
    kept = service.correct_incident(session, a.caller, incident.id, {"note": "Kort.", "reason": REASON}, KEYS,
                                    if_match='"1"')
    assert kept.resident_pseudonym == KEYS.resident(a.institution.id, "CL-1")

    changed = service.correct_incident(session, a.caller, incident.id, {"resident_ref": "CL-2", "reason": REASON},
                                       KEYS, if_match='"2"')
    assert changed.resident_pseudonym == KEYS.resident(a.institution.id, "CL-2")
    cleared = service.correct_incident(session, a.caller, incident.id, {"resident_ref": None, "reason": REASON},
                                       KEYS, if_match='"3"')
    assert (cleared.resident_pseudonym, cleared.resident_key_version, cleared.version) == (None, None, 4)
    changes = [r.changes for r in service.revisions_of(session, a.caller, incident.id)]
    assert changes == [{"note": {"changed": True}}, {"residentRef": {"changed": True}},
                       {"residentRef": {"changed": True}}]
    assert "CL-2" not in repr(changes)


def test_correction_that_changes_nothing_writes_no_revision(session, a):
    incident = record(session, a, exploitationType="criminal", residentRef="CL-1")
    same = service.correct_incident(session, a.caller, incident.id,
                                    {"exploitation_type": "criminal", "resident_ref": "CL-1", "reason": REASON},
                                    KEYS, if_match='"1"')
    assert same.version == 1
    assert service.revisions_of(session, a.caller, incident.id) == []


def test_corrected_whole_must_pass_every_rule(session, a):
    incident = record(session, a, kind="absence")
    with pytest.raises(InvalidInput) as refused:
        service.correct_incident(session, a.caller, incident.id, {"kind": "suspiciousVisitor", "reason": REASON},
                                 KEYS, if_match='"1"')
    assert sorted((e.pointer, e.detail) for e in refused.value.errors) == [
        ("/absence", "Only for kind absence."),
        ("/indicators", "Not an indicator of kind suspiciousVisitor: awayWithoutPermission."),
        ("/visitor", "Required when kind is suspiciousVisitor."),
    ]
    session.refresh(incident)
    assert (incident.kind, incident.version) == ("absence", 1)


def test_correction_checks_version_tenancy_and_status(session, a, b):
    incident = record(session, a)
    patch = {"exploitation_type": "sexual", "reason": REASON}
    with pytest.raises(PreconditionRequired):
        service.correct_incident(session, a.caller, incident.id, patch, KEYS, if_match=None)
    with pytest.raises(PreconditionFailed, match="version 1"):
        service.correct_incident(session, a.caller, incident.id, patch, KEYS, if_match='"7"')
    with pytest.raises(NotFound):
        service.correct_incident(session, b.caller, incident.id, patch, KEYS, if_match='"1"')
    with pytest.raises(NotFound):
        service.revisions_of(session, b.caller, incident.id)
    service.retract_incident(session, a.caller, incident.id, REASON)
    with pytest.raises(Conflict):
        service.correct_incident(session, a.caller, incident.id, patch, KEYS, if_match='"2"')
    assert incident.exploitation_type == "criminal"


# --- retraction --------------------------------------------------------------------------------------------------


def test_retraction_marks_the_record_and_writes_a_revision(session, a, b):
    incident = record(session, a)
    with pytest.raises(NotFound):
        service.retract_incident(session, b.caller, incident.id, REASON)

    retracted = service.retract_incident(session, a.caller, incident.id, "Dubbel")

    assert (retracted.status, retracted.version) == (Status.RETRACTED, 2)
    assert retracted.retracted_at is not None and retracted.retracted_at.utcoffset() == dt.timedelta(0)
    revision = service.revisions_of(session, a.caller, incident.id)[0]
    assert (revision.version, revision.action, revision.reason, revision.changes) == (
        2, "retraction", "Dubbel", {"status": {"old": "active", "new": "retracted"}})
    with pytest.raises(Conflict):
        service.retract_incident(session, a.caller, incident.id, "Nogmaals")
    assert service.get_incident(session, a.caller, incident.id).status is Status.RETRACTED
    found = session.scalars(service.matching_incidents(a.caller, KEYS, status=Status.RETRACTED)).all()
    assert [i.id for i in found] == [incident.id]


def test_retraction_with_a_stale_if_match_is_refused(session, a):
    incident = record(session, a)
    with pytest.raises(PreconditionFailed):
        service.retract_incident(session, a.caller, incident.id, REASON, if_match='"2"')
    assert service.retract_incident(session, a.caller, incident.id, REASON, if_match='"1"').version == 2


# --- finding -----------------------------------------------------------------------------------------------------


def test_find_by_resident_stays_within_the_institution(session, a, b):
    mine = [record(session, a, residentRef="CL-1"), record(session, a, residentRef="CL-1")]
    record(session, a, residentRef="CL-2")
    theirs = record(session, b, residentRef="CL-1")

    def found(party, reference):  # type: ignore[no-untyped-def]
        stmt = service.matching_incidents(party.caller, KEYS, resident_ref=reference).order_by(*service.LIST_ORDER)
        return [i.id for i in session.scalars(stmt)]

    assert found(a, "CL-1") == [i.id for i in mine]
    assert found(b, "CL-1") == [theirs.id]
    assert found(b, "CL-2") == []


# --- If-Match parsing --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("header", ['"3"', '"2", "3"', '"3","4"', ' "1" , "3" ', "*"])
def test_check_version_accepts_a_matching_tag(header):
    service.check_version(Incident(version=3), header)


# If-Match compares strongly (RFC 9110 §13.1.1): a weak tag never matches, not even the current version.
@pytest.mark.parametrize("header", ['"2"', '"33"', 'W/"2", "4"', '"03"', 'W/"3"', ' "1" , W/"3" '])
def test_check_version_refuses_another_version(header):
    with pytest.raises(PreconditionFailed) as refused:
        service.check_version(Incident(version=3), header)
    assert refused.value.status == 412
    assert "version 3" in refused.value.detail


@pytest.mark.parametrize("header", [None, ""])
def test_check_version_requires_a_tag(header):
    with pytest.raises(PreconditionRequired) as refused:
        service.check_version(Incident(version=3), header)
    assert refused.value.status == 428


# --- cross-field rules -------------------------------------------------------------------------------------------

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
ABSENCE = {"ended_at": None, "whereabouts_known": True, "risk_level": "green"}
VISITOR = {"estimated_age_band": "unknown", "relation_claimed": "unknown"}

RULE_CASES = {
    "clean recruitment attempt": (
        {"kind": "recruitmentAttempt", "occurred_at": NOW - HOUR, "indicators": ["onlineGrooming"]}, {}),
    "clean absence": (
        {"kind": "absence", "occurred_at": NOW - 2 * HOUR, "absence": {**ABSENCE, "ended_at": NOW - HOUR},
         "follow_up": {"reported_to": ["police"], "reported_at": NOW - HOUR}}, {}),
    "within clock skew": ({"kind": "recruitmentAttempt", "occurred_at": NOW + dt.timedelta(minutes=4)}, {}),
    "everything wrong at once": (
        {"kind": "absence", "occurred_at": NOW + 2 * HOUR, "indicators": ["staffApproached", "noSuchCode"],
         "visitor": VISITOR, "follow_up": {"reported_to": [], "reported_at": NOW - HOUR}},
        {"absence": ["Required when kind is absence."],
         "visitor": ["Only for kind suspiciousVisitor."],
         "indicators": ["Not an indicator of kind absence: staffApproached, noSuchCode."],
         "occurredAt": ["Must not be in the future."],
         "followUp": {"reportedTo": ["Required when reportedAt is given."],
                      "reportedAt": ["Must not be before occurredAt."]}}),
    "no kind: both blocks refused": (
        {"absence": ABSENCE, "visitor": VISITOR},
        {"absence": ["Only for kind absence."], "visitor": ["Only for kind suspiciousVisitor."]}),
    "too old": (
        {"kind": "recruitmentAttempt", "occurred_at": NOW - dt.timedelta(days=11 * 365)},
        {"occurredAt": ["Must not be more than 10 years ago."]}),
    "endedAt equal to occurredAt, reportedTo without reportedAt": (
        {"kind": "absence", "occurred_at": NOW - HOUR, "absence": {**ABSENCE, "ended_at": NOW - HOUR},
         "follow_up": {"reported_to": ["igj"], "reported_at": None}},
        {"absence": {"endedAt": ["Must be after occurredAt."]},
         "followUp": {"reportedAt": ["Required when reportedTo is given."]}}),
    "endedAt and reportedAt in the future": (
        {"kind": "absence", "occurred_at": NOW - HOUR, "absence": {**ABSENCE, "ended_at": NOW + HOUR},
         "follow_up": {"reported_to": ["igj"], "reported_at": NOW + HOUR}},
        {"absence": {"endedAt": ["Must not be in the future."]},
         "followUp": {"reportedAt": ["Must not be in the future."]}}),
    "visitor indicator list with an absence code": (
        {"kind": "suspiciousVisitor", "occurred_at": NOW - HOUR, "visitor": VISITOR,
         "indicators": ["unknownAdultWaiting", "lateReturn"]},
        {"indicators": ["Not an indicator of kind suspiciousVisitor: lateReturn."]}),
}


@pytest.mark.parametrize("values, expected", RULE_CASES.values(), ids=RULE_CASES.keys())
def test_incident_errors(values, expected):
    assert incident_errors(values, now=NOW) == expected


def test_incident_errors_for_a_refused_absence_block_with_a_bad_ended_at():
    """Regression: a refused block plus a bad endedAt used to raise TypeError (a 500 over HTTP)."""
    values = {"kind": "recruitmentAttempt", "occurred_at": NOW - HOUR,
              "absence": {**ABSENCE, "ended_at": NOW - 2 * HOUR}}
    assert incident_errors(values, now=NOW) == {"absence": ["Only for kind absence."]}


def _counted(session: Any, work: Any) -> tuple[Any, list[str]]:
    connection, seen = session.connection(), []

    def count(_conn, _cursor, statement, _params, _context, _executemany):  # type: ignore[no-untyped-def]
        seen.append(" ".join(statement.split()))

    event.listen(connection, "before_cursor_execute", count)
    try:
        return work(), seen
    finally:
        event.remove(connection, "before_cursor_execute", count)


def test_recorded_with_guidance_in_the_statements_of_recording_alone(session, a):
    """A create's guidance (the institution's municipality and an admin's override) is read by the location check:
    no statement of its own, and the same advice as asked for separately."""
    session.add(MunicipalityGuidance(municipality_code=a.institution.municipality_code, follow_up_days=3,
                                     routes=[{"code": "ownDesk", "label_en": "Own desk", "label_nl": "Eigen loket"}]))
    session.flush()
    template = item(a.location, kind="suspiciousVisitor")

    _plain, plain_seen = _counted(session, lambda: service.record_incidents(
        session, a.caller, [{**template, "client_reference": "PLAIN"}], KEYS))
    recorded, advised_seen = _counted(session, lambda: service.record_advised(
        session, a.caller, [{**template, "client_reference": f"ADV-{i}"} for i in range(3)], KEYS, batch=True))
    advice, asked_seen = _counted(session, lambda: adviser_of_institution(session, a.institution.id))

    assert len(advised_seen) == len(plain_seen), (plain_seen, advised_seen)
    assert [r.guidance for r in recorded] == [advice.advise(service.signal_of(r.incident)) for r in recorded]
    assert advice.follow_up_days == 3 and "ownDesk" in advice.routes
    assert len(asked_seen) == 1, asked_seen
    assert [r.incident.client_reference for r in recorded] == ["ADV-0", "ADV-1", "ADV-2"]


def test_guidance_read_with_the_locations_keeps_to_the_callers_institution(session, a, b):
    with pytest.raises(InvalidInput) as refused:
        service.record_advised(session, a.caller, [item(b.location)], KEYS)

    assert [e.pointer for e in refused.value.errors] == ["/locationId"]
    assert session.scalar(select(func.count()).select_from(Incident)) == 0


def test_a_batch_answer_dumps_each_distinct_guidance_once_and_reads_as_batchout_dumps_it(session, a, monkeypatch):
    shapes = [{"kind": "suspiciousVisitor"}, {"kind": "absence", "followUp": None,
                                               "absence": {"whereaboutsKnown": False, "riskLevel": "red"}}]
    recorded = service.record_advised(session, a.caller, [
        item(a.location, **shapes[i % 2], clientReference=f"SH-{i}") for i in range(6)], KEYS, batch=True)
    dumped: list[Any] = []
    real = schemas.GuidanceOut.dump
    monkeypatch.setattr(schemas.GuidanceOut, "dump", lambda self, value: dumped.append(value) or real(self, value))

    body = schemas.batch_body(recorded)

    assert len({id(r.guidance) for r in recorded}) == 2 and len(dumped) == 2
    monkeypatch.undo()
    expected = schemas.BatchOut().dump({"items": recorded})
    assert json.dumps(body) == json.dumps(expected)  # the same keys in the same order
    assert body["items"][0]["guidance"] != body["items"][1]["guidance"]
