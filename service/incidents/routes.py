"""Incidents: institution clients record, find, correct and retract their own signals."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from typing import Any

from flask import Response, after_this_request, current_app, json, request
from flask.views import MethodView
from sqlalchemy import Select

from service.audit.chain import seal
from service.audit.recording import GIVEN, audited, touched, touched_items
from service.audit.service import EventType
from service.auth.access import current_caller, requires
from service.auth.models import Role
from service.db import db
from service.http import Blueprint
from service.incidents import attestation, follow_up, service
from service.incidents.idempotency import key_hash, request_hash, request_hash_key, run_once
from service.incidents.models import Incident, Revision
from service.incidents.schemas import (
    AdvisedIncidentOut,
    AttestationIn,
    AttestationOut,
    BatchIn,
    BatchOut,
    FollowUpPage,
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
    batch_body,
)
from service.incidents.service import IdentityKeys
from service.pagination import LINK_HEADER, PageArgs, paginated

blp = Blueprint("incidents", __name__, url_prefix="/v1/incidents",
                description="Signals of recruitment, suspicious visitors and absences (institution clients)")

# Built once: a marshmallow schema instance deep-copies its fields, which showed in the write path's profile.
ADVISED_OUT = AdvisedIncidentOut()
ETAG = {"description": "The incident's version, for If-Match", "schema": {"type": "string"}}
LOCATION = {"description": "URL of the recorded incident", "schema": {"type": "string"}}
REPLAYED = {"description": "`true` when this is the stored answer to an earlier request with the same key",
            "schema": {"type": "string"}}


def _keys() -> IdentityKeys:
    return IdentityKeys.from_settings(current_app.extensions["settings"])


def _etag(incident: Incident) -> dict[str, str]:
    return {"ETag": f'"{incident.version}"'}


def idempotent(view: Callable[..., tuple[list[Incident], Any]]) -> Callable[..., Response]:
    """Declare a create view safe to retry: once per Idempotency-Key (Stripe, IETF draft), the same key and body
    within 24 hours replay the first response's bytes with `Idempotent-Replayed: true`, another body is 422, and
    a request while the first still runs is 409. The view returns the incidents it recorded and the body to answer."""

    @functools.wraps(view)
    def once(self: Any, headers: dict[str, Any], data: dict[str, Any]) -> Response:
        caller, ring = current_caller(), current_app.extensions["settings"].pseudonym_keys
        # Active version first, oldest last (see run_once): replays survive a key rotation.
        versions = [ring.active, *(v for v in ring if v not in (ring.active, ring.oldest)), ring.oldest]
        recorded: list[Incident] = []

        def work() -> tuple[int, Any]:
            incidents, body = view(self, headers, data)
            recorded.extend(incidents)
            return 201, body

        key = headers.get("idempotency_key")
        # Only a keyed request is ever compared with another: unkeyed ones need no (keyed) hash of their body.
        fingerprints = [] if key is None else [request_hash(
            request_hash_key(ring[v]), request.method, request.path, request.get_json()) for v in versions]
        outcome = run_once(db.session, caller.client_id,
                           None if key is None else [key_hash(ring[v], key) for v in versions], fingerprints, work)
        response = current_app.response_class(outcome.body, status=outcome.status, mimetype="application/json")
        if recorded:
            created = [{"id": incident.id, "version": incident.version} for incident in recorded]
        else:  # a replay touched what the first request recorded: the stored answer names them
            stored = json.loads(outcome.body)
            created = stored.get("items", [stored])
        touched(item["id"] for item in created)
        if "items" not in data:
            response.headers.update({"Location": f"/v1/incidents/{created[0]['id']}",
                                     "ETag": f'"{created[0]["version"]}"'})
        if outcome.replayed:
            response.headers["Idempotent-Replayed"] = "true"
        return response

    return once


def _searched(filters: dict[str, Any]) -> dict[str, Any]:
    """The filters of a search as the access log keeps them: a residentRef as given, never its value."""
    return filters | ({"resident_ref": GIVEN} if filters.get("resident_ref") is not None else {})


@blp.route("")
class Incidents(MethodView):
    @blp.arguments(IncidentFilters, location="query", as_kwargs=True)
    @blp.response(200, IncidentPage, headers={"Link": LINK_HEADER})
    @requires(Role.INSTITUTION)
    @audited(EventType.SEARCH)
    @paginated(*service.LIST_ORDER, then=touched_items)
    def get(self, **filters: Any) -> Select[tuple[Incident]]:
        """List incidents

        The institution's own incidents in the order they were recorded, filtered, a page at a time.
        """
        touched(filters=filters)
        return service.matching_incidents(current_caller(), _keys(), **filters)

    @blp.arguments(IdempotencyHeader, location="headers")
    @blp.arguments(IncidentIn)
    @blp.response(201, AdvisedIncidentOut,
                  headers={"Location": LOCATION, "ETag": ETAG, "Idempotent-Replayed": REPLAYED})
    @blp.alt_response(409, response="CONFLICT", description="clientReference already recorded, or key in use")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY", description="Idempotency-Key reused for another body")
    @requires(Role.INSTITUTION)
    @audited(EventType.CREATE)
    @idempotent
    def post(self, headers: dict[str, Any], data: dict[str, Any]) -> tuple[list[Incident], Any]:
        """Record an incident

        One signal, without naming anyone: `residentRef`, `visitor.vehiclePlate` and `visitor.phoneNumber` are
        turned into keyed pseudonyms and never returned; `note` is refused when it holds identifying data.
        Send an `Idempotency-Key` to make retries safe (kept 24 hours).
        """
        [recorded] = service.record_advised(db.session, current_caller(), [data], _keys())
        return [recorded.incident], ADVISED_OUT.dump(recorded)


@blp.route("/_batch")
class IncidentBatch(MethodView):
    @blp.arguments(IdempotencyHeader, location="headers")
    @blp.arguments(BatchIn)
    @blp.doc(operationId="recordIncidentBatch")
    @blp.response(201, BatchOut, headers={"Idempotent-Replayed": REPLAYED})
    @blp.alt_response(409, response="CONFLICT", description="A clientReference is already recorded, or key in use")
    @blp.alt_response(422, response="UNPROCESSABLE_ENTITY", description="Idempotency-Key reused for another body")
    @requires(Role.INSTITUTION)
    @audited(EventType.CREATE)
    @idempotent
    def post(self, headers: dict[str, Any], data: dict[str, Any]) -> tuple[list[Incident], Any]:
        """Record up to 500 incidents at once

        All or nothing: one invalid item refuses the batch, and every error points into it (`/items/3/occurredAt`).
        """
        recorded = service.record_advised(db.session, current_caller(), data["items"], _keys(), batch=True)
        return [item.incident for item in recorded], batch_body(recorded)


FOLLOW_UP_COUNTS = {"description": "Signals in the queue per reason (all pages), for a badge: "
                                   "`undecided=3, unreportedRedRisk=1, openAbsence=2`", "schema": {"type": "string"}}


def _show_counts(counts: dict[str, int]) -> None:
    @after_this_request
    def add(response: Response) -> Response:
        response.headers["Follow-Up-Counts"] = ", ".join(f"{reason}={n}" for reason, n in counts.items())
        return response


@blp.route("/follow-up")
class FollowUpQueue(MethodView):
    @blp.arguments(PageArgs, location="query", as_kwargs=True)
    @blp.response(200, FollowUpPage, headers={"Link": LINK_HEADER, "Follow-Up-Counts": FOLLOW_UP_COUNTS})
    @requires(Role.INSTITUTION)
    @audited(EventType.SEARCH)
    @paginated(*follow_up.FOLLOW_UP_ORDER, then=touched_items,
               shown=lambda items: follow_up.with_reasons(db.session, current_caller(), items))
    def get(self) -> Select[tuple[Incident]]:
        """List the signals that wait for a decision

        The institution's own signals without a decision on the municipality's follow-up day (7 days after the
        day they occurred unless the municipality set another), absences at risk level red that nobody reported,
        and absences without `endedAt` after 24 hours: oldest first, each with why it is listed and its guidance.
        `Follow-Up-Counts` counts each reason over the whole queue.
        """
        queue, counts = follow_up.follow_up_queue(db.session, current_caller())
        touched(filters={"queue": "followUp"})
        _show_counts(counts)
        return queue


@blp.route("/_attestation")
class Attestation(MethodView):
    @blp.arguments(AttestationIn)
    @blp.response(200, AttestationOut, headers={"Cache-Control": {"schema": {"type": "string"}}})
    @requires(Role.INSTITUTION)
    @audited(EventType.ATTESTATION)
    def post(self, data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        """Get a signed statement of the signals about one resident

        Every signal the institution recorded about the resident named by `residentRef` (in the body, never in
        a URL): when it occurred and was recorded, kind, exploitation type, indicators, meldcode step, reports,
        corrections and retraction with their dates, and the access event of its creation in the hash chain;
        never the note. Signed by the service (ES256, key in /v1/oauth/jwks.json); anyone with the statement and
        the key set can verify it offline. A resident with no signals here gets a statement with none.
        """
        keys = current_app.extensions["signing_keys"]
        if keys.private_key is None:
            raise attestation.AttestationUnavailable("Signed statements are not configured on this service.")
        seal(db.session, current_app.extensions["chain_keys"])  # so that the creates it names have their place
        statement, ids, salt = attestation.attest(db.session, current_caller(), _keys(), data["resident_ref"],
                                                  current_app.extensions["settings"].token_issuer)
        touched(ids, filters={"resident_ref": GIVEN})
        return {"jws": keys.sign(statement), "kid": keys.kid, "statement": statement, "subject_salt": salt}, {
            "Cache-Control": "no-store"}


@blp.route("/_search")
class IncidentSearchView(MethodView):
    @blp.arguments(IncidentSearch, as_kwargs=True)
    @blp.response(200, IncidentPage)
    @requires(Role.INSTITUTION)
    @audited(EventType.SEARCH)
    @paginated(*service.LIST_ORDER, link=False, then=touched_items)
    def post(self, **filters: Any) -> Select[tuple[Incident]]:
        """Search incidents

        The list's filters plus `residentRef`, which must not travel in a URL. Page with `cursor` in the body.
        """
        touched(filters=_searched(filters))
        return service.matching_incidents(current_caller(), _keys(), **filters)


@blp.route("/<uuid:incidentId>")
class IncidentItem(MethodView):
    @blp.response(200, IncidentOut, headers={"ETag": ETAG})
    @requires(Role.INSTITUTION)
    @audited(EventType.READ)
    def get(self, incidentId: uuid.UUID) -> tuple[Incident, dict[str, str]]:
        """Get an incident"""
        incident = service.get_incident(db.session, current_caller(), incidentId)
        touched([incident.id])
        return incident, _etag(incident)

    @blp.arguments(IfMatchHeader, location="headers")
    @blp.arguments(IncidentPatch)
    @blp.response(200, AdvisedIncidentOut, headers={"ETag": ETAG})
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
        touched([incident.id])
        return service.advised(db.session, current_caller(), [incident])[0], _etag(incident)


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
        touched([incident.id])
        return incident, _etag(incident)


@blp.route("/<uuid:incidentId>/revisions")
class IncidentRevisions(MethodView):
    @blp.doc(operationId="listIncidentRevisions")
    @blp.response(200, RevisionList)
    @requires(Role.INSTITUTION)
    @audited(EventType.READ)
    def get(self, incidentId: uuid.UUID) -> dict[str, list[Revision]]:
        """List an incident's corrections and retraction"""
        revisions = service.revisions_of(db.session, current_caller(), incidentId)
        touched([incidentId])
        return {"items": revisions}
