"""Running the sealer: a background thread in each app process, and one-shot rounds for `risk-register audit seal`.

Every gunicorn worker starts one (service/gunicorn.py, post_worker_init; AUDIT_SEAL_INTERVAL=0 turns it off, for a
deployment that seals from cron instead). They compete for the sealer's advisory lock each round, so one of them
seals and the others sleep; a host that dies leaves the work to the others. Tests start none unless they ask.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from flask import Flask
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from service.audit.chain import SEAL_BATCH, seal
from service.db import db

log = logging.getLogger(__name__)


def one_round(app: Flask, work: Callable[[Session], int], what: str) -> int:
    """Run `work` in a transaction of its own and commit; what it returns (how much it did). A round that loses a
    race (SQLite: its snapshot is stale; a unique key taken) does nothing and is retried later."""
    with app.app_context():
        try:
            done = work(db.session)
            db.finish(commit=True)
        except DBAPIError as exc:  # IntegrityError included
            db.finish(commit=False)
            log.info("%s round skipped: %s", what, type(exc).__name__)
            return 0
    return done


def until_short(run_round: Callable[[], int], batch: int) -> int:
    """Rounds until one does less than a full `batch`; how much they did together."""
    total = 0
    while (done := run_round()) == batch:
        total += done
    return total + done


def seal_round(app: Flask, limit: int = SEAL_BATCH) -> int:
    """Seal up to `limit` events in a round of its own (`chain_seq` taken by another sealer: nothing sealed)."""
    return one_round(app, lambda session: seal(session, app.extensions["chain_keys"], limit), "sealing")


def seal_everything(app: Flask) -> int:
    """Seal rounds until the unsealed tail is empty (or another sealer holds the lock); how many were sealed."""
    return until_short(lambda: seal_round(app), SEAL_BATCH)


class Rounds:
    """A daemon thread that runs `work(app)` every `interval` seconds (at once again while it says there is more)
    until stopped: the sealer's, and any other background upkeep of an app process (stats/folding.py)."""

    def __init__(self, app: Flask, interval: float, work: Callable[[Flask], bool], name: str) -> None:
        self.app, self.interval, self.work = app, interval, work
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Rounds:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop after the round in progress; whether the thread has ended."""
        self._stop.set()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        wait = self.interval
        while not self._stop.wait(wait):
            try:
                wait = 0.0 if self.work(self.app) else self.interval
            except Exception:
                log.exception("%s round failed; next try in %.2f s", self._thread.name, self.interval)
                wait = self.interval


class Sealer(Rounds):
    """Seals every `interval` seconds (at once again after a full batch) until stopped."""

    def __init__(self, app: Flask, interval: float) -> None:
        super().__init__(app, interval, lambda app: seal_round(app) == SEAL_BATCH, "access-log-sealer")


def start_sealer(app: Flask) -> Sealer | None:
    """Start this process's sealer, unless AUDIT_SEAL_INTERVAL is 0."""
    interval = app.extensions["settings"].seal_interval_seconds
    if interval <= 0:
        return None
    sealer = Sealer(app, interval).start()
    app.extensions["sealer"] = sealer
    return sealer
