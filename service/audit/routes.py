"""The access log for auditors: read it, and verify its hash chain."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import Response, current_app
from flask.views import MethodView
from sqlalchemy import Select

from service.audit import chain, service
from service.audit.models import AccessEvent
from service.audit.recording import audited, touched
from service.audit.schemas import EventArgs, EventOut, EventPage, VerificationOut
from service.audit.service import EventType
from service.auth.access import current_caller, requires
from service.auth.models import Role
from service.db import db
from service.http import JSON, Blueprint, negotiated, produces
from service.pagination import LINK_HEADER, Page, paginated
from service.spreadsheet import CSV, csv_text

blp = Blueprint("audit-events", __name__, url_prefix="/v1/audit-events",
                description="The access log (NEN 7513) and its verification (auditors)")


EVENT_COLUMNS = tuple(field.data_key for field in EventOut().fields.values())
AS_CSV = {"responses": {200: {"content": {CSV: {"schema": {"type": "string", "description": (
    "Asked by `Accept: text/csv`: the same page, one event per line. RFC 4180 with a UTF-8 byte order mark, every "
    "cell quoted, delimited by the `delimiter` parameter (`;` for Excel with Dutch settings); the columns "
    + ", ".join(EVENT_COLUMNS) + ". `records` joins incident ids with ';', `filters` joins name=value pairs with "
    "';'. The next page is in the `Link` header.")}}}}}}


def _event_row(event: dict[str, Any]) -> list[Any]:
    shown = event | {"filters": [f"{name}={value}" for name, value in sorted(event["filters"].items())]}
    return [shown[column] for column in EVENT_COLUMNS]


def page_or_csv(view: Callable[..., tuple[Page, dict[str, str]]]) -> Callable[..., Any]:
    """A page as its schema dumps it, or as CSV when the caller asks for it (with the same Link header)."""

    @functools.wraps(view)
    def answer(*args: Any, delimiter: str, **kwargs: Any) -> Any:
        page, headers = view(*args, **kwargs)
        if negotiated(JSON, CSV) != CSV:
            return page, headers
        rows = (_event_row(event) for event in EventOut(many=True).dump(page.items))
        return Response(csv_text(EVENT_COLUMNS, rows, delimiter), mimetype=CSV, headers=headers)

    return answer


@blp.route("")
class AuditEvents(MethodView):
    @blp.arguments(EventArgs, location="query", as_kwargs=True)
    @blp.response(200, EventPage, headers={"Link": LINK_HEADER})
    @blp.doc(**AS_CSV)
    @requires(Role.AUDITOR)
    @audited(EventType.AUDIT)
    @page_or_csv
    @paginated(AccessEvent.seq, then=lambda events, limit: touched(count=len(events), filters={"limit": limit}))
    @produces(JSON, CSV)
    def get(self, **filters: Any) -> Select[tuple[AccessEvent]]:
        """List access events

        Who touched which records, when, on whose behalf and with what outcome, oldest first, as JSON or (by
        `Accept: text/csv`) CSV. Reading the log is itself logged.
        """
        touched(filters=filters)
        return service.find_events(db.session, current_caller(), **filters)


@blp.route("/_verify")
class AuditVerification(MethodView):
    @blp.response(200, VerificationOut)
    @requires(Role.AUDITOR)
    @audited(EventType.AUDIT)
    def get(self) -> chain.Verification:
        """Verify the access log

        Walks the whole sealed chain and names the first event whose hash, link or key version is wrong, across key
        handovers. `head` is the hash of the last sealed event: record it elsewhere, so that a later removal of the
        newest events can be noticed too. Events are sealed shortly after they commit (within about a second);
        `unsealed` and `oldestUnsealedSeconds` report those still waiting, which the chain does not cover yet.
        """
        verification = chain.verify_chain(db.session, current_app.extensions["chain_keys"])
        touched(count=verification.events)
        return verification
