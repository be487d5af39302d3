"""Guidance for a signal not logged yet; a municipality's own routes (admin)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView

from service.auth.access import current_caller, requires
from service.auth.models import Role
from service.db import db
from service.errors import NotFound
from service.guidance import service
from service.guidance.schemas import GuidanceOut, MunicipalGuidanceIn, MunicipalGuidanceOut, SignalQuery
from service.http import Blueprint
from service.registry.schemas import MUNICIPALITY_CODE

blp = Blueprint("guidance", __name__, url_prefix="/v1/guidance",
                description="The next meldcode step and the reporting routes for a signal (advice, never a decision)")


def _municipality(code: str) -> str:
    try:
        return MUNICIPALITY_CODE(code)
    except ma.ValidationError:  # a path that is no municipality code names no resource
        raise NotFound("No such municipality code.") from None


@blp.route("")
class Guidance(MethodView):
    @blp.arguments(SignalQuery, location="query")
    @blp.response(200, GuidanceOut)
    @requires(Role.INSTITUTION)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """Get guidance for a signal not logged yet

        The same guidance every create, batch item and correction carries: the next meldcode step to consider,
        the reporting routes that apply in the institution's municipality, and the reason in one line.
        """
        adviser = service.adviser_of_institution(db.session, current_caller().institution_id)
        return adviser.advise(service.Signal(
            query["kind"], query["exploitation_type"], query["resident_age_band"], query.get("risk_level"),
            frozenset(query["indicators"]), query.get("meldcode_step"), query["reported"]))


@blp.route("/municipalities/<municipalityCode>")
class MunicipalGuidance(MethodView):
    @blp.response(200, MunicipalGuidanceOut)
    @requires(Role.ADMIN)
    def get(self, municipalityCode: str) -> dict[str, Any]:
        """Get a municipality's reporting routes"""
        return service.municipal_guidance(db.session, _municipality(municipalityCode))

    @blp.arguments(MunicipalGuidanceIn)
    @blp.response(200, MunicipalGuidanceOut)
    @requires(Role.ADMIN)
    def put(self, data: dict[str, Any], municipalityCode: str) -> dict[str, Any]:
        """Replace a municipality's reporting routes

        Its own routes (a Zorg- en Veiligheidshuis, a regional desk) replace the data file's; national routes
        stay. Rules name routes by code: a route with code `zorgEnVeiligheidshuis` is the one they pick.
        """
        return service.set_municipal_guidance(db.session, _municipality(municipalityCode), data["routes"],
                                              data["follow_up_days"])

    @blp.response(204)
    @requires(Role.ADMIN)
    def delete(self, municipalityCode: str) -> None:
        """Go back to the data file's routes"""
        service.reset_municipal_guidance(db.session, _municipality(municipalityCode))
