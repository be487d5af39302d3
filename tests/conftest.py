"""Fixtures: one database per test session built by `alembic upgrade head`, each test in a rolled-back savepoint.

The suite runs on SQLite by default and on PostgreSQL when TEST_DATABASE_URL names a server; it then creates and
drops a database of its own there. Under CI=true an unreachable PostgreSQL fails the run instead of skipping it.

Time: every test runs on the service's clock (`service.clock`). It reads the system clock, or the day TEST_TODAY
names (`TEST_TODAY=2028-02-29`: noon in Amsterdam, ticking on), so the suite can be run as if on another day. A test
that names calendar dates sets the clock with `@pytest.mark.clock("2026-11-20")` (a day: noon in Amsterdam; or a
date-time with offset), on itself or on its module; the clock is put back after every test.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient
from flask_jwt_extended import create_access_token
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from service import create_app
from service.auth import service as auth_service
from service.auth.models import ApiClient, Role
from service.clock import CLOCK, Clock, noon_in_amsterdam
from service.config import Settings
from service.db import make_engine
from service.operations import alembic_config
from tests.factories import make_client, make_institution, make_location

IN_CI = os.environ.get("CI", "").lower() == "true"
TEST_TODAY = os.environ.get("TEST_TODAY", "")


def _moment(text: str) -> dt.datetime:
    """A day (noon in Amsterdam) or a date-time with offset."""
    return noon_in_amsterdam(dt.date.fromisoformat(text)) if len(text) == 10 else dt.datetime.fromisoformat(text)


CLOCK.reset()
if TEST_TODAY:
    CLOCK.start_at(_moment(TEST_TODAY))  # before test modules are imported: their module-level dates follow it
SUITE_CLOCK = CLOCK.setting()  # restored after every test: the suite's time goes on ticking, never back


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A browser is slow to start: the browser tests are marked slow (make test-fast leaves them out)."""
    for item in items:
        if "browser" in item.path.parts:
            item.add_marker(pytest.mark.slow)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "clock(moment): run the test with the service's clock started at this day "
                                       "(noon in Amsterdam) or date-time")


@pytest.fixture(autouse=True)
def clock(request: pytest.FixtureRequest) -> Iterator[Clock]:
    """The service's clock, set by the test's `clock` marker (if any) and put back afterwards."""
    marker = request.node.get_closest_marker("clock")
    if marker is not None:
        CLOCK.start_at(_moment(marker.args[0]))
    yield CLOCK
    CLOCK.restore(SUITE_CLOCK)
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def unavailable(reason: str, needed: str = "PostgreSQL") -> None:
    """Skip a test whose service or tool is missing; under CI=true, fail it: CI must run everything."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: {needed} is required, not optional)")
    pytest.skip(reason)


class ScratchDatabases:
    """Creates throwaway databases beside the one named (PostgreSQL) or as files (SQLite), and drops them."""

    def __init__(self, base_url: str | None, folder: Path) -> None:
        self.base_url, self.folder = base_url, folder
        self.created: list[str] = []

    def create(self) -> str:
        if not self.base_url or self.base_url.startswith("sqlite"):
            return f"sqlite:///{self.folder / f'{uuid.uuid4().hex}.sqlite3'}"
        name = f"rr_test_{secrets.token_hex(6)}"
        admin = create_engine(self.base_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
        except OperationalError as exc:
            unavailable(f"PostgreSQL at {make_url(self.base_url).host} is unreachable: {type(exc.orig).__name__}")
        finally:
            admin.dispose()
        self.created.append(name)
        return make_url(self.base_url).set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        if not self.created:
            return
        admin = create_engine(self.base_url, isolation_level="AUTOCOMMIT")  # type: ignore[arg-type]
        with admin.connect() as connection:
            for name in self.created:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def scratch_databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScratchDatabases]:
    scratch = ScratchDatabases(os.environ.get("TEST_DATABASE_URL"), tmp_path_factory.mktemp("db"))
    yield scratch
    scratch.drop_all()


def postgres_server_url() -> str:
    """TEST_DATABASE_URL when it names PostgreSQL, else the local server."""
    url = os.environ.get("TEST_DATABASE_URL") or PG_DEFAULT
    return PG_DEFAULT if url.startswith("sqlite") else url


@pytest.fixture(scope="session")
def postgres_databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScratchDatabases]:
    """Scratch PostgreSQL databases even in the SQLite run, for tests about PostgreSQL behaviour."""
    scratch = ScratchDatabases(postgres_server_url(), tmp_path_factory.mktemp("pg"))
    yield scratch
    scratch.drop_all()


@pytest.fixture(scope="session")
def database_url(scratch_databases: ScratchDatabases) -> str:
    url = scratch_databases.create()
    command.upgrade(alembic_config(url), "head")
    return url


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    # Limits high enough for the suite's own traffic; tests/test_ratelimit.py sets low ones.
    return Settings(environment="test", instance_path=tmp_path_factory.mktemp("instance"),
                    database_url=database_url, token_secret=secrets.token_hex(32),
                    pseudonym_master_key=secrets.token_bytes(32), metrics_token=secrets.token_urlsafe(32),
                    rate_limit="100000 per minute",
                    token_rate_limit="100000 per minute")


@pytest.fixture(scope="session", autouse=True)
def fast_secret_hashing() -> Iterator[None]:
    """Argon2 at production cost makes each client take ~50 ms; the tests check behaviour, not cost."""
    original = auth_service._hasher, auth_service._UNKNOWN_CLIENT_HASH
    auth_service._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    auth_service._UNKNOWN_CLIENT_HASH = auth_service._hasher.hash("unknown")
    yield
    auth_service._hasher, auth_service._UNKNOWN_CLIENT_HASH = original


@pytest.fixture(scope="session")
def app(settings: Settings) -> Flask:
    return create_app(settings)


@pytest.fixture
def connection(app: Flask) -> Iterator[Connection]:
    """The test's connection: everything a test and its requests write is rolled back afterwards."""
    sessionmaker, reader = app.extensions["database"]["sessionmaker"], app.extensions["database"]["reader"]
    engine, reader_bind = app.extensions["database"]["engine"], reader.kw["bind"]
    with engine.connect() as connection:
        outer = connection.begin()
        sessionmaker.configure(bind=connection, join_transaction_mode="create_savepoint")
        # Long reads (exports) only read: they join the test's transaction and never end it.
        reader.configure(bind=connection, join_transaction_mode="rollback_only")
        yield connection
        sessionmaker.configure(bind=engine, join_transaction_mode="conservative_savepoint")
        reader.configure(bind=reader_bind, join_transaction_mode="conservative_savepoint")
        outer.rollback()


@pytest.fixture
def session(connection: Connection) -> Iterator[Session]:
    """A session for factories and domain tests, on the test's connection."""
    with Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False) as session:
        yield session


@pytest.fixture
def client(app: Flask, connection: Connection) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def token_for(app: Flask, session: Session):  # type: ignore[no-untyped-def]
    """token_for(role, **scope) -> Authorization headers of a fresh client with that role."""

    def issue(role: Role, client: ApiClient | None = None, **scope: object) -> dict[str, str]:
        if client is None:
            if role is Role.INSTITUTION and "institution_id" not in scope:
                scope["institution_id"] = make_institution(session).id
            if role in (Role.ANALYST, Role.AUDITOR) and "municipality_codes" not in scope:
                scope["municipality_codes"] = ["GM0014"]
            client, _secret = make_client(session, role=role, **scope)
        with app.app_context():
            token = create_access_token(identity=str(client.id),
                                        additional_claims=auth_service.token_claims(client))
        return {"Authorization": f"Bearer {token}"}

    return issue


@dataclass
class CommittingRegister:
    """A migrated scratch PostgreSQL database and an app on it whose requests really commit (for concurrency)."""

    app: Flask
    engine: Engine
    institution_id: uuid.UUID
    location_id: str

    def bearer(self, role: Role = Role.INSTITUTION, **scope: Any) -> tuple[uuid.UUID, dict[str, str]]:
        """A new committed client of `role` (institution clients belong to the register's institution)."""
        if role is Role.INSTITUTION:
            scope.setdefault("institution_id", self.institution_id)
        with Session(self.engine, expire_on_commit=False) as session:
            client, _secret = make_client(session, role=role, **scope)
            session.commit()
        with self.app.app_context():
            token = create_access_token(identity=str(client.id), additional_claims=auth_service.token_claims(client))
        return client.id, {"Authorization": f"Bearer {token}"}


@pytest.fixture
def committing_register(postgres_databases: ScratchDatabases, settings: Settings) -> Iterator[CommittingRegister]:
    url = postgres_databases.create()
    command.upgrade(alembic_config(url), "head")
    app = create_app(settings.with_overrides(database_url=url))
    engine = make_engine(url)
    with Session(engine, expire_on_commit=False) as session:
        institution = make_institution(session)
        location = make_location(session, institution)
        session.commit()
    yield CommittingRegister(app, engine, institution.id, str(location.id))
    engine.dispose()
    app.extensions["database"]["engine"].dispose()


__all__ = ["make_client", "make_institution", "make_location"]
