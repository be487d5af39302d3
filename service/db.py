"""Engine, a session per request, and the declarative base."""

from __future__ import annotations

import datetime as dt
import enum
import json
from collections.abc import Mapping, Sequence
from typing import Any

from flask import Flask, current_app, g, has_request_context
from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Enum,
    MetaData,
    Table,
    Text,
    bindparam,
    cast,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _json(column: Column[Any]) -> bool:
    return isinstance(column.type, JSON)


def bulk_insert(dialect_name: str, table: Table, columns: Sequence[str]) -> Any:
    """A dialect's INSERT of many rows into `columns` (ON CONFLICT may follow); execute it with `bulk_rows`.

    On PostgreSQL the rows travel as one array per column through unnest(), so the statement is one short text
    whatever the number of rows: psycopg converts a short text once and caches it, while the multi-VALUES INSERT
    SQLAlchemy would build from thousands of parameters is parsed again on every call (a third of a batch's CPU).
    JSON values travel as text (a list inside the array would be taken for a dimension of it).
    """
    if dialect_name != "postgresql":
        return sqlite.insert(table)
    given = [table.c[c] for c in columns]
    rows = func.unnest(*[bindparam(c.name, type_=postgresql.ARRAY(Text() if _json(c) else c.type)) for c in given]) \
        .table_valued(*columns).render_derived()
    return postgresql.insert(table).from_select(
        list(columns), select(*[cast(rows.c[c.name], c.type) if _json(c) else rows.c[c.name] for c in given]))


def bulk_rows(dialect_name: str, table: Table, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> Any:
    """The parameters of a `bulk_insert` for these rows: arrays per column on PostgreSQL, the rows elsewhere."""
    if dialect_name != "postgresql":
        return list(rows)
    return {c: [json.dumps(row[c]) if row[c] is not None else None for row in rows] if _json(table.c[c])
            else [row[c] for row in rows] for c in columns}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp stored in UTC and always returned timezone-aware (SQLite forgets the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    @property
    def python_type(self) -> type:
        return dt.datetime

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def value_enum(cls: type[enum.StrEnum]) -> Enum:
    """An enum stored by value as a checked string: readable in SQL, and no native type to migrate."""
    return Enum(cls, native_enum=False, length=30, validate_strings=True,
                values_callable=lambda members: [m.value for m in members])


def _configure_sqlite(engine: Engine) -> None:
    """WAL, enforced foreign keys, and transactions that SQLAlchemy controls (savepoints need it)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A request takes the write lock up front (most write at least an access event): SQLite refuses, without
        # waiting, to upgrade a read transaction whose snapshot another writer has overtaken.
        # A writer outside a request (a key re-keying batch) asks for the same with execution option `immediate`.
        immediate = (has_request_context() and not g.get("long_read")) \
            or connection.get_execution_options().get("immediate", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def make_engine(url: str) -> Engine:
    """An engine for the URL, tuned for the backend it names."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False}, hide_parameters=True)
        _configure_sqlite(engine)
        return engine
    # hide_parameters: a failing statement must never put resident data into a log line
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5, hide_parameters=True)


class Database:
    """The app's engine and its request-scoped session: views use `db.session`, the request commits once."""

    def init_app(self, app: Flask, url: str) -> None:
        engine = make_engine(url)
        # Long reads see one snapshot for all their statements (SQLite's read transactions already do).
        reader = engine.execution_options(isolation_level="REPEATABLE READ") if engine.dialect.name == "postgresql" \
            else engine
        app.extensions["database"] = {
            "engine": engine,
            "sessionmaker": sessionmaker(bind=engine, expire_on_commit=False),
            "reader": sessionmaker(bind=reader, expire_on_commit=False),
        }
        app.teardown_appcontext(self._close_session)

    @property
    def engine(self) -> Engine:
        return current_app.extensions["database"]["engine"]

    @property
    def sessionmaker(self) -> sessionmaker[Session]:
        return current_app.extensions["database"]["sessionmaker"]

    @property
    def session(self) -> Session:
        if "db_session" not in g:
            g.db_session = self.sessionmaker()
        return g.db_session

    def long_read(self) -> Session:
        """A session of its own for a read that outlives the request's transaction (a streamed export); the
        caller closes it. One snapshot for all its statements (REPEATABLE READ on PostgreSQL, a read transaction
        on SQLite), and on SQLite no write lock, so writers go on while rows stream."""
        g.long_read = True
        return current_app.extensions["database"]["reader"]()

    def finish(self, commit: bool) -> None:
        """Commit or roll back the request's session, if it opened one."""
        session = g.pop("db_session", None)
        if session is None:
            return
        try:
            if commit:
                session.commit()
            else:
                session.rollback()
        finally:
            session.close()

    def _close_session(self, _exc: BaseException | None) -> None:
        self.finish(commit=False)


db = Database()
