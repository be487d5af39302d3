"""The access log for auditors: read it, and verify its hash chain."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask.views import MethodView
from sqlalchemy import Select

from service.audit import chain, service
from service.audit.models import AccessEvent
from service.audit.recording import audited, touched
from service.audit.schemas import EventArgs, EventPage, VerificationOut
from service.audit.service import EventType
from service.auth.access import current_caller, requires
from service.auth.models import Role
from service.db import db
from service.http import Blueprint
from service.pagination import LINK_HEADER, paginated

blp = Blueprint("audit-events", __name__, url_prefix="/v1/audit-events",
                description="The access log (NEN 7513) and its verification (auditors)")


@blp.route("")
class AuditEvents(MethodView):
    @blp.arguments(EventArgs, location="query", as_kwargs=True)
    @blp.response(200, EventPage, headers={"Link": LINK_HEADER})
    @requires(Role.AUDITOR)
    @audited(EventType.AUDIT)
    @paginated(AccessEvent.seq, then=lambda events, limit: touched(count=len(events), filters={"limit": limit}))
    def get(self, **filters: Any) -> Select[tuple[AccessEvent]]:
        """List access events

        Who touched which records, when, on whose behalf and with what outcome, oldest first. Reading the log is
        itself logged.
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
