"""The `risk-register` command, run in-process on a SQLite file of its own."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, func, inspect, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from service import clock, create_app
from service.auth import service as auth_service
from service.auth.models import ApiClient, Role
from service.cli import ROOT, main
from service.demo import last_full_quarter
from service.operations import newest_revision
from service.registry.models import Institution, Location, Sector
from tests.conftest import unavailable
from tests.serving import BIN, free_port, served, suite_clock

Invoke = Callable[..., Result]
DEMO_LINE = re.compile(r"^  (institution|analyst|auditor|admin) +clientId=(\S+)  clientSecret=(\S+)$")
TOKEN_LINE = re.compile(r"^  TOKEN=\$\(curl -s -u '([^':]+):([^']+)' -d grant_type=client_credentials "
                        r"http://127\.0\.0\.1:(\d+)/v1/oauth/token \| python3 -c '[^']+'\)  # (\w+)$")


@pytest.fixture
def database_file(tmp_path: Path) -> Path:
    return tmp_path / "cli.sqlite3"


@pytest.fixture
def cli(tmp_path: Path, database_file: Path) -> Invoke:
    """cli(*args) runs `risk-register ARGS` with an instance folder and database of this test's own."""
    runner = CliRunner()
    env = {"INSTANCE_PATH": str(tmp_path), "DATABASE_URL": f"sqlite:///{database_file}"}

    def invoke(*args: str) -> Result:
        return runner.invoke(main, list(args), env=env)

    return invoke


@pytest.fixture
def engine(database_file: Path) -> Iterator[Engine]:
    engine = create_engine(f"sqlite:///{database_file}")
    yield engine
    engine.dispose()


@pytest.fixture
def migrated(cli: Invoke) -> None:
    result = cli("db", "upgrade")
    assert result.exit_code == 0, result.output


def _count(engine: Engine, model: type) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(model))  # type: ignore[return-value]


def _clients(engine: Engine) -> list[ApiClient]:
    with Session(engine, expire_on_commit=False) as session:
        return list(session.scalars(select(ApiClient).order_by(ApiClient.name)))


def _demo_credentials(output: str) -> dict[str, tuple[str, str]]:
    found = [DEMO_LINE.match(line) for line in output.splitlines()]
    return {m.group(1): (m.group(2), m.group(3)) for m in found if m}


def _token_lines(output: str) -> dict[str, tuple[str, str, str]]:
    """role -> (client id, secret, port) of the printed lines that set TOKEN."""
    found = [TOKEN_LINE.match(line) for line in output.splitlines()]
    return {m.group(4): (m.group(1), m.group(2), m.group(3)) for m in found if m}


# db


def test_db_upgrade_migrates_to_the_newest_revision(cli, engine):
    result = cli("db", "upgrade")

    assert result.exit_code == 0, result.output
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == newest_revision()
    assert {"api_client", "institution", "location", "capacity"} <= set(inspect(engine).get_table_names())


def test_db_downgrade_base_empties_the_schema_and_upgrade_rebuilds_it(cli, engine, migrated):
    result = cli("db", "downgrade", "base")

    assert result.exit_code == 0, result.output
    assert inspect(engine).get_table_names() == ["alembic_version"]
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 0

    result = cli("db", "upgrade")

    assert result.exit_code == 0, result.output
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == newest_revision()
    assert "institution" in inspect(engine).get_table_names()


# clients create


def test_clients_create_json_prints_one_object_with_a_working_secret(cli, engine, migrated):
    result = cli("clients", "create", "--role", "admin", "--name", "ops", "--json")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    created = json.loads(lines[0])
    assert set(created) == {"clientId", "clientSecret"}
    [client] = _clients(engine)
    assert (str(client.id), client.name, client.role, client.active) == (created["clientId"], "ops", Role.ADMIN,
                                                                        True)
    assert created["clientSecret"] not in client.secret_hash
    with Session(engine) as session:
        assert auth_service.authenticate_client(session, created["clientId"], created["clientSecret"]) is not None
        assert auth_service.authenticate_client(session, created["clientId"], "wrong") is None


def test_clients_create_without_json_prints_id_and_secret_once(cli, engine, migrated):
    result = cli("clients", "create", "--role", "admin", "--name", "ops")

    assert result.exit_code == 0, result.output
    [client] = _clients(engine)
    match = re.fullmatch(r"clientId=(\S+)\nclientSecret=(\S+)\n\(the secret is not shown again\)\n", result.stdout)
    assert match, result.stdout
    assert match.group(1) == str(client.id)


def test_clients_create_analyst_with_a_municipality_code(cli, engine, migrated):
    result = cli("clients", "create", "--role", "analyst", "--name", "a", "--municipality-code", "GM0014", "--json")

    assert result.exit_code == 0, result.output
    created = json.loads(result.stdout)
    [client] = _clients(engine)
    assert (str(client.id), client.role, client.municipality_codes) == (created["clientId"], Role.ANALYST,
                                                                        ["GM0014"])


def test_clients_create_institution_client_for_an_institution(cli, engine, migrated):
    with Session(engine) as session:
        institution = Institution(name="Instelling", sector=Sector.YOUTH_CARE, municipality_code="GM0014")
        session.add(institution)
        session.commit()
        institution_id = institution.id

    result = cli("clients", "create", "--role", "institution", "--name", "i", "--institution-id",
                 str(institution_id), "--json")

    assert result.exit_code == 0, result.output
    [client] = _clients(engine)
    assert (client.role, client.institution_id) == (Role.INSTITUTION, institution_id)


def test_clients_create_refuses_an_analyst_without_codes_and_creates_nothing(cli, engine, migrated):
    result = cli("clients", "create", "--role", "analyst", "--name", "a")

    assert result.exit_code != 0
    assert _clients(engine) == []


def test_clients_create_explains_an_invalid_scope(cli, migrated):
    result = cli("clients", "create", "--role", "analyst", "--name", "a")

    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in (1, 2)
    assert "Give municipality codes (GM0014) or '*'." in result.output
    assert "Traceback" not in result.output


def test_clients_create_refuses_an_unknown_role(cli, migrated):
    result = cli("clients", "create", "--role", "root", "--name", "x")
    assert result.exit_code == 2
    assert "Invalid value for '--role'" in result.output


# demo


def test_demo_prints_one_client_per_role_and_how_to_get_a_token(cli, engine):
    result = cli("demo")

    assert result.exit_code == 0, result.output
    credentials = _demo_credentials(result.stdout)
    assert sorted(credentials) == ["admin", "analyst", "auditor", "institution"]
    by_id = {str(c.id): c for c in _clients(engine)}
    assert {role: by_id[client_id].role.value for role, (client_id, _) in credentials.items()} == {
        "institution": "institution", "analyst": "analyst", "auditor": "auditor", "admin": "admin"}
    with Session(engine) as session:
        for client_id, secret in credentials.values():
            assert auth_service.authenticate_client(session, client_id, secret) is not None
    assert _token_lines(result.stdout) == {role: (client_id, secret, "8000")
                                            for role, (client_id, secret) in credentials.items()}
    assert (_count(engine, Institution), _count(engine, Location)) == (3, 7)


def test_demo_twice_keeps_the_data_and_rotates_the_secrets(cli, engine):
    first = cli("demo")
    second = cli("demo")

    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert (_count(engine, Institution), _count(engine, Location), _count(engine, ApiClient)) == (3, 7, 4)
    before, after = _demo_credentials(first.stdout), _demo_credentials(second.stdout)
    assert sorted(after) == sorted(before) == ["admin", "analyst", "auditor", "institution"]
    for role in before:
        assert after[role][0] == before[role][0], "the same client is reused"
        assert after[role][1] != before[role][1], "with a new secret"
    with Session(engine) as session:
        for client_id, old_secret in before.values():
            assert auth_service.authenticate_client(session, client_id, old_secret) is None
        for client_id, new_secret in after.values():
            assert auth_service.authenticate_client(session, client_id, new_secret) is not None


@pytest.mark.parametrize(("today", "quarter"), [("2026-01-01", "2025-Q4"), ("2026-03-31", "2025-Q4"),
                                               ("2026-04-01", "2026-Q1"), ("2026-12-31", "2026-Q3")])
def test_the_demos_statistics_ask_for_the_last_full_quarter(today, quarter):
    assert last_full_quarter(dt.date.fromisoformat(today)) == quarter


def test_demo_prints_for_the_given_port_a_statistics_request_with_data_and_the_docs(cli, database_file, tmp_path):
    result = cli("demo", "--port", "8123")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert {port for _id, _secret, port in _token_lines(result.stdout).values()} == {"8123"}
    quarter = last_full_quarter(clock.today())
    request = (f"  curl -s -H \"Authorization: Bearer $TOKEN\" "
               f"'http://127.0.0.1:8123/v1/stats/hotspots?period={quarter}&groupBy=location'")
    assert lines[-4:-1] == [request, "", "Docs: http://127.0.0.1:8123/v1/docs"]
    analyst_id, analyst_secret, _port = _token_lines(result.stdout)["analyst"]
    assert lines[-1] == (f"Dashboard: http://127.0.0.1:8123/dashboard/  (sign in as the analyst: client id "
                         f"{analyst_id}, secret {analyst_secret}; pick {quarter})")
    # The request answers with released figures: the demo data covers that quarter.
    app = create_app({"DATABASE_URL": f"sqlite:///{database_file}", "INSTANCE_PATH": str(tmp_path)})
    http = app.test_client()
    analyst_id, analyst_secret = _demo_credentials(result.stdout)["analyst"]
    token = http.post("/v1/oauth/token", data={"grant_type": "client_credentials"},
                      auth=(analyst_id, analyst_secret)).json["access_token"]
    answer = http.get(request.split("'")[1].removeprefix("http://127.0.0.1:8123"),
                      headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.json
    assert len(answer.json["units"]) == 7
    assert sum(unit["incidents"]["value"] or 0 for unit in answer.json["units"]) > 0


@pytest.mark.slow
def test_the_printed_lines_run_in_a_shell_against_the_served_demo(cli, database_file, tmp_path):
    if shutil.which("curl") is None:
        unavailable("curl is not installed", "curl")
    port = free_port()
    result = cli("demo", "--port", str(port))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    [analyst_token] = [line for line in lines if line.endswith("  # analyst")]
    [statistics] = [line for line in lines if line.startswith("  curl") and "/v1/stats/hotspots" in line]
    env = {"DATABASE_URL": f"sqlite:///{database_file}", "INSTANCE_PATH": str(tmp_path)} | suite_clock()
    argv = [str(BIN / "risk-register"), "serve", "--bind", f"127.0.0.1:{port}", "--workers", "1"]

    with served(argv, env, tmp_path, port):
        shell = subprocess.run(["bash", "-c", f"{analyst_token}\n{statistics}"],  # noqa: S603, S607 - as a reader
                               capture_output=True, text=True, timeout=60, check=True)

    body = json.loads(shell.stdout)
    assert body["period"] == last_full_quarter(clock.today())
    assert len(body["units"]) == 7


def test_serve_refuses_a_port_in_use_before_it_starts_anything(cli):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        result = cli("serve", "--bind", f"127.0.0.1:{port}", "--check")

    assert result.exit_code == 1
    assert result.output == (f"Error: 127.0.0.1:{port} is in use: stop what listens there, or choose another port "
                             f"(make run PORT={port + 1})\n")
    assert cli("serve", "--bind", f"127.0.0.1:{port}", "--check").exit_code == 0  # free again


def test_make_run_checks_the_port_before_it_issues_demo_secrets_again(tmp_path):
    venv = BIN.parent
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # `-o`: the installed venv counts as up to date, so the test never reinstalls it
        make = ["make", "--no-print-directory", "-o", f"{venv}/bin/risk-register", f"VENV={venv}", "run",
                f"PORT={port}"]
        done = subprocess.run(make, cwd=ROOT, capture_output=True, text=True, timeout=120,  # noqa: S603
                              env=os.environ | {"INSTANCE_PATH": str(tmp_path / "instance")})

    assert done.returncode != 0
    assert f"Error: 127.0.0.1:{port} is in use" in done.stderr
    assert "demo" not in done.stdout
    assert not (tmp_path / "instance" / "risk-register.sqlite3").exists()


# openapi


def test_openapi_check_fails_on_a_stale_document(cli, tmp_path):
    stale = tmp_path / "openapi.yaml"
    stale.write_text("openapi: 3.0.3\ninfo: {}\n")

    result = cli("openapi", "check", str(stale))

    assert result.exit_code == 1
    assert f"{stale} is out of date; run `risk-register openapi write`" in result.stderr


def test_openapi_check_fails_on_a_missing_document(cli, tmp_path):
    result = cli("openapi", "check", str(tmp_path / "absent.yaml"))
    assert result.exit_code == 1


def test_openapi_write_then_check_passes(cli, tmp_path):
    document = tmp_path / "openapi.yaml"

    written = cli("openapi", "write", str(document))
    checked = cli("openapi", "check", str(document))

    assert written.exit_code == 0, written.output
    assert written.stdout == f"wrote {document}\n"
    assert "openapi: 3.1.0\n" in document.read_text()
    assert "\n  /institutions:\n" in document.read_text()
    assert checked.exit_code == 0, checked.output
    assert checked.stdout == f"{document} is up to date\n"

