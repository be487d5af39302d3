"""Seeding incidents for statistics through the real write path (which also keeps the rollups), and what to expect.

`seed` builds validated-shape (snake_case) incidents and records them with `record_incidents` in one batch, so
hundreds take one round of statements. `expected_cell` says what the disclosure rules must release for a set of
recorded incidents, from their record keys and residents.
"""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.orm import Session

from service.auth.access import Caller
from service.auth.models import Role
from service.incidents.models import Incident
from service.incidents.service import IdentityKeys, record_incidents
from service.registry.models import Institution, Location
from service.stats.disclosure import ZERO, Cell, DisclosureRules, Part, contributor_noise, release, resident_key
from tests.incidents.factories import INDICATORS

KEYS = IdentityKeys(b"k" * 32, 1)
RULES = DisclosureRules()
# 2026-Q2 in Amsterdam is 2026-03-31T22:00Z up to 2026-06-30T22:00Z (CEST, UTC+2).
Q2_START = dt.datetime(2026, 3, 31, 22, 0, tzinfo=dt.UTC)
Q2_DAYS = 91
REPORT_DELAY = dt.timedelta(days=4)

_serial = itertools.count(1)


def caller_of(institution: Institution | uuid.UUID) -> Caller:
    """An institution client of `institution`, as record_incidents and correct_incident expect."""
    institution_id = institution if isinstance(institution, uuid.UUID) else institution.id
    return Caller(uuid.uuid4(), Role.INSTITUTION, institution_id, ())


def in_q2(index: int) -> dt.datetime:
    """The index-th moment spread over 2026-Q2 (Amsterdam), each on its own local day at noon."""
    return Q2_START + dt.timedelta(days=index % Q2_DAYS, hours=12)


def incident_values(location: Location | uuid.UUID, *, kind: str = "recruitmentAttempt",
                    exploitation_type: str = "criminal", occurred_at: dt.datetime | None = None,
                    resident: str | None = None, age_band: str = "16to17", meldcode_step: int | None = None,
                    reported: bool = False, report_delay: dt.timedelta = REPORT_DELAY,
                    note: str | None = None) -> dict[str, Any]:
    """One incident as the schema hands it to the service (snake_case, aware datetimes)."""
    occurred_at = occurred_at or in_q2(0)
    return {
        "client_reference": f"STAT-{next(_serial):07d}",
        "location_id": location if isinstance(location, uuid.UUID) else location.id,
        "kind": kind,
        "exploitation_type": exploitation_type,
        "occurred_at": occurred_at,
        "resident_ref": resident,
        "resident_age_band": age_band,
        "indicators": list(INDICATORS[kind]),
        "note": note,
        "absence": ({"ended_at": None, "whereabouts_known": True, "risk_level": "orange",
                     "reported_missing_to_police": False} if kind == "absence" else None),
        "visitor": ({"estimated_age_band": "23plus", "relation_claimed": "friend"}
                    if kind == "suspiciousVisitor" else None),
        "follow_up": {"meldcode_step": meldcode_step, "reported_to": ["veiligThuis"] if reported else [],
                      "reported_at": occurred_at + report_delay if reported else None},
    }


def seed(session: Session, location: Location, n: int, *, residents: Sequence[str | None] | None = None,
         occurred_at: dt.datetime | Callable[[int], dt.datetime] = in_q2, **values: Any) -> list[Incident]:
    """Record `n` incidents at `location` in one batch, as its institution.

    residents: cycled over the incidents (None: no resident); by default each incident has a resident of its own.
    occurred_at: one moment for all, or a function of the incident's index (default: spread over 2026-Q2).
    Other keywords go to `incident_values` (kind, exploitation_type, age_band, meldcode_step, reported,
    report_delay, note).
    """
    if n == 0:
        return []
    tag = uuid.uuid4().hex[:8]
    items = []
    for i in range(n):
        resident = residents[i % len(residents)] if residents else f"R-{tag}-{i}"
        moment = occurred_at(i) if callable(occurred_at) else occurred_at
        items.append(incident_values(location, occurred_at=moment, resident=resident, **values))
    return record_incidents(session, caller_of(location.institution_id), items, KEYS, batch=True)


def parts_of(incidents: Sequence[Incident]) -> list[Part]:
    """Each institution's part of a cell of these incidents: count, record keys and contributor noise."""
    by_institution: dict[uuid.UUID, list[Incident]] = {}
    for incident in incidents:
        by_institution.setdefault(incident.institution_id, []).append(incident)
    return [Part(len(found), sum(i.record_key for i in found),
                 sum(contributor_noise(i.resident_pseudonym or str(i.id)) for i in found))
            for found in by_institution.values()]


def expected_cell(incidents: Sequence[Incident], rules: DisclosureRules = RULES, *,
                  zero: Cell = ZERO) -> dict[str, Any]:
    """The cell the disclosure rules must release for exactly these (active) incidents."""
    by_resident = Counter(i.resident_pseudonym for i in incidents if i.resident_pseudonym)
    contributions = list(by_resident.values()) + [1] * sum(1 for i in incidents if not i.resident_pseudonym)
    return release(len(incidents), contributions, parts_of(incidents), rules, zero=zero).as_dict()


def expected_residents(incidents: Sequence[Incident], rules: DisclosureRules = RULES) -> dict[str, Any]:
    """The released cell of distinct residents among these (active) incidents (when their incidents are released)."""
    present: dict[uuid.UUID, set[str]] = {}
    for incident in incidents:
        if incident.resident_pseudonym:
            present.setdefault(incident.institution_id, set()).add(incident.resident_pseudonym)
    parts = [Part(len(found), sum(resident_key(p) for p in found), sum(contributor_noise(p) for p in found))
             for found in present.values()]
    count = sum(part.count for part in parts)
    return release(count, [1] if count else [], parts, rules).as_dict()
