"""What an export holds and how its rows are produced: a stream, so memory stays flat however many rows.

Rows are read as plain Core tuples of exactly the exported columns (never the ORM entity, so the note and the
fingerprints are not even fetched), 500 at a time from a server-side cursor, and each 500 leave as one chunk
serialised by orjson. The lists are read as their stored JSON text and the timestamps without SQLAlchemy's
per-value conversion: with ORM entities, a dict and json.dumps per row and one chunk per row, these made the first
version about four times slower. tests/exports/reference.py keeps that version as the oracle whose bytes
the output must equal.
"""

from __future__ import annotations

import datetime as dt
import functools
import hmac
import io
import json
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import orjson
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import DateTime, Select, String, Text, cast, func, select, text, type_coerce
from sqlalchemy.orm import Session

from service.auth.access import Caller
from service.db import UTCDateTime
from service.exports.schemas import COLUMNS, ExportRow
from service.incidents.models import Incident
from service.periods import AMSTERDAM, Period
from service.registry.models import Institution, Location
from service.spreadsheet import BOM, LIST_SEPARATOR, csv_writer, defused

LISTS = ("indicators", "reported_to")
# Names from the registry (screened when stored: they hold no personal data), beside the ids they name.
NAMES = {"institution_name": Institution.name, "location_name": Location.name}
PSEUDONYM = "resident_pseudonym"
FIELDS = tuple(ExportRow().fields)  # the model's attribute names, in COLUMNS order


def _exported_column(name: str) -> Any:
    if name in NAMES:
        return NAMES[name].label(name)
    column = getattr(Incident, name)
    if name in LISTS:
        return cast(column, Text).label(name)  # parsed by orjson: SQLAlchemy's JSON type parses with json.loads
    if name == "status":
        return type_coerce(column, String).label(name)  # stored by value: the value is what is exported
    if isinstance(column.type, UTCDateTime):
        # UTC by the session's time zone (PostgreSQL) or as stored (SQLite, naive): no per-value conversion.
        return type_coerce(column, DateTime(timezone=True)).label(name)
    return column


# Only these columns are ever selected: nothing else of an incident can reach an export.
EXPORTED = tuple(_exported_column(name) for name in FIELDS)


@functools.cache
def export_key(master_key: bytes, version: int = 1) -> bytes:
    """The export domain's key of one version of EXPORT_KEYS: pseudonyms re-keyed with it cannot be joined to a
    copy of the database, nor to exports under another version."""
    info = b"export-pseudonym/v%d" % version
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(master_key)


def exported_incidents(caller: Caller, first: Period, last: Period, generated_at: dt.datetime) -> Select[Any]:
    """Incidents at locations in the auditor's scope that occurred in [first, last], recorded by generated_at."""
    start = dt.datetime.combine(first.start, dt.time(), AMSTERDAM)
    end = dt.datetime.combine(last.end, dt.time(), AMSTERDAM)
    # Scoped like analysts: by where the signal was logged.
    return (select(*EXPORTED).join(Location, Location.id == Incident.location_id)
            .join(Institution, Institution.id == Incident.institution_id)
            .where(caller.scope(Location.municipality_code), Incident.occurred_at >= start, Incident.occurred_at < end,
                   Incident.recorded_at <= generated_at))


def count_rows(session: Session, stmt: Select[Any]) -> int:
    return session.scalar(select(func.count()).select_from(stmt.subquery())) or 0


def rekey(key: bytes) -> Callable[[str | None], str | None]:
    """The resident pseudonym as the export shows it: HMAC-SHA256 under the export key, never the stored one."""

    def pseudonym(stored: str | None) -> str | None:
        return hmac.digest(key, stored.encode(), "sha256").hex() if stored else None

    return pseudonym


def _partitions(session: Session, stmt: Select[Any], batch: int) -> Iterator[Sequence[Any]]:
    """The rows in recording order, `batch` at a time from a server-side cursor."""
    if session.get_bind().dialect.name == "postgresql":
        # Timestamps then arrive in UTC, as the first version's conversion gave them; only this transaction.
        session.execute(text("SET LOCAL TIME ZONE 'UTC'"))
    ordered = stmt.order_by(Incident.recorded_at, Incident.id).execution_options(yield_per=batch)
    yield from session.connection().execute(ordered).partitions()


_PSEUDONYM_AT = FIELDS.index(PSEUDONYM)
_LISTS_AT = tuple(FIELDS.index(name) for name in LISTS)
_NON_ASCII = re.compile("[\x7f-\U0010ffff]")
_JSON_OPTIONS = orjson.OPT_NAIVE_UTC | orjson.OPT_APPEND_NEWLINE


def _list(stored: str | None) -> list[str]:
    return (orjson.loads(stored) if stored else None) or []


def _ascii(chunk: bytes) -> bytes:
    """Escape what json.dumps escapes and orjson writes as it is (DEL and non-ASCII), so the bytes stay the same."""
    if chunk.isascii() and b"\x7f" not in chunk:
        return chunk
    return _NON_ASCII.sub(lambda m: json.dumps(m.group())[1:-1], chunk.decode()).encode()


def ndjson_lines(rows: Sequence[Sequence[Any]], pseudonym: Callable[[str | None], str | None]) -> bytes:
    """One compact JSON object per row, each ending in a newline."""
    lines = []
    for row in rows:
        values = list(row)
        values[_PSEUDONYM_AT] = pseudonym(values[_PSEUDONYM_AT])
        for at in _LISTS_AT:
            values[at] = _list(values[at])
        lines.append(orjson.dumps(dict(zip(COLUMNS, values, strict=True)), option=_JSON_OPTIONS))
    return _ascii(b"".join(lines))


def ndjson(session: Session, stmt: Select[Any], key: bytes, metadata: dict[str, Any],
           batch: int = 500) -> Iterator[bytes]:
    """One JSON object per line, then a final {"metadata": ...} line with the filters and the row count."""
    count, pseudonym = 0, rekey(key)
    for rows in _partitions(session, stmt, batch):
        count += len(rows)
        yield ndjson_lines(rows, pseudonym)
    yield _ascii(orjson.dumps({"metadata": metadata | {"rowCount": count}}, option=orjson.OPT_APPEND_NEWLINE))


def _text(value: str | None) -> str:
    return "" if value is None else defused(value)


def _joined(stored: str | None) -> str:
    return _text(LIST_SEPARATOR.join(_list(stored)))


def _time(value: dt.datetime | None) -> str:
    if value is None:
        return ""
    return (value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()


def _flag(value: bool | None) -> str:
    return "" if value is None else "true" if value else "false"


def _number(value: int | None) -> int | str:
    return "" if value is None else value


def _csv_cell(name: str) -> Callable[[Any], Any]:
    """How one column becomes a CSV cell; every text the database holds goes through _text."""
    if name in NAMES:
        return _text
    python_type = Incident.__table__.c[name].type.python_type
    if name in LISTS:
        return _joined
    return {uuid.UUID: str, dt.datetime: _time, bool: _flag, int: _number}.get(python_type, _text)


_CSV_CELLS = tuple(_csv_cell(name) for name in FIELDS)


def _csv(rows: Iterable[Sequence[Any]], delimiter: str) -> str:
    buffer = io.StringIO()
    csv_writer(buffer, delimiter).writerows(rows)
    return buffer.getvalue()


def csv_lines(session: Session, stmt: Select[Any], key: bytes, delimiter: str = ",", batch: int = 500
              ) -> Iterator[str]:
    """The byte order mark and a header line, then one line per row, as service/spreadsheet.py writes CSV (lists
    joined with ';' inside their quoted cell). The metadata travels in the headers."""
    cells = list(_CSV_CELLS)
    rekeyed = rekey(key)
    cells[_PSEUDONYM_AT] = lambda stored: rekeyed(stored) or ""
    yield BOM + _csv([COLUMNS], delimiter)
    for rows in _partitions(session, stmt, batch):
        yield _csv(([cell(value) for cell, value in zip(cells, row, strict=True)] for row in rows), delimiter)
