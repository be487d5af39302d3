"""A rough in-process ingest rate: single creates and batches of 500 through the Flask test client.

Not the real benchmark (that drives gunicorn from another process, bench/run.py); it shows the order of magnitude of
the write path, counts its SQL statements, and measures in the same run what the access log's hash-chain append
costs single creates (an app with the access-log hook removed as the baseline). Usage:

    .venv/bin/python bench/ingest_loop.py [POSTGRES_SERVER_URL]   # default: a fresh SQLite file

On PostgreSQL it creates a scratch database beside the one named and drops it afterwards.

Writes bench/results/ingest-loop-<date>.json.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
import secrets
import sys
import tempfile
import time
import uuid
from pathlib import Path

from alembic import command
from flask import Flask
from flask_jwt_extended import create_access_token
from scratch import scratch_database
from sqlalchemy import event

from service import create_app
from service.auth import service as auth
from service.auth.models import Role
from service.config import Settings
from service.db import db
from service.operations import alembic_config
from service.registry.models import Capacity, Institution, Location, Sector, Setting

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


def prepare(url: str) -> tuple[Flask, str, str]:
    """Migrate the database at `url`, seed one institution with a location and a client: (app, token, location)."""
    command.upgrade(alembic_config(url), "head")
    app = create_app(Settings(environment="test", instance_path=Path(tempfile.mkdtemp()), database_url=url,
                              token_secret=secrets.token_hex(32), pseudonym_master_key=secrets.token_bytes(32),
                              rate_limit="1000000 per minute"))
    with app.app_context():
        institution = Institution(name="bench", sector=Sector.YOUTH_CARE, municipality_code="GM0014")
        db.session.add(institution)
        db.session.flush()
        location = Location(institution_id=institution.id, name="bench", postcode4="9712", municipality_code="GM0014",
                            setting=Setting.OPEN, capacities=[Capacity(valid_from=dt.date(2024, 1, 1), places=10)])
        db.session.add(location)
        client, _ = auth.create_client(db.session, name="bench", role=Role.INSTITUTION, institution_id=institution.id)
        token = create_access_token(identity=str(client.id), additional_claims=auth.token_claims(client))
        location_id = str(location.id)
        db.finish(commit=True)
    return app, token, location_id


def run(url: str) -> None:
    app, token, location_id = prepare(url)
    http = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}

    statements: list[str] = []
    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
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
    out = Path(__file__).parent / "results" / f"ingest-loop-{dt.date.today()}-{result['database']}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
