"""The export's fast path writes what its first version wrote, byte for byte, and reads nothing else.

tests/exports/reference.py is that first version (ORM entities, a dict and json.dumps per row). Both run here on
the same rows: awkward text (non-ASCII, DEL, control characters, every formula prefix), timestamps with and without
microseconds, absent pseudonyms and follow-ups, booleans of every kind; on PostgreSQL also under a session time zone
other than UTC, which the fast path must not let through into the timestamps.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import uuid
from collections.abc import Iterator
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings
from sqlalchemy import insert, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from service import clock
from service.auth.access import Caller
from service.auth.models import Role
from service.exports import service
from service.exports.schemas import ExportRow
from service.incidents.models import Incident, Status
from service.periods import parse_period
from tests.exports import reference
from tests.factories import make_institution, make_location

KEY = secrets.token_bytes(32)
AWKWARD = ["Zoë van 't Hof", "ĳsbaan 𝄞 ☃", "del\x7fete", "tab\tand\nnewline \"quoted\" back\\slash",
           "=SUM(A1)", "+31", "-5", "@cmd", "\tlead", "\rlead", "semi;colon,comma", ""]
NOW = clock.now().replace(microsecond=123456)


def _incident(location: Any, n: int, reference_text: str) -> dict[str, Any]:
    whole_second = n % 2 == 0  # isoformat leaves out microseconds that are zero
    occurred = (NOW - dt.timedelta(hours=n + 1)).replace(microsecond=0 if whole_second else 7)
    absence = n % 3 == 0
    return {"id": uuid.uuid4(), "institution_id": location.institution_id, "location_id": location.id,
            "client_reference": f"{reference_text}#{n}",
            "kind": "absence" if absence else "suspiciousVisitor", "exploitation_type": "criminal",
            "occurred_at": occurred, "recorded_at": NOW - dt.timedelta(minutes=n),
            "resident_pseudonym": None if n % 5 == 0 else secrets.token_hex(32),
            "resident_key_version": None if n % 5 == 0 else 1, "resident_age_band": "16to17",
            "indicators": [] if n % 6 == 0 else ["-minus", "approachedAtEntrance"] if n == 1 else ["vuurwerk"],
            "note": "Stond bij het hek.",
            "absence_ended_at": occurred + dt.timedelta(hours=3) if absence else None,
            "absence_whereabouts_known": [True, False, None][n % 3] if absence else None,
            "absence_risk_level": "red" if absence else None,
            "absence_reported_missing_to_police": (n % 2 == 1) if absence else None,
            "visitor_estimated_age_band": None if absence else "23plus",
            "visitor_relation_claimed": None if absence else "=friend" if n == 2 else "friend",
            "visitor_plate_fingerprint": None if absence else secrets.token_hex(32),
            "meldcode_step": None if n % 4 == 0 else n % 5,
            "reported_to": ["veiligThuis", "politie"] if n % 7 == 0 else [],
            "reported_at": occurred + dt.timedelta(days=1) if n % 7 == 0 else None,
            "status": Status.RETRACTED if n == 3 else Status.ACTIVE, "version": 1 + n % 2,
            "taxonomy_version": "2026.1", "record_key": n % 256}


@pytest.fixture
def awkward_rows(session: Session, connection: Connection) -> Iterator[Any]:
    """Incidents with awkward values at one location of its own; the export statement of a national auditor."""
    location = make_location(session, make_institution(session, municipality_code="GM0034", name="=Zorg & Co"),
                             name="-Noord")
    session.flush()
    connection.execute(insert(Incident), [_incident(location, n, value) for n, value in enumerate(AWKWARD * 2)])
    if connection.dialect.name == "postgresql":
        connection.execute(text("SET TIME ZONE 'America/St_Johns'"))  # UTC-03:30: not what an export shows
    today = clock.now().date()
    first = parse_period(str(today.year - 1), today)
    caller = Caller(uuid.uuid4(), Role.AUDITOR, None, ("GM0034",))
    yield service.exported_incidents(caller, first, parse_period(str(today.year), today), clock.now())
    if connection.dialect.name == "postgresql":
        connection.execute(text("RESET TIME ZONE"))


def test_ndjson_is_byte_for_byte_the_first_versions(session: Session, awkward_rows: Any) -> None:
    metadata = {"generatedAt": NOW.isoformat(), "filters": {"from": "2025", "to": "2026"}, "note": "Zoë"}

    fast = b"".join(service.ndjson(session, awkward_rows, KEY, metadata, batch=7))
    first = "".join(reference.ndjson(session, awkward_rows, KEY, metadata)).encode()

    assert fast.count(b"\n") == len(AWKWARD) * 2 + 1
    assert fast.isascii()
    assert fast == first


@pytest.mark.parametrize("delimiter", [",", ";"])
def test_csv_is_byte_for_byte_the_first_versions(session: Session, awkward_rows: Any, delimiter: str) -> None:
    fast = "".join(service.csv_lines(session, awkward_rows, KEY, delimiter, batch=7))
    first = "".join(reference.csv_lines(session, awkward_rows, KEY, delimiter))

    assert fast == first
    assert fast.startswith('\ufeff"id"' + delimiter)
    for prefix in ("=SUM", "+31", "-5", "@cmd", "\tlead", "\rlead", "=friend", "-minus", "=Zorg", "-Noord"):
        # Neutralised, and never at the start of a cell (after a separator, or quoted because of the \t or \r).
        assert f"'{prefix}" in fast
        assert f"{delimiter}{prefix}" not in fast and f'{delimiter}"{prefix}' not in fast
        assert f"\n{prefix}" not in fast


def test_only_the_exported_columns_are_read(awkward_rows: Any) -> None:
    selected = [column.name for column in awkward_rows.selected_columns]
    sql = str(awkward_rows)

    assert selected == list(ExportRow().fields)
    assert len(selected) == 25
    for stored in ("note", "fingerprint", "resident_key_version", "record_key", "retracted_at"):
        assert stored not in sql


def test_the_pseudonym_is_rekeyed_never_the_stored_one(session: Session, awkward_rows: Any) -> None:
    stored = {row.resident_pseudonym for row in session.execute(awkward_rows) if row.resident_pseudonym}
    lines = b"".join(service.ndjson(session, awkward_rows, KEY, {})).decode().splitlines()[:-1]
    exported = [json.loads(line)["residentPseudonym"] for line in lines]

    assert len(stored) >= 10
    assert not stored & set(exported)
    assert not any(p in line for p in stored for line in lines)
    assert {p for p in exported if p} == {service.rekey(KEY)(p) for p in stored}


@settings(max_examples=200, deadline=None)
@given(st.text(), st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=8))
def test_any_text_is_escaped_as_json_dumps_escapes_it(reference_text: str, taxonomy_version: str) -> None:
    """Without a database: one row through ndjson_lines against json.dumps of the first version's dict."""
    incident = Incident(id=uuid.uuid4(), institution_id=uuid.uuid4(), location_id=uuid.uuid4(),
                        client_reference=reference_text, kind="absence", exploitation_type="sexual",
                        resident_age_band="12to15", indicators=[reference_text], occurred_at=NOW,
                        recorded_at=NOW.replace(microsecond=0), status=Status.ACTIVE, version=1,
                        taxonomy_version=taxonomy_version, resident_pseudonym="ab" * 32, reported_to=[])
    names = {"institution_name": reference_text, "location_name": taxonomy_version}
    values = tuple(json.dumps(getattr(incident, name)) if name in service.LISTS else
                   getattr(incident, name).value if name == "status" else
                   names[name] if name in names else getattr(incident, name)
                   for name in service.FIELDS)

    line = service.ndjson_lines([values], service.rekey(KEY))

    assert line.decode("ascii") == json.dumps(reference.row(incident, KEY, reference_text, taxonomy_version),
                                              separators=(",", ":")) + "\n"
