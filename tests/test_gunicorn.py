"""The gunicorn configuration: its worker hooks, and a real gunicorn (two workers, no Redis) on the suite's database
for what only a real server shows: what gunicorn refuses itself, and a token limit shared by its workers."""

from __future__ import annotations

import gc
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
from alembic import command
from sqlalchemy import create_engine, func, select

from service import create_app, gunicorn
from service.config import API_VERSION, Settings
from service.http import PROBLEM_JSON, SECURITY_HEADERS
from service.operations import alembic_config
from service.ratelimit import RateLimitHit

ROOT = Path(__file__).resolve().parent.parent
CANARY = "111222333"  # a citizen service number: it must not come back, nor reach gunicorn's log


def test_a_worker_freezes_what_it_loaded_and_collects_young_objects_less_often(settings: Settings) -> None:
    before = gc.get_threshold()
    try:
        gunicorn.post_worker_init(SimpleNamespace(wsgi=create_app(settings.with_overrides(seal_interval_seconds=0))))

        assert gc.get_threshold() == gunicorn.GC_THRESHOLDS
        assert gc.get_threshold()[0] >= 10_000
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_each_worker_runs_a_sealer_and_stops_it_on_exit(settings: Settings) -> None:
    worker = SimpleNamespace(wsgi=create_app(settings.with_overrides(seal_interval_seconds=0.05)))
    before = gc.get_threshold()
    try:
        gunicorn.post_worker_init(worker)
        sealer = worker.wsgi.extensions["sealer"]
        assert any(thread.name == "access-log-sealer" for thread in threading.enumerate())
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
    gunicorn.worker_exit(None, worker)

    assert sealer.stop(timeout=0)  # already ended
    assert not any(thread.name == "access-log-sealer" for thread in threading.enumerate())


@dataclass
class Server:
    port: int
    log: Path
    database_url: str

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)

    def raw(self, data: bytes) -> bytes:
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            sock.sendall(data)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(scratch_databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:  # type: ignore[no-untyped-def]
    """gunicorn as `risk-register serve` starts it, with two workers, no REDIS_URL and the default limits."""
    url = scratch_databases.create()
    command.upgrade(alembic_config(url), "head")
    folder = tmp_path_factory.mktemp("gunicorn")
    port, log = _free_port(), folder / "gunicorn.log"
    env = {key: value for key, value in os.environ.items() if key not in ("REDIS_URL", "TOKEN_RATE_LIMIT")}
    env |= {"DATABASE_URL": url, "APP_ENV": "development", "INSTANCE_PATH": str(folder / "instance"),
            "PROMETHEUS_MULTIPROC_DIR": str(folder), "LOG_LEVEL": "WARNING"}
    argv = [sys.executable, "-m", "gunicorn", "-c", "python:service.gunicorn", "--bind", f"127.0.0.1:{port}",
            "--workers", "2", "service.wsgi:app"]
    with log.open("wb") as output:
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)  # noqa: S603
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"gunicorn did not start:\n{log.read_text()}")
                time.sleep(0.2)
        yield Server(port, log, url)
    finally:
        process.terminate()
        process.wait(timeout=30)


def _assert_service_problem(status: int, headers: dict[str, str], body: bytes, expected: int) -> None:
    assert status == expected, body
    assert headers["content-type"] == PROBLEM_JSON
    assert headers["api-version"] == API_VERSION
    for name, value in SECURITY_HEADERS.items():
        assert headers[name.lower()] == value, name
    problem = json.loads(body)
    assert set(problem) == {"type", "title", "status", "detail", "instance"}
    assert problem["status"] == expected
    assert problem["instance"] == f"urn:request:{headers['x-request-id']}"
    assert CANARY not in body.decode()


def _response(server: Server, method: str, path: str, headers: dict[str, str] | None = None,
              body: str | None = None) -> tuple[int, dict[str, str], bytes]:
    connection = server.connection()
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def test_a_request_line_over_gunicorns_limit_is_a_414_problem(server: Server) -> None:
    status, headers, body = _response(server, "GET", f"/v1/incidents?cursor={CANARY}{'x' * 5000}")
    _assert_service_problem(status, headers, body, 414)


def test_a_header_over_gunicorns_limit_is_a_431_problem(server: Server) -> None:
    status, headers, body = _response(server, "GET", "/v1/taxonomy", headers={"X-Padding": CANARY + "x" * 9000})
    _assert_service_problem(status, headers, body, 431)


def test_what_is_not_http_is_a_400_problem(server: Server) -> None:
    answer = server.raw(f"NOT HTTP AT ALL {CANARY}\r\n\r\n".encode())
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value for name, _, value in (line.partition(": ") for line in lines)}
    _assert_service_problem(int(status_line.split()[1]), headers, body, 400)


def test_gunicorn_logs_the_kind_of_refusal_never_the_request(server: Server) -> None:
    _response(server, "GET", f"/v1/incidents?cursor={CANARY}{'y' * 5000}")
    time.sleep(0.2)  # the worker writes its log line after answering
    log = server.log.read_text()
    assert "refused a request before the app: LimitRequestLine (414)" in log
    assert CANARY not in log


@pytest.mark.slow
def test_the_token_limit_holds_across_workers_without_redis(server: Server) -> None:
    # Per worker, two workers let the first 429 come at request 42 to 59; shared, it comes at request 31.
    form = "grant_type=client_credentials&client_id=nobody&client_secret=wrong"
    statuses = [_response(server, "POST", "/v1/oauth/token", body=form,
                          headers={"Content-Type": "application/x-www-form-urlencoded", "Connection": "close"})[0]
                for _ in range(31)]

    assert statuses == [401] * 30 + [429]
    engine = create_engine(server.database_url)
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(RateLimitHit)) == 30
    engine.dispose()


def test_another_wsgi_app_under_the_configuration_boots_without_a_sealer_or_folder():
    """bench/run.py serves its baseline app with this configuration: a worker of it starts no register threads."""
    from flask import Flask

    worker = SimpleNamespace(wsgi=Flask("baseline"))
    gunicorn.post_worker_init(worker)
    gunicorn.worker_exit(None, worker)
    assert "sealer" not in worker.wsgi.extensions and "folder" not in worker.wsgi.extensions
    gc.unfreeze()
