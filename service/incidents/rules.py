"""Rules an incident must satisfy as a whole, on creation and after every correction.

Field shapes and code lists are checked by the schemas; these are the rules across fields. Errors are keyed by
wire names so they become JSON pointers unchanged.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from service import clock
from service.taxonomy.service import load_taxonomy

CLOCK_SKEW = dt.timedelta(minutes=5)
OLDEST = dt.timedelta(days=10 * 366)
BLOCK_OF_KIND = {"absence": "absence", "suspiciousVisitor": "visitor"}


def incident_errors(values: Mapping[str, Any], now: dt.datetime | None = None) -> dict[str, Any]:
    """Every cross-field problem of a loaded (snake_case) incident, keyed by wire name."""
    now = now or clock.now()
    errors: dict[str, Any] = {}
    kind = values.get("kind")
    occurred_at = values.get("occurred_at")

    for block, wire in (("absence", "absence"), ("visitor", "visitor")):
        wanted = BLOCK_OF_KIND.get(kind or "") == block
        if wanted and not values.get(block):
            errors[wire] = [f"Required when kind is {kind}."]
        elif not wanted and values.get(block):
            errors[wire] = [f"Only for kind {'absence' if block == 'absence' else 'suspiciousVisitor'}."]

    if kind:
        wrong = load_taxonomy().invalid_indicators(kind, values.get("indicators") or [])
        if wrong:
            errors["indicators"] = [f"Not an indicator of kind {kind}: {', '.join(wrong)}."]

    if occurred_at is not None:
        if occurred_at > now + CLOCK_SKEW:
            errors["occurredAt"] = ["Must not be in the future."]
        elif occurred_at < now - OLDEST:
            errors["occurredAt"] = ["Must not be more than 10 years ago."]

    absence = values.get("absence") or {}
    if absence and "absence" not in errors:
        problems: dict[str, list[str]] = {}
        # A correction may create the block: then it needs what a new absence needs.
        for field, wire in (("whereabouts_known", "whereaboutsKnown"), ("risk_level", "riskLevel")):
            if absence.get(field) is None:
                problems[wire] = ["Missing data for required field."]
        ended_at = absence.get("ended_at")
        if ended_at is not None and occurred_at is not None and ended_at <= occurred_at:
            problems["endedAt"] = ["Must be after occurredAt."]
        elif ended_at is not None and ended_at > now + CLOCK_SKEW:
            problems["endedAt"] = ["Must not be in the future."]
        if problems:
            errors["absence"] = problems

    follow_up = values.get("follow_up") or {}
    reported_to, reported_at = follow_up.get("reported_to") or [], follow_up.get("reported_at")
    problems = {}
    if reported_to and reported_at is None:
        problems["reportedAt"] = ["Required when reportedTo is given."]
    if reported_at is not None and not reported_to:
        problems["reportedTo"] = ["Required when reportedAt is given."]
    if reported_at is not None and occurred_at is not None and reported_at < occurred_at:
        problems["reportedAt"] = ["Must not be before occurredAt."]
    elif reported_at is not None and reported_at > now + CLOCK_SKEW:
        problems["reportedAt"] = ["Must not be in the future."]
    if problems:
        errors["followUp"] = problems
    return errors
