"""Demo data for `make run`: the municipality of Groningen (GM0014) with three institutions."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.auth import service as auth
from service.auth.models import ApiClient, Role
from service.registry.models import Capacity, Institution, Location, Sector, Setting

GRONINGEN = "GM0014"
INSTITUTIONS = [
    ("Jeugdzorg Stad Groningen", Sector.YOUTH_CARE, [
        ("Woongroep Oosterpoort", "9724", Setting.OPEN, [(dt.date(2023, 1, 1), 12), (dt.date(2025, 7, 1), 16)]),
        ("Gezinshuis Selwerd", "9741", Setting.OPEN, [(dt.date(2023, 1, 1), 6)]),
        ("Kamertraining Paddepoel", "9742", Setting.OPEN, [(dt.date(2024, 3, 1), 10)]),
    ]),
    ("Accare Gesloten Jeugdzorg Noord", Sector.SECURE_YOUTH_CARE, [
        ("Behandelgroep Hoogkerk", "9745", Setting.SECURE, [(dt.date(2023, 1, 1), 24)]),
        ("Open groep Beijum", "9736", Setting.SEMI_SECURE, [(dt.date(2023, 1, 1), 14), (dt.date(2026, 1, 1), 10)]),
    ]),
    ("Stichting Opvang Noord", Sector.SHELTER, [
        ("Crisisopvang Centrum", "9712", Setting.SHELTER, [(dt.date(2023, 1, 1), 20)]),
        ("Dagbesteding Vinkhuizen", "9743", Setting.DAY_CARE, [(dt.date(2023, 6, 1), 30)]),
    ]),
]
DEMO_CLIENTS = {
    Role.INSTITUTION: "demo-institution",
    Role.ANALYST: "demo-analyst",
    Role.AUDITOR: "demo-auditor",
    Role.ADMIN: "demo-admin",
}


def _institution(session: Session, name: str, sector: Sector, locations: list) -> Institution:  # type: ignore[type-arg]
    institution = session.scalar(select(Institution).where(Institution.name == name))
    if institution is not None:
        return institution
    institution = Institution(name=name, sector=sector, municipality_code=GRONINGEN)
    session.add(institution)
    session.flush()
    for loc_name, postcode4, setting, capacities in locations:
        session.add(Location(institution_id=institution.id, name=loc_name, postcode4=postcode4,
                             municipality_code=GRONINGEN, setting=setting,
                             capacities=[Capacity(valid_from=d, places=p) for d, p in capacities]))
    session.flush()
    return institution


def seed_demo(session: Session) -> dict[str, tuple[str, str]]:
    """Create what is missing (idempotent) and give every demo client a fresh secret: role -> (id, secret)."""
    institutions = [_institution(session, *spec) for spec in INSTITUTIONS]
    credentials = {}
    for role, name in DEMO_CLIENTS.items():
        client = session.scalar(select(ApiClient).where(ApiClient.name == name, ApiClient.active.is_(True)))
        if client is None:
            client, secret = auth.create_client(
                session, name=name, role=role,
                institution_id=institutions[0].id if role is Role.INSTITUTION else None,
                municipality_codes=[GRONINGEN] if role in (Role.ANALYST, Role.AUDITOR) else [])
        else:
            client, secret = auth.rotate_secret(session, client.id)
        credentials[role.value] = (str(client.id), secret)
    return credentials
