"""What the benchmark scripts share, each in one place: scratch databases, gunicorn, HTTP, /proc figures, bodies.

The service, SQLAlchemy, Alembic and Flask are imported inside the functions that need them, so that importing this
module costs only the standard library (bench/load.py's spawned driver processes import it too).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import http.client
import json
import os
import platform
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
HOST = "127.0.0.1"
SERVER_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
AMSTERDAM = "Europe/Amsterdam"
KINDS = ("absence", "recruitmentAttempt", "suspiciousVisitor")
# Lines of gunicorn's log that fail a run: errors, tracebacks, worker timeouts and workers killed by a signal.
PROBLEM = re.compile(r"Traceback|\b(ERROR|CRITICAL)\b|WORKER TIMEOUT|Worker \(pid:\d+\) was sent")


# --- databases -------------------------------------------------------------------------------------------------

@contextlib.contextmanager
def scratch_database(server_url: str, prefix: str = "rr_bench") -> Iterator[str]:
    """Create `<prefix>_<random>` on the server of `server_url` (loopback only), yield its URL, drop it."""
    from sqlalchemy import create_engine, make_url, text

    if make_url(server_url).host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("only a PostgreSQL server on this machine may be used")
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        print(f"dropped {name}", file=sys.stderr)


def upgrade(url: str) -> None:
    """`alembic upgrade head` on the database at `url`, in this process."""
    from alembic import command

    from service.operations import alembic_config

    command.upgrade(alembic_config(url), "head")


def prepare(url: str) -> tuple[Flask, str, str]:
    """Migrate the database at `url`, seed one institution with a location and a client: (app, token, location).

    The app runs in this process (the Flask test client), with the rate limit out of the way."""
    import tempfile

    from flask_jwt_extended import create_access_token

    from service import create_app
    from service.auth import service as auth
    from service.auth.models import Role
    from service.config import Settings
    from service.db import db
    from service.registry.models import Capacity, Institution, Location, Sector, Setting

    upgrade(url)
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


def statement_log(app: Flask) -> list[str]:
    """A list that receives the text of every SQL statement `app`'s engine sends from now on."""
    from sqlalchemy import event

    from service.db import db

    statements: list[str] = []
    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    return statements


# --- HTTP ------------------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def call(port: int, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
         timeout: float = 30) -> tuple[int, bytes]:
    """One request on a connection of its own: (status, body)."""
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def token(port: int, client_id: str, secret: str, timeout: float = 30) -> str:
    """An access token from `POST /v1/oauth/token` (client credentials)."""
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    status, data = call(port, "POST", "/v1/oauth/token", b"grant_type=client_credentials",
                        {"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"},
                        timeout)
    if status != 200:
        raise RuntimeError(f"token endpoint answered {status}: {data[:300]!r}")
    return json.loads(data)["access_token"]


def plain_env() -> dict[str, str]:
    """The few variables of this environment a service under test inherits; the rest it is given explicitly."""
    return {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR")}


class Gunicorn:
    """A gunicorn master this script starts and owns, serving `app` as the README does (`-c python:service.gunicorn`,
    sync workers) on a free port of 127.0.0.1, its output appended to `log`. A context manager: started on entry,
    stopped on exit."""

    def __init__(self, env: dict[str, str], log: Path, app: str = "service.wsgi:app", workers: int = 2,
                 extra: Sequence[str] = ()) -> None:
        self.env, self.log, self.app, self.worker_count, self.extra = env, log, app, workers, list(extra)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Gunicorn:
        argv = [sys.executable, "-m", "gunicorn", "-c", "python:service.gunicorn", "--bind", f"{HOST}:{self.port}",
                "--workers", str(self.worker_count), *self.extra, self.app]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        return self

    def wait_ready(self, path: str = "/readyz", seconds: float = 60) -> None:
        """Until `GET path` answers 200; fails when gunicorn exits first or takes longer than `seconds`."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not self.alive():
                returncode = self.process.returncode if self.process else None
                raise RuntimeError(f"gunicorn {self.app} exited with {returncode} before it was ready; see {self.log}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                if call(self.port, "GET", path)[0] == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn {self.app} did not become ready")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def workers(self) -> list[int]:
        return children(self.pid)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, seconds: float = 30) -> None:
        """SIGTERM (graceful), SIGKILL after `seconds`; then whatever of its process group outlived the master (its
        own session: only its workers)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(seconds)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def __enter__(self) -> Gunicorn:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def log_problems(log: Path) -> list[str]:
    """The lines of a gunicorn log that fail a run (PROBLEM)."""
    return [line for line in log.read_text(errors="replace").splitlines() if PROBLEM.search(line)]


# --- measurements from /proc -----------------------------------------------------------------------------------

def children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (gunicorn's workers are the master's children)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                # The command name is in parentheses and may hold spaces: split after the last ')'.
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return sorted(found)


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process, in seconds (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int | None:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def backends(database: str) -> list[int]:
    """PostgreSQL backends serving the scratch database (their process title names it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                if title.startswith("postgres:") and f" {database} " in title:
                    found.append(int(entry.name))
    return found


def system_busy() -> tuple[int, int]:
    """(busy, total) jiffies over all CPUs since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def machine(database_url: str) -> dict[str, Any]:
    """CPUs, memory, kernel and the versions of Python, PostgreSQL (of `database_url`) and gunicorn."""
    import gunicorn
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    with engine.connect() as connection:
        version = connection.execute(text("SELECT version()")).scalar()
    engine.dispose()
    meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    cpu_model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), platform.processor())
    return {"nproc": len(os.sched_getaffinity(0)), "cpuModel": cpu_model,
            "memTotal": meminfo["MemTotal"].strip(), "kernel": platform.release(),
            "python": platform.python_version(), "postgres": version, "gunicorn": gunicorn.__version__}


# --- figures and periods ---------------------------------------------------------------------------------------

def percentile(ordered: list[float], p: float) -> float | None:
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))], 1)


def periods() -> tuple[str, list[str]]:
    """The last complete quarter and the twelve last complete months, in Europe/Amsterdam."""
    from zoneinfo import ZoneInfo

    today = dt.datetime.now(ZoneInfo(AMSTERDAM)).date()
    quarter = (today.month - 1) // 3
    quarter_label = f"{today.year}-Q{quarter}" if quarter else f"{today.year - 1}-Q4"
    months, year, month = [], today.year, today.month
    for _ in range(12):
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
        months.append(f"{year}-{month:02d}")
    return quarter_label, months


# --- request bodies --------------------------------------------------------------------------------------------

def indicators_by_kind() -> dict[str, list[str]]:
    """The taxonomy's indicators of each kind of signal, sorted."""
    from service.taxonomy.service import load_taxonomy

    taxonomy = load_taxonomy()
    return {kind: sorted(taxonomy.indicators_for(kind)) for kind in KINDS}


def incident_body(rng: Any, location_id: str, now: dt.datetime, indicators: dict[str, list[str]]) -> dict[str, Any]:
    """A plausible single signal of the last two weeks in wire form; `@REF@` stands for the client reference."""
    kind = rng.choice(["absence", "absence", "recruitmentAttempt", "suspiciousVisitor"])
    occurred = now - dt.timedelta(hours=rng.randint(1, 14 * 24), minutes=rng.randint(0, 59))
    body: dict[str, Any] = {
        "clientReference": "@REF@", "locationId": location_id, "kind": kind,
        "exploitationType": rng.choice(["criminal", "sexual", "labour", "unknown"]),
        "occurredAt": occurred.isoformat(), "residentRef": f"CL-{rng.randint(1, 200)}",
        "residentAgeBand": rng.choice(["12to15", "16to17", "18to22"]),
        "indicators": rng.sample(indicators[kind], k=min(2, len(indicators[kind]))),
        "note": "benaderd bij de ingang", "followUp": {"meldcodeStep": rng.choice([None, 1, 2])},
    }
    if kind == "absence":
        body["absence"] = {"endedAt": min(occurred + dt.timedelta(hours=6), now).isoformat(),
                           "whereaboutsKnown": True, "riskLevel": "orange"}
    if kind == "suspiciousVisitor":
        body["visitor"] = {"estimatedAgeBand": "23plus", "relationClaimed": "unknown", "vehiclePlate": "GX-123-B"}
    return body


# --- results ---------------------------------------------------------------------------------------------------

def write_json(path: Path, result: dict[str, Any]) -> Path:
    """`result` as indented JSON at `path` (its folder made if missing); values JSON does not know as strings."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return path


def letters(n: int) -> str:
    """n random letters (a to p): unique client references without a run of digits the screening would refuse."""
    return secrets.token_hex(n)[:n].translate(str.maketrans("0123456789", "ghijklmnop"))
