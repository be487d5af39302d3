"""Institutions and locations: administered by admins, own locations readable by institution clients."""

from __future__ import annotations

import uuid
from typing import Any

from flask.views import MethodView
from sqlalchemy import Select

from service.auth.access import current_caller, requires
from service.auth.models import Role
from service.db import db
from service.http import CREATED_AT, Blueprint
from service.pagination import LINK_HEADER, PageArgs, page_schema, paginated
from service.registry import service
from service.registry.models import Institution, Location
from service.registry.schemas import CapacityIn, InstitutionIn, InstitutionOut, LocationIn, LocationOut

blp = Blueprint("institutions", __name__, url_prefix="/v1/institutions",
                description="Institutions, their locations and capacity history")

InstitutionPage = page_schema(InstitutionOut, "InstitutionPage")
LocationPage = page_schema(LocationOut, "LocationPage")


@blp.route("")
class Institutions(MethodView):
    @blp.arguments(PageArgs, location="query", as_kwargs=True)
    @blp.response(200, InstitutionPage, headers={"Link": LINK_HEADER})
    @requires(Role.ADMIN, Role.INSTITUTION)
    @paginated(Institution.created_at, Institution.id)
    def get(self) -> Select[tuple[Institution]]:
        """List institutions

        Admins see every institution; an institution client sees its own.
        """
        return service.visible_institutions(current_caller())

    @blp.arguments(InstitutionIn)
    @blp.response(201, InstitutionOut, headers={"Location": CREATED_AT})
    @requires(Role.ADMIN)
    def post(self, data: dict[str, Any]) -> tuple[Institution, int, dict[str, str]]:
        """Register an institution"""
        institution = service.create_institution(db.session, **data)
        return institution, 201, {"Location": f"/v1/institutions/{institution.id}"}


@blp.route("/<uuid:institutionId>")
class InstitutionItem(MethodView):
    @blp.response(200, InstitutionOut)
    @requires(Role.ADMIN, Role.INSTITUTION)
    def get(self, institutionId: uuid.UUID) -> Institution:
        """Get an institution"""
        return service.get_institution(db.session, current_caller(), institutionId)


@blp.route("/<uuid:institutionId>/locations")
class Locations(MethodView):
    @blp.arguments(PageArgs, location="query", as_kwargs=True)
    @blp.response(200, LocationPage, headers={"Link": LINK_HEADER})
    @requires(Role.ADMIN, Role.INSTITUTION)
    @paginated(Location.created_at, Location.id)
    def get(self, institutionId: uuid.UUID) -> Select[tuple[Location]]:
        """List an institution's locations"""
        caller = current_caller()
        service.get_institution(db.session, caller, institutionId)
        return service.visible_locations(caller, institutionId)

    @blp.arguments(LocationIn)
    @blp.response(201, LocationOut, headers={"Location": CREATED_AT})
    @requires(Role.ADMIN)
    def post(self, data: dict[str, Any], institutionId: uuid.UUID) -> tuple[Location, int, dict[str, str]]:
        """Add a location with its capacity history"""
        location = service.create_location(db.session, current_caller(), institutionId, **data)
        return location, 201, {"Location": f"/v1/institutions/{institutionId}/locations/{location.id}"}


@blp.route("/<uuid:institutionId>/locations/<uuid:locationId>")
class LocationItem(MethodView):
    @blp.response(200, LocationOut)
    @requires(Role.ADMIN, Role.INSTITUTION)
    def get(self, institutionId: uuid.UUID, locationId: uuid.UUID) -> Location:
        """Get a location"""
        return service.get_location(db.session, current_caller(), institutionId, locationId)


@blp.route("/<uuid:institutionId>/locations/<uuid:locationId>/capacities")
class Capacities(MethodView):
    @blp.arguments(CapacityIn)
    @blp.doc(operationId="recordCapacityChange")
    @blp.response(201, LocationOut)
    @blp.alt_response(409, response="CONFLICT", description="The location already has a capacity from that date")
    @requires(Role.ADMIN)
    def post(self, data: dict[str, Any], institutionId: uuid.UUID, locationId: uuid.UUID) -> tuple[Location, int]:
        """Record a change of capacity

        From `validFrom` on the location has `places` places; rates for earlier periods keep the older figure.
        """
        return service.add_capacity(db.session, current_caller(), institutionId, locationId, **data), 201
