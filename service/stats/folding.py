"""Folding pending changes into the rollups in the background, and in one go for `risk-register stats fold`.

Every gunicorn worker starts a folder beside its sealer (service/gunicorn.py, post_worker_init), on the same
thread machinery (audit.sealing.Rounds) and interval (AUDIT_SEAL_INTERVAL; 0 turns both off). Folders and
statistics reads take turns through the fold lock (rollups.fold); the background only keeps the backlog a read
must fold small, exactness never depends on it.
"""

from __future__ import annotations

import ctypes

from flask import Flask

from service.audit.sealing import Rounds, one_round, until_short
from service.stats.rollups import FOLD_BATCH, fold

# glibc's, found among what the process has loaded (no search for the library); other C libraries have none.
MALLOC_TRIM = getattr(ctypes.CDLL(None), "malloc_trim", None)


def return_free_memory() -> None:
    """Hand what the heap holds free back to the system. A fold of thousands of changes allocates tens of MiB for
    a moment; glibc's malloc keeps freed memory for reuse, so without this a worker would stay at the peak of its
    largest fold (174 instead of 138 MiB after 20 s of bench/run.py's batches)."""
    if MALLOC_TRIM is not None:
        MALLOC_TRIM(0)


def fold_round(app: Flask, limit: int = FOLD_BATCH) -> int:
    """Fold up to `limit` pending changes in a transaction of its own, and commit; how many."""
    folded = one_round(app, lambda session: fold(session, limit), "folding")
    if folded:
        return_free_memory()
    return folded


def fold_everything(app: Flask) -> int:
    """Fold rounds until nothing is pending; how many changes were folded."""
    return until_short(lambda: fold_round(app), FOLD_BATCH)


def start_folder(app: Flask) -> Rounds | None:
    """Start this process's folder, unless AUDIT_SEAL_INTERVAL is 0."""
    interval = app.extensions["settings"].seal_interval_seconds
    if interval <= 0:
        return None
    folder = Rounds(app, interval, lambda app: fold_round(app) == FOLD_BATCH, "rollup-folder").start()
    app.extensions["folder"] = folder
    return folder
