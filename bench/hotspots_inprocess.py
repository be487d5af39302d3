"""Where a hotspots request spends its time, in-process against PostgreSQL, on a generated register.

    .venv/bin/python -m bench.hotspots_inprocess [--incidents 200000] [--requests 100] [--server-url URL]

Generates a scratch register as bench/run.py does (bench/generate.py: COPY, then the rollup rebuild), then sends
`GET /v1/stats/hotspots?period=<last complete quarter>&groupBy=institution` as a national analyst through the Flask
test client, with garbage collection tuned as a gunicorn worker tunes it (service/gunicorn.py). Reports the wall
p50/p95 and the CPU per request, and the wall milliseconds per request of the main steps (each timed around the
function that does it). Compare two commits by running each checkout's copy with `PYTHONPATH=<checkout>` on the
same machine, alternating. Writes `bench/results/hotspots-inprocess-<UTC date>.json`.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import functools
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if not __package__:  # started as a file, not with -m: see bench/_bootstrap.py
    import _bootstrap  # noqa: F401

from bench.common import RESULTS, SERVER_URL, percentile, periods, scratch_database, upgrade, write_json
from bench.generate import generate

# (module, function) pairs timed per request: the steps of service.stats.service.hotspots and around it.
STEPS = (("service.stats.service", "units_and_places"), ("service.stats.service", "unit_tallies"),
         ("service.stats.service", "_figures"), ("service.stats.service", "control_limits"),
         ("service.stats.service", "_trends"), ("service.stats.service", "hotspots"),
         ("service.stats.routes", "camelised"))


def _timed(spent: collections.Counter[str]) -> None:
    import importlib

    for module_name, name in STEPS:
        module = importlib.import_module(module_name)
        step = getattr(module, name)

        @functools.wraps(step)
        def timed(*args: Any, _step: Any = step, _name: str = name, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return _step(*args, **kwargs)
            finally:
                spent[_name] += time.perf_counter() - started

        setattr(module, name, timed)


def measure(url: str, incidents: int, requests: int) -> dict[str, Any]:
    from flask_jwt_extended import create_access_token

    from service import create_app
    from service.auth import service as auth
    from service.auth.models import Role
    from service.config import Settings
    from service.db import db
    from service.gunicorn import tune_garbage_collection

    upgrade(url)
    generated = generate(url, incidents, secrets.token_bytes(32))
    spent: collections.Counter[str] = collections.Counter()
    _timed(spent)
    app = create_app(Settings(environment="test", instance_path=Path(tempfile.mkdtemp()), database_url=url,
                              token_secret=secrets.token_hex(32), pseudonym_master_key=secrets.token_bytes(32),
                              rate_limit="1000000 per minute", log_level="WARNING"))
    with app.app_context():
        analyst, _ = auth.create_client(db.session, name="bench analyst", role=Role.ANALYST, municipality_codes=["*"])
        token = create_access_token(identity=str(analyst.id), additional_claims=auth.token_claims(analyst))
        db.finish(commit=True)
    http, headers = app.test_client(), {"Authorization": f"Bearer {token}"}
    quarter, _ = periods()
    query = {"period": quarter, "groupBy": "institution"}
    for _ in range(10):  # warm-up: caches, prepared statements
        assert http.get("/v1/stats/hotspots", query_string=query, headers=headers).status_code == 200
    tune_garbage_collection()
    spent.clear()
    walls = []
    cpu_started = time.process_time()
    for _ in range(requests):
        started = time.perf_counter()
        response = http.get("/v1/stats/hotspots", query_string=query, headers=headers)
        walls.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.get_data(as_text=True)[:300]
    cpu = (time.process_time() - cpu_started) * 1000 / requests
    walls.sort()
    return {"generatedAt": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "incidents": incidents,
            "quarter": quarter, "requests": requests, "units": len(response.json["units"]),
            "p50Ms": round(percentile(walls, 50) or 0, 2), "p95Ms": round(percentile(walls, 95) or 0, 2),
            "cpuMsPerRequest": round(cpu, 2),
            "stepsMsPerRequest": {name: round(seconds * 1000 / requests, 2) for name, seconds in spent.most_common()},
            "generation": {k: generated[k] for k in ("rows", "timings")}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--incidents", type=int, default=200_000)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--server-url", default=SERVER_URL)
    args = parser.parse_args()
    with scratch_database(args.server_url, "rr_hot") as url:
        result = measure(url, args.incidents, args.requests)
    path = write_json(RESULTS / f"hotspots-inprocess-{dt.date.today().isoformat()}.json", result)
    print(result, f"\nwritten to {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
