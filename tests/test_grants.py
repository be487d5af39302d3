"""In production the service's own role cannot change or remove access events (PostgreSQL)."""

from __future__ import annotations

import secrets
import uuid

import pytest
from alembic import command
from click.testing import CliRunner
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import ProgrammingError

from service.cli import main
from service.operations import alembic_config


@pytest.fixture
def app_role(postgres_databases, tmp_path):  # type: ignore[no-untyped-def]
    url = postgres_databases.create()
    command.upgrade(alembic_config(url), "head")
    role = f"rr_app_{secrets.token_hex(4)}"
    owner = create_engine(url, isolation_level="AUTOCOMMIT")
    with owner.connect() as connection:
        connection.execute(text(f"CREATE ROLE {role} LOGIN"))
    result = CliRunner().invoke(main, ["db", "grants", "--role", role],
                                env={"DATABASE_URL": url, "INSTANCE_PATH": str(tmp_path)})
    assert result.exit_code == 0, result.output
    yield url, role
    with owner.connect() as connection:
        connection.execute(text(f"DROP OWNED BY {role}"))
        connection.execute(text(f"DROP ROLE {role}"))
    owner.dispose()


def test_the_service_role_may_only_append_to_the_access_log_and_seal_each_event_once(app_role):
    url, role = app_role
    as_app = create_engine(make_url(url).set(username=role, password=None))
    with as_app.begin() as connection:
        seq = connection.execute(text(
            "INSERT INTO access_event (occurred_at, event_type, route, records, filters, outcome) "
            "VALUES (now(), 'read', 'GET /v1/test', '[]', '{}', 200) RETURNING seq")).scalar_one()
        assert connection.execute(text("SELECT count(*) FROM access_event")).scalar() == 1
        connection.execute(text("INSERT INTO institution (id, name, sector, municipality_code, created_at) "
                                "VALUES (:id, 'x', 'other', 'GM0014', now())"), {"id": uuid.uuid4()})
    owner = create_engine(url)  # the trigger binds the owner too (until the owner switches it off)
    with owner.begin() as connection, pytest.raises(ProgrammingError, match="only the sealing columns"):
        connection.execute(text("UPDATE access_event SET hash = :h, request_id = 'x' WHERE seq = :seq"),
                           {"seq": seq, "h": "1" * 64})
    # The app role cannot half-seal an event (which would stop every sealer behind it), nor insert one sealed.
    with as_app.begin() as connection, pytest.raises(ProgrammingError, match="sealed whole"):
        connection.execute(text("UPDATE access_event SET hash = :h WHERE seq = :seq"), {"seq": seq, "h": "3" * 64})
    with as_app.begin() as connection, pytest.raises(ProgrammingError, match="inserted unsealed"):
        connection.execute(text(
            "INSERT INTO access_event (occurred_at, event_type, route, records, filters, outcome, chain_seq, hash) "
            "VALUES (now(), 'read', 'GET /v1/test', '[]', '{}', 200, 99, :h)"), {"h": "4" * 64})
    with as_app.begin() as connection:  # the sealer's own statement
        connection.execute(text(
            "UPDATE access_event SET chain_seq = 1, prev_hash = :prev, hash = :hash, key_version = 1, "
            "handover_hash = NULL, sealed_at = now() WHERE seq = :seq"),
            {"prev": "0" * 64, "hash": uuid.uuid4().hex * 2, "seq": seq})
    for engine in (as_app, owner):
        with engine.begin() as connection, pytest.raises(ProgrammingError, match="sealed and is never changed"):
            connection.execute(text("UPDATE access_event SET hash = :h WHERE seq = :seq"), {"seq": seq, "h": "2" * 64})
    owner.dispose()
    for statement in ("UPDATE access_event SET outcome = 500", "DELETE FROM access_event",
                      "TRUNCATE access_event", "UPDATE alembic_version SET version_num = 'x'"):
        with as_app.begin() as connection, pytest.raises(ProgrammingError, match="permission denied"):
            connection.execute(text(statement))
    as_app.dispose()


def test_grants_refuse_sqlite_and_odd_role_names(tmp_path):
    runner = CliRunner()
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite3", "INSTANCE_PATH": str(tmp_path)}
    result = runner.invoke(main, ["db", "grants", "--role", "app"], env=env)
    assert result.exit_code == 1 and "PostgreSQL only" in result.output
    env["DATABASE_URL"] = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    result = runner.invoke(main, ["db", "grants", "--role", "app; DROP TABLE incident"], env=env)
    assert result.exit_code == 1 and "plain PostgreSQL identifier" in result.output
