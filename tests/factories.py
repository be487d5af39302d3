"""Factory functions: a valid object with every field overridable."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from service.audit.chain import seal
from service.audit.keys import ChainKeys
from service.auth import service as auth_service
from service.auth.models import ApiClient, Role
from service.registry.models import Capacity, Institution, Location, Sector, Setting

_serial = itertools.count(1)



DIGITS_AS_LETTERS = str.maketrans("0123456789", "ghijklmnop")


def letters(n: int) -> str:
    """n random letters (a to p): unique text for a clientReference with no run of digits that the screening could
    take for a phone number or a BSN (random hex sometimes made one, and the request was refused)."""
    return uuid.uuid4().hex[:n].translate(DIGITS_AS_LETTERS)

def make_institution(session: Session, **overrides: Any) -> Institution:
    values = {"name": f"Instelling {next(_serial)}", "sector": Sector.YOUTH_CARE, "municipality_code": "GM0014"}
    institution = Institution(**(values | overrides))
    session.add(institution)
    session.flush()
    return institution


def make_location(session: Session, institution: Institution | None = None, **overrides: Any) -> Location:
    institution = institution or make_institution(session)
    values = {"name": f"Locatie {next(_serial)}", "postcode4": "9712", "municipality_code":
              institution.municipality_code, "setting": Setting.OPEN,
              "capacities": [Capacity(valid_from=dt.date(2024, 1, 1), places=12)]}
    location = Location(institution_id=institution.id, **(values | overrides))
    session.add(location)
    session.flush()
    return location


def make_client(session: Session, role: Role = Role.ADMIN, **overrides: Any) -> tuple[ApiClient, str]:
    values: dict[str, Any] = {"name": f"client {next(_serial)}"}
    return auth_service.create_client(session, role=role, **(values | overrides))


def seal_access_log(session: Session, keys: ChainKeys) -> int:
    """Link every access event written so far into the chain, as the app's sealer does within a second: a test that
    reads an event's hash, or verifies the chain, seals first. Returns how many were sealed."""
    total = 0
    while sealed := seal(session, keys):
        total += sealed
    return total


def as_table_owner(session: Session | Connection) -> None:
    """Act, for the rest of this transaction, as the database owner who switches off the trigger that keeps access
    events unchanged (PostgreSQL; the tests connect as a superuser): tampering behind the service's back."""
    dialect = session.get_bind().dialect if isinstance(session, Session) else session.dialect
    if dialect.name == "postgresql":
        session.execute(text("SET LOCAL session_replication_role = replica"))
