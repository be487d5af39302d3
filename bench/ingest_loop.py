"""A rough in-process ingest rate: single creates and batches of 500 through the Flask test client.

Not the real benchmark (that drives gunicorn from another process, bench/run.py); it shows the order of magnitude of
the write path, counts its SQL statements, and measures in the same run what the access log's hash-chain append
costs single creates (an app with the access-log hook removed as the baseline). Usage:

    .venv/bin/python -m bench.ingest_loop [POSTGRES_SERVER_URL]   # default: a fresh SQLite file

On PostgreSQL it creates a scratch database beside the one named and drops it afterwards.

Writes bench/results/ingest-loop-<date>.json.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
import sys
import tempfile
import time
import uuid

if not __package__:  # started as a file, not with -m: see bench/_bootstrap.py
    import _bootstrap  # noqa: F401

from bench.common import RESULTS, prepare, scratch_database, statement_log, write_json
from service import create_app

SINGLES, BATCHES = 300, 6


def _body(location_id: str, n: int) -> dict[str, object]:
    occurred = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1 + n % 500)).isoformat()
    return {"clientReference": f"B-{uuid.uuid4().hex}", "locationId": location_id, "kind": "recruitmentAttempt",
            "exploitationType": "criminal", "occurredAt": occurred, "residentRef": f"CL-{n % 97}",
            "indicators": ["onlineGrooming"], "note": "benaderd bij de ingang", "followUp": {"meldcodeStep": 1}}


def main() -> None:
    if len(sys.argv) < 2:
        run(f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite3")
        return
    with scratch_database(sys.argv[1]) as url:
        run(url)


def run(url: str) -> None:
    app, token, location_id = prepare(url)
    http = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}

    statements = statement_log(app)
    http.post("/v1/incidents", json=_body(location_id, 0), headers=headers | {"Idempotency-Key": "warm"})
    statements.clear()
    http.post("/v1/incidents", json=_body(location_id, 1), headers=headers | {"Idempotency-Key": "count"})
    single_statements = len(statements)
    statements.clear()
    http.post("/v1/incidents/_batch", json={"items": [_body(location_id, n) for n in range(500)]}, headers=headers)
    batch_statements = len(statements)

    started = time.perf_counter()
    for n in range(SINGLES):
        keyed = headers | {"Idempotency-Key": f"s{n}"}
        response = http.post("/v1/incidents", json=_body(location_id, n), headers=keyed)
        assert response.status_code == 201, response.json
    single_rate = SINGLES / (time.perf_counter() - started)

    bodies = [{"items": [_body(location_id, b * 500 + n) for n in range(500)]} for b in range(BATCHES)]
    started = time.perf_counter()
    for body in bodies:
        assert http.post("/v1/incidents/_batch", json=body, headers=headers).status_code == 201
    batch_rate = BATCHES * 500 / (time.perf_counter() - started)

    # Same run, same database: single creates with the access-log hook removed, alternating to share the noise.
    bare = create_app(app.extensions["settings"])
    hooks = bare.after_request_funcs[None]
    bare.after_request_funcs[None] = [f for f in hooks if getattr(f, "__name__", "") != "_log_access"]
    bare_http = bare.test_client()
    with_log, without_log = [], []
    for round_ in range(3):
        for target, times in ((http, with_log), (bare_http, without_log)):
            started = time.perf_counter()
            for n in range(100):
                key = {"Idempotency-Key": f"r{round_}-{id(times)}-{n}"}
                response = target.post("/v1/incidents", json=_body(location_id, n), headers=headers | key)
                assert response.status_code == 201
            times.append(100 / (time.perf_counter() - started))

    result = {"database": url.split(":")[0], "python": platform.python_version(), "machine": platform.machine(),
              "statementsPerSingleCreate": single_statements, "statementsPerBatchOf500": batch_statements,
              "singleCreatesPerSecond": round(single_rate, 1), "batchIncidentsPerSecond": round(batch_rate, 1),
              "singleCreatesPerSecondWithAccessLog": round(sorted(with_log)[1], 1),
              "singleCreatesPerSecondWithoutAccessLog": round(sorted(without_log)[1], 1),
              "accessLogCostRatio": round(sorted(with_log)[1] / sorted(without_log)[1], 3)}
    write_json(RESULTS / f"ingest-loop-{dt.date.today()}-{result['database']}.json", result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
