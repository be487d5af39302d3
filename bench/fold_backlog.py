"""What a statistics read costs when it must first fold a backlog of N pending changes, in-process against PostgreSQL.

    .venv/bin/python -m bench.fold_backlog [SERVER_URL] [--backlogs 0,1,100,10000] [--repeat 3]

Writes N incidents (no fold runs: the in-process app starts no background folder), then times one
`GET /v1/stats/hotspots` (current quarter, by institution) that folds them first; each backlog `--repeat` times.
A scratch database beside SERVER_URL is created, migrated and dropped. Prints one JSON line: per backlog the median
wall and worker-CPU milliseconds of the read, and the statements it sent.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import statistics
import time
import uuid
from typing import Any

from bench.common import SERVER_URL, incident_body, indicators_by_kind, prepare, scratch_database, statement_log

BATCH = 500


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("server_url", nargs="?", default=SERVER_URL)
    parser.add_argument("--backlogs", default="0,1,100,10000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with scratch_database(args.server_url, prefix="rr_fold") as url:
        print(json.dumps(measure(url, [int(n) for n in args.backlogs.split(",")], args.repeat)))


def measure(url: str, backlogs: list[int], repeat: int) -> dict[str, Any]:
    from flask_jwt_extended import create_access_token

    from service.auth import service as auth
    from service.auth.models import Role
    from service.db import db

    app, token, location_id = prepare(url)
    with app.app_context():
        analyst, _ = auth.create_client(db.session, name="bench analyst", role=Role.ANALYST,
                                        municipality_codes=["*"])
        analyst_token = create_access_token(identity=str(analyst.id), additional_claims=auth.token_claims(analyst))
        db.finish(commit=True)
    http = app.test_client()
    writer = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    reader = {"Authorization": f"Bearer {analyst_token}"}
    rng, indicators, now = random.Random(7), indicators_by_kind(), dt.datetime.now(dt.UTC)
    quarter = f"{now.year}-Q{(now.month - 1) // 3 + 1}"
    statements = statement_log(app)

    def write(n: int) -> None:
        while n > 0:
            items = []
            for _ in range(min(n, BATCH)):
                body = incident_body(rng, location_id, now, indicators)
                body["clientReference"] = f"C-{uuid.uuid4().hex}"
                items.append(body)
            response = http.post("/v1/incidents/_batch", data=json.dumps({"items": items}), headers=writer)
            assert response.status_code == 201, response.get_data(as_text=True)[:500]
            n -= len(items)

    def read() -> tuple[float, float, int]:
        statements.clear()
        started_cpu, started = time.process_time(), time.perf_counter()
        response = http.get("/v1/stats/hotspots", query_string={"period": quarter, "groupBy": "institution"},
                            headers=reader)
        wall, cpu = time.perf_counter() - started, time.process_time() - started_cpu
        assert response.status_code == 200, response.get_data(as_text=True)[:500]
        return wall * 1000, cpu * 1000, len(statements)

    write(2000)  # something in the rollups already, folded by a first read
    read()
    found: dict[str, Any] = {}
    for n in backlogs:
        runs = []
        for _ in range(repeat):
            write(n)
            runs.append(read())
        found[str(n)] = {"readWallMs": round(statistics.median(r[0] for r in runs), 1),
                         "readCpuMs": round(statistics.median(r[1] for r in runs), 1),
                         "statements": max(r[2] for r in runs)}
    return {"quarter": quarter, "backlogs": found}


if __name__ == "__main__":
    main()
