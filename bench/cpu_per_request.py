"""Worker CPU and SQL statements per write request, in-process (Flask test client) against PostgreSQL.

The figure that bounds `POST /v1/incidents` and `_batch` under gunicorn is the worker's CPU per request
(PostgreSQL is not the bottleneck). This measures it directly with time.process_time, which a busy shared machine
disturbs far less than wall-clock rates, and counts the statements each request sends:

    .venv/bin/python -m bench.cpu_per_request [SERVER_URL] [--singles 300] [--batches 6] [--profile single|batch]

SERVER_URL defaults to postgresql+psycopg://postgres@127.0.0.1:5432/postgres; a scratch database beside it is
created, migrated and dropped. Bodies are those of bench/run.py (`bench.common.incident_body`; no Idempotency-Key,
like the benchmark), and the app runs at log level INFO with the rate limiter on, as under gunicorn. For a
before/after comparison run it from two checkouts alternately (`PYTHONPATH=<checkout> .venv/bin/python
bench/cpu_per_request.py`: started as a file, PYTHONPATH comes before this checkout), the machine being shared.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import json
import pstats
import random
import sys
import time
import uuid
from typing import Any

if not __package__:  # started as a file, not with -m: see bench/_bootstrap.py
    import _bootstrap  # noqa: F401

from bench.common import SERVER_URL, incident_body, indicators_by_kind, prepare, scratch_database, statement_log

BATCH = 500


def _bodies(rng: random.Random, location_id: str, count: int) -> list[dict[str, Any]]:
    indicators = indicators_by_kind()
    now = dt.datetime.now(dt.UTC)
    bodies = []
    for _ in range(count):
        body = incident_body(rng, location_id, now, indicators)
        body["clientReference"] = f"C-{uuid.uuid4().hex}"
        bodies.append(body)
    return bodies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("server_url", nargs="?", default=SERVER_URL)
    parser.add_argument("--singles", type=int, default=300)
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--profile", choices=["single", "batch"], help="cProfile that phase (stats to stderr)")
    parser.add_argument("--worker-gc", action="store_true",
                        help="tune garbage collection as gunicorn workers do (service/gunicorn.py)")
    parser.add_argument("--profile-file", help="also save the raw cProfile stats here (for pstats)")
    args = parser.parse_args()
    with scratch_database(args.server_url, prefix="rr_cpu") as url:
        print(json.dumps(measure(url, args)))


def measure(url: str, args: argparse.Namespace) -> dict[str, Any]:
    app, token, location_id = prepare(url)
    if args.worker_gc:
        from service.gunicorn import tune_garbage_collection

        tune_garbage_collection()
    http = app.test_client()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    rng = random.Random(7)
    singles = [json.dumps(b) for b in _bodies(rng, location_id, args.singles + 20)]
    batches = [json.dumps({"items": _bodies(rng, location_id, BATCH)}) for _ in range(args.batches + 1)]

    statements = statement_log(app)

    def post(path: str, body: str) -> None:
        response = http.post(path, data=body, headers=headers)
        assert response.status_code == 201, response.get_data(as_text=True)[:500]

    for body in singles[:20]:  # warm-up: caches, connections, compiled statements
        post("/v1/incidents", body)
    post("/v1/incidents/_batch", batches[0])
    statements.clear()
    post("/v1/incidents", singles[20])
    single_statements = list(statements)
    statements.clear()
    post("/v1/incidents/_batch", batches[1])
    batch_statements = list(statements)

    profiler = cProfile.Profile() if args.profile else None

    def phase(name: str, path: str, bodies: list[str]) -> tuple[float, float]:
        """CPU and wall seconds for posting `bodies`, profiled when this is the phase asked for."""
        started_cpu, started = time.process_time(), time.perf_counter()
        if profiler and args.profile == name:
            profiler.enable()
        for body in bodies:
            post(path, body)
        if profiler and args.profile == name:
            profiler.disable()
        return time.process_time() - started_cpu, time.perf_counter() - started

    single_cpu, single_wall = phase("single", "/v1/incidents", singles[21:])
    batch_cpu, batch_wall = phase("batch", "/v1/incidents/_batch", batches[2:])
    done = max(len(singles) - 21, 1)
    if profiler and args.profile_file:
        profiler.dump_stats(args.profile_file)
    if profiler:
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(60)
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(40)
    for text in single_statements:
        print("single:", " ".join(text.split())[:160], file=sys.stderr)
    for text in batch_statements:
        print("batch:", " ".join(text.split())[:160], file=sys.stderr)
    return {
        "singleCpuMsPerRequest": round(single_cpu / done * 1000, 3),
        "singleWallMsPerRequest": round(single_wall / done * 1000, 3),
        "statementsPerSingleCreate": len(single_statements),
        "batchCpuMsPerRequest": round(batch_cpu / max(args.batches - 1, 1) * 1000, 1),
        "batchWallMsPerRequest": round(batch_wall / max(args.batches - 1, 1) * 1000, 1),
        "batchCpuUsPerIncident": round(batch_cpu / max(args.batches - 1, 1) / BATCH * 1e6, 1),
        "batchIncidentsPerCpuSecond": round(max(args.batches - 1, 1) * BATCH / batch_cpu),
        "statementsPerBatchOf500": len(batch_statements),
    }


if __name__ == "__main__":
    main()
