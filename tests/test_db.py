"""The bulk INSERT the write path uses: every row arrives, JSON intact, in one statement whose text does not grow."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Column, Integer, MetaData, String, Table, event, select
from sqlalchemy.types import JSON, Uuid

from service.db import bulk_insert, bulk_rows

TRIAL = Table("bulk_trial", MetaData(), Column("id", Uuid, primary_key=True), Column("name", String(20)),
              Column("count", Integer), Column("tags", JSON))


def _insert(connection: Any, rows: list[dict[str, Any]]) -> list[str]:
    name = connection.dialect.name
    statements: list[str] = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731 - (conn, cursor, statement, ...)
    event.listen(connection, "before_cursor_execute", listener)
    try:
        connection.execute(bulk_insert(name, TRIAL, [c.name for c in TRIAL.columns]),
                           bulk_rows(name, TRIAL, [c.name for c in TRIAL.columns], rows))
    finally:
        event.remove(connection, "before_cursor_execute", listener)
    return statements


def test_bulk_insert_writes_every_row_with_its_json_in_one_statement_of_fixed_text(connection):
    TRIAL.create(connection)
    rows = [{"id": uuid.uuid4(), "name": f"n{i}", "count": i, "tags": [] if i % 3 else ["a", {"b": None}]}
            for i in range(300)]

    few = _insert(connection, rows[:2])
    many = _insert(connection, rows[2:])

    stored = {r.id: r._asdict() for r in connection.execute(select(TRIAL))}
    assert stored == {row["id"]: row for row in rows}
    if connection.dialect.name == "postgresql":
        assert len(few) == len(many) == 1
        assert few == many  # one short text, whatever the number of rows: psycopg converts it once
