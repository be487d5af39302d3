"""Re-keying pseudonyms and fingerprints (issue 19), at domain level: a resident moves whole from one key version to
the next, so search, distinct residents, dominance and every released figure are the same before, during and after
a run; rows still under the old version are read right; a run resumes; a kept fingerprint follows the row's version.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.auth.access import Caller
from service.auth.models import Role
from service.auth.service import NATIONAL
from service.config import KeyRing
from service.incidents.attestation import attest
from service.incidents.identities import fingerprint_forms, normalise_plate, pseudonym_forms
from service.incidents.models import Incident, Revision
from service.incidents.rekeying import StaleKeyVersion, rekey_fingerprints, rekey_residents, resident_progress
from service.incidents.service import IdentityKeys, correct_incident, matching_incidents, record_incidents
from service.periods import parse_period
from service.stats import rollups
from service.stats.service import hotspots, reporting_funnel, trends
from service.stats.tallies import Query
from tests.factories import make_institution, make_location
from tests.stats.factories import KEYS, RULES, caller_of, incident_values, seed
from tests.stats.test_rollups import rollup_rows

pytestmark = pytest.mark.clock("2026-11-20")
TODAY = dt.date(2026, 11, 28)
OLD = KEYS.master
NEW = bytes(range(32))
ROTATED = IdentityKeys(NEW, 2, KeyRing(((1, OLD), (2, NEW)), 2), KeyRing(((1, OLD), (2, NEW)), 2))
RESIDENTS = ["R-rot-1", "R-rot-2", None, "R-rot-3", "R-rot-1", "R-rot-1"]


def analyst(*codes: str) -> Caller:
    return Caller(uuid.uuid4(), Role.ANALYST, None, codes)


@pytest.fixture
def register(session: Session) -> dict[str, Any]:
    """Two institutions in two municipalities, with residents who dominate cells and one who moved."""
    north, south = make_institution(session, municipality_code="GM0014"), make_institution(session)
    here, there = make_location(session, north), make_location(session, north, municipality_code="GM0363")
    single = make_location(session, south)
    recorded = [*seed(session, here, 30, residents=RESIDENTS, meldcode_step=2),
                *seed(session, there, 14, residents=RESIDENTS[:3], meldcode_step=5, reported=True),
                *seed(session, single, 22, residents=["R-rot-1", "R-south", None])]
    by_ref: dict[tuple[uuid.UUID, str], set[uuid.UUID]] = {}
    for incident, ref in zip(recorded, [*(RESIDENTS * 5)[:30], *(RESIDENTS[:3] * 5)[:14],
                                        *(["R-rot-1", "R-south", None] * 8)[:22]], strict=True):
        if ref:
            by_ref.setdefault((incident.institution_id, ref), set()).add(incident.id)
    return {"north": north, "south": south, "here": here, "by_ref": by_ref}


def released(session: Session) -> list[Any]:
    """Every kind of released figure, over the scopes and groupings the register has."""
    found = []
    for codes in [(NATIONAL,), ("GM0014",), ("GM0363",)]:
        for group_by in ("location", "institution", "municipality"):
            for label in ("2026-Q2", "2026-04", "2026"):
                period = parse_period(label, TODAY)
                found.append(hotspots(session, analyst(*codes), Query(group_by), period, RULES))
                found.append(reporting_funnel(session, analyst(*codes), Query(group_by), period, RULES))
            found.append(trends(session, analyst(*codes), Query(group_by), [parse_period(p, TODAY) for p in
                                                                             ("2026-04", "2026-05", "2026-06")], RULES))
    found.append(hotspots(session, analyst(NATIONAL), Query("location", breakdown="kind"),
                          parse_period("2026-Q2", TODAY), RULES))
    return found


def without_pseudonyms(rows: dict[str, dict[tuple[Any, ...], tuple[int, ...]]]) -> dict[str, Any]:
    """The rollups with each resident's row stripped of its pseudonym (the one thing re-keying changes)."""
    return {table: Counter((key[:-1], values) for key, values in found.items())
            if table in ("resident_rollup", "unit_resident") else found for table, found in rows.items()}


def found_by_search(session: Session, institution_id: uuid.UUID, ref: str, keys: IdentityKeys) -> set[uuid.UUID]:
    return set(session.scalars(matching_incidents(caller_of(institution_id), keys, resident_ref=ref)
                               .with_only_columns(Incident.id)))


def attested(session: Session, institution_id: uuid.UUID, ref: str, keys: IdentityKeys) -> set[uuid.UUID]:
    """The incidents a signed statement about the resident names."""
    return set(attest(session, caller_of(institution_id), keys, ref, issuer="test")[1])


def pseudonyms_of(session: Session, ids: set[uuid.UUID]) -> set[Any]:
    return set(session.execute(select(Incident.resident_pseudonym, Incident.resident_key_version)
                               .where(Incident.id.in_(ids))).all())


def test_statistics_search_and_residents_are_the_same_before_during_and_after_a_run(session, register):
    before, rows_before = released(session), rollup_rows(session)
    assert any(cell.get("suppressed") for figure in before for cell in released_cells(figure))  # dominance is exercised
    assert any(cell.get("value") for figure in before for cell in released_cells(figure))  # and figures are released

    assert rekey_residents(session, ROTATED.pseudonyms, limit=2) == 2  # during: two residents moved, three not
    progress = resident_progress(session)
    assert progress[1] == 3 and progress[2] == 2
    assert released(session) == before
    assert without_pseudonyms(rollup_rows(session)) == without_pseudonyms(rows_before)
    for (institution_id, ref), ids in register["by_ref"].items():
        assert found_by_search(session, institution_id, ref, ROTATED) == ids, ref
        assert attested(session, institution_id, ref, ROTATED) == ids, ref
        assert len(pseudonyms_of(session, ids)) == 1, f"{ref} is split during the run"

    while rekey_residents(session, ROTATED.pseudonyms, limit=2):
        pass
    assert resident_progress(session) == Counter({2: 5})
    assert released(session) == before
    for (institution_id, ref), ids in register["by_ref"].items():
        assert found_by_search(session, institution_id, ref, ROTATED) == ids
        assert attested(session, institution_id, ref, ROTATED) == ids
        assert pseudonyms_of(session, ids) == {(ROTATED.resident(institution_id, ref), 2)}
        assert found_by_search(session, institution_id, ref, KEYS) == set()  # the old key alone links nothing
    after = rollup_rows(session)
    assert without_pseudonyms(after) == without_pseudonyms(rows_before)
    rollups.rebuild(session, chunk=7)  # on PostgreSQL in SQL: the carried contributor seed is read there too
    assert rollup_rows(session) == after


def released_cells(figure: Any) -> list[dict[str, Any]]:
    """Every {value, suppressed} cell inside a released figure."""
    if isinstance(figure, dict):
        if set(figure) == {"value", "suppressed"}:
            return [figure]
        return [cell for value in figure.values() for cell in released_cells(value)]
    if isinstance(figure, list):
        return [cell for value in figure for cell in released_cells(value)]
    return []


def test_an_incident_recorded_during_a_run_joins_its_resident_in_the_form_they_have(session, register):
    here, north = register["here"], register["north"]
    for _ in range(5):  # one resident at a time, until this institution has some moved and some not
        rekey_residents(session, ROTATED.pseudonyms, limit=1)
        stored = {ref: pseudonyms_of(session, ids)
                  for (inst, ref), ids in register["by_ref"].items() if inst == north.id}
        if {version for forms in stored.values() for _p, version in forms} == {1, 2}:
            break
    else:
        pytest.fail("no moment with both versions in one institution")

    new = record_incidents(session, caller_of(north), [incident_values(here, resident=ref) for ref in stored],
                           ROTATED, batch=True)
    for incident, ref in zip(new, stored, strict=True):
        assert {(incident.resident_pseudonym, incident.resident_key_version)} == stored[ref], ref
    before_rest = rollup_rows(session)
    while rekey_residents(session, ROTATED.pseudonyms, limit=2):
        pass
    assert without_pseudonyms(rollup_rows(session)) == without_pseudonyms(before_rest)
    for (institution_id, ref), ids in register["by_ref"].items():
        if institution_id == north.id:
            everything = ids | {i.id for i, r in zip(new, stored, strict=True) if r == ref}
            assert found_by_search(session, institution_id, ref, ROTATED) == everything
            assert len(pseudonyms_of(session, everything)) == 1


def test_a_new_resident_is_written_under_the_active_version(session, register):
    [incident] = record_incidents(session, caller_of(register["north"]),
                                  [incident_values(register["here"], resident="R-brand-new")], ROTATED)
    assert incident.resident_key_version == 2
    assert incident.resident_pseudonym == pseudonym_forms(ROTATED.pseudonyms, register["north"].id, "R-brand-new")[2]
    assert incident.resident_pseudonym[4] == "." and len(incident.resident_pseudonym) == 64


def test_a_run_refuses_values_under_a_version_the_ring_no_longer_holds(session, register):
    without_first = KeyRing(((2, NEW), (3, bytes(32))), 3)
    with pytest.raises(StaleKeyVersion, match=r"\[1\]"):
        rekey_residents(session, without_first)


def _visitor(location: Any, plate: str | None, phone: str | None) -> dict[str, Any]:
    values = incident_values(location, kind="suspiciousVisitor", resident=None)
    values["visitor"] |= {"vehicle_plate": plate, "phone_number": phone}
    return values


def test_fingerprints_move_to_the_active_version_and_a_kept_one_follows_its_row(session, register):
    here, north = register["here"], register["north"]
    first, second = record_incidents(session, caller_of(north), [_visitor(here, "12-ABC-3", "0612345678"),
                                                                 _visitor(here, "99-XYZ-9", None)], KEYS, batch=True)
    assert (first.visitor_fingerprint_key_version, second.visitor_fingerprint_key_version) == (1, 1)
    plate = fingerprint_forms(ROTATED.fingerprints, normalise_plate("12-ABC-3"))

    # A correction under the new ring that changes the phone keeps the plate: both end under version 2.
    corrected = correct_incident(session, caller_of(north), first.id,
                                 {"visitor": {"phone_number": "0687654321"}, "reason": "typo"}, ROTATED,
                                 if_match=f'"{first.version}"')
    assert corrected.visitor_fingerprint_key_version == 2
    assert corrected.visitor_plate_fingerprint == plate[2]

    assert rekey_fingerprints(session, ROTATED.fingerprints, limit=10) == 1  # only the other one was behind
    session.refresh(second)
    assert second.visitor_fingerprint_key_version == 2
    assert second.visitor_plate_fingerprint == fingerprint_forms(ROTATED.fingerprints, normalise_plate("99XYZ9"))[2]
    assert rekey_fingerprints(session, ROTATED.fingerprints) == 0


def test_a_resident_recorded_under_both_versions_at_once_is_merged(session, register):
    """Two hosts on either side of a rotation record a new resident's first incidents at the same moment: one
    under each version. The run merges them, and the statistics count one resident again."""
    here, north = register["here"], register["north"]
    [under_new] = record_incidents(session, caller_of(north), [incident_values(here, resident="R-both")], ROTATED)
    [under_old] = record_incidents(session, caller_of(north), [incident_values(here, resident="R-both")], KEYS)
    assert pseudonyms_of(session, {under_new.id, under_old.id}) == {
        (ROTATED.residents(north.id, "R-both")[1], 1), (ROTATED.resident(north.id, "R-both"), 2)}

    while rekey_residents(session, ROTATED.pseudonyms, limit=2):
        pass
    assert pseudonyms_of(session, {under_new.id, under_old.id}) == {(ROTATED.resident(north.id, "R-both"), 2)}
    written = rollup_rows(session)
    rollups.rebuild(session, chunk=7)
    assert rollup_rows(session) == written  # one resident, counted once, wherever it is kept


def test_a_correction_that_names_no_fingerprint_leaves_them_and_their_version(session, register):
    here, north = register["here"], register["north"]
    [incident] = record_incidents(session, caller_of(north), [_visitor(here, "12-ABC-3", "0612345678")], KEYS)
    plate, phone = incident.visitor_plate_fingerprint, incident.visitor_phone_fingerprint
    corrected = correct_incident(session, caller_of(north), incident.id,
                                 {"exploitation_type": "sexual", "reason": "reassessed"}, ROTATED, if_match='"1"')
    assert (corrected.visitor_plate_fingerprint, corrected.visitor_phone_fingerprint,
            corrected.visitor_fingerprint_key_version) == (plate, phone, 1)
    [revision] = session.scalars(select(Revision).where(Revision.incident_id == incident.id))
    assert revision.changes == {"exploitationType": {"old": "criminal", "new": "sexual"}}


def test_a_host_still_writing_the_old_version_corrects_a_row_under_the_new_one(session, register):
    """While a new key reaches every host, one whose active version is still 1 adds a phone number to a row a
    host on version 2 wrote: both fingerprints end under version 2."""
    here, north = register["here"], register["north"]
    [incident] = record_incidents(session, caller_of(north), [_visitor(here, "12-ABC-3", None)], ROTATED)
    assert incident.visitor_fingerprint_key_version == 2
    lagging = IdentityKeys(OLD, 1, KeyRing(((1, OLD), (2, NEW)), 1), KeyRing(((1, OLD), (2, NEW)), 1))
    corrected = correct_incident(session, caller_of(north), incident.id,
                                 {"visitor": {"phone_number": "0612345678"}, "reason": "typo"}, lagging,
                                 if_match='"1"')
    assert corrected.visitor_fingerprint_key_version == 2
    assert corrected.visitor_phone_fingerprint == fingerprint_forms(ROTATED.fingerprints, "+31612345678")[2]
    assert corrected.visitor_plate_fingerprint == fingerprint_forms(ROTATED.fingerprints, "12ABC3")[2]
