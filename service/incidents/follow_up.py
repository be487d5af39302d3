"""The follow-up queue: an institution's signals that wait for a decision, oldest first, each with its guidance.

A signal is in the queue for each of these it meets (it may meet more than one):
- undecided: meldcode step below 5 and nothing reported, on the municipality's follow-up day (default 7) after the
  day it occurred, days counted in Europe/Amsterdam;
- unreportedRedRisk: an absence with risk level red that nobody reported (to a body, or missing to the police);
- openAbsence: an absence without endedAt 24 hours after it began.
Retracted signals are never in it. The conditions are written once, as SQL; an item's reasons are read back with the
same expressions, so what lists a signal and what says why cannot drift apart.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, func, literal, or_, select
from sqlalchemy.orm import Session

from service import clock
from service.auth.access import Caller
from service.incidents.models import Incident, Status
from service.incidents.service import Advised, adviser, incidents_for, signal_of

FOLLOW_UP_ORDER = (Incident.occurred_at, Incident.id)  # oldest first
OPEN_ABSENCE_AFTER = dt.timedelta(hours=24)
DECIDED_STEP = 5


class Reason(enum.StrEnum):
    UNDECIDED = "undecided"
    UNREPORTED_RED_RISK = "unreportedRedRisk"
    OPEN_ABSENCE = "openAbsence"


def undecided_before(today: dt.date, follow_up_days: int) -> dt.datetime:
    """Signals that occurred before this moment are `follow_up_days` days old or more today (Amsterdam days):
    the start of the day after the last day that is that old."""
    day = today - dt.timedelta(days=follow_up_days - 1)
    return dt.datetime.combine(day, dt.time(0), clock.AMSTERDAM).astimezone(dt.UTC)


def _conditions(follow_up_days: int, now: dt.datetime) -> dict[Reason, ColumnElement[bool]]:
    unreported = func.json_array_length(Incident.reported_to) == 0
    today = now.astimezone(clock.AMSTERDAM).date()
    return {
        Reason.UNDECIDED: and_(or_(Incident.meldcode_step.is_(None), Incident.meldcode_step < DECIDED_STEP),
                               unreported, Incident.occurred_at < undecided_before(today, follow_up_days)),
        Reason.UNREPORTED_RED_RISK: and_(Incident.absence_risk_level == "red", unreported,
                                         Incident.absence_reported_missing_to_police.is_not(True)),
        Reason.OPEN_ABSENCE: and_(Incident.kind == "absence", Incident.absence_ended_at.is_(None),
                                  Incident.occurred_at <= now - OPEN_ABSENCE_AFTER),
    }


def follow_up_queue(session: Session, caller: Caller) -> tuple[Select[tuple[Incident]], dict[str, int]]:
    """The statement of the caller's queue (page it in FOLLOW_UP_ORDER) and how many signals meet each reason."""
    conditions = _conditions(adviser(session, caller).follow_up_days, clock.now())
    active = incidents_for(caller).where(Incident.status == Status.ACTIVE)
    counts = session.execute(active.with_only_columns(
        *(func.coalesce(func.sum(case((condition, 1), else_=0)), 0).label(reason)
          for reason, condition in conditions.items()))).one()
    return active.where(or_(*conditions.values())), {reason.value: int(counts[i])
                                                     for i, reason in enumerate(conditions)}


def with_reasons(session: Session, caller: Caller, incidents: list[Incident]) -> list[Advised]:
    """A page of the queue: each signal with why it is there and its guidance (three statements a page)."""
    advice = adviser(session, caller)
    conditions = _conditions(advice.follow_up_days, clock.now())
    met: dict[Any, list[str]] = {incident.id: [] for incident in incidents}
    if incidents:
        rows = session.execute(select(Incident.id, *(case((c, literal(r.value)), else_=None)
                                                     for r, c in conditions.items()))
                               .where(Incident.id.in_(list(met))))
        for incident_id, *reasons in rows:
            met[incident_id] = [reason for reason in reasons if reason is not None]
    return [Advised(incident, advice.advise(signal_of(incident)), met[incident.id]) for incident in incidents]
