"""Housekeeping jobs, and a timetable that runs them where there is no cron (docker-compose.yml's scheduler).

`maintenance purge` forgets expired idempotency keys and revocations (hourly); `retention purge` removes incidents
past RETENTION_YEARS and logs an access event with the counts (daily). Each job runs in a transaction of its own
and commits once; a job that fails is logged and tried again at its next turn.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from flask import Flask

from service.auth import service as auth
from service.db import db
from service.schemas import camelcase

log = logging.getLogger(__name__)
HOUR = 3600.0


def maintenance_purge(app: Flask) -> dict[str, Any]:
    from service.incidents.idempotency import purge_expired

    with app.app_context():
        keys = purge_expired(db.session)
        revocations = auth.purge_revoked_tokens(db.session)
        db.finish(commit=True)
    return {"idempotencyKeysRemoved": keys, "revokedTokensRemoved": revocations}


def retention_purge(app: Flask, dry_run: bool = False) -> dict[str, Any]:
    from service.retention import purge

    with app.app_context():
        purged = purge(db.session, app.extensions["chain_keys"], years=app.extensions["settings"].retention_years,
                       dry_run=dry_run)
        db.finish(commit=not dry_run)
    return {"dryRun": dry_run} | {camelcase(k): v for k, v in asdict(purged).items()}


@dataclass(frozen=True)
class Job:
    name: str
    every_seconds: float
    run: Callable[[Flask], dict[str, Any]]


TIMETABLE = (Job("maintenance purge", HOUR, maintenance_purge), Job("retention purge", 24 * HOUR, retention_purge))


class Stop(Protocol):
    def is_set(self) -> bool: ...

    def wait(self, timeout: float) -> bool: ...


def run_timetable(app: Flask, stop: Stop, *, once: bool = False, jobs: Sequence[Job] = TIMETABLE,
                  monotonic: Callable[[], float] = time.monotonic) -> int:
    """Run every job at once, then each again when its interval has passed, until `stop` is set (or, with `once`,
    after the first round). Returns how many runs failed."""
    due = {job.name: monotonic() for job in jobs}
    failures = 0
    while not stop.is_set():
        for job in jobs:
            if due[job.name] > monotonic() or stop.is_set():
                continue
            due[job.name] = monotonic() + job.every_seconds
            try:
                result = job.run(app)
            except Exception:
                failures += 1
                log.exception("%s failed; next try in %.0f s", job.name, job.every_seconds, extra={"job": job.name})
            else:
                log.info("%s: %s", job.name, result, extra={"job": job.name, "result": result})
        if once:
            break
        stop.wait(max(min(due.values()) - monotonic(), 0))
    return failures
