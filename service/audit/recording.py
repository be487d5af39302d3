"""Writing an access event for every request to an audited route, in the transaction of the work it records.

A route declares its event type with `@audited(...)`. Refused attempts (401, 403, 404, 400, ...) are logged too:
their work is rolled back and the event alone is committed.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, current_app, g, json, request
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from service.audit.service import EventType, append_event, chain_key
from service.auth.access import Caller
from service.auth.models import Role
from service.db import db
from service.http import database_is_unavailable, database_unavailable, view_handler
from service.metrics import ACCESS_LOG_APPEND
from service.pagination import Page
from service.registry.models import Institution

# Search terms that identify someone are logged as "given", never as their value.
HIDDEN_FILTERS = {"residentRef"}
FILTER_NAMES = {"locationId", "kind", "exploitationType", "status", "occurredFrom", "occurredTo", "limit", "period",
                "groupBy", "breakdown", "municipalityCode", "periodType", "from", "to", "clientId", "eventType"}
FILTERED_EVENTS = {EventType.SEARCH, EventType.STATISTICS, EventType.EXPORT, EventType.AUDIT}
_municipality_of: dict[uuid.UUID, str] = {}


def audited(event_type: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Log every request to this route as an `event_type` access event, with the records it returned."""

    def declare(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def recorded(*args: Any, **kwargs: Any) -> Any:
            result = view(*args, **kwargs)
            if "audit_records" not in g:  # a view may have said it already (see `touched`)
                g.audit_records = _records(result, kwargs)
            return result

        recorded.audit_event = event_type  # type: ignore[attr-defined]
        return recorded

    return declare


def touched(records: list[str] | None = None, count: int | None = None) -> None:
    """For views whose result does not show what they touched (exports): say it here."""
    g.audit_records = (records or [], count)


def _ids(items: Any) -> list[str]:
    return [str(item["id"] if isinstance(item, dict) else item.id) for item in items
            if (isinstance(item, dict) and "id" in item) or hasattr(item, "id")]


def _records(result: Any, kwargs: dict[str, Any]) -> tuple[list[str], int | None]:
    if isinstance(result, tuple):
        result = result[0]
    if isinstance(result, Response):
        result = json.loads(result.get_data()) if result.is_json else {}
    if "incidentId" in kwargs:
        return [str(kwargs["incidentId"])], 1
    if isinstance(result, Page):
        return _ids(result.items), len(result.items)
    if isinstance(result, dict) and "items" in result:
        return _ids(result["items"]), len(result["items"])
    if isinstance(result, dict) and "units" in result:
        return [], len(result["units"])
    if isinstance(result, dict) and "id" in result:
        return [str(result["id"])], 1
    return [], None


def _filters(event_type: str, refused: bool) -> dict[str, str]:
    """The query of a search, statistic or export: known filter names only, and no values from refused input."""
    if event_type not in FILTERED_EVENTS:
        return {}
    given = request.args if request.method == "GET" else (request.get_json(silent=True) or {})
    if not isinstance(given, dict | type(request.args)):
        return {}
    return {key: "given" if key in HIDDEN_FILTERS or refused else str(value)[:64]
            for key, value in given.items() if key in FILTER_NAMES | HIDDEN_FILTERS}


def _municipality(caller: Caller | None) -> str | None:
    """The municipality an event belongs to, for auditors' scope: the institution's, or an analyst's single one."""
    if caller is None:
        return None
    if caller.role is Role.INSTITUTION and caller.institution_id is not None:
        if caller.institution_id not in _municipality_of:
            code = db.session.scalar(select(Institution.municipality_code)
                                     .where(Institution.id == caller.institution_id))
            if code is None:
                return None
            _municipality_of[caller.institution_id] = code
        return _municipality_of[caller.institution_id]
    codes = caller.municipality_codes
    return codes[0] if len(codes) == 1 and codes[0] != "*" else None


def _log_access(response: Response) -> Response:
    handler = view_handler(current_app.view_functions.get(request.endpoint or ""))
    event_type = getattr(handler, "audit_event", None)
    if event_type is None or response.status_code >= 500:
        return response
    refused = response.status_code >= 400
    session = db.session
    if refused:
        session.rollback()  # the refused work leaves nothing behind but its event
    # A refused request touched nothing, but the ids it asked for are what an auditor wants to see.
    named = [str(v) for v in (request.view_args or {}).values() if isinstance(v, uuid.UUID)]
    records, count = g.get("audit_records", ([], None)) if not refused else (named, 0)
    caller: Caller | None = g.get("caller")
    try:
        with ACCESS_LOG_APPEND.time():
            append_event(session, current_app.extensions["chain_key"], event_type=event_type,
                         route=f"{request.method} {request.url_rule.rule if request.url_rule else request.path}",
                         outcome=response.status_code, caller=caller, municipality_code=_municipality(caller),
                         records=records, record_count=count, filters=_filters(event_type, refused),
                         request_id=g.get("request_id"))
        if refused:
            session.commit()
    except DBAPIError as exc:
        if not database_is_unavailable(exc):
            raise
        # No access without its event: the answer is withheld (503) and the work rolled back.
        session.rollback()
        return database_unavailable(exc)
    return response


def init_app(app: Flask) -> None:
    """Register after http.init_app: Flask runs after-request hooks in reverse, so this runs before the commit."""
    app.extensions["chain_key"] = chain_key(app.extensions["settings"].pseudonym_master_key)
    app.after_request(_log_access)
