"""Writing an access event for every request to an audited route, in the transaction of the work it records.

A route declares its event type with `@audited(...)`, and its view says what it touched and with which filters
with `touched(...)`: the access log reads nothing of a view's result and knows no other domain. Refused attempts
(401, 403, 404, 400, ...) are logged too, naming the records their path asked for: their work is rolled back, and
the request's one commit (service/http.py) keeps the event alone.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from flask import Flask, Response, current_app, g, request
from sqlalchemy.exc import DBAPIError

from service.audit.keys import ChainKeys
from service.audit.service import append_event
from service.auth.access import Caller
from service.auth.models import Role
from service.db import db
from service.http import database_is_unavailable, database_unavailable, is_field_name, on_finish, view_handler
from service.metrics import ACCESS_LOG_APPEND
from service.schemas import camelcase

GIVEN = "given"  # what a filter that identifies someone (a residentRef) is logged as, never its value
MAX_FILTER_TEXT = 64

MunicipalityOf = Callable[[uuid.UUID], str | None]


def audited(event_type: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Log every request to this route as an `event_type` access event, with what its view says it touched."""

    def declare(view: Callable[..., Any]) -> Callable[..., Any]:
        view.audit_event = event_type  # type: ignore[attr-defined]
        return view

    return declare


def touched(records: Iterable[object] | None = None, count: int | None = None,
            filters: Mapping[str, Any] | None = None) -> None:
    """Say what this request touched: the ids of the records, or how many there were (a statistic's units, an
    export's rows), and the filters it used (names as the code has them; values already validated; None left out;
    pass GIVEN for a value that identifies someone). Called more than once, each call adds what it says."""
    ids, counted, shown = g.get("audit_touched", ([], None, {}))
    if records is not None:
        ids = [str(record) for record in records]
        counted = len(ids)
    g.audit_touched = (ids, counted if count is None else count, shown | _shown(filters or {}))


def touched_items(items: Iterable[Any], limit: int) -> None:
    """A page's records, by id, and the page size asked: for `paginated(..., then=touched_items)`."""
    touched((item.id for item in items), filters={"limit": limit})


def _text(value: Any) -> str:
    if isinstance(value, enum.Enum):
        value = value.value
    elif isinstance(value, dt.datetime):
        value = value.isoformat()
    elif hasattr(value, "label"):  # a Period
        value = value.label
    return str(value)[:MAX_FILTER_TEXT]


def _shown(filters: Mapping[str, Any]) -> dict[str, str]:
    return {camelcase(name): _text(value) for name, value in filters.items() if value is not None}


def _municipality(caller: Caller | None) -> str | None:
    """The municipality an event belongs to, for auditors' scope: the institution's, or an analyst's single one."""
    if caller is None:
        return None
    if caller.role is Role.INSTITUTION and caller.institution_id is not None:
        return current_app.extensions["municipality_of"](caller.institution_id)
    codes = caller.municipality_codes
    return codes[0] if len(codes) == 1 and codes[0] != "*" else None


def _log_access(response: Response) -> Response:
    event_type = getattr(view_handler(current_app.view_functions.get(request.endpoint or "")), "audit_event", None)
    if event_type is None or response.status_code >= 500:
        return response
    session = db.session
    if response.status_code >= 400:
        session.rollback()  # the refused work leaves nothing behind but its event
        # It touched nothing, but the ids it asked for are what an auditor wants to see.
        asked = [str(value) for value in (request.view_args or {}).values() if isinstance(value, uuid.UUID)]
        # Nor is a value of refused input kept: only the names of the query parameters it gave.
        records, count, filters = asked, 0, {name: GIVEN for name in request.args if is_field_name(name)}
        g.commit_refused = True
    else:
        records, count, filters = g.get("audit_touched", ([], None, {}))
    caller: Caller | None = g.get("caller")
    try:
        with ACCESS_LOG_APPEND.time():
            append_event(session, current_app.extensions["chain_keys"], event_type=event_type,
                         route=f"{request.method} {request.url_rule.rule if request.url_rule else request.path}",
                         outcome=response.status_code, caller=caller, municipality_code=_municipality(caller),
                         records=records, record_count=count, filters=filters, request_id=g.get("request_id"))
    except DBAPIError as exc:
        if not database_is_unavailable(exc):
            raise
        # No access without its event: the answer is withheld (503) and the work rolled back.
        session.rollback()
        g.commit_refused = False
        return database_unavailable(exc)
    return response


def init_app(app: Flask, *, municipality_of: MunicipalityOf) -> None:
    """`municipality_of` gives an institution's municipality (the registry's, handed in by create_app: the access log
    is a layer below the registry and does not import it)."""
    app.extensions["chain_keys"] = ChainKeys.from_settings(app.extensions["settings"])
    app.extensions["municipality_of"] = functools.lru_cache(maxsize=4096)(municipality_of)
    on_finish(app, _log_access)
