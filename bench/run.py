"""The benchmark: the service against its physical baseline, side by side in one run (`make bench`).

    .venv/bin/python -m bench.run [--incidents 1000000] [--at-scale 5000000] [--duration 20] [--threads 2]
                                  [--connections 16] [--server-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

1. One scratch database `rr_bench_<random>`: `alembic upgrade head`, `bench.generate.generate()` (COPY + rollup
   rebuild), 8 institution clients, a national analyst and a national auditor (`'*'`).
2. The baseline (`bench/baseline_app.py`) under gunicorn `-c python:service.gunicorn --workers 2`: wrk on
   `GET /hello` and `POST /rows`. Stopped.
3. The plain GROUP BY over `incident` that answers what hotspots answers, timed in-process (nothing else running).
4. The service under the same gunicorn configuration: wrk on `POST /v1/incidents`, `POST /v1/incidents/_batch`
   (500 items), `GET /v1/stats/hotspots` (one connection: latency, not throughput), then one NDJSON export of the
   quarter read by this process, with the workers' RSS sampled while it streams. Stopped.
5. With --at-scale N (default 5,000,000; 0 skips it): a second scratch database of N incidents, generated the same
   way, on which the plain GROUP BY and the hotspots request (one connection) are measured again.
6. bench/results/bench-<UTC date>.json and BENCHMARKS.md at the root. The scratch databases are always dropped.

wrk (Debian package `wrk`) is the load driver, in its own process; its CPU time is reported next to gunicorn's and
PostgreSQL's so one can see who was saturated.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
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
    incident_body,
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
from bench.generate import generate

BATCH = 500
TEMPLATES = 64
TARGETS = {"createVsBaseline": 0.5, "batchIncidentsPerSecond": 20_000, "hotspotsP95Ms": 25,
           "hotspotsVsGroupBy": 10, "exportRowsPerSecond": 50_000, "workerRssMiB": 150}

LUA = r"""
local templates = {%(templates)s}
local run = "%(run)s"
function init(args)
  run = run .. "-" .. (args[1] or "")
end
local counter = 0
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function request()
  counter = counter + 1
  local t = templates[counter %% #templates + 1]
  local k = 0
  local body = t.body
  if body ~= nil then
    body = body:gsub("@REF@", function() k = k + 1; return run .. "-" .. tid .. "-" .. counter .. "-" .. k end)
  end
  return wrk.format(t.method, t.path, t.headers, body)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCH {"requests":%%d,"durationUs":%%d,"connect":%%d,"read":%%d,"write":%%d,' ..
    '"status":%%d,"timeout":%%d,"p50Us":%%d,"p95Us":%%d,"p99Us":%%d,"maxUs":%%d,"meanUs":%%.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max, latency.mean))
end
"""


def _lua_string(value: str) -> str:
    return "[==[" + value + "]==]"


def lua_script(path: Path, requests: list[dict[str, Any]]) -> Path:
    """A wrk script cycling through `requests` ({method, path, headers, body}); `@REF@` in a body gets unique."""
    entries = []
    for r in requests:
        headers = ", ".join(f"[ {_lua_string(k)} ] = {_lua_string(v)}" for k, v in r["headers"].items())
        body = _lua_string(r["body"]) if r.get("body") is not None else "nil"
        entries.append(f"{{method = {_lua_string(r['method'])}, path = {_lua_string(r['path'])}, "
                       f"headers = {{{headers}}}, body = {body}}}")
    path.write_text(LUA % {"templates": ",\n".join(entries), "run": secrets.token_hex(3)})
    return path


def wrk(script: Path, port: int, threads: int, connections: int, duration: float, path: str = "/") -> dict[str, Any]:
    """Run wrk; returns its summary with the rates, and wrk's own CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{int(duration)}s", "--timeout", "30s", "-s", str(script),
            f"http://127.0.0.1:{port}{path}", "--", secrets.token_hex(4)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout[-2000:]} {done.stderr[-2000:]}")
    result = json.loads(line[6:])
    seconds = result["durationUs"] / 1e6
    result |= {"seconds": round(seconds, 2), "requestsPerSecond": round(result["requests"] / seconds, 1),
               "wrkCpuSeconds": round(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, 2),
               "threads": threads, "connections": connections}
    for p in ("p50", "p95", "p99", "max"):
        result[f"{p}Ms"] = round(result.pop(f"{p}Us") / 1000, 2)
    result["meanMs"] = round(result.pop("meanUs") / 1000, 2)
    return result


class Usage:
    """CPU seconds of gunicorn (master and workers), the scratch database's backends and the machine, over a phase."""

    def __init__(self, master: int, database: str) -> None:
        self.master, self.database = master, database

    def _sample(self) -> tuple[float, float, tuple[int, int], float]:
        pids = [self.master, *children(self.master)]
        return (sum(cpu_seconds(p) for p in pids), sum(cpu_seconds(p) for p in backends(self.database)),
                system_busy(), time.perf_counter())

    def __enter__(self) -> Usage:
        self.before = self._sample()
        return self

    def __exit__(self, *_: object) -> None:
        after = self._sample()
        wall = after[3] - self.before[3]
        busy = (after[2][0] - self.before[2][0]) / max(1, after[2][1] - self.before[2][1])
        self.cores = {"gunicorn": round((after[0] - self.before[0]) / wall, 2),
                      "postgresBackends": round((after[1] - self.before[1]) / wall, 2),
                      "machineBusy": round(busy * len(os.sched_getaffinity(0)), 2)}


def settle(master: int, seconds: float = 60) -> None:
    """Wait until gunicorn is idle: requests queued by the previous phase's connections are still being served."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pids = [master, *children(master)]
        before = sum(cpu_seconds(p) for p in pids)
        time.sleep(0.5)
        if sum(cpu_seconds(p) for p in pids) - before < 0.03:
            return


def phase(master: int, database: str, measure: Any) -> dict[str, Any]:
    """Run one measurement; add the cores gunicorn, PostgreSQL, wrk and the whole machine kept busy meanwhile."""
    settle(master)
    with Usage(master, database) as usage:
        result = measure()
    seconds = result.get("seconds") or 1
    cores = usage.cores | {"wrk": round(result.get("wrkCpuSeconds", 0) / seconds, 2)}
    # Busy cores none of these explain: other processes on a shared machine, PostgreSQL's background, the kernel.
    cores["other"] = round(cores["machineBusy"] - cores["gunicorn"] - cores["postgresBackends"] - cores["wrk"], 2)
    result["cores"] = cores
    return result


def worker_rss(master: int) -> dict[str, float]:
    return {str(pid): round((rss_kib(pid) or 0) / 1024, 1) for pid in children(master)}


def clients(url: str, locations: dict[str, list[str]]) -> dict[str, Any]:
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from service.auth import service as auth
    from service.auth.models import Role

    engine = create_engine(url)
    made: dict[str, Any] = {"institutions": []}
    with Session(engine) as session:
        for institution_id in list(locations)[:: max(1, len(locations) // 8)][:8]:
            client, secret = auth.create_client(session, name=f"bench-{institution_id[:8]}", role=Role.INSTITUTION,
                                                institution_id=institution_id)
            made["institutions"].append({"clientId": str(client.id), "secret": secret, "institutionId": institution_id,
                                         "locations": locations[institution_id]})
        for role in (Role.ANALYST, Role.AUDITOR):
            client, secret = auth.create_client(session, name=f"bench-{role.value}", role=role,
                                                municipality_codes=["*"])
            made[role.value] = {"clientId": str(client.id), "secret": secret}
        session.commit()
    engine.dispose()
    return made


GROUP_BY = """
SELECT institution_id, count(*) AS incidents, count(DISTINCT resident_pseudonym) AS residents,
       sum(record_key) %% 256 AS cell_key
FROM incident WHERE status = 'active' AND occurred_at >= %(start)s AND occurred_at < %(end)s
GROUP BY institution_id
"""


def group_by(url: str, quarter: str, repetitions: int = 20) -> dict[str, Any]:
    """The figures per institution (the quarter and the previous one, as hotspots shows) straight from incident."""
    import psycopg

    from service.periods import AMSTERDAM, parse_period

    period = parse_period(quarter, dt.date.today())
    ranges = [(dt.datetime.combine(p.start, dt.time(), AMSTERDAM), dt.datetime.combine(p.end, dt.time(), AMSTERDAM))
              for p in (period, period.previous())]
    times = []
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as connection:
        for n in range(repetitions + 2):
            started = time.perf_counter()
            rows = [connection.execute(GROUP_BY, {"start": s, "end": e}).fetchall() for s, e in ranges]
            if n >= 2:  # two warm-ups
                times.append((time.perf_counter() - started) * 1000)
    ordered = sorted(times)
    return {"repetitions": repetitions, "p50Ms": round(statistics.median(ordered), 2),
            "p95Ms": percentile(ordered, 95), "minMs": round(ordered[0], 2), "units": len(rows[0]),
            "incidentsInQuarter": sum(r[1] for r in rows[0]), "sql": " ".join(GROUP_BY.split()).replace("%%", "%")}


def export_period(incidents: int) -> str:
    """The last complete month, or the last complete ISO week above 360k incidents (about 10k rows or fewer).

    A sync worker streaming longer than gunicorn's 30 s timeout is killed, so the period is kept small enough."""
    from zoneinfo import ZoneInfo

    today = dt.datetime.now(ZoneInfo("Europe/Amsterdam")).date()
    if incidents <= 360_000:
        last = today.replace(day=1) - dt.timedelta(days=1)
        return f"{last.year}-{last.month:02d}"
    year, week, _ = (today - dt.timedelta(days=7)).isocalendar()
    return f"{year}-W{week:02d}"


def export(port: int, auditor: str, period: str, master: int) -> dict[str, Any]:
    """One NDJSON export of `period`, read to the end here; the workers' RSS sampled every 0.1 s meanwhile."""
    rss: list[float] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            rss.append(max(worker_rss(master).values() or [0]))
            time.sleep(0.1)

    before = max(worker_rss(master).values() or [0])
    sampler = threading.Thread(target=sample, daemon=True)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    started = time.perf_counter()
    sampler.start()
    connection.request("GET", f"/v1/exports/incidents?from={period}&to={period}",
                       headers={"Authorization": f"Bearer {auditor}", "Accept": "application/x-ndjson"})
    response = connection.getresponse()
    lines, size, tail = 0, 0, b""
    while chunk := response.read(1 << 16):
        lines += chunk.count(b"\n")
        size += len(chunk)
        tail = (tail + chunk)[-4096:]
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    connection.close()
    rows = lines - 1  # the last line is the metadata
    complete = response.status == 200 and b'"metadata"' in tail.splitlines()[-1] and \
        rows == int(response.getheader("Export-Row-Count", "-1"))
    return {"period": period, "status": response.status, "rows": rows, "bytes": size, "seconds": round(seconds, 2),
            "rowsPerSecond": round(rows / seconds, 1), "complete": complete,
            "workerRssMiBBefore": before, "workerRssMiBPeak": max(rss or [0])}


def service_env(url: str, work: Path, master_key: bytes) -> dict[str, str]:
    """The service's environment under gunicorn: this database, fresh secrets, rate limits out of the way."""
    return plain_env() | {
        "DATABASE_URL": url, "APP_ENV": "development", "INSTANCE_PATH": str(work / "instance"),
        "TOKEN_SECRET": secrets.token_hex(32), "PSEUDONYM_MASTER_KEY": master_key.hex(),
        "RATE_LIMIT": "100000000 per minute", "TOKEN_RATE_LIMIT": "100000000 per minute"}


def hotspots_script(work: Path, port: int, quarter: str, analyst: str) -> Path:
    """The hotspots request of the benchmark (quarter by institution, national), checked to answer 200 first."""
    path = f"/v1/stats/hotspots?period={quarter}&groupBy=institution"
    headers = {"Authorization": f"Bearer {analyst}"}
    status, data = call(port, "GET", path, headers=headers)
    if status != 200:
        raise RuntimeError(f"hotspots answered {status}: {data[:300]!r}")
    return lua_script(work / "hotspots.lua", [{"method": "GET", "path": path, "headers": headers}])


def register(url: str, incidents: int) -> tuple[bytes, dict[str, Any], dict[str, Any]]:
    """Migrate the scratch database, generate `incidents`, make the clients: (master key, generation, clients)."""
    master_key = secrets.token_bytes(32)
    upgrade(url)
    print(f"generating {incidents} incidents ...", file=sys.stderr)
    generated = generate(url, incidents, master_key)
    print(f"generated: {generated['timings']}", file=sys.stderr)
    return master_key, generated, clients(url, generated.pop("locationsByInstitution"))


def at_scale(args: argparse.Namespace, url: str, work: Path) -> dict[str, Any]:
    """Hotspots (one connection) and the plain GROUP BY again, on a register of `--at-scale` incidents."""
    master_key, generated, made = register(url, args.at_scale)
    quarter, _ = periods()
    figures: dict[str, Any] = {"groupBy": group_by(url, quarter)}
    with Gunicorn(service_env(url, work, master_key), work / "gunicorn.log") as gunicorn:
        gunicorn.wait_ready()
        port, analyst = gunicorn.port, made["analyst"]
        script = hotspots_script(work, port, quarter, token(port, analyst["clientId"], analyst["secret"]))
        wrk(script, port, 1, 1, 3)  # warm-up
        figures["hotspots"] = phase(gunicorn.pid, url.rsplit("/", 1)[1], lambda: wrk(script, port, 1, 1, args.duration))
        figures["workerRssMiB"] = worker_rss(gunicorn.pid)
    return {"generation": generated, "figures": figures}


def run(args: argparse.Namespace, url: str, work: Path) -> dict[str, Any]:
    import random

    master_key, generated, made = register(url, args.incidents)
    database = url.rsplit("/", 1)[1]
    env = service_env(url, work, master_key)
    log = work / "gunicorn.log"
    quarter, _ = periods()
    rng = random.Random(6)
    now = dt.datetime.now(dt.UTC)
    indicators = indicators_by_kind()
    t, c, d = args.threads, args.connections, args.duration
    figures: dict[str, Any] = {}

    # --- baseline ---
    with Gunicorn(env, log, "bench.baseline_app:app") as gunicorn:
        gunicorn.wait_ready("/hello")
        master, port = gunicorn.pid, gunicorn.port
        hello = lua_script(work / "hello.lua", [{"method": "GET", "path": "/hello", "headers": {}}])
        rows = []
        for _ in range(TEMPLATES):
            inst = rng.choice(made["institutions"])
            body = incident_body(rng, rng.choice(inst["locations"]), now, indicators)
            body["institutionId"] = inst["institutionId"]
            rows.append({"method": "POST", "path": "/rows", "headers": {"Content-Type": "application/json"},
                         "body": json.dumps(body)})
        baseline_rows = lua_script(work / "rows.lua", rows)
        wrk(hello, port, t, c, 3)  # warm-up
        figures["baselineHello"] = phase(master, database, lambda: wrk(hello, port, t, c, d))
        wrk(baseline_rows, port, t, c, 3)
        figures["baselinePost"] = phase(master, database, lambda: wrk(baseline_rows, port, t, c, d))
        figures["baselineWorkerRssMiB"] = worker_rss(master)

    # --- the plain GROUP BY, nothing else running ---
    figures["groupBy"] = group_by(url, quarter)

    # --- the service ---
    with Gunicorn(env, log) as gunicorn:
        gunicorn.wait_ready()
        master, port = gunicorn.pid, gunicorn.port
        tokens = [(token(port, inst["clientId"], inst["secret"]), inst) for inst in made["institutions"]]
        analyst = token(port, made["analyst"]["clientId"], made["analyst"]["secret"])
        auditor = token(port, made["auditor"]["clientId"], made["auditor"]["secret"])
        singles, batches = [], []
        for n in range(TEMPLATES):
            bearer, inst = tokens[n % len(tokens)]
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {bearer}"}
            singles.append({"method": "POST", "path": "/v1/incidents", "headers": headers,
                            "body": json.dumps(incident_body(rng, rng.choice(inst["locations"]), now, indicators))})
            if n < len(tokens):
                items = [incident_body(rng, rng.choice(inst["locations"]), now, indicators) for _ in range(BATCH)]
                batches.append({"method": "POST", "path": "/v1/incidents/_batch", "headers": headers,
                                "body": json.dumps({"items": items})})
        single_script = lua_script(work / "single.lua", singles)
        batch_script = lua_script(work / "batch.lua", batches)
        hotspots = hotspots_script(work, port, quarter, analyst)

        def count() -> int:
            from sqlalchemy import create_engine, text

            engine = create_engine(url)
            with engine.connect() as connection:
                found = connection.execute(text("SELECT count(*) FROM incident")).scalar() or 0
            engine.dispose()
            return found

        wrk(single_script, port, t, c, 3)  # warm-up
        before = count()
        figures["create"] = phase(master, database, lambda: wrk(single_script, port, t, c, d))
        figures["create"]["incidentsStored"] = count() - before
        before = count()
        figures["batch"] = phase(master, database, lambda: wrk(batch_script, port, t, args.batch_connections, d))
        stored = count() - before
        figures["batch"] |= {"incidentsStored": stored, "batchSize": BATCH,
                             "incidentsPerSecond": round(stored / figures["batch"]["seconds"], 1)}
        wrk(hotspots, port, 1, 1, 3)  # warm-up
        figures["hotspots"] = phase(master, database, lambda: wrk(hotspots, port, 1, 1, d))
        figures["hotspotsConcurrent"] = phase(master, database, lambda: wrk(hotspots, port, t, c, d))
        exported = export_period(args.incidents)
        figures["export"] = phase(master, database, lambda: export(port, auditor, exported, master))
        figures["workerRssMiB"] = worker_rss(master)
    problems = log_problems(log)
    if problems:
        shutil.copyfile(log, RESULTS / "bench-gunicorn.log")
    return {"generatedAt": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "machine": machine(url),
            "command": " ".join(["make bench" if os.environ.get("MAKELEVEL") else "python bench/run.py",
                                 *sys.argv[1:]]).strip(),
            "configuration": {"incidents": args.incidents, "quarter": quarter, "wrk": {
                "threads": t, "connections": c, "durationSeconds": d, "batchConnections": args.batch_connections,
                "hotspotsConnections": 1}, "gunicorn": "-c python:service.gunicorn --workers 2 (sync)",
                "rateLimits": "100000000 per minute", "idempotencyKey": "not sent"},
            "generation": generated, "figures": figures,
            "gunicornLogProblems": problems[:20]}


def copy_rate(generation: dict[str, Any]) -> float:
    """Rows a second of the load's COPY into incident (the generator's work on each row included)."""
    return generation["incidents"] / generation["timings"]["copySeconds"]


def storage_share(generation: dict[str, Any]) -> float:
    """The statistics tables' bytes on disk (indexes included) over the incident table's."""
    stored = generation["bytes"]
    return sum(v for t, v in stored.items() if t != "incident") / stored["incident"]


def ratios(result: dict[str, Any]) -> dict[str, Any]:
    f, scaled = result["figures"], result.get("atScale", {}).get("figures")
    create = f["create"]["requestsPerSecond"] / f["baselinePost"]["requestsPerSecond"]
    hotspots_vs = f["groupBy"]["p50Ms"] / f["hotspots"]["p50Ms"]
    rss = max([*f["workerRssMiB"].values(), 0])
    batch = f["batch"]["incidentsPerSecond"]
    batch_vs_copy = batch / copy_rate(result["generation"])
    storage = storage_share(result.get("atScale", result)["generation"])
    at_scale: dict[str, Any] = {}
    if scaled:
        p95, growth = scaled["hotspots"]["p95Ms"], scaled["hotspots"]["p95Ms"] / f["hotspots"]["p95Ms"]
        vs = scaled["groupBy"]["p50Ms"] / scaled["hotspots"]["p50Ms"]
        at_scale = {
            "hotspotsP95MsAtScale": {"value": p95, "target": "<= 25", "met": p95 <= 25},
            "hotspotsP95GrowthToScale": {"value": round(growth, 2), "target": "<= 1.5 (p95 at scale / p95 here)",
                                         "met": growth <= 1.5},
            "hotspotsVsGroupByAtScale": {"value": round(vs, 2), "target": ">= 10", "met": vs >= 10},
        }
    return at_scale | {
        "createVsBaseline": {"value": round(create, 3), "target": ">= 0.5", "met": create >= 0.5},
        "baselinePostVsHello": {"value": round(f["baselinePost"]["requestsPerSecond"]
                                               / f["baselineHello"]["requestsPerSecond"], 3),
                                "reference": "issue: ~1,900 / ~6,400 = 0.30 on its 2-core machine"},
        "batchIncidentsPerSecond": {"value": batch, "target": ">= 20000, or >= 0.35 of COPY's rows/s",
                                    "met": batch >= 20_000 or batch_vs_copy >= 0.35},
        "batchVsCopy": {"value": round(batch_vs_copy, 3), "target": ">= 0.35 (COPY: the load's rows/s)",
                        "met": batch_vs_copy >= 0.35},
        "statisticsVsIncidentBytes": {"value": round(storage, 2), "target": "<= 1 (at scale when measured there)",
                                      "met": storage <= 1},
        "hotspotsP95Ms": {"value": f["hotspots"]["p95Ms"], "target": "<= 25 (the issue asks it at 5M: see AtScale)",
                          "met": f["hotspots"]["p95Ms"] <= 25},
        "hotspotsVsGroupBy": {"value": round(hotspots_vs, 2), "target": ">= 10 (GROUP BY p50 / hotspots p50)",
                              "met": hotspots_vs >= 10},
        "exportRowsPerSecond": {"value": f["export"]["rowsPerSecond"], "target": ">= 50000, flat memory",
                                "met": f["export"]["rowsPerSecond"] >= 50_000 and f["export"]["complete"]},
        "workerRssMiB": {"value": rss, "target": "<= 150", "met": rss <= 150},
    }


def markdown(result: dict[str, Any]) -> str:
    f, r, m = result["figures"], result["ratios"], result["machine"]
    g = result["generation"]

    def met(key: str) -> str:
        value = r[key]["met"]
        return "n/a" if value is None else ("yes" if value else "**no**")

    c = result["configuration"]["wrk"]
    scaled_rows: list[tuple[str, str, str, str]] = []
    if "atScale" in result:
        sf, sg = result["atScale"]["figures"], result["atScale"]["generation"]
        scaled_rows = [
            ("the same hotspots request at scale (1 connection)",
             f"p50 {sf['hotspots']['p50Ms']} / p95 {sf['hotspots']['p95Ms']} / p99 {sf['hotspots']['p99Ms']} ms at "
             f"{sg['incidents']:,} incidents", "p95 <= 25 ms at 5M", met("hotspotsP95MsAtScale")),
            ("its p95 at scale / its p95 above", f"{r['hotspotsP95GrowthToScale']['value']}x", "<= 1.5x",
             met("hotspotsP95GrowthToScale")),
            ("plain GROUP BY at scale", f"p50 {sf['groupBy']['p50Ms']} ms; hotspots "
             f"{r['hotspotsVsGroupByAtScale']['value']}x faster (p50)", "hotspots >= 10x faster",
             met("hotspotsVsGroupByAtScale")),
        ]
    rows = [
        ("baseline `GET /hello`", f"{f['baselineHello']['requestsPerSecond']:,.0f} req/s, p99 "
         f"{f['baselineHello']['p99Ms']} ms", "reference", "-"),
        ("baseline `POST /rows` (one INSERT)", f"{f['baselinePost']['requestsPerSecond']:,.0f} req/s, p99 "
         f"{f['baselinePost']['p99Ms']} ms", "reference", "-"),
        ("`POST /v1/incidents`", f"{f['create']['requestsPerSecond']:,.0f} req/s = "
         f"{r['createVsBaseline']['value']:.0%} of baseline, p99 {f['create']['p99Ms']} ms",
         ">= 50% of baseline; p99 reported", met("createVsBaseline")),
        (f"`POST /v1/incidents/_batch` ({BATCH}/request, {c['batchConnections']} connections)",
         f"{f['batch']['incidentsPerSecond']:,.0f} incidents/s, p99 {f['batch']['p99Ms']} ms",
         ">= 20,000 incidents/s, or >= 35% of COPY's rows/s", met("batchIncidentsPerSecond")),
        ("the same batches against the load's COPY into incident", f"{r['batchVsCopy']['value']:.0%} of "
         f"{copy_rate(g):,.0f} rows/s (the generator's work per row included)", ">= 35%", met("batchVsCopy")),
        ("`GET /v1/stats/hotspots` quarter by institution, national (1 connection)",
         f"p50 {f['hotspots']['p50Ms']} / p95 {f['hotspots']['p95Ms']} / p99 {f['hotspots']['p99Ms']} ms "
         f"at {g['incidents']:,} incidents", "p95 <= 25 ms (the issue asks it at 5M)", met("hotspotsP95Ms")),
        ("plain GROUP BY over incident (same answer, in-process)", f"p50 {f['groupBy']['p50Ms']} ms; hotspots "
         f"{r['hotspotsVsGroupBy']['value']}x faster (p50)", "hotspots >= 10x faster", met("hotspotsVsGroupBy")),
        *scaled_rows,
        (f"`GET /v1/exports/incidents` NDJSON ({f['export']['period']}), national auditor",
         f"{f['export']['rowsPerSecond']:,.0f} rows/s "
         f"({f['export']['rows']:,} rows), worker RSS {f['export']['workerRssMiBBefore']} -> peak "
         f"{f['export']['workerRssMiBPeak']} MiB", ">= 50,000 rows/s, flat memory", met("exportRowsPerSecond")),
        ("statistics tables on disk / incident table (indexes included"
         + (", at scale)" if "atScale" in result else ")"),
         f"{r['statisticsVsIncidentBytes']['value']}x: " + ", ".join(
             f"{t} {v / 2**20:,.0f} MiB" for t, v in result.get("atScale", result)["generation"]["bytes"].items()),
         "<= 1x", met("statisticsVsIncidentBytes")),
        ("worker RSS after the run", ", ".join(f"{v} MiB" for v in f["workerRssMiB"].values()), "<= 150 MB",
         met("workerRssMiB")),
    ]
    table = ["| figure | this run | target | target met? |", "|---|---|---|---|"]
    table += [f"| {a} | {b} | {c_} | {d} |" for a, b, c_, d in rows]
    return "\n".join([
        "# Benchmarks", "",
        f"Latest run of `bench/run.py` ({result['generatedAt']}), `bench/results/{result['file']}`. How to run it and "
        "what each figure means: `bench/README.md`.", "",
        "```sh", result["command"], "```", "",
        f"Machine: {m['nproc']} CPUs ({m['cpuModel']}), {m['memTotal']}, Python {m['python']}, gunicorn "
        f"{m['gunicorn']}, {m['postgres'].split(' on ')[0]}. Load: wrk -t{c['threads']} -c{c['connections']} "
        f"-d{c['durationSeconds']}s from a separate process on the same machine; gunicorn `-c python:service.gunicorn "
        "--workers 2` (sync) for both apps, one at a time.", "",
        f"Data: {g['incidents']:,} synthetic incidents ({g['municipalities']} municipalities, {g['institutions']} "
        f"institutions, {g['locations']} locations, 3 years), loaded by COPY in {g['timings']['copySeconds']} s, "
        f"rollups rebuilt by `service.stats.rollups.rebuild` in {g['timings']['rebuildSeconds']} s"
        + (f"; at scale {result['atScale']['generation']['incidents']:,} incidents in their own database, COPY "
           f"{result['atScale']['generation']['timings']['copySeconds']} s, rebuild "
           f"{result['atScale']['generation']['timings']['rebuildSeconds']} s" if "atScale" in result else "")
        + ".", "",
        *table, "",
        "CPU cores busy per phase (gunicorn / PostgreSQL backends / wrk / other processes / whole machine): "
        + "; ".join(f"{k} {v['cores']['gunicorn']} / {v['cores']['postgresBackends']} / {v['cores']['wrk']} / "
                    f"{v['cores']['other']} / {v['cores']['machineBusy']}"
                    for k, v in f.items() if isinstance(v, dict) and "cores" in v) + ". The machine is shared: "
        "where `other` is well above zero, other work competed with this run and the absolute rates are low.", "",
    ])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--incidents", type=int, default=1_000_000)
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--batch-connections", type=int, default=4)
    parser.add_argument("--server-url", default=SERVER_URL)
    parser.add_argument("--at-scale", type=int, default=5_000_000,
                        help="also measure hotspots on a register of this many incidents (0: skip)")
    parser.add_argument("--no-markdown", action="store_true", help="do not rewrite BENCHMARKS.md")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = f"bench-{dt.datetime.now(dt.UTC).date().isoformat()}.json"
    work = Path(tempfile.mkdtemp(prefix="rr-bench-"))
    try:
        with scratch_database(args.server_url, "rr_bench") as url:
            result = run(args, url, work)
        if args.at_scale:
            with scratch_database(args.server_url, "rr_bench") as url:
                result["atScale"] = at_scale(args, url, work)
            result["configuration"]["atScale"] = args.at_scale
    except BaseException:
        if (work / "gunicorn.log").exists():  # what the servers said is all there is to go on
            shutil.copyfile(work / "gunicorn.log", RESULTS / "bench-gunicorn-failed.log")
            print(f"gunicorn's log: {RESULTS / 'bench-gunicorn-failed.log'}", file=sys.stderr)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result["ratios"] = ratios(result)
    result["file"] = name
    write_json(RESULTS / name, result)
    text = markdown(result)
    if not args.no_markdown:
        (ROOT / "BENCHMARKS.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
