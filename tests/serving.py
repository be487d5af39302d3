"""The service under gunicorn in a subprocess, as `risk-register serve` runs it, for tests that need the real server."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service import clock

BIN = Path(sys.executable).parent
# How long gunicorn may take to answer /readyz or to stop: a wait for it to get there, not a measurement.
START_SECONDS = 90
STOP_SECONDS = 60


def suite_clock() -> dict[str, str]:
    """The environment that starts a served service's clock where the suite's is (TEST_TODAY moves it)."""
    return {"CLOCK_START": clock.now().isoformat()} if clock.CLOCK.moved else {}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Served:
    url: str
    process: subprocess.Popen  # type: ignore[type-arg]
    stdout: Path
    stderr: Path

    def request(self, method: str, path: str, body: Any = None, headers: Mapping[str, str] | None = None,
                form: Mapping[str, str] | None = None) -> tuple[int, Any]:
        """(status, parsed JSON body or None) of one request."""
        data, sent = None, dict(headers or {})
        if body is not None:
            data, sent["Content-Type"] = json.dumps(body).encode(), "application/json"
        if form is not None:
            data = "&".join(f"{k}={v}" for k, v in form.items()).encode()
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        call = urllib.request.Request(self.url + path, data=data, method=method, headers=sent)  # noqa: S310
        try:
            with urllib.request.urlopen(call, timeout=30) as response:  # noqa: S310 - our own server
                status, text = response.status, response.read()
        except urllib.error.HTTPError as refused:
            status, text = refused.code, refused.read()
        try:
            return status, json.loads(text) if text else None
        except ValueError:
            return status, text.decode()

    def output(self) -> list[str]:
        """Every line gunicorn and the app wrote, stdout then stderr."""
        return self.stdout.read_text().splitlines() + self.stderr.read_text().splitlines()


@contextmanager
def served(argv: list[str], env: Mapping[str, str], folder: Path, port: int) -> Iterator[Served]:
    """Run `argv` (a `risk-register serve` listening on 127.0.0.1:`port`), wait until /readyz answers 200, and stop
    it with SIGTERM afterwards. Its output goes to files in `folder`."""
    stdout, stderr = folder / "stdout.log", folder / "stderr.log"
    environment = {"PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"} | dict(env)
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(argv, env=environment, stdout=out, stderr=err)  # noqa: S603 - our own command
    server = Served(f"http://127.0.0.1:{port}", process, stdout, stderr)
    try:
        deadline = time.monotonic() + START_SECONDS
        while not (_listening(port) and server.request("GET", "/readyz")[0] == 200):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the server did not become ready:\n{stderr.read_text()[-3000:]}")
            time.sleep(0.2)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0
