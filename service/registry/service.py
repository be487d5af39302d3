"""Institutions, locations and capacity history. Tenancy is in the queries: see `visible_locations`."""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from service.auth.access import Caller
from service.auth.models import Role
from service.errors import Conflict, NotFound
from service.registry.models import Capacity, Institution, Location, Sector, Setting


@dataclass(frozen=True)
class MunicipalityList:
    """The CBS municipality list of one year (municipalities.yaml): names by code, and merged codes."""

    source: str
    year: int
    names: dict[str, str]
    merged: dict[str, str]

    def name(self, code: str) -> str:
        """The official name of the municipality `code` is (or was merged into) now; the code when unknown."""
        return self.names.get(self.merged.get(code, code), code)


@functools.cache
def municipality_list() -> MunicipalityList:
    document = yaml.safe_load(resources.files("service.registry").joinpath("municipalities.yaml").read_text("utf-8"))
    return MunicipalityList(source=document["source"], year=document["year"],
                            names=dict(document["municipalities"]), merged=dict(document["merged"]))


def municipality_of(session: Session, institution_id: uuid.UUID) -> str | None:
    """The municipality an institution belongs to (it never changes: the registry has no such update)."""
    return session.scalar(select(Institution.municipality_code).where(Institution.id == institution_id))


def create_institution(session: Session, *, name: str, sector: Sector, municipality_code: str) -> Institution:
    institution = Institution(name=name, sector=sector, municipality_code=municipality_code)
    session.add(institution)
    session.flush()
    return institution


def visible_institutions(caller: Caller) -> Select[tuple[Institution]]:
    """Institutions the caller may know of: all for an admin, its own for an institution client."""
    stmt = select(Institution)
    if caller.role is Role.INSTITUTION:
        stmt = stmt.where(Institution.id == caller.institution_id)
    elif caller.role is not Role.ADMIN:
        stmt = stmt.where(False)
    return stmt


def visible_locations(caller: Caller, institution_id: uuid.UUID) -> Select[tuple[Location]]:
    """Locations of one institution, as far as the caller may see them."""
    stmt = select(Location).where(Location.institution_id == institution_id)
    if caller.role is Role.INSTITUTION:
        stmt = stmt.where(Location.institution_id == caller.institution_id)
    elif caller.role is not Role.ADMIN:
        stmt = stmt.where(False)
    return stmt


def get_institution(session: Session, caller: Caller, institution_id: uuid.UUID) -> Institution:
    institution = session.scalar(visible_institutions(caller).where(Institution.id == institution_id))
    if institution is None:
        raise NotFound("No such institution.")
    return institution


def get_location(session: Session, caller: Caller, institution_id: uuid.UUID, location_id: uuid.UUID) -> Location:
    location = session.scalar(visible_locations(caller, institution_id).where(Location.id == location_id))
    if location is None:
        raise NotFound("No such location.")
    return location


def create_location(session: Session, caller: Caller, institution_id: uuid.UUID, *, name: str, postcode4: str,
                    municipality_code: str, setting: Setting,
                    capacities: Sequence[dict[str, Any]]) -> Location:
    get_institution(session, caller, institution_id)
    location = Location(institution_id=institution_id, name=name, postcode4=postcode4,
                        municipality_code=municipality_code, setting=setting,
                        capacities=[Capacity(valid_from=c["valid_from"], places=c["places"])
                                    for c in sorted(capacities, key=lambda c: c["valid_from"])])
    session.add(location)
    session.flush()
    return location


def add_capacity(session: Session, caller: Caller, institution_id: uuid.UUID, location_id: uuid.UUID, *,
                 valid_from: dt.date, places: int) -> Location:
    """Record that the location has `places` places from `valid_from` on; earlier periods keep theirs."""
    location = get_location(session, caller, institution_id, location_id)
    if any(c.valid_from == valid_from for c in location.capacities):
        raise Conflict("The location already has a capacity from that date.")
    location.capacities.append(Capacity(valid_from=valid_from, places=places))
    session.flush()
    session.expire(location, ["capacities"])  # reload in valid_from order
    return location
