"""The gunicorn configuration's worker hooks."""

from __future__ import annotations

import gc

from service import gunicorn


def test_a_worker_freezes_what_it_loaded_and_collects_young_objects_less_often() -> None:
    before = gc.get_threshold()
    try:
        gunicorn.post_worker_init(None)

        assert gc.get_threshold() == gunicorn.GC_THRESHOLDS
        assert gc.get_threshold()[0] >= 10_000
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
