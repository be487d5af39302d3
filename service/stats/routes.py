"""Statistics for analysts, within their municipality scope and under disclosure control."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import orjson
from flask import Response, current_app, request
from flask.views import MethodView

from service.audit.recording import audited, touched
from service.audit.service import EventType
from service.auth.access import current_caller, requires
from service.auth.models import Role
from service.db import db
from service.http import JSON, Blueprint, negotiated, produces
from service.schemas import camelised
from service.spreadsheet import CSV, csv_text
from service.stats import service, tables
from service.stats.plot import LANGUAGES, SVG, funnel_plot, label_language
from service.stats.schemas import (
    FunnelArgs,
    FunnelOut,
    FunnelPlotArgs,
    HotspotArgs,
    HotspotsOut,
    TrendArgs,
    TrendsOut,
)
from service.stats.tallies import Query

blp = Blueprint("stats", __name__, url_prefix="/v1/stats",
                description="Hotspots, trends and the reporting funnel (analysts), without re-identification")


def _query(args: dict[str, Any]) -> Query:
    return Query(group_by=args["group_by"], kind=args.get("kind"), exploitation_type=args.get("exploitation_type"),
                 municipality_code=args.get("municipality_code"), breakdown=args.get("breakdown"))


def _rules() -> Any:
    return current_app.extensions["disclosure"]


def _as_csv(description: str) -> dict[str, Any]:
    """The CSV answer beside the JSON one, in the OpenAPI document."""
    return {"responses": {200: {"content": {CSV: {"schema": {"type": "string", "description": (
        "Asked by `Accept: text/csv`. RFC 4180 with a UTF-8 byte order mark, every cell quoted, cells delimited "
        "by the `delimiter` parameter (`;`: decimals written with a comma, for Excel with Dutch settings); the "
        "columns " + ", ".join(tables.COLUMNS) + ". " + description + " A suppressed cell has an empty value and "
        "`suppressed` true; a derived figure (rate, limit, band) an empty `suppressed`, and an empty value where "
        "the JSON has null. No text cell starts with = + - @, tab or CR (a leading ' is added)."),
    }}}}}}


def _body(data: dict[str, Any], args: dict[str, Any], rows: Callable[[dict[str, Any]], Iterable[Any]]) -> Response:
    """The response as its schema would dump it (tests hold them equal), without dumping thousands of fields, or
    as CSV (`rows` makes the table of the same body); the access event counts its units and names the query."""
    delimiter = args.pop("delimiter")
    touched(count=len(data["units"]), filters=args)
    body = camelised(data)
    if negotiated(JSON, CSV) == CSV:
        return Response(csv_text(tables.COLUMNS, rows(body), delimiter), mimetype=CSV)
    return Response(orjson.dumps(body), mimetype=JSON)


@blp.route("/hotspots")
class Hotspots(MethodView):
    @blp.arguments(HotspotArgs, location="query")
    @blp.doc(operationId="getHotspots")
    @blp.response(200, HotspotsOut)
    @blp.doc(**_as_csv("A row per unit and figure (the previous period's under that period, each breakdown code as "
                       "`breakdown.<code>`), then the reference's (`reference.`, the funnel curve as "
                       "`reference.funnelCurve.<n>.`)."))
    @requires(Role.ANALYST)
    @audited(EventType.STATISTICS)
    @produces(JSON, CSV)
    def get(self, args: dict[str, Any]) -> Response:
        """Hotspots on a funnel plot

        Each unit (institution, location, PC4 or municipality) against the reference rate of the whole scope:
        expected = reference rate * place-months, exact Poisson limits at 95% and 99.8% with an overdispersion
        adjustment, ordered by an empirical-Bayes rate. Counts below K, or dominated by two residents, are
        suppressed; released counts are rounded to base 5 by cell-key perturbation.
        """
        return _body(service.hotspots(db.session, current_caller(), _query(args), args["period"], _rules()), args,
                     tables.hotspot_rows)


FUNNEL_PLOT = {"responses": {200: {
    "description": "An SVG image, the same for the same data and language",
    "headers": {"Content-Language": {"description": "The language of the labels: nl or en",
                                     "schema": {"type": "string", "pattern": "^(" + "|".join(LANGUAGES) + ")$",
                                                "example": LANGUAGES[0]}}},
    "content": {SVG: {"schema": {"type": "string", "description": "SVG 1.1, no script, no style element"}}},
}}}


@blp.route("/hotspots/funnel-plot")
class HotspotFunnelPlot(MethodView):
    @blp.arguments(FunnelPlotArgs, location="query")
    @blp.doc(**FUNNEL_PLOT)
    @requires(Role.ANALYST)
    @audited(EventType.STATISTICS)
    @produces(SVG)
    def get(self, args: dict[str, Any]) -> Response:
        """Hotspots drawn as a funnel plot (SVG)

        The hotspots of the same query as a picture: a point per unit with limits at its place-months and released
        rate, the 95% and 99.8% limit curves and the reference rate. Suppressed units are absent. Labels follow
        `Accept-Language` (`nl`, the default, or `en`).
        """
        data = service.hotspots(db.session, current_caller(), _query(args), args["period"], _rules())
        touched(count=len(data["units"]), filters=args)
        language = label_language(request.accept_languages.values())
        return Response(funnel_plot(camelised(data), language), mimetype=SVG,
                        headers={"Content-Language": language, "Vary": "Accept-Language"})


@blp.route("/trends")
class Trends(MethodView):
    @blp.arguments(TrendArgs, location="query")
    @blp.doc(operationId="getTrends")
    @blp.response(200, TrendsOut)
    @blp.doc(**_as_csv("A row per unit, period and figure, then the total's (`total.`)."))
    @requires(Role.ANALYST)
    @audited(EventType.STATISTICS)
    @produces(JSON, CSV)
    def get(self, args: dict[str, Any]) -> Response:
        """Trends per unit

        A released series per unit from `from` to `to` (fixed periods of `periodType`, at most 60).
        """
        return _body(service.trends(db.session, current_caller(), _query(args), args["periods"], _rules()),
                     {k: v for k, v in args.items() if k != "periods"} | {"from": args["periods"][0],
                                                                          "to": args["periods"][-1]},
                     tables.trend_rows)


@blp.route("/reporting-funnel")
class ReportingFunnel(MethodView):
    @blp.arguments(FunnelArgs, location="query")
    @blp.doc(operationId="getReportingFunnel")
    @blp.response(200, FunnelOut)
    @blp.doc(**_as_csv("A row per unit and figure (stages and shares), then the total's (`total.`)."))
    @requires(Role.ANALYST)
    @audited(EventType.STATISTICS)
    @produces(JSON, CSV)
    def get(self, args: dict[str, Any]) -> Response:
        """Where signals do not become reports

        Per unit: signals, those that reached meldcode step 2 and step 5, and those formally reported, with
        shares and the median days from occurrence to report, under the same disclosure rules.
        """
        return _body(service.reporting_funnel(db.session, current_caller(), _query(args), args["period"], _rules()),
                     args, tables.funnel_rows)
