"""The access log for auditors: read it, and verify its hash chain."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask.views import MethodView

from service.audit import service
from service.audit.models import AccessEvent
from service.audit.recording import audited
from service.audit.schemas import EventArgs, EventPage, VerificationOut
from service.audit.service import EventType
from service.auth.access import current_caller, requires
from service.auth.models import Role
from service.db import db
from service.http import Blueprint
from service.pagination import LINK_HEADER, paginate

blp = Blueprint("audit-events", __name__, url_prefix="/v1/audit-events",
                description="The access log (NEN 7513) and its verification (auditors)")


@blp.route("")
class AuditEvents(MethodView):
    @blp.arguments(EventArgs, location="query", as_kwargs=True)
    @blp.response(200, EventPage, headers={"Link": LINK_HEADER})
    @requires(Role.AUDITOR)
    @audited(EventType.AUDIT)
    def get(self, limit: int, cursor: str | None = None, **filters: Any) -> tuple[Any, dict[str, str]]:
        """List access events

        Who touched which records, when, on whose behalf and with what outcome, oldest first. Reading the log is
        itself logged.
        """
        stmt = service.find_events(db.session, current_caller(), **filters)
        page = paginate(db.session, stmt, (AccessEvent.seq,), limit, cursor)
        return page, page.headers()


@blp.route("/_verify")
class AuditVerification(MethodView):
    @blp.response(200, VerificationOut)
    @requires(Role.AUDITOR)
    @audited(EventType.AUDIT)
    def get(self) -> service.Verification:
        """Verify the access log

        Walks the whole chain and names the first event whose hash or link is wrong. `head` is the hash of the
        last event: record it elsewhere, so that a later removal of the newest events can be noticed too.
        """
        return service.verify_chain(db.session, current_app.extensions["chain_key"])
