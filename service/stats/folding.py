"""Folding pending changes into the rollups in the background, and in one go for `risk-register stats fold`.

Every gunicorn worker starts a folder beside its sealer (service/gunicorn.py, post_worker_init), on the same
thread machinery (audit.sealing.Rounds) and interval (AUDIT_SEAL_INTERVAL; 0 turns both off). Folders and
statistics reads take turns through the fold lock (rollups.fold); the background only keeps the backlog a read
must fold small, exactness never depends on it.
"""

from __future__ import annotations

import logging

from flask import Flask
from sqlalchemy.exc import DBAPIError

from service.audit.sealing import Rounds
from service.db import db
from service.stats.rollups import FOLD_BATCH, fold

log = logging.getLogger(__name__)


def fold_round(app: Flask, limit: int = FOLD_BATCH) -> int:
    """Fold up to `limit` pending changes in a transaction of its own, and commit; how many."""
    with app.app_context():
        try:
            folded = fold(db.session, limit)
            db.finish(commit=True)
        except DBAPIError as exc:
            db.finish(commit=False)
            log.info("folding round skipped: %s", type(exc).__name__)
            return 0
    return folded


def fold_everything(app: Flask) -> int:
    """Fold rounds until nothing is pending; how many changes were folded."""
    total = 0
    while (folded := fold_round(app)) == FOLD_BATCH:
        total += folded
    return total + folded


def start_folder(app: Flask) -> Rounds | None:
    """Start this process's folder, unless AUDIT_SEAL_INTERVAL is 0."""
    interval = app.extensions["settings"].seal_interval_seconds
    if interval <= 0:
        return None
    folder = Rounds(app, interval, lambda app: fold_round(app) == FOLD_BATCH, "rollup-folder").start()
    app.extensions["folder"] = folder
    return folder
