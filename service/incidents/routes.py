"""Incidents: institution clients record, find, correct and retract their own signals."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response, current_app, json, request
from flask.views import MethodView

from service.audit.recording import audited, touched
from service.audit.service import EventType
from service.auth.access import current_caller, requires
from service.auth.models import Role
from service.db import db
from service.http import Blueprint
from service.incidents import service
from service.incidents.idempotency import key_hash, request_hash, request_hash_key, run_once
from service.incidents.models import Incident, Revision
from service.incidents.schemas import (
    BatchIn,
    BatchOut,
    IdempotencyHeader,
    IfMatchHeader,
    IncidentFilters,
    IncidentIn,
    IncidentOut,
    IncidentPage,
    IncidentPatch,
    IncidentSearch,
    RetractionIn,
    RevisionList,
)
from service.incidents.service import IdentityKeys
from service.pagination import LINK_HEADER

blp = Blueprint("incidents", __name__, url_prefix="/v1/incidents",
                description="Signals of recruitment, suspicious visitors and absences (institution clients)")

# Built once: a marshmallow schema instance deep-copies its fields, which showed in the write path's profile.
INCIDENT_OUT, BATCH_OUT = IncidentOut(), BatchOut()
ETAG = {"description": "The incident's version, for If-Match", "schema": {"type": "string"}}
LOCATION = {"description": "URL of the recorded incident", "schema": {"type": "string"}}
REPLAYED = {"description": "`true` when this is the stored answer to an earlier request with the same key",
            "schema": {"type": "string"}}


def _keys() -> IdentityKeys:
    return IdentityKeys.from_settings(current_app.extensions["settings"])


def _etag(incident: Incident) -> dict[str, str]:
    return {"ETag": f'"{incident.version}"'}


def _record(items: list[dict[str, Any]], headers: dict[str, Any], *, batch: bool) -> Response:
    """Record once per Idempotency-Key and answer 201 with the stored JSON (replays answer the same bytes)."""
    caller = current_caller()
    recorded: list[Incident] = []

    def work() -> tuple[int, Any]:
        recorded.extend(service.record_incidents(db.session, caller, items, _keys(), batch=batch))
        return 201, (BATCH_OUT.dump({"items": recorded}) if batch else INCIDENT_OUT.dump(recorded[0]))

    key = headers.get("idempotency_key")
    master_key = current_app.extensions["settings"].pseudonym_master_key
    # Only a keyed request is ever compared with another: unkeyed ones need no (keyed) hash of their body.
    fingerprint = "" if key is None else request_hash(
        request_hash_key(master_key), request.method, request.path, request.get_json())
    outcome = run_once(db.session, caller.client_id, None if key is None else key_hash(master_key, key), fingerprint,
                       work)
    response = current_app.response_class(outcome.body, status=outcome.status, mimetype="application/json")
    if recorded:
        # The access event names what was recorded; a replay's event is read from the stored response instead.
        touched([str(incident.id) for incident in recorded], len(recorded))
    if not batch:
        first = {"id": recorded[0].id, "version": recorded[0].version} if recorded else json.loads(outcome.body)
        response.headers.update({"Location": f"/v1/incidents/{first['id']}", "ETag": f'"{first["version"]}"'})
    if outcome.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@blp.route("")
class Incidents(MethodView):
    @blp.arguments(IncidentFilters, location="query", as_kwargs=True)
    @blp.response(200, IncidentPage, headers={"Link": LINK_HEADER})
    @requires(Role.INSTITUTION)
    @audited(EventType.SEARCH)
    def get(self, **filters: Any) -> tuple[Any, dict[str, str]]:
        """List incidents

        The institution's own incidents in the order they were recorded, filtered, a page at a time.
        """
        page = service.find_incidents(db.session, current_caller(), _keys(), **filters)
        return page, page.headers()

    @blp.arguments(IdempotencyHeader, location="headers")
    @blp.arguments(IncidentIn)
    @blp.response(201, IncidentOut, headers={"Location": LOCATION, "ETag": ETAG, "Idempotent-Replayed": REPLAYED})
    @blp.alt_response(409, response="CONFLICT", description="clientReference already recorded, or key in use")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY", description="Idempotency-Key reused for another body")
    @requires(Role.INSTITUTION)
    @audited(EventType.CREATE)
    def post(self, headers: dict[str, Any], data: dict[str, Any]) -> Response:
        """Record an incident

        One signal, without naming anyone: `residentRef`, `visitor.vehiclePlate` and `visitor.phoneNumber` are
        turned into keyed pseudonyms and never returned; `note` is refused when it holds identifying data.
        Send an `Idempotency-Key` to make retries safe (kept 24 hours).
        """
        return _record([data], headers, batch=False)


@blp.route("/_batch")
class IncidentBatch(MethodView):
    @blp.arguments(IdempotencyHeader, location="headers")
    @blp.arguments(BatchIn)
    @blp.response(201, BatchOut, headers={"Idempotent-Replayed": REPLAYED})
    @blp.alt_response(409, response="CONFLICT", description="A clientReference is already recorded, or key in use")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY", description="Idempotency-Key reused for another body")
    @requires(Role.INSTITUTION)
    @audited(EventType.CREATE)
    def post(self, headers: dict[str, Any], data: dict[str, Any]) -> Response:
        """Record up to 500 incidents at once

        All or nothing: one invalid item refuses the batch, and every error points into it (`/items/3/occurredAt`).
        """
        return _record(data["items"], headers, batch=True)


@blp.route("/_search")
class IncidentSearchView(MethodView):
    @blp.arguments(IncidentSearch)
    @blp.response(200, IncidentPage)
    @requires(Role.INSTITUTION)
    @audited(EventType.SEARCH)
    def post(self, filters: dict[str, Any]) -> Any:
        """Search incidents

        The list's filters plus `residentRef`, which must not travel in a URL. Page with `cursor` in the body.
        """
        return service.find_incidents(db.session, current_caller(), _keys(), **filters)


@blp.route("/<uuid:incidentId>")
class IncidentItem(MethodView):
    @blp.response(200, IncidentOut, headers={"ETag": ETAG})
    @requires(Role.INSTITUTION)
    @audited(EventType.READ)
    def get(self, incidentId: uuid.UUID) -> tuple[Incident, dict[str, str]]:
        """Get an incident"""
        incident = service.get_incident(db.session, current_caller(), incidentId)
        return incident, _etag(incident)

    @blp.arguments(IfMatchHeader, location="headers")
    @blp.arguments(IncidentPatch)
    @blp.response(200, IncidentOut, headers={"ETag": ETAG})
    @blp.alt_response(409, response="CONFLICT", description="The incident is retracted")
    @blp.alt_response(412, response="PRECONDITION_FAILED", description="If-Match is not the current version")
    @blp.alt_response(428, response="PRECONDITION_REQUIRED", description="If-Match is missing")
    @requires(Role.INSTITUTION)
    @audited(EventType.CORRECT)
    def patch(self, headers: dict[str, Any], patch: dict[str, Any], incidentId: uuid.UUID) -> Any:
        """Correct an incident

        A JSON merge patch with a required `reason`. The corrected incident must pass every rule again; the change
        is kept as a revision and `version` goes up by one.
        """
        incident = service.correct_incident(db.session, current_caller(), incidentId, patch, _keys(),
                                            if_match=headers.get("if_match"))
        return incident, _etag(incident)


@blp.route("/<uuid:incidentId>/retraction")
class IncidentRetraction(MethodView):
    @blp.arguments(IfMatchHeader, location="headers")
    @blp.arguments(RetractionIn)
    @blp.response(200, IncidentOut, headers={"ETag": ETAG})
    @blp.alt_response(409, response="CONFLICT", description="Already retracted")
    @blp.alt_response(412, response="PRECONDITION_FAILED", description="If-Match is not the current version")
    @requires(Role.INSTITUTION)
    @audited(EventType.RETRACT)
    def post(self, headers: dict[str, Any], data: dict[str, Any], incidentId: uuid.UUID) -> Any:
        """Retract an incident

        The record stays, marked retracted, and is left out of every statistic from now on.
        """
        incident = service.retract_incident(db.session, current_caller(), incidentId, data["reason"],
                                            if_match=headers.get("if_match"))
        return incident, _etag(incident)


@blp.route("/<uuid:incidentId>/revisions")
class IncidentRevisions(MethodView):
    @blp.response(200, RevisionList)
    @requires(Role.INSTITUTION)
    @audited(EventType.READ)
    def get(self, incidentId: uuid.UUID) -> dict[str, list[Revision]]:
        """List an incident's corrections and retraction"""
        return {"items": service.revisions_of(db.session, current_caller(), incidentId)}
