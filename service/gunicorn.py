"""gunicorn configuration (`gunicorn -c python:service.gunicorn service.wsgi:app`), shared by
`risk-register serve`, the Docker image and the benchmarks."""

from __future__ import annotations

import gc
import os
from typing import Any

worker_class = "sync"
# A worker stuck longer than this (a slow client included: sync workers read the request themselves) is killed and
# replaced. In production put a buffering reverse proxy (nginx, a load balancer) in front, so slow clients hold the
# proxy's connections rather than one of the few workers.
timeout = 30
graceful_timeout = 20
keepalive = 5
limit_request_line = 4094
limit_request_fields = 50
limit_request_field_size = 8190
accesslog = None  # the service logs each request itself, without query strings


def child_exit(_server: Any, worker: Any) -> None:
    """Drop a dead worker's live gauges from the shared Prometheus files."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


# The cyclic garbage collector took ~18% of a 500-incident batch's CPU (issue 6): at the default threshold of 700
# allocations it ran every few hundred rows, each time walking every object the batch still held. Requests leave
# little cyclic garbage (reference counting frees the rest), so collecting young objects every 20,000 allocations
# keeps memory flat while the batch path stops paying for it.
GC_THRESHOLDS = (20_000, 20, 50)


def tune_garbage_collection() -> None:
    """Freeze what the app allocated while loading (never garbage; no collection walks it again), and collect
    young objects less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def post_worker_init(_worker: Any) -> None:
    tune_garbage_collection()
