"""Load test: 50 concurrent clients for 60 seconds of mixed traffic against gunicorn on PostgreSQL.

    .venv/bin/python -m bench.load [--clients 50] [--duration 60] [--workers 2] [--drivers 1] [--incidents 5000]
                                   [--server-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres] [--output F]

1. Creates a scratch database `rr_load_<random>` beside the one named, runs `alembic upgrade head` and seeds
   3 institutions x 4 locations (with capacity), one institution client per institution, an analyst and an
   auditor for GM0014, and ~5,000 incidents over the last 18 months (in-process, `record_incidents`).
2. Starts gunicorn as the README does, on 127.0.0.1 and a free port, with the rate limits set out of reach (this
   measures throughput, not the limiter), and gets one token per client through `POST /v1/oauth/token`.
3. Runs the virtual clients (threads, one persistent `http.client` connection each, in `--drivers` processes):
   50% POST /v1/incidents, 10% POST /v1/incidents/_batch (20 items), 20% GET /v1/incidents?limit=50,
   15% GET /v1/stats/hotspots (last complete quarter, by location), 5% GET /v1/exports/incidents (one month,
   NDJSON, read to the end and checked against Export-Row-Count).
4. Prints a table per route (count, statuses, p50/p95/p99 in ms, requests/s), the service-side durations from
   gunicorn's log, CPU use of the driver, gunicorn and the PostgreSQL backends, and the workers' RSS; writes
   everything to bench/results/load-<UTC date>.json.
5. Always stops gunicorn and drops the scratch database.

Exits 1 when any response is a 5xx, any request fails at the transport level (timeout, reset), any response is not
the expected status or an export stream is incomplete, or gunicorn logs an error or a traceback.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import multiprocessing
import os
import random
import re
import resource
import secrets
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

if not __package__:  # started as a file, not with -m: see bench/_bootstrap.py
    import _bootstrap  # noqa: F401

from bench.common import (
    RESULTS,
    ROOT,
    SERVER_URL,
    Gunicorn,
    backends,
    call,
    children,
    cpu_seconds,
    indicators_by_kind,
    log_problems,
    machine,
    percentile,
    periods,
    plain_env,
    rss_kib,
    scratch_database,
    system_busy,
    token,
    upgrade,
    write_json,
)

MUNICIPALITY = "GM0014"
CREATE, BATCH, LIST = "POST /v1/incidents", "POST /v1/incidents/_batch", "GET /v1/incidents"
HOTSPOTS, EXPORT = "GET /v1/stats/hotspots", "GET /v1/exports/incidents"
ROUTES = {CREATE: 50, BATCH: 10, LIST: 20, HOTSPOTS: 15, EXPORT: 5}
EXPECTED = {CREATE: 201, BATCH: 201, LIST: 200, HOTSPOTS: 200, EXPORT: 200}
# The service's own log line: "<request id> <METHOD> <rule> <status> <ms>ms client=<id>".
LOG_LINE = re.compile(r" INFO service\.request \S+ (?P<method>[A-Z]+) (?P<rule>\S+) (?P<status>\d{3}) "
                      r"(?P<ms>[\d.]+)ms ")
BATCH_SIZE = 20
POSTCODES = ["9711", "9712", "9713", "9714", "9721", "9722", "9723", "9724", "9741", "9742", "9743", "9744"]


# --- the virtual clients (stdlib only: they run in spawned driver processes) ------------------------------------

def _wire_incident(rng: random.Random, location_id: str, reference: str, indicators: dict[str, list[str]],
                   now: dt.datetime) -> dict[str, Any]:
    """A plausible signal of the last two weeks, in wire (camelCase) form."""
    kind = rng.choices(["absence", "recruitmentAttempt", "suspiciousVisitor"], weights=[5, 3, 2])[0]
    occurred = now - dt.timedelta(hours=rng.randint(1, 14 * 24), minutes=rng.randint(0, 59))
    body: dict[str, Any] = {
        "clientReference": reference, "locationId": location_id, "kind": kind,
        "exploitationType": rng.choices(["criminal", "sexual", "labour", "unknown"], weights=[5, 4, 1, 2])[0],
        "occurredAt": occurred.isoformat(), "residentRef": f"LOAD-{rng.randint(1, 60)}",
        "residentAgeBand": rng.choice(["12to15", "16to17", "18to22"]),
        "indicators": rng.sample(indicators[kind], k=min(len(indicators[kind]), rng.randint(1, 3))),
        "followUp": {"meldcodeStep": rng.choice([None, 1, 2, 3])},
    }
    if kind == "absence":
        body["absence"] = {"endedAt": min(occurred + dt.timedelta(hours=rng.randint(2, 40)), now).isoformat(),
                           "whereaboutsKnown": rng.random() < 0.5, "riskLevel": rng.choice(["green", "orange", "red"])}
    if kind == "suspiciousVisitor":
        body["visitor"] = {"estimatedAgeBand": "23plus", "relationClaimed": rng.choice(["friend", "unknown"])}
    return body


def _request(cfg: dict[str, Any], rng: random.Random, index: int, serial: int) -> tuple[str, str, str, bytes | None,
                                                                                         dict[str, str]]:
    route = rng.choices(list(ROUTES), weights=list(ROUTES.values()))[0]
    institution = cfg["institutions"][index % len(cfg["institutions"])]
    now = dt.datetime.now(dt.UTC)
    json_headers = {"Content-Type": "application/json", "Idempotency-Key": uuid.uuid4().hex}

    def incident(n: int) -> dict[str, Any]:
        return _wire_incident(rng, rng.choice(institution["locations"]), f"LOAD-{cfg['run']}-{index}-{serial}-{n}",
                              cfg["indicators"], now)

    if route == CREATE:
        return route, "POST", "/v1/incidents", json.dumps(incident(0)).encode(), json_headers | {
            "Authorization": f"Bearer {institution['token']}"}
    if route == BATCH:
        body = {"items": [incident(n) for n in range(BATCH_SIZE)]}
        return route, "POST", "/v1/incidents/_batch", json.dumps(body).encode(), json_headers | {
            "Authorization": f"Bearer {institution['token']}"}
    if route == LIST:
        return route, "GET", "/v1/incidents?limit=50", None, {"Authorization": f"Bearer {institution['token']}"}
    if route == HOTSPOTS:
        return route, "GET", f"/v1/stats/hotspots?period={cfg['quarter']}&groupBy=location", None, {
            "Authorization": f"Bearer {cfg['analyst']}"}
    month = rng.choice(cfg["months"])
    return route, "GET", f"/v1/exports/incidents?from={month}&to={month}", None, {
        "Authorization": f"Bearer {cfg['auditor']}", "Accept": "application/x-ndjson"}


def _anomaly(route: str, status: int, response: http.client.HTTPResponse, data: bytes) -> str | None:
    """What is wrong with a response beyond its status, if anything."""
    if status != EXPECTED[route]:
        return f"status {status}: {data[:300].decode(errors='replace')}"
    if route == EXPORT:
        lines = data.splitlines()
        try:
            last = json.loads(lines[-1]) if lines else {}
        except ValueError:
            last = {}
        if "metadata" not in last:
            return "export stream does not end with a metadata line"
        if len(lines) - 1 != int(response.getheader("Export-Row-Count", "-1")):
            return f"export has {len(lines) - 1} rows, Export-Row-Count says {response.getheader('Export-Row-Count')}"
    return None


def _client(cfg: dict[str, Any], index: int, start_at: float, samples: list[tuple[Any, ...]]) -> None:
    rng = random.Random(f"{cfg['run']}-{index}")
    connection = http.client.HTTPConnection(cfg["host"], cfg["port"], timeout=cfg["timeout"])
    deadline = start_at + cfg["duration"]
    time.sleep(max(0.0, start_at - time.time()))
    serial = 0
    while time.time() < deadline:
        serial += 1
        route, method, path, body, headers = _request(cfg, rng, index, serial)
        fresh = connection.sock is None  # gunicorn's sync workers close after every response (no keep-alive)
        started = time.perf_counter()
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()  # exports: the whole stream
            status: int | str = response.status
            anomaly = _anomaly(route, response.status, response, data)
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            status, anomaly = f"error:{type(exc).__name__}", f"{type(exc).__name__}: {exc}"
        samples.append((route, status, (time.perf_counter() - started) * 1000, fresh, anomaly, time.time()))
    connection.close()


def drive(cfg: dict[str, Any], indexes: list[int], ready: Any, go: Any, start_at: Any, results: Any) -> None:
    """One driver process: a thread per virtual client; reports its samples and its own CPU time."""
    samples: list[tuple[Any, ...]] = []
    ready.put(os.getpid())
    go.wait()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.perf_counter()
    threads = [threading.Thread(target=_client, args=(cfg, i, start_at.value, samples), daemon=True) for i in indexes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    results.put({"pid": os.getpid(), "samples": samples, "cpuSeconds": cpu, "wallSeconds": time.perf_counter() - wall})


# --- setup: database and seed ----------------------------------------------------------------------------------

def seed(env: dict[str, str], incidents: int) -> dict[str, Any]:
    """Institutions, locations, clients and incidents over 18 months; returns client ids, secrets and locations."""
    from service import create_app
    from service.auth import service as auth
    from service.auth.access import Caller
    from service.auth.models import Role
    from service.config import load_settings
    from service.db import db
    from service.demo import _demo_incident
    from service.incidents.service import IdentityKeys, record_incidents
    from service.registry.models import Capacity, Institution, Location, Sector, Setting

    upgrade(env["DATABASE_URL"])
    settings = load_settings(env)
    app = create_app(settings)
    rng = random.Random(2026)
    now = dt.datetime.combine(dt.date.today(), dt.time(0), dt.UTC)
    sectors = [Sector.YOUTH_CARE, Sector.SECURE_YOUTH_CARE, Sector.SHELTER]
    settings_of = [Setting.OPEN, Setting.SEMI_SECURE, Setting.SECURE, Setting.SHELTER]
    seeded: dict[str, Any] = {"institutions": []}
    with app.app_context():
        keys = IdentityKeys.from_settings(settings)
        locations: list[tuple[Institution, Location, float]] = []
        for i, sector in enumerate(sectors):
            institution = Institution(name=f"Load institution {i + 1}", sector=sector, municipality_code=MUNICIPALITY)
            db.session.add(institution)
            db.session.flush()
            for j in range(4):
                places = 8 + 4 * j
                location = Location(institution_id=institution.id, name=f"Load location {i + 1}.{j + 1}",
                                    postcode4=POSTCODES[i * 4 + j], municipality_code=MUNICIPALITY,
                                    setting=settings_of[j],
                                    capacities=[Capacity(valid_from=now.date() - dt.timedelta(days=3 * 365),
                                                         places=places)])
                db.session.add(location)
                # One location is a clear hotspot, as in the demo data.
                locations.append((institution, location, places * (3.5 if (i, j) == (0, 1) else 1.0)))
        db.session.flush()
        total_weight = sum(weight for *_, weight in locations)
        serial = 0
        for institution in {inst.id: inst for inst, _, _ in locations}.values():
            caller = Caller(uuid.uuid4(), Role.INSTITUTION, institution.id, ())
            items = []
            for _, location, weight in (entry for entry in locations if entry[0] is institution):
                residents = [f"SEED-{location.postcode4}-{n}" for n in range(location.capacities[-1].places * 2)]
                for _ in range(round(incidents * weight / total_weight)):
                    serial += 1
                    occurred = now - dt.timedelta(days=rng.uniform(1, 548))
                    items.append(_demo_incident(rng, location, occurred, serial, residents, now))
            for start in range(0, len(items), 500):
                record_incidents(db.session, caller, items[start:start + 500], keys, batch=True)
            client, secret = auth.create_client(db.session, name=f"load-{institution.name}", role=Role.INSTITUTION,
                                                institution_id=institution.id)
            seeded["institutions"].append({
                "clientId": str(client.id), "secret": secret,
                "locations": [str(loc.id) for inst, loc, _ in locations if inst is institution]})
        for role in (Role.ANALYST, Role.AUDITOR):
            client, secret = auth.create_client(db.session, name=f"load-{role.value}", role=role,
                                                municipality_codes=[MUNICIPALITY])
            seeded[role.value] = {"clientId": str(client.id), "secret": secret}
        db.finish(commit=True)
        db.engine.dispose()
    seeded["incidents"] = serial
    return seeded


# --- the run ---------------------------------------------------------------------------------------------------

def summarise(samples: list[tuple[Any, ...]], elapsed: float) -> dict[str, Any]:
    per_route: dict[str, Any] = {}
    for route in ROUTES:
        mine = [s for s in samples if s[0] == route]
        latencies = sorted(s[2] for s in mine)
        per_route[route] = {
            "count": len(mine), "statuses": dict(sorted(Counter(str(s[1]) for s in mine).items())),
            "p50Ms": percentile(latencies, 50), "p95Ms": percentile(latencies, 95),
            "p99Ms": percentile(latencies, 99), "maxMs": round(latencies[-1], 1) if latencies else None,
            "requestsPerSecond": round(len(mine) / elapsed, 1)}
    return per_route


def service_times(log: Path, offset: int) -> dict[str, Any]:
    """Durations the service logged itself during the run (routing to response object; exports before streaming)."""
    rules = {CREATE: ("POST", "/v1/incidents"), BATCH: ("POST", "/v1/incidents/_batch"),
             LIST: ("GET", "/v1/incidents"), HOTSPOTS: ("GET", "/v1/stats/hotspots"),
             EXPORT: ("GET", "/v1/exports/incidents")}
    found: dict[tuple[str, str], list[float]] = defaultdict(list)
    with log.open("rb") as handle:
        handle.seek(offset)
        lines = handle.read().decode(errors="replace").splitlines()
    for line in lines:
        match = LOG_LINE.search(line)
        if match:
            found[(match["method"], match["rule"])].append(float(match["ms"]))
    out = {}
    for route, key in rules.items():
        ordered = sorted(found.get(key, []))
        out[route] = {"count": len(ordered), "p50Ms": percentile(ordered, 50), "p99Ms": percentile(ordered, 99)}
    return out


def run(args: argparse.Namespace, database_url: str, work: Path) -> dict[str, Any]:
    env = plain_env()
    metrics_dir = work / "metrics"
    metrics_dir.mkdir()
    env |= {"DATABASE_URL": database_url, "APP_ENV": "development", "INSTANCE_PATH": str(work / "instance"),
            "TOKEN_SECRET": secrets.token_hex(32), "PSEUDONYM_MASTER_KEY": secrets.token_hex(32),
            "RATE_LIMIT": "10000000 per minute", "TOKEN_RATE_LIMIT": "10000000 per minute",
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    started = time.perf_counter()
    seeded = seed(env, args.incidents)
    seed_seconds = time.perf_counter() - started
    print(f"seeded {seeded['incidents']} incidents in {seed_seconds:.1f}s", file=sys.stderr)

    log = work / "gunicorn.log"
    try:
        with Gunicorn(env, log, workers=args.workers) as gunicorn:
            return measure(args, seeded, gunicorn, database_url, seed_seconds)
    finally:
        problems = log_problems(log)
        if problems:  # keep the evidence
            kept = args.output.with_suffix(".gunicorn.log")
            shutil.copyfile(log, kept)
            print(f"gunicorn logged {len(problems)} problem lines; log kept at {kept}", file=sys.stderr)


def measure(args: argparse.Namespace, seeded: dict[str, Any], gunicorn: Gunicorn, database_url: str,
            seed_seconds: float) -> dict[str, Any]:
    gunicorn.wait_ready()
    port, log = gunicorn.port, gunicorn.log
    quarter, months = periods()
    cfg = {
        "host": "127.0.0.1", "port": port, "duration": args.duration, "timeout": args.timeout,
        "run": secrets.token_hex(3), "quarter": quarter, "months": months,
        "indicators": indicators_by_kind(),
        "institutions": [{"token": token(port, inst["clientId"], inst["secret"]), "locations": inst["locations"]}
                         for inst in seeded["institutions"]],
        "analyst": token(port, seeded["analyst"]["clientId"], seeded["analyst"]["secret"]),
        "auditor": token(port, seeded["auditor"]["clientId"], seeded["auditor"]["secret"]),
    }
    # One request per route before the clock starts: fails fast on a wrong body or token, warms the workers.
    warm = random.Random(0)
    for n in range(40):
        # Small serials: a reference holding nine digits could pass the BSN 11-proof, and is refused as one.
        route, method, path, body, headers = _request(cfg, warm, 0, -1 - n)
        status, data = call(port, method, path, body, headers)
        if status != EXPECTED[route]:
            raise RuntimeError(f"warm-up {route} answered {status}: {data[:500]!r}")

    master = gunicorn.pid
    workers = children(master)
    database = database_url.rsplit("/", 1)[1]
    context = multiprocessing.get_context("spawn")
    ready, results, go = context.Queue(), context.Queue(), context.Event()
    start_at = context.Value("d", 0.0)
    slices = [list(range(args.clients))[d::args.drivers] for d in range(args.drivers)]
    drivers = [context.Process(target=drive, args=(cfg, part, ready, go, start_at, results)) for part in slices]
    for driver in drivers:
        driver.start()
    for _ in drivers:
        ready.get(timeout=60)
    idle_before = system_busy()
    time.sleep(2)
    idle_after = system_busy()
    background = (idle_after[0] - idle_before[0]) / max(1, idle_after[1] - idle_before[1]) * len(
        os.sched_getaffinity(0))
    if background > 0.2:
        print(f"warning: the machine is already busy ({background:.2f} CPU cores) before the run", file=sys.stderr)
    log_offset = log.stat().st_size
    served_before = {pid: cpu_seconds(pid) for pid in [master, *workers]}
    pg_before = {pid: cpu_seconds(pid) for pid in backends(database)}
    busy_before = system_busy()
    start_at.value = time.time() + 0.5
    go.set()
    print(f"{args.clients} clients in {args.drivers} driver process(es) for {args.duration}s on port {port}",
          file=sys.stderr)
    outcomes = [results.get(timeout=args.duration + args.timeout + 120) for _ in drivers]
    for driver in drivers:
        driver.join(30)
    busy_after = system_busy()
    served = {pid: round(cpu_seconds(pid) - before, 2) for pid, before in served_before.items()}
    pg_cpu = sum(cpu_seconds(pid) - pg_before.get(pid, 0.0) for pid in backends(database))
    alive_workers = children(master)
    rss = {str(pid): rss_kib(pid) for pid in alive_workers}

    samples = [s for outcome in outcomes for s in outcome["samples"]]
    elapsed = max((s[5] for s in samples), default=start_at.value) - start_at.value
    per_route = summarise(samples, elapsed)
    fivexx = sum(1 for s in samples if isinstance(s[1], int) and s[1] >= 500)
    transport = sum(1 for s in samples if isinstance(s[1], str))
    anomalies = Counter(s[4] for s in samples if s[4])
    problems = log_problems(log)
    incidents_created = sum(1 if s[0] == CREATE else BATCH_SIZE for s in samples
                            if s[0] in (CREATE, BATCH) and s[1] == 201)
    driver_cpu = sum(o["cpuSeconds"] for o in outcomes)
    nproc = len(os.sched_getaffinity(0))
    busy_share = (busy_after[0] - busy_before[0]) / max(1, busy_after[1] - busy_before[1])
    return {
        "generatedAt": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(database_url),
        "configuration": {
            "clients": args.clients, "durationSeconds": args.duration, "drivers": args.drivers,
            "gunicorn": {"workers": args.workers, "workerClass": "sync", "config": "python:service.gunicorn"},
            "requestTimeoutSeconds": args.timeout, "mix": ROUTES, "batchSize": BATCH_SIZE,
            "hotspotsPeriod": quarter, "exportMonths": months, "rateLimit": "10000000 per minute",
            "seed": {"institutions": 3, "locationsPerInstitution": 4, "incidents": seeded["incidents"],
                     "spanDays": 548, "seconds": round(seed_seconds, 1)},
            "database": "PostgreSQL scratch database (dropped afterwards)",
        },
        "elapsedSeconds": round(elapsed, 2),
        "totals": {"requests": len(samples), "requestsPerSecond": round(len(samples) / elapsed, 1),
                   "fivexx": fivexx, "transportErrors": transport,
                   "unexpected": sum(anomalies.values()), "incidentsCreated": incidents_created,
                   "connectionsOpened": sum(1 for s in samples if s[3])},
        "routes": per_route,
        "serviceTimes": service_times(log, log_offset),
        "anomalies": [{"count": n, "what": what} for what, n in anomalies.most_common(20)],
        "cpu": {
            "driverSeconds": round(driver_cpu, 2),
            "driverCores": round(driver_cpu / elapsed, 2),
            "driverProcesses": [{"cpuSeconds": round(o["cpuSeconds"], 2), "wallSeconds": round(o["wallSeconds"], 2)}
                                for o in outcomes],
            "gunicornSeconds": served, "gunicornCores": round(sum(served.values()) / elapsed, 2),
            "postgresBackendSeconds": round(pg_cpu, 2), "postgresBackendCores": round(pg_cpu / elapsed, 2),
            "systemBusyShare": round(busy_share, 3),
            "systemBusyCores": round(busy_share * nproc, 2),
            "otherCores": round(busy_share * nproc - (driver_cpu + sum(served.values()) + pg_cpu) / elapsed, 2),
            "backgroundCoresBeforeRun": round(background, 2),
        },
        "gunicornWorkers": {"before": workers, "after": alive_workers, "rssKiB": rss,
                            "masterRssKiB": rss_kib(master)},
        "gunicornLogProblems": {"count": len(problems), "first": problems[:20]},
    }


def table(result: dict[str, Any]) -> str:
    rows = [f"{'route':<28}{'n':>7}{'req/s':>8}{'p50':>8}{'p95':>8}{'p99':>8}{'max':>8}  "
            f"{'svc p50':>8}{'svc p99':>8}  statuses"]
    for route, figures in result["routes"].items():
        svc = result["serviceTimes"][route]
        rows.append(f"{route:<28}{figures['count']:>7}{figures['requestsPerSecond']:>8}{figures['p50Ms']!s:>8}"
                    f"{figures['p95Ms']!s:>8}{figures['p99Ms']!s:>8}{figures['maxMs']!s:>8}  "
                    f"{svc['p50Ms']!s:>8}{svc['p99Ms']!s:>8}  {json.dumps(figures['statuses'])}")
    totals, cpu = result["totals"], result["cpu"]
    rows += [
        f"{'total':<28}{totals['requests']:>7}{totals['requestsPerSecond']:>8}   (ms; svc = duration the service "
        "logged, without queueing)",
        f"5xx: {totals['fivexx']}  transport errors: {totals['transportErrors']}  unexpected: {totals['unexpected']}"
        f"  incidents created: {totals['incidentsCreated']}  connections opened: {totals['connectionsOpened']}",
        f"CPU cores used: driver {cpu['driverCores']}  gunicorn {cpu['gunicornCores']}  postgres backends "
        f"{cpu['postgresBackendCores']}  rest (other processes, PG background, kernel) {cpu['otherCores']}\n"
        f"  (machine busy "
        f"{cpu['systemBusyShare']:.0%} of {result['machine']['nproc']} CPUs; {cpu['backgroundCoresBeforeRun']} cores "
        "busy just before the run)",
        "worker RSS (MiB): " + ", ".join(f"{pid}: {kib / 1024:.0f}" for pid, kib in
                                          result["gunicornWorkers"]["rssKiB"].items() if kib)
        + f"  master: {(result['gunicornWorkers']['masterRssKiB'] or 0) / 1024:.0f}",
        f"gunicorn log problem lines: {result['gunicornLogProblems']['count']}",
    ]
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server-url", default=SERVER_URL,
                        help="PostgreSQL server on 127.0.0.1; a scratch database is created beside this one")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--drivers", type=int, default=1, help="driver processes sharing the clients")
    parser.add_argument("--incidents", type=int, default=5000, help="incidents seeded before the run")
    parser.add_argument("--timeout", type=float, default=60, help="client socket timeout, seconds")
    parser.add_argument("--output", type=Path,
                        default=RESULTS / f"load-{dt.datetime.now(dt.UTC).date().isoformat()}.json")
    args = parser.parse_args()
    args.output = args.output.resolve()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="rr-load-"))
    try:
        with scratch_database(args.server_url, "rr_load") as url:
            result = run(args, url, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_json(args.output, result)
    print(table(result))
    print(f"wrote {args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output}")
    totals = result["totals"]
    failed = totals["fivexx"] or totals["transportErrors"] or totals["unexpected"] or \
        result["gunicornLogProblems"]["count"]
    if failed:
        print("FAILED: 5xx, transport errors, unexpected responses or gunicorn log problems (see the JSON)",
              file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
