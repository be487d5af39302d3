"""Re-keying stored pseudonyms and fingerprints to the active key version, a batch at a time, while the service runs.

Nothing here needs a reference: a value moves one version on as an HMAC of itself (`identities`). A resident moves
whole in one transaction (every incident of theirs, and their rows in the statistics through
signals.pseudonyms_rekeyed), so no reader ever sees one resident under two versions; the
ingest path writes a resident in the form they already have (`service._stored_residents`). A batch commits on its
own: a run that stops resumes with what is still at an older version.
"""

from __future__ import annotations

import uuid
from collections import Counter

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from service.config import KeyRing
from service.incidents.identities import fingerprint_at, pseudonym_at
from service.incidents.models import Counted, Incident
from service.signals import incidents_changed, pseudonyms_rekeyed

FINGERPRINTS = ("visitor_plate_fingerprint", "visitor_phone_fingerprint")


class StaleKeyVersion(RuntimeError):
    """Stored values are under a key version the ring no longer holds: add it back to re-key them."""


def _check_known(ring: KeyRing, versions: set[int]) -> None:
    unknown = sorted(v for v in versions if v not in ring)
    if unknown:
        raise StaleKeyVersion(f"values under key version(s) {unknown} that the ring does not hold")


def resident_progress(session: Session) -> Counter[int]:
    return Counter(dict(session.execute(
        select(Incident.resident_key_version, func.count(func.distinct(Incident.resident_pseudonym)))
        .where(Incident.resident_key_version.is_not(None)).group_by(Incident.resident_key_version)).all()))


def fingerprint_progress(session: Session) -> Counter[int]:
    return Counter(dict(session.execute(
        select(Incident.visitor_fingerprint_key_version, func.count())
        .where(Incident.visitor_fingerprint_key_version.is_not(None))
        .group_by(Incident.visitor_fingerprint_key_version)).all()))


def rekey_residents(session: Session, ring: KeyRing, limit: int = 200) -> int:
    """Move up to `limit` residents still under an older key version to the active one; return how many moved."""
    pending = session.execute(
        select(Incident.institution_id, Incident.resident_pseudonym, Incident.resident_key_version)
        .where(Incident.resident_key_version < ring.active).distinct()
        .order_by(Incident.institution_id, Incident.resident_pseudonym).limit(limit)).all()
    if not pending:
        return 0
    _check_known(ring, {version for _i, _p, version in pending})
    residents = tuple_(Incident.institution_id, Incident.resident_pseudonym).in_(
        [(institution, pseudonym) for institution, pseudonym, _v in pending])
    # Twice: the first waits for writers holding these residents; the second (a new snapshot on PostgreSQL) also
    # sees the incidents they added. Later writers wait for this transaction, then read the re-keyed form.
    session.execute(select(Incident.id).where(residents).order_by(Incident.id).with_for_update())
    incidents = list(session.scalars(select(Incident).where(residents).order_by(Incident.id)
                                     .with_for_update().execution_options(populate_existing=True)))
    _check_known(ring, {incident.resident_key_version for incident in incidents
                        if incident.resident_key_version is not None})
    moved: dict[tuple[uuid.UUID, str], str] = {}
    for incident in incidents:
        if incident.resident_pseudonym is not None and incident.resident_key_version is not None \
                and incident.resident_key_version < ring.active:
            old = (incident.institution_id, incident.resident_pseudonym)
            if old not in moved:
                moved[old] = pseudonym_at(ring, incident.institution_id, incident.resident_pseudonym,
                                          incident.resident_key_version)
    # A resident already under the new form too (two hosts, on either side of a rotation, recorded their first
    # incident at once) is merged through the statistics' write path; every other one is renamed in place.
    merged = {tuple(row) for row in session.execute(select(Incident.institution_id, Incident.resident_pseudonym).where(
        tuple_(Incident.institution_id, Incident.resident_pseudonym).in_(
            [(institution, new) for (institution, _old), new in moved.items()])))} if moved else set()
    merging = [incident for incident in incidents
               if (incident.institution_id, moved.get((incident.institution_id, incident.resident_pseudonym or "")))
               in merged]
    before = [Counted.of(incident) for incident in incidents]
    renames = {old: new for (institution, old), new in moved.items() if (institution, new) not in merged}
    for incident in incidents:
        new = moved.get((incident.institution_id, incident.resident_pseudonym or ""))
        if new is not None:
            incident.resident_pseudonym, incident.resident_key_version = new, ring.active
    session.flush()
    pseudonyms_rekeyed.send(session, renames=renames, residents=before)
    if merging:
        ids = {incident.id for incident in merging}
        incidents_changed.send(session, changes=[(counted, -1) for counted in before if counted.id in ids]
                               + [(Counted.of(incident), +1) for incident in merging])
    return len(pending)


def rekey_fingerprints(session: Session, ring: KeyRing, limit: int = 500) -> int:
    """Move up to `limit` incidents' visitor fingerprints to the active key version; return how many moved."""
    incidents = list(session.scalars(
        select(Incident).where(Incident.visitor_fingerprint_key_version < ring.active)
        .order_by(Incident.id).limit(limit).with_for_update()))
    _check_known(ring, {incident.visitor_fingerprint_key_version for incident in incidents})  # type: ignore[misc]
    for incident in incidents:
        version = incident.visitor_fingerprint_key_version
        for column in FINGERPRINTS:
            value = getattr(incident, column)
            if value is not None:
                setattr(incident, column, fingerprint_at(ring, value, version))  # type: ignore[arg-type]
        incident.visitor_fingerprint_key_version = ring.active
    session.flush()
    return len(incidents)
