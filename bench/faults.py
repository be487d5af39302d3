"""Fault injection against a real gunicorn and a real PostgreSQL that this script starts and owns.

Three scenarios under load, each followed by checks against the database itself:

1. worker kill: single creates and batches of 20 (each with an Idempotency-Key and unique clientReferences) while
   one gunicorn worker is killed with SIGKILL four times; every request that got no 2xx is retried with the same
   key and body. Every acknowledged incident must exist exactly once, under the id it was acknowledged with.
2. PostgreSQL restart: the scratch cluster is stopped (fast) for a few seconds under reads and writes. Requests get
   503 problem+json with Retry-After (never a 500), /readyz says 503, and the service recovers on its own.
3. read-only: default_transaction_read_only is switched on (ALTER SYSTEM + reload) under load. Writes get 503
   problem+json with Retry-After, reads that write nothing go on; audited reads (which must append an access event)
   get 503 too. After lifting it writes resume.

Then, over everything every scenario wrote: each clientReference exactly once, the statistics rollups equal a
rebuild from the incidents (computed in a transaction that is rolled back), and after `risk-register audit seal`
`risk-register audit verify` passes with no event left unsealed.

Everything runs against 127.0.0.1 on free ports: a cluster made by initdb in a temporary folder (run as the
`postgres` OS user when started as root) and a gunicorn started here. Both are stopped and the folder removed at
the end, also on Ctrl-C. Usage:

    .venv/bin/python -m bench.faults [--keep]      # --keep leaves the temporary folder (logs, cluster) behind

Writes bench/results/faults-<UTC date>.json and exits 1 when any check fails.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import json
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if not __package__:  # started as a file, not with -m: see bench/_bootstrap.py
    import _bootstrap  # noqa: F401

from bench.common import HOST, RESULTS, ROOT, Gunicorn, free_port, token, write_json

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
VENV_BIN = Path(sys.executable).parent
WORKERS = 2
REQUEST_TIMEOUT = 15.0
PROBLEM_JSON = "application/problem+json"
RECOVERY_SECONDS = 10.0  # the service must answer again this long after PostgreSQL is back
MAX_RETRIES = 10


# --------------------------------------------------------------------------------------------------- processes


def as_postgres(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the `postgres` OS user then."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


class Cluster:
    """A scratch PostgreSQL cluster: initdb into a temporary folder, trust auth on 127.0.0.1, its own port."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.log = folder / "postgresql.log"
        self.port = free_port()
        self.started = False

    def _ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), *args]), check=check,
                              capture_output=True, text=True, timeout=60, start_new_session=True,
                              cwd=self.folder)

    def init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        subprocess.run(as_postgres([str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
                                    "-E", "UTF8", "--locale=C", "--no-instructions"]),
                       check=True, capture_output=True, text=True, timeout=120, cwd=self.folder)

    def start(self) -> None:
        options = (f"-p {self.port} -c listen_addresses={HOST} -c unix_socket_directories={self.folder} "
                   "-c max_connections=60")
        self.started = True  # set before: a start that times out may still have left a postmaster behind
        self._ctl("-l", str(self.log), "-o", options, "-w", "-t", "30", "start")

    def stop(self, mode: str = "fast") -> None:
        self._ctl("-m", mode, "-w", "-t", "30", "stop")

    def server_url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@{HOST}:{self.port}/{database}"

    def dsn(self, database: str) -> str:
        return f"host={HOST} port={self.port} user=postgres dbname={database}"

    def destroy(self) -> None:
        pid_file = self.data / "postmaster.pid"
        if not (self.started and pid_file.exists()):
            return
        if self._ctl("-m", "immediate", "-w", "-t", "20", "stop", check=False).returncode != 0:
            with contextlib.suppress(Exception):  # our own postmaster only: its pid is in our data folder
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)


# --------------------------------------------------------------------------------------------------- HTTP


@dataclass
class Call:
    """One request and what became of it."""

    label: str
    method: str
    path: str
    body: bytes | None = None
    key: str | None = None
    refs: list[str] = field(default_factory=list)
    started: float = 0.0  # seconds since the scenario's start
    finished: float = 0.0
    status: int | None = None
    error: str | None = None
    content_type: str = ""
    retry_after: str | None = None
    replayed: bool = False
    detail: str = ""
    ids: dict[str, str] = field(default_factory=dict)  # clientReference -> incident id, from a 2xx answer
    attempts: int = 1
    final_status: int | None = None  # after the retries (None: no retry needed or none succeeded)

    @property
    def outcome(self) -> str:
        return str(self.status) if self.status is not None else f"no answer ({self.error})"

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def write(self) -> bool:
        return self.method == "POST" and self.path.startswith("/v1/incidents")


class Api:
    def __init__(self, port: int) -> None:
        self.port = port
        self.token = ""

    def send(self, call: Call, clock: float) -> Call:
        headers = {"Accept": "application/json"}
        if self.token and call.path.startswith("/v1/"):
            headers["Authorization"] = f"Bearer {self.token}"
        if call.body is not None:
            headers["Content-Type"] = "application/json"
        if call.key:
            headers["Idempotency-Key"] = call.key
        call.started = time.monotonic() - clock
        call.status, call.error = None, None
        connection = http.client.HTTPConnection(HOST, self.port, timeout=REQUEST_TIMEOUT)
        try:
            connection.request(call.method, call.path, body=call.body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            call.status = response.status
            call.content_type = response.getheader("Content-Type", "")
            call.retry_after = response.getheader("Retry-After")
            call.replayed = response.getheader("Idempotent-Replayed") == "true"
            self._parse(call, payload)
        except (OSError, http.client.HTTPException) as exc:
            call.error = type(exc).__name__
        finally:
            connection.close()
            call.finished = time.monotonic() - clock
        return call

    @staticmethod
    def _parse(call: Call, payload: bytes) -> None:
        try:
            document = json.loads(payload) if payload else None
        except ValueError:
            return
        if not isinstance(document, dict):
            return
        if call.content_type.startswith(PROBLEM_JSON):
            call.detail = str(document.get("detail", ""))
        elif call.ok and call.write:
            for item in document.get("items", [document]):
                if isinstance(item, dict) and "clientReference" in item:
                    call.ids[item["clientReference"]] = item["id"]


def incident(location_id: str, ref: str) -> dict[str, Any]:
    occurred = dt.datetime.now(dt.UTC) - dt.timedelta(hours=random.randint(1, 24 * 60))
    return {"clientReference": ref, "locationId": location_id, "kind": "recruitmentAttempt",
            "exploitationType": random.choice(["criminal", "sexual"]), "occurredAt": occurred.isoformat(),
            "residentRef": f"CL-{random.randint(1, 40)}", "residentAgeBand": random.choice(["12to15", "16to17"]),
            "indicators": ["onlineGrooming"], "followUp": {"meldcodeStep": random.randint(1, 5)}}


class Traffic:
    """The requests a scenario sends: creates carry a unique Idempotency-Key and unique clientReferences."""

    def __init__(self, scenario: str, location_id: str) -> None:
        self.scenario, self.location_id = scenario, location_id

    def _ref(self) -> str:
        return f"F-{self.scenario}-{uuid.uuid4().hex[:16]}"

    def single(self) -> Call:
        ref = self._ref()
        return Call("create", "POST", "/v1/incidents", json.dumps(incident(self.location_id, ref)).encode(),
                    key=uuid.uuid4().hex, refs=[ref])

    def batch(self, size: int = 20) -> Call:
        refs = [self._ref() for _ in range(size)]
        body = {"items": [incident(self.location_id, ref) for ref in refs]}
        return Call("batch20", "POST", "/v1/incidents/_batch", json.dumps(body).encode(), key=uuid.uuid4().hex,
                    refs=refs)

    @staticmethod
    def list_incidents() -> Call:
        return Call("list (audited read)", "GET", "/v1/incidents?limit=10")

    @staticmethod
    def taxonomy() -> Call:
        return Call("taxonomy", "GET", "/v1/taxonomy")

    @staticmethod
    def healthz() -> Call:
        return Call("healthz", "GET", "/healthz")

    @staticmethod
    def readyz() -> Call:
        return Call("readyz", "GET", "/readyz")


class Load:
    """Threads sending a weighted mix of requests until stopped; a separate thread polls /readyz."""

    def __init__(self, api: Api, mix: list[tuple[Callable[[], Call], int]], threads: int,
                 readyz_every: float | None = None) -> None:
        self.api, self.threads = api, threads
        self.makers = [maker for maker, weight in mix for _ in range(weight)]
        self.readyz_every = readyz_every
        self.calls: list[Call] = []
        self.in_flight = 0
        self.clock = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def now(self) -> float:
        return time.monotonic() - self.clock

    def _send(self, call: Call) -> None:
        with self._lock:
            self.in_flight += 1
        try:
            self.api.send(call, self.clock)
        finally:
            with self._lock:
                self.in_flight -= 1
                self.calls.append(call)

    def _drive(self) -> None:
        while not self._stop.is_set():
            self._send(random.choice(self.makers)())

    def _poll_readyz(self) -> None:
        while not self._stop.wait(self.readyz_every):
            self._send(Traffic.readyz())

    def __enter__(self) -> Load:
        self.clock = time.monotonic()
        targets = [self._drive] * self.threads + ([self._poll_readyz] if self.readyz_every else [])
        self._threads = [threading.Thread(target=t, daemon=True) for t in targets]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=REQUEST_TIMEOUT + 5)


def retry_until_acknowledged(api: Api, calls: list[Call], clock: float) -> dict[str, Any]:
    """Send every write that got no 2xx again, same key and body, until it does (at most MAX_RETRIES times)."""
    outcomes: Counter[str] = Counter()
    replayed = 0
    for call in calls:
        if call.ok or not call.write:
            continue
        retry = Call(call.label, call.method, call.path, call.body, key=call.key, refs=call.refs)
        for attempt in range(1, MAX_RETRIES + 1):
            api.send(retry, clock)
            outcomes[retry.outcome] += 1
            if retry.ok:
                break
            wait = float(retry.retry_after) if retry.retry_after and retry.retry_after.isdigit() else 0.5
            time.sleep(min(wait, 2.0) * (1 + attempt / 4))
        call.attempts += attempt
        call.final_status = retry.status
        call.ids = retry.ids
        replayed += retry.ok and retry.replayed
    retried = [c for c in calls if c.write and not c.ok]
    return {"retried": len(retried), "acknowledgedOnRetry": sum(c.final_status is not None and
                                                                200 <= c.final_status < 300 for c in retried),
            "replayedOnRetry": replayed, "retryAnswers": dict(outcomes)}


# --------------------------------------------------------------------------------------------------- checks


class Checks:
    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def add(self, name: str, passed: bool, details: Any = None) -> bool:
        self.items.append({"name": name, "passed": bool(passed), "details": details})
        return passed

    @property
    def passed(self) -> bool:
        return all(item["passed"] for item in self.items)


def status_counts(calls: list[Call]) -> dict[str, dict[str, int]]:
    counts: dict[str, Counter[str]] = {}
    for call in calls:
        counts.setdefault(call.label, Counter())[call.outcome] += 1
    return {label: dict(sorted(counter.items())) for label, counter in sorted(counts.items())}


def other_server_errors(calls: list[Call]) -> list[dict[str, Any]]:
    return [{"label": c.label, "status": c.status, "at": round(c.started, 2), "detail": c.detail}
            for c in calls if c.status is not None and c.status >= 500 and c.status != 503]


def bad_503s(calls: list[Call]) -> list[dict[str, Any]]:
    """503s that are not problem+json with Retry-After."""
    return [{"label": c.label, "contentType": c.content_type, "retryAfter": c.retry_after}
            for c in calls if c.status == 503 and not (c.content_type.startswith(PROBLEM_JSON) and c.retry_after)]


class Register:
    """Direct access to the scratch database, for checks that must not trust the service."""

    def __init__(self, url: str, institution_id: str, env: dict[str, str]) -> None:
        from sqlalchemy import create_engine

        self.engine = create_engine(url, pool_pre_ping=True)
        self.institution_id, self.env = institution_id, env

    def incidents(self) -> list[tuple[str, str]]:
        from sqlalchemy import text

        with self.engine.connect() as connection:
            rows = connection.execute(text("SELECT client_reference, CAST(id AS text) FROM incident "
                                           "WHERE institution_id = :i"), {"i": self.institution_id})
            return [(row[0], row[1]) for row in rows]

    def rollups_match_rebuild(self) -> dict[str, Any]:
        """Fold what is pending, snapshot the rollups, rebuild them from the incidents in the same transaction,
        compare, roll back."""
        from sqlalchemy import select
        from sqlalchemy.orm import Session

        from service.stats.models import ResidentRollup, Rollup
        from service.stats.rollups import fold, rebuild

        def snapshot(session: Session, table: Any) -> dict[tuple, tuple]:
            keys = [c.name for c in table.__table__.primary_key.columns]
            values = [c.name for c in table.__table__.columns if c.name not in keys]
            rows = session.execute(select(table.__table__)).mappings()
            return {tuple(str(r[k]) for k in keys): tuple(r[v] for v in values)
                    for r in rows if any(r[v] for v in values)}  # all-zero cells mean nothing

        result: dict[str, Any] = {}
        with Session(self.engine) as session:
            fold(session)  # what is still pending, as a statistics read would
            before = {t.__tablename__: snapshot(session, t) for t in (Rollup, ResidentRollup)}
            counted = rebuild(session)
            session.flush()
            after = {t.__tablename__: snapshot(session, t) for t in (Rollup, ResidentRollup)}
            session.rollback()
        result["incidentsCounted"] = counted
        for table, cells in before.items():
            rebuilt = after[table]
            differing = [k for k in set(cells) | set(rebuilt) if cells.get(k) != rebuilt.get(k)]
            result[table] = {"cells": len(cells), "rebuiltCells": len(rebuilt), "differing": len(differing),
                             "examples": [{"cell": list(k), "kept": cells.get(k), "rebuilt": rebuilt.get(k)}
                                          for k in sorted(differing)[:5]]}
        result["match"] = all(result[t]["differing"] == 0 for t in before)
        return result

    def audit_verify(self) -> tuple[int, str]:
        done = subprocess.run([str(VENV_BIN / "risk-register"), "audit", "verify"], cwd=ROOT, env=self.env,
                              capture_output=True, text=True, timeout=120)
        return done.returncode, (done.stdout.strip() or done.stderr.strip()[-500:])


def check_acknowledged(checks: Checks, register: Register, calls: list[Call], prefix: str) -> None:
    """Every write acknowledged (first time or on retry) exists exactly once, under the id it was given."""
    stored: dict[str, list[str]] = {}
    for ref, incident_id in register.incidents():
        if ref.startswith(prefix):
            stored.setdefault(ref, []).append(incident_id)
    writes = [c for c in calls if c.write]
    first_ack = {ref: c.ids.get(ref) for c in writes if c.ok for ref in c.refs}
    retried = [c for c in writes if not c.ok]
    retry_ack = {ref: c.ids.get(ref) for c in retried
                 if c.final_status is not None and 200 <= c.final_status < 300 for ref in c.refs}
    sent = {ref for c in writes for ref in c.refs}

    duplicates = {ref: ids for ref, ids in stored.items() if len(ids) > 1}
    lost = sorted(ref for ref in first_ack if ref not in stored)
    wrong_id = sorted(ref for ref, i in {**first_ack, **retry_ack}.items() if ref in stored and stored[ref] != [i])
    unknown = sorted(ref for ref in stored if ref not in sent)
    unresolved = [{"label": c.label, "key": c.key, "first": c.outcome, "afterRetries": c.final_status}
                  for c in retried if not (c.final_status is not None and 200 <= c.final_status < 300)]
    checks.add("every acknowledged incident exists exactly once under its acknowledged id",
               not lost and not wrong_id and not duplicates,
               {"acknowledged": len(first_ack), "lost": lost[:10], "lostCount": len(lost),
                "idMismatch": wrong_id[:10], "duplicates": dict(list(duplicates.items())[:10])})
    checks.add("every request without a 2xx was acknowledged on retry (same key, same body)", not unresolved,
               {"retried": len(retried), "unresolved": unresolved[:10], "unresolvedCount": len(unresolved)})
    checks.add("every retried request exists exactly once",
               all(len(stored.get(ref, [])) == 1 for c in retried for ref in c.refs),
               {"incidentsInRetriedRequests": sum(len(c.refs) for c in retried)})
    checks.add("no duplicates and nothing unsent in the database", not duplicates and not unknown and
               len(stored) == len(sent), {"stored": len(stored), "sent": len(sent), "unknown": unknown[:10]})


# --------------------------------------------------------------------------------------------------- scenarios


@dataclass
class Setup:
    api: Api
    gunicorn: Gunicorn
    cluster: Cluster
    register: Register
    location_id: str
    database: str


def scenario_worker_kill(s: Setup, seconds: float = 20.0, kills: int = 4) -> dict[str, Any]:
    traffic = Traffic("kill", s.location_id)
    killed: list[dict[str, Any]] = []
    with Load(s.api, [(traffic.single, 3), (traffic.batch, 1)], threads=8) as load:
        for _ in range(kills):
            time.sleep(seconds / (kills + 1))
            workers = s.gunicorn.workers()
            if not workers:
                killed.append({"at": round(load.now(), 2), "error": "no worker to kill"})
                continue
            victim = random.choice(workers)
            in_flight = load.in_flight
            os.kill(victim, signal.SIGKILL)
            killed.append({"at": round(load.now(), 2), "pid": victim, "requestsInFlight": in_flight})
        time.sleep(seconds / (kills + 1))
    calls = load.calls
    time.sleep(1)  # let the master replace the last worker
    retries = retry_until_acknowledged(s.api, calls, load.clock)
    checks = Checks()
    checks.add("no 5xx other than 503", not other_server_errors(calls), other_server_errors(calls)[:10])
    checks.add("workers were killed mid-load", len([k for k in killed if "pid" in k]) == kills, killed)
    checks.add("the kills cost in-flight requests their answer (killed mid-request)",
               sum(c.status is None for c in calls) >= 1, {"noAnswer": sum(c.status is None for c in calls)})
    check_acknowledged(checks, s.register, calls, "F-kill-")
    checks.add("gunicorn master still running with its workers", s.gunicorn.alive() and
               len(s.gunicorn.workers()) == WORKERS, {"workers": s.gunicorn.workers()})
    return {"durationSeconds": seconds, "threads": 8, "requests": len(calls),
            "incidentsSent": sum(len(c.refs) for c in calls), "statusCounts": status_counts(calls),
            "otherServerErrors": len(other_server_errors(calls)), "kills": killed, "retries": retries,
            "checks": checks.items, "passed": checks.passed, "_calls": calls}


def _first_after(calls: list[Call], moment: float, label_test: Callable[[Call], bool]) -> float | None:
    times = [c.finished for c in calls if c.started >= moment and c.ok and label_test(c)]
    return round(min(times) - moment, 2) if times else None


def scenario_postgres_restart(s: Setup, outage: float = 3.0) -> dict[str, Any]:
    traffic = Traffic("restart", s.location_id)
    mix = [(traffic.single, 2), (traffic.batch, 1), (traffic.list_incidents, 1), (traffic.taxonomy, 1)]
    timeline: dict[str, float] = {}
    with Load(s.api, mix, threads=6, readyz_every=0.25) as load:
        time.sleep(3)
        timeline["stopRequested"] = load.now()
        s.cluster.stop("fast")
        timeline["stopped"] = load.now()
        time.sleep(outage)
        timeline["startRequested"] = load.now()
        s.cluster.start()
        timeline["started"] = load.now()
        deadline = time.monotonic() + RECOVERY_SECONDS + 5
        while time.monotonic() < deadline and _first_after(load.calls, timeline["started"], lambda c: c.write) is None:
            time.sleep(0.2)
        time.sleep(4)
        timeline["end"] = load.now()
    calls = load.calls
    during = [c for c in calls if timeline["stopped"] <= c.started and c.finished <= timeline["startRequested"]]
    failed_during = [c for c in during if not c.ok]
    tail = [c for c in calls if c.started >= timeline["end"] - 3]
    recovered_write = _first_after(calls, timeline["started"], lambda c: c.write)
    recovered_ready = _first_after(calls, timeline["started"], lambda c: c.label == "readyz")
    # A write refused with 503 says "Nothing was recorded": look before the retries record it.
    stored = {ref for ref, _ in s.register.incidents()}
    refused_but_stored = [c.key for c in calls if c.write and c.status == 503 and any(r in stored for r in c.refs)]
    retries = retry_until_acknowledged(s.api, calls, load.clock)

    checks = Checks()
    checks.add("no 5xx other than 503", not other_server_errors(calls), other_server_errors(calls)[:10])
    checks.add("every 503 is problem+json with Retry-After", not bad_503s(calls), bad_503s(calls)[:10])
    checks.add("requests during the outage got 503 problem+json (no other failure, no hang)",
               bool(failed_during) and all(c.status == 503 for c in failed_during),
               {"requestsDuringOutage": len(during), "statusCounts": status_counts(during)})
    ready_during = [c for c in during if c.label == "readyz"]
    checks.add("/readyz reported 503 during the outage", bool(ready_during) and all(c.status == 503
                                                                                     for c in ready_during),
               status_counts(ready_during))
    checks.add(f"the service recovered without a restart within {RECOVERY_SECONDS:.0f} s",
               recovered_write is not None and recovered_write <= RECOVERY_SECONDS and recovered_ready is not None
               and recovered_ready <= RECOVERY_SECONDS,
               {"firstWriteAfterStartSeconds": recovered_write, "firstReadyAfterStartSeconds": recovered_ready})
    checks.add("every request in the last 3 s of load succeeded", bool(tail) and all(c.ok for c in tail),
               status_counts(tail))
    checks.add("gunicorn was not restarted (same master and worker processes alive)", s.gunicorn.alive(),
               {"masterPid": s.gunicorn.pid, "workers": s.gunicorn.workers()})
    check_acknowledged(checks, s.register, calls, "F-restart-")
    return {"outageSeconds": round(timeline["startRequested"] - timeline["stopped"], 2), "threads": 6,
            "timeline": {k: round(v, 2) for k, v in timeline.items()}, "requests": len(calls),
            "statusCounts": status_counts(calls), "statusCountsDuringOutage": status_counts(during),
            "serviceUnavailable": sum(c.status == 503 for c in calls),
            "otherServerErrors": len(other_server_errors(calls)),
            "refused503ButRecorded": {"count": len(refused_but_stored), "keys": refused_but_stored[:10],
                                      "note": "a commit whose answer was lost in the shutdown; the retry replays it"},
            "retries": retries, "checks": checks.items, "passed": checks.passed, "_calls": calls}


def _set_read_only(cluster: Cluster, on: bool) -> None:
    import psycopg

    with psycopg.connect(cluster.dsn("postgres"), autocommit=True) as connection:
        connection.execute("SET default_transaction_read_only = off")  # this session must still write
        connection.execute("ALTER SYSTEM SET default_transaction_read_only = on" if on else
                           "ALTER SYSTEM RESET default_transaction_read_only")
        connection.execute("SELECT pg_reload_conf()")
    with psycopg.connect(cluster.dsn("postgres"), autocommit=True) as connection:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            row = connection.execute("SHOW default_transaction_read_only").fetchone()
            if row and (row[0] == "on") == on:
                return
            time.sleep(0.05)
    raise RuntimeError("default_transaction_read_only did not change")


def scenario_read_only(s: Setup, seconds: float = 6.0) -> dict[str, Any]:
    traffic = Traffic("readonly", s.location_id)
    mix = [(traffic.single, 2), (traffic.batch, 1), (traffic.taxonomy, 1), (traffic.healthz, 1),
           (traffic.list_incidents, 1)]
    timeline: dict[str, float] = {}
    lifted = False
    try:
        with Load(s.api, mix, threads=6, readyz_every=0.25) as load:
            time.sleep(2)
            _set_read_only(s.cluster, on=True)
            timeline["readOnly"] = load.now()
            time.sleep(seconds)
            timeline["liftRequested"] = load.now()
            _set_read_only(s.cluster, on=False)
            lifted = True
            timeline["lifted"] = load.now()
            deadline = time.monotonic() + RECOVERY_SECONDS + 5
            while time.monotonic() < deadline and _first_after(load.calls, timeline["lifted"],
                                                               lambda c: c.write) is None:
                time.sleep(0.2)
            time.sleep(3)
            timeline["end"] = load.now()
    finally:
        if not lifted:
            _set_read_only(s.cluster, on=False)
    calls = load.calls
    during = [c for c in calls if timeline["readOnly"] + 0.2 <= c.started and c.finished <= timeline["liftRequested"]]
    writes = [c for c in during if c.write]
    plain_reads = [c for c in during if c.label in ("taxonomy", "healthz", "readyz")]
    audited = [c for c in during if c.label.startswith("list")]
    tail = [c for c in calls if c.started >= timeline["end"] - 2]
    resumed = _first_after(calls, timeline["lifted"], lambda c: c.write)
    stored = {ref for ref, _ in s.register.incidents()}
    refused_but_stored = [c.key for c in writes if c.status == 503 and any(r in stored for r in c.refs)]
    retries = retry_until_acknowledged(s.api, calls, load.clock)

    checks = Checks()
    checks.add("no 5xx other than 503", not other_server_errors(calls), other_server_errors(calls)[:10])
    checks.add("every 503 is problem+json with Retry-After", not bad_503s(calls), bad_503s(calls)[:10])
    checks.add("writes while read-only got 503 ('accepts no changes') and recorded nothing",
               bool(writes) and all(c.status == 503 and "accepts no changes" in c.detail for c in writes)
               and not refused_but_stored, {"writes": len(writes), "statusCounts": status_counts(writes),
                                            "refusedButRecorded": refused_but_stored[:10]})
    checks.add("reads that write nothing (taxonomy, healthz, readyz) went on while read-only",
               bool(plain_reads) and all(c.ok for c in plain_reads), status_counts(plain_reads))
    checks.add("audited reads were refused with 503 rather than answered without their access event",
               all(c.status == 503 for c in audited), status_counts(audited))
    checks.add(f"writes resumed within {RECOVERY_SECONDS:.0f} s of lifting it",
               resumed is not None and resumed <= RECOVERY_SECONDS, {"firstWriteAfterLiftSeconds": resumed})
    checks.add("every request in the last 2 s of load succeeded", bool(tail) and all(c.ok for c in tail),
               status_counts(tail))
    check_acknowledged(checks, s.register, calls, "F-readonly-")
    return {"readOnlySeconds": round(timeline["liftRequested"] - timeline["readOnly"], 2), "threads": 6,
            "timeline": {k: round(v, 2) for k, v in timeline.items()}, "requests": len(calls),
            "statusCounts": status_counts(calls), "statusCountsWhileReadOnly": status_counts(during),
            "serviceUnavailable": sum(c.status == 503 for c in calls),
            "otherServerErrors": len(other_server_errors(calls)),
            "refused503ButRecorded": {"count": len(refused_but_stored), "keys": refused_but_stored[:10]},
            "note": "reads of incident data append an access event in their own transaction, so while the database "
                    "is read-only they are 503 too: the access log is not skipped (expected behaviour)",
            "retries": retries, "checks": checks.items, "passed": checks.passed, "_calls": calls}


def final_checks(s: Setup, all_calls: list[Call]) -> dict[str, Any]:
    checks = Checks()
    check_acknowledged(checks, s.register, all_calls, "F-")
    rollups = s.register.rollups_match_rebuild()
    checks.add("rollups agree with a rebuild from the incidents (rolled back)", rollups["match"], rollups)
    sealed = run_cli(s.register.env, "audit", "seal")  # what the workers' sealers had not reached yet
    code, output = s.register.audit_verify()
    unsealed = json.loads(output).get("unsealed") if code == 0 else None
    checks.add("`risk-register audit seal`, then `audit verify` exits 0 with no event left unsealed",
               code == 0 and unsealed == 0, {"exitCode": code, "seal": sealed.strip(), "output": output})
    return {"incidentsStored": len(s.register.incidents()), "checks": checks.items, "passed": checks.passed}


# --------------------------------------------------------------------------------------------------- set-up


def run_cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([str(VENV_BIN / "risk-register"), *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"risk-register {' '.join(args)} failed: {done.stderr.strip()[-800:]}")
    return done.stdout


def seed(url: str) -> tuple[str, str]:
    """An institution with one location (with capacity), straight into the database."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from service.registry.models import Capacity, Institution, Location, Sector, Setting

    engine = create_engine(url)
    with Session(engine) as session:
        institution = Institution(name="Faults", sector=Sector.YOUTH_CARE, municipality_code="GM0014")
        session.add(institution)
        session.flush()
        location = Location(institution_id=institution.id, name="Faults", postcode4="9712",
                            municipality_code="GM0014", setting=Setting.OPEN,
                            capacities=[Capacity(valid_from=dt.date(2024, 1, 1), places=12)])
        session.add(location)
        session.flush()
        ids = str(institution.id), str(location.id)
        session.commit()
    engine.dispose()
    return ids


def summarise_log(path: Path) -> dict[str, Any]:
    """gunicorn's and the service's log lines, counted: levels, request statuses, exceptions in tracebacks, and the
    warnings and errors grouped by message (timestamps, pids, request ids and addresses taken out)."""
    if not path.exists():
        return {}
    lines = path.read_text(errors="replace").splitlines()
    levels: Counter[str] = Counter()
    messages: Counter[str] = Counter()
    for line in lines:
        match = re.search(r"\s(DEBUG|INFO|WARNING|ERROR|CRITICAL)\s|\[(INFO|WARNING|ERROR|CRITICAL)\]", line)
        if not match:
            continue
        level = match.group(1) or match.group(2)
        levels[level] += 1
        if level not in ("DEBUG", "INFO"):
            message = re.sub(r"0x[0-9a-f]+|\b[0-9a-f]{32}\b|pid:? ?\d+|port=\d+", "#", line[match.end():].strip())
            messages[f"{level} {message}"[:200]] += 1
    statuses = Counter(m.group(1) for line in lines if (m := re.search(r" (\d{3}) [\d.]+ms client=", line)))
    unavailable = Counter(m.group(1) for line in lines if (m := re.search(r"database unavailable \((\w+)\)", line)))
    exceptions = Counter(line[:160] for line in lines if re.match(r"^[\w.]+(Error|Exception): ", line))
    return {"lines": len(lines), "byLevel": dict(levels), "tracebacks": sum("Traceback" in line for line in lines),
            "requestStatuses": dict(sorted(statuses.items())), "databaseUnavailableBy": dict(unavailable),
            "exceptionsInTracebacks": dict(exceptions.most_common(10)),
            "warningsAndErrors": dict(messages.most_common(15))}


# --------------------------------------------------------------------------------------------------- main


def _interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def print_summary(result: dict[str, Any], path: Path) -> None:
    verdict = "PASSED" if result["passed"] else "INTERRUPTED" if result.get("interrupted") else "FAILED"
    print(f"\nfaults: {verdict} in {result['durationSeconds']} s -> {path}")
    if "error" in result:
        print(f"  error: {result['error']}")
    for name, scenario in result["scenarios"].items():
        verdict = "ok  " if scenario.get("passed") else "FAIL"
        extra = ""
        if "requests" in scenario:
            extra = (f" requests={scenario['requests']} 503={scenario.get('serviceUnavailable', 0)} "
                     f"other5xx={scenario.get('otherServerErrors', 0)}")
        print(f"  [{verdict}] {name}{extra}")
        figures = {key: scenario[key] for key in ("kills", "timeline", "retries", "incidentsStored",
                                                   "refused503ButRecorded") if key in scenario}
        if "kills" in figures:
            figures["kills"] = [f"t={k['at']}s pid={k.get('pid')} inFlight={k.get('requestsInFlight')}"
                                for k in figures["kills"]]
        for key, value in figures.items():
            print(f"         {key}: {json.dumps(value, default=str)[:300]}")
        if "statusCounts" in scenario:
            for label, counts in scenario["statusCounts"].items():
                print(f"         {label:<22} {counts}")
        for check in scenario.get("checks", []):
            mark = "  pass" if check["passed"] else "  FAIL"
            print(f"       {mark} {check['name']}")
            if not check["passed"]:
                print(f"              {json.dumps(check['details'], default=str)[:600]}")
        if "error" in scenario:
            print(f"         error: {scenario['error']}")
    log = result.get("gunicornLog", {})
    print(f"  gunicorn log: {log.get('lines', 0)} lines, {log.get('tracebacks', 0)} tracebacks, "
          f"levels {log.get('byLevel', {})}, request statuses {log.get('requestStatuses', {})}")
    for message, count in log.get("warningsAndErrors", {}).items():
        print(f"    {count:>6} x {message[:150]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", action="store_true", help="leave the temporary folder (cluster, logs) behind")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _interrupt)
    started_at, clock = dt.datetime.now(dt.UTC), time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="rr-faults-"))
    pg_folder = Path(tempfile.mkdtemp(prefix="rr-faults-pg-"))
    cluster, gunicorn = Cluster(pg_folder), None
    result: dict[str, Any] = {"startedAt": started_at.isoformat(timespec="seconds"), "scenarios": {}}
    all_calls: list[Call] = []
    try:
        cluster.init()
        cluster.start()
        database = "faults"
        import psycopg

        with psycopg.connect(cluster.dsn("postgres"), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{database}"')
            result["postgres"] = connection.execute("SHOW server_version").fetchone()[0]
        url = cluster.server_url(database)
        env = {key: value for key, value in os.environ.items() if not key.startswith(("TOKEN_", "PSEUDONYM_"))}
        (work / "metrics").mkdir()
        env |= {"APP_ENV": "development", "INSTANCE_PATH": str(work / "instance"), "DATABASE_URL": url,
                "RATE_LIMIT": "1000000 per minute", "TOKEN_RATE_LIMIT": "1000000 per minute",
                "PROMETHEUS_MULTIPROC_DIR": str(work / "metrics"), "REDIS_URL": "", "LOG_LEVEL": "INFO"}
        run_cli(env, "db", "upgrade")
        institution_id, location_id = seed(url)
        client = json.loads(run_cli(env, "clients", "create", "--role", "institution", "--name", "faults",
                                    "--institution-id", institution_id, "--json"))
        gunicorn = Gunicorn(env, work / "gunicorn.log", workers=WORKERS).start()
        gunicorn.wait_ready(seconds=30)
        api = Api(gunicorn.port)
        api.token = token(gunicorn.port, client["clientId"], client["clientSecret"], REQUEST_TIMEOUT)
        setup = Setup(api, gunicorn, cluster, Register(url, institution_id, env), location_id, database)
        print(f"scratch cluster on {HOST}:{cluster.port} ({pg_folder}), gunicorn on {HOST}:{gunicorn.port} "
              f"(master {gunicorn.pid}, workers {gunicorn.workers()}), log {work / 'gunicorn.log'}")

        for name, scenario in (("workerKill", scenario_worker_kill), ("postgresRestart", scenario_postgres_restart),
                               ("readOnly", scenario_read_only)):
            print(f"scenario {name} ...", flush=True)
            try:
                outcome = scenario(setup)
                all_calls.extend(outcome.pop("_calls"))
            except Exception as exc:  # a broken scenario is a failed one; the others still run
                outcome = {"passed": False, "error": f"{type(exc).__name__}: {exc}"}
            result["scenarios"][name] = outcome
        print("final checks ...", flush=True)
        try:
            result["scenarios"]["final"] = final_checks(setup, all_calls)
        except Exception as exc:
            result["scenarios"]["final"] = {"passed": False, "error": f"{type(exc).__name__}: {exc}"}
        setup.register.engine.dispose()
    except KeyboardInterrupt:
        result["interrupted"] = True
        print("interrupted; cleaning up", file=sys.stderr)
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
        print(f"set-up failed: {result['error']}", file=sys.stderr)
    finally:
        if gunicorn is not None:
            gunicorn.stop(seconds=15)
        cluster.destroy()
        result["gunicornLog"] = summarise_log(work / "gunicorn.log")
        if args.keep:
            print(f"kept {work} and {pg_folder}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
            shutil.rmtree(pg_folder, ignore_errors=True)

    result["finishedAt"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    result["durationSeconds"] = round(time.monotonic() - clock, 1)
    result["python"], result["machine"], result["gunicornWorkers"] = platform.python_version(), platform.machine(), \
        WORKERS
    scenarios = result["scenarios"]
    result["passed"] = bool(scenarios) and len(scenarios) == 4 and all(s.get("passed") for s in scenarios.values()) \
        and "error" not in result and not result.get("interrupted")
    out = write_json(RESULTS / f"faults-{started_at.date().isoformat()}.json", result)
    print_summary(result, out)
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
