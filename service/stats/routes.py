"""Statistics for analysts, within their municipality scope and under disclosure control."""

from __future__ import annotations

from typing import Any

import orjson
from flask import Response, current_app
from flask.views import MethodView

from service.audit.recording import audited, touched
from service.audit.service import EventType
from service.auth.access import current_caller, requires
from service.auth.models import Role
from service.db import db
from service.http import Blueprint
from service.schemas import camelised
from service.stats import service
from service.stats.schemas import FunnelArgs, FunnelOut, HotspotArgs, HotspotsOut, TrendArgs, TrendsOut
from service.stats.tallies import Query

blp = Blueprint("stats", __name__, url_prefix="/v1/stats",
                description="Hotspots, trends and the reporting funnel (analysts), without re-identification")


def _query(args: dict[str, Any]) -> Query:
    return Query(group_by=args["group_by"], kind=args.get("kind"), exploitation_type=args.get("exploitation_type"),
                 municipality_code=args.get("municipality_code"), breakdown=args.get("breakdown"))


def _rules() -> Any:
    return current_app.extensions["disclosure"]


def _body(data: dict[str, Any], args: dict[str, Any]) -> Response:
    """The response as its schema would dump it (tests hold them equal), without dumping thousands of fields; the
    access event counts its units and names the query."""
    touched(count=len(data["units"]), filters=args)
    return Response(orjson.dumps(camelised(data)), mimetype="application/json")


@blp.route("/hotspots")
class Hotspots(MethodView):
    @blp.arguments(HotspotArgs, location="query")
    @blp.doc(operationId="getHotspots")
    @blp.response(200, HotspotsOut)
    @requires(Role.ANALYST)
    @audited(EventType.STATISTICS)
    def get(self, args: dict[str, Any]) -> Response:
        """Hotspots on a funnel plot

        Each unit (institution, location, PC4 or municipality) against the reference rate of the whole scope:
        expected = reference rate * place-months, exact Poisson limits at 95% and 99.8% with an overdispersion
        adjustment, ordered by an empirical-Bayes rate. Counts below K, or dominated by two residents, are
        suppressed; released counts are rounded to base 5 by cell-key perturbation.
        """
        return _body(service.hotspots(db.session, current_caller(), _query(args), args["period"], _rules()), args)


@blp.route("/trends")
class Trends(MethodView):
    @blp.arguments(TrendArgs, location="query")
    @blp.doc(operationId="getTrends")
    @blp.response(200, TrendsOut)
    @requires(Role.ANALYST)
    @audited(EventType.STATISTICS)
    def get(self, args: dict[str, Any]) -> Response:
        """Trends per unit

        A released series per unit from `from` to `to` (fixed periods of `periodType`, at most 60).
        """
        return _body(service.trends(db.session, current_caller(), _query(args), args["periods"], _rules()),
                     {k: v for k, v in args.items() if k != "periods"} | {"from": args["periods"][0],
                                                                          "to": args["periods"][-1]})


@blp.route("/reporting-funnel")
class ReportingFunnel(MethodView):
    @blp.arguments(FunnelArgs, location="query")
    @blp.doc(operationId="getReportingFunnel")
    @blp.response(200, FunnelOut)
    @requires(Role.ANALYST)
    @audited(EventType.STATISTICS)
    def get(self, args: dict[str, Any]) -> Response:
        """Where signals do not become reports

        Per unit: signals, those that reached meldcode step 2 and step 5, and those formally reported, with
        shares and the median days from occurrence to report, under the same disclosure rules.
        """
        return _body(service.reporting_funnel(db.session, current_caller(), _query(args), args["period"], _rules()),
                     args)
