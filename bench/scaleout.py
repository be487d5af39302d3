"""Scale-out on one machine: two service instances (gunicorn, two sync workers each, on different ports) behind one
PostgreSQL and one Redis, with a mixed load from a second process. Small scale: about a minute of load.

Phases:

1. rate limit: both instances restarted with RATE_LIMIT=20 per minute; one client sends 30 requests alternating
   between them; exactly 20 may pass (a limit per instance would let 30 through).
2. idempotency across hosts: a create with a key on instance A is replayed by instance B (same id, Idempotent-Replayed);
   the same key with another body is 422 on B; the same new key sent to A and B at once stores one incident.
3. load: a second process (`--drive`) sends creates (each with an Idempotency-Key and a unique clientReference),
   batches of 20 and audited reads to both instances for `--seconds`; every write that got no 2xx is retried with its
   key on the other instance. While it runs, pg_locks is sampled for advisory locks.
4. checks and figures: every acknowledged incident stored exactly once under its acknowledged id; the access log
   sealed by the workers' sealers, then `risk-register audit verify` valid with nothing left unsealed; seal lag
   (sealed_at - occurred_at: from the request's insert to its link) p50/p99/max; the statements of one create and
   one audited read (no lock); and the sealer's own capacity on a backlog, which is the audited requests per second
   the one remaining serialisation allows.

Usage (a PostgreSQL server on 127.0.0.1:5432 and Redis; the scratch database is dropped at the end):

    .venv/bin/python -m bench.scaleout [--seconds 60] [--redis redis://127.0.0.1:6379/5]

Writes bench/results/scaleout-<UTC date>.json and exits 1 when any check fails.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

if not __package__:  # started as a file, not with -m: see bench/_bootstrap.py
    import _bootstrap  # noqa: F401

from bench.common import (
    RESULTS,
    ROOT,
    SERVER_URL,
    Gunicorn,
    call,
    letters,
    log_problems,
    machine,
    percentile,
    plain_env,
    scratch_database,
    upgrade,
    write_json,
)

INSTANCES, WORKERS, DRIVER_THREADS = 2, 2, 8
RATE_LIMIT, RATE_LIMIT_REQUESTS = 20, 30
BACKLOG = 20_000


def incident(location_id: str, ref: str) -> dict[str, Any]:
    occurred = dt.datetime.now(dt.UTC) - dt.timedelta(hours=random.randint(1, 24 * 30))
    return {"clientReference": ref, "locationId": location_id, "kind": "recruitmentAttempt",
            "exploitationType": random.choice(["criminal", "sexual"]), "occurredAt": occurred.isoformat(),
            "residentRef": f"CL-{random.randint(1, 60)}", "residentAgeBand": "16to17",
            "indicators": ["onlineGrooming"]}


def send(port: int, token: str, method: str, path: str, body: Any = None, key: str | None = None
         ) -> tuple[int, dict[str, Any], dict[str, str]]:
    import http.client

    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    if key:
        headers["Idempotency-Key"] = key
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=None if body is None else json.dumps(body).encode(), headers=headers)
        response = connection.getresponse()
        payload = response.read()
        document = json.loads(payload) if payload and response.getheader("Content-Type", "").endswith("json") else {}
        return response.status, document if isinstance(document, dict) else {}, dict(response.getheaders())
    finally:
        connection.close()


# --- the driver: a process of its own --------------------------------------------------------------------------

def drive(config: dict[str, Any]) -> dict[str, Any]:
    """Mixed load on every port until `seconds` have passed; then every write without a 2xx is retried with its key
    on another port. Returns the acknowledged ids by clientReference and the status counts."""
    ports, token, location, seconds = config["ports"], config["token"], config["locationId"], config["seconds"]
    acknowledged: dict[str, str] = {}
    pending: list[tuple[str, dict[str, Any], str, int]] = []  # path, body, key, port index
    statuses: Counter[str] = Counter()
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def one(thread: int) -> None:
        n = 0
        while time.monotonic() < deadline:
            n += 1
            port = ports[(thread + n) % len(ports)]
            roll = random.random()
            started = time.monotonic()
            try:
                if roll < 0.5:
                    refs = [f"S-{letters(20)}"]
                    path, body = "/v1/incidents", incident(location, refs[0])
                elif roll < 0.6:
                    refs = [f"S-{letters(20)}" for _ in range(20)]
                    path, body = "/v1/incidents/_batch", {"items": [incident(location, r) for r in refs]}
                else:
                    status, _, _ = send(port, token, "GET", "/v1/incidents?limit=10")
                    with lock:
                        statuses[f"list {status}"] += 1
                        latencies.append(time.monotonic() - started)
                    continue
                key = uuid.uuid4().hex
                status, document, _ = send(port, token, "POST", path, body, key)
            except OSError as exc:
                with lock:
                    statuses[f"error {type(exc).__name__}"] += 1
                continue
            with lock:
                latencies.append(time.monotonic() - started)
                statuses[f"{'batch' if len(refs) > 1 else 'create'} {status}"] += 1
                if 200 <= status < 300:
                    for item in document.get("items", [document]):
                        acknowledged[item["clientReference"]] = item["id"]
                else:
                    pending.append((path, body, key, ports.index(port)))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(config["threads"])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    retried: Counter[str] = Counter()
    for path, body, key, index in pending:
        status, document, _ = send(ports[(index + 1) % len(ports)], token, "POST", path, body, key)
        retried[str(status)] += 1
        if 200 <= status < 300:
            for item in document.get("items", [document]):
                acknowledged[item["clientReference"]] = item["id"]
    ordered = sorted(latencies)
    return {"acknowledged": acknowledged, "statuses": dict(statuses), "retried": dict(retried),
            "requests": len(latencies), "requestsPerSecond": round(len(latencies) / seconds, 1),
            "latencyMs": {"p50": percentile([x * 1000 for x in ordered], 50),
                          "p99": percentile([x * 1000 for x in ordered], 99)}}


# --- the checks ----------------------------------------------------------------------------------------------

class Checks:
    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def add(self, name: str, passed: bool, details: Any = None) -> None:
        self.items.append({"name": name, "passed": bool(passed), "details": details})
        print(f"  [{'pass' if passed else 'FAIL'}] {name}", flush=True)

    @property
    def passed(self) -> bool:
        return all(item["passed"] for item in self.items)


def start_instances(env: dict[str, str], work: Path, tag: str) -> list[Gunicorn]:
    instances = [Gunicorn(env, work / f"{tag}-{n}.log", workers=WORKERS).start() for n in range(INSTANCES)]
    for instance in instances:
        instance.wait_ready(seconds=60)
    return instances


def stop(instances: list[Gunicorn]) -> None:
    for instance in instances:
        instance.stop()


def rate_limit_is_shared(env: dict[str, str], work: Path, token: str, checks: Checks) -> dict[str, Any]:
    instances = start_instances(env | {"RATE_LIMIT": f"{RATE_LIMIT} per minute"}, work, "ratelimit")
    try:
        statuses = [call(instances[n % INSTANCES].port, "GET", "/v1/taxonomy",
                         headers={"Authorization": f"Bearer {token}"})[0] for n in range(RATE_LIMIT_REQUESTS)]
    finally:
        stop(instances)
    counted = Counter(statuses)
    checks.add(f"rate limit shared: {RATE_LIMIT} of {RATE_LIMIT_REQUESTS} requests over two instances pass",
               counted == {200: RATE_LIMIT, 429: RATE_LIMIT_REQUESTS - RATE_LIMIT}, dict(counted))
    return {"limitPerMinute": RATE_LIMIT, "sent": RATE_LIMIT_REQUESTS, "statuses": dict(counted)}


def idempotency_across_hosts(ports: list[int], token: str, location: str, engine: Any, checks: Checks
                             ) -> dict[str, Any]:
    from sqlalchemy import text

    key, ref = uuid.uuid4().hex, f"I-{letters(16)}"
    body = incident(location, ref)
    first = send(ports[0], token, "POST", "/v1/incidents", body, key)
    replay = send(ports[1], token, "POST", "/v1/incidents", body, key)
    other = send(ports[1], token, "POST", "/v1/incidents", body | {"exploitationType": "labour"}, key)
    checks.add("idempotency: a key used on instance A is replayed by instance B with the same incident",
               first[0] == 201 and replay[0] == 201 and replay[2].get("Idempotent-Replayed") == "true"
               and replay[1].get("id") == first[1].get("id"),
               {"first": first[0], "replay": replay[0], "replayed": replay[2].get("Idempotent-Replayed")})
    checks.add("idempotency: the same key with another body is 422 on the other instance", other[0] == 422,
               {"status": other[0]})
    raced_key, raced_ref = uuid.uuid4().hex, f"I-{letters(16)}"
    raced_body = incident(location, raced_ref)
    with ThreadPoolExecutor(2) as pool:
        raced = list(pool.map(lambda port: send(port, token, "POST", "/v1/incidents", raced_body, raced_key)[0],
                              ports))
    with engine.connect() as connection:
        stored = connection.execute(text("SELECT count(*) FROM incident WHERE client_reference = :r"),
                                    {"r": raced_ref}).scalar()
    checks.add("idempotency: one key sent to both instances at once stores one incident",
               stored == 1 and sorted(raced) in ([201, 201], [201, 409]), {"statuses": raced, "stored": stored})
    return {"firstReplayOther": [first[0], replay[0], other[0]], "raced": raced, "racedStored": stored}


def sample_advisory_locks(url: str, stop_event: threading.Event, found: Counter[str]) -> None:
    """Which advisory locks are held in the scratch database (the server may serve others), every 20 ms: the
    sealer's, the token limit's, or one per idempotency key."""
    from sqlalchemy import create_engine, text

    from service.audit.chain import SEAL_LOCK
    from service.ratelimit import SHARED_COUNT_LOCK

    names = {SEAL_LOCK: "sealer", SHARED_COUNT_LOCK: "tokenRateLimit"}
    engine = create_engine(url)
    with engine.connect() as connection:
        while not stop_event.wait(0.02):
            found["samples"] += 1
            rows = connection.execute(text(
                "SELECT (classid::bigint << 32) | objid::bigint FROM pg_locks "
                "WHERE locktype = 'advisory' AND granted "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())")).scalars()
            for lock in rows:
                found[names.get(lock, "idempotencyKey")] += 1
            connection.rollback()
    engine.dispose()


def request_statements(url: str) -> dict[str, Any]:
    """The statements one create and one audited read send, in-process (no lock among them)."""
    from bench.common import prepare, statement_log

    app, token, location = prepare(url)
    statements = statement_log(app)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    client.post("/v1/incidents", headers=headers, json=incident(location, f"T-{uuid.uuid4().hex[:12]}"))
    create = list(statements)
    statements.clear()
    client.get("/v1/incidents?limit=10", headers=headers)
    read = list(statements)
    app.extensions["database"]["engine"].dispose()
    locking = [s for s in create + read if "advisory" in s or s.lstrip().upper().startswith("LOCK")]
    return {"create": len(create), "auditedRead": len(read), "lockStatements": locking}


def seal_lag(engine: Any, since: dt.datetime) -> dict[str, Any]:
    from sqlalchemy import text

    with engine.connect() as connection:
        lags = sorted(r[0] for r in connection.execute(text(
            "SELECT EXTRACT(EPOCH FROM sealed_at - occurred_at) * 1000 FROM access_event "
            "WHERE occurred_at >= :since AND sealed_at IS NOT NULL"), {"since": since}))
    return {"events": len(lags), "p50Ms": percentile([float(x) for x in lags], 50),
            "p99Ms": percentile([float(x) for x in lags], 99), "maxMs": round(float(lags[-1]), 1) if lags else None}


def sealer_capacity(url: str, env: dict[str, str]) -> dict[str, Any]:
    """Seal a backlog of BACKLOG unsealed events in one process: events per second of the one sealer."""
    from sqlalchemy import text

    from service import create_app
    from service.audit.sealing import seal_everything
    from service.db import db

    app = create_app(env)
    with app.app_context():
        db.session.execute(text(
            "INSERT INTO access_event (occurred_at, event_type, client_id, role, acted_for, municipality_code, route, "
            "records, record_count, filters, outcome, request_id) SELECT now(), 'read', gen_random_uuid(), "
            "'institution', gen_random_uuid()::text, 'GM0014', 'GET /v1/incidents/<uuid:incidentId>', "
            "json_build_array(gen_random_uuid()::text), 1, '{\"limit\": \"10\"}'::json, 200, md5(g::text) "
            "FROM generate_series(1, :n) AS g"), {"n": BACKLOG})
        db.finish(commit=True)
    started = time.perf_counter()
    sealed = seal_everything(app)
    seconds = time.perf_counter() - started
    app.extensions["database"]["engine"].dispose()
    return {"backlog": BACKLOG, "sealed": sealed, "seconds": round(seconds, 2),
            "eventsPerSecond": round(sealed / seconds) if seconds else None}


def audit(env: dict[str, str], *args: str) -> tuple[int, dict[str, Any]]:
    done = subprocess.run([str(Path(sys.executable).parent / "risk-register"), "audit", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    try:
        return done.returncode, json.loads(done.stdout)
    except ValueError:
        return done.returncode, {"output": (done.stdout + done.stderr)[-800:]}


def run(seconds: float, redis_url: str) -> dict[str, Any]:
    from flask_jwt_extended import create_access_token
    from sqlalchemy import create_engine, text

    from service import create_app
    from service.auth import service as auth
    from service.auth.models import Role
    from service.db import db
    from service.registry.models import Capacity, Institution, Location, Sector, Setting

    checks = Checks()
    result: dict[str, Any] = {"instances": INSTANCES, "workersEach": WORKERS, "driverThreads": DRIVER_THREADS,
                              "loadSeconds": seconds, "redis": redis_url.rsplit("@", 1)[-1]}
    work = Path(tempfile.mkdtemp(prefix="rr-scaleout-"))
    with scratch_database(SERVER_URL, "rr_scaleout") as url:
        result["machine"] = machine(url)
        upgrade(url)
        env = plain_env() | {
            "APP_ENV": "production", "DATABASE_URL": url, "REDIS_URL": redis_url, "INSTANCE_PATH": str(work),
            "TOKEN_SECRET": secrets.token_hex(32), "PSEUDONYM_MASTER_KEY": secrets.token_hex(32),
            "METRICS_TOKEN": secrets.token_urlsafe(32), "RATE_LIMIT": "1000000 per minute",
            "TOKEN_RATE_LIMIT": "1000 per minute", "LOG_LEVEL": "WARNING"}
        app = create_app(env)
        with app.app_context():
            institution = Institution(name="scaleout", sector=Sector.YOUTH_CARE, municipality_code="GM0014")
            db.session.add(institution)
            db.session.flush()
            location = Location(institution_id=institution.id, name="scaleout", postcode4="9712",
                                municipality_code="GM0014", setting=Setting.OPEN,
                                capacities=[Capacity(valid_from=dt.date(2024, 1, 1), places=10)])
            db.session.add(location)
            tokens = []
            for name in ("load", "limit"):
                client, _ = auth.create_client(db.session, name=name, role=Role.INSTITUTION,
                                               institution_id=institution.id)
                db.session.flush()
                tokens.append(create_access_token(identity=str(client.id),
                                                  additional_claims=auth.token_claims(client)))
            location_id = str(location.id)
            db.finish(commit=True)
        app.extensions["database"]["engine"].dispose()
        load_token, limit_token = tokens
        engine = create_engine(url)

        print("rate limit across instances ...", flush=True)
        result["rateLimit"] = rate_limit_is_shared(env, work, limit_token, checks)
        instances = start_instances(env, work, "load")
        ports = [instance.port for instance in instances]
        try:
            print("idempotency across instances ...", flush=True)
            result["idempotency"] = idempotency_across_hosts(ports, load_token, location_id, engine, checks)
            print(f"load for {seconds:.0f} s from a second process ...", flush=True)
            since = dt.datetime.now(dt.UTC)
            stop_sampling, locks = threading.Event(), Counter()
            sampler = threading.Thread(target=sample_advisory_locks, args=(url, stop_sampling, locks))
            sampler.start()
            config = {"ports": ports, "token": load_token, "locationId": location_id, "seconds": seconds,
                      "threads": DRIVER_THREADS}
            done = subprocess.run([sys.executable, "-m", "bench.scaleout", "--drive", json.dumps(config)], cwd=ROOT,
                                  capture_output=True, text=True, timeout=seconds + 300)
            stop_sampling.set()
            sampler.join()
            if done.returncode != 0:
                raise RuntimeError(f"the driver failed: {done.stderr[-1500:]}")
            driven = json.loads(done.stdout)
            time.sleep(2)  # the sealers' next rounds
            with engine.connect() as connection:
                unsealed_after_load = connection.execute(text(
                    "SELECT count(*) FROM access_event WHERE chain_seq IS NULL")).scalar()
        finally:
            stop(instances)
        problems = [line for instance in instances for line in log_problems(instance.log)]

        acknowledged = driven.pop("acknowledged")
        with engine.connect() as connection:
            stored = Counter()
            ids: dict[str, str] = {}
            for ref, incident_id in connection.execute(text(
                    "SELECT client_reference, CAST(id AS text) FROM incident WHERE client_reference LIKE 'S-%'")):
                stored[ref] += 1
                ids[ref] = incident_id
        missing = [r for r in acknowledged if stored[r] == 0]
        doubled = [r for r, n in stored.items() if n > 1]
        wrong_id = [r for r, i in acknowledged.items() if stored[r] and ids[r] != i]
        checks.add("every acknowledged incident stored exactly once, under its acknowledged id",
                   acknowledged and not missing and not doubled and not wrong_id,
                   {"acknowledged": len(acknowledged), "stored": sum(stored.values()), "missing": missing[:5],
                    "doubled": doubled[:5], "wrongId": wrong_id[:5]})
        checks.add("no errors in the instances' logs", not problems, problems[:10])
        result["load"] = driven | {"acknowledgedIncidents": len(acknowledged)}
        result["sealLag"] = seal_lag(engine, since) | {"unsealedTwoSecondsAfterLoad": unsealed_after_load,
                                                       "sealIntervalSeconds": 0.25}
        result["advisoryLockSamples"] = dict(locks)
        lag = result["sealLag"]
        checks.add("seal lag under load: p99 at most 1 s", lag["p99Ms"] is not None and lag["p99Ms"] <= 1000, lag)

        code, sealed = audit(env, "seal")
        code, verified = audit(env, "verify")
        checks.add("after sealing the chain is valid and nothing is left unsealed",
                   code == 0 and verified.get("valid") is True and verified.get("unsealed") == 0,
                   {"seal": sealed, "verify": verified})
        result["verify"] = verified
        result["requestStatements"] = request_statements_on_copy(url)
        checks.add("a create and an audited read take no lock (no advisory lock, no LOCK TABLE)",
                   not result["requestStatements"]["lockStatements"], result["requestStatements"])
        result["globalLockPerRequestMs"] = 0.0
        result["sealer"] = sealer_capacity(url, env)
        result["theoreticalAuditedRequestsPerSecond"] = result["sealer"]["eventsPerSecond"]
        engine.dispose()
    result["checks"], result["passed"] = checks.items, checks.passed
    return result


def request_statements_on_copy(url: str) -> dict[str, Any]:
    """request_statements on a scratch database of its own (prepare() seeds and migrates it)."""
    with scratch_database(SERVER_URL, "rr_scaleout_statements") as other:
        return request_statements(other)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the mixed load runs")
    parser.add_argument("--redis", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/5"),
                        help="the Redis both instances share")
    parser.add_argument("--drive", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drive:
        print(json.dumps(drive(json.loads(args.drive))))
        return 0
    started = dt.datetime.now(dt.UTC)
    result = {"startedAt": started.isoformat(timespec="seconds")} | run(args.seconds, args.redis)
    result["durationSeconds"] = round((dt.datetime.now(dt.UTC) - started).total_seconds(), 1)
    path = write_json(RESULTS / f"scaleout-{started.date().isoformat()}.json", result)
    print(f"scaleout: {'PASSED' if result['passed'] else 'FAILED'} -> {path}")
    for key in ("load", "sealLag", "sealer", "advisoryLockSamples", "theoreticalAuditedRequestsPerSecond"):
        print(f"  {key}: {json.dumps(result.get(key))[:400]}")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
