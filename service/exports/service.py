"""What an export holds and how its rows are produced: a stream, so memory stays flat however many rows."""

from __future__ import annotations

import csv
import datetime as dt
import functools
import hashlib
import hmac
import io
import json
from collections.abc import Iterator
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from service.auth.access import Caller
from service.exports.schemas import COLUMNS
from service.incidents.models import Incident
from service.registry.models import Location
from service.stats.periods import AMSTERDAM, Period


@functools.cache
def export_key(master_key: bytes) -> bytes:
    """The export domain's key: pseudonyms re-keyed with it cannot be joined to a copy of the database."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"export-pseudonym/v1").derive(master_key)


def exported_incidents(caller: Caller, first: Period, last: Period, generated_at: dt.datetime) -> Select[Any]:
    """Incidents at locations in the auditor's scope that occurred in [first, last], recorded by generated_at."""
    start = dt.datetime.combine(first.start, dt.time(), AMSTERDAM)
    end = dt.datetime.combine(last.end, dt.time(), AMSTERDAM)
    stmt = (select(Incident).join(Location, Location.id == Incident.location_id)
            .where(Incident.occurred_at >= start, Incident.occurred_at < end, Incident.recorded_at <= generated_at))
    if not caller.national:
        # Scoped like analysts: by where the signal was logged.
        stmt = stmt.where(Location.municipality_code.in_(caller.municipality_codes))
    return stmt


def count_rows(session: Session, stmt: Select[Any]) -> int:
    return session.scalar(select(func.count()).select_from(stmt.subquery())) or 0


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def row(incident: Incident, key: bytes) -> dict[str, Any]:
    """One exported row: no note, no fingerprint, nothing write-only; the pseudonym re-keyed for the export."""
    pseudonym = incident.resident_pseudonym
    return {
        "id": str(incident.id), "institutionId": str(incident.institution_id),
        "locationId": str(incident.location_id), "clientReference": incident.client_reference,
        "kind": incident.kind, "exploitationType": incident.exploitation_type,
        "residentAgeBand": incident.resident_age_band, "indicators": list(incident.indicators or []),
        "occurredAt": _iso(incident.occurred_at), "recordedAt": _iso(incident.recorded_at),
        "status": incident.status.value, "version": incident.version, "taxonomyVersion": incident.taxonomy_version,
        "residentPseudonym": hmac.new(key, pseudonym.encode(), hashlib.sha256).hexdigest() if pseudonym else None,
        "absenceEndedAt": _iso(incident.absence_ended_at),
        "absenceWhereaboutsKnown": incident.absence_whereabouts_known,
        "absenceRiskLevel": incident.absence_risk_level,
        "absenceReportedMissingToPolice": incident.absence_reported_missing_to_police,
        "visitorEstimatedAgeBand": incident.visitor_estimated_age_band,
        "visitorRelationClaimed": incident.visitor_relation_claimed,
        "meldcodeStep": incident.meldcode_step, "reportedTo": list(incident.reported_to or []),
        "reportedAt": _iso(incident.reported_at),
    }


def _rows(session: Session, stmt: Select[Any], key: bytes, batch: int) -> Iterator[dict[str, Any]]:
    ordered = stmt.order_by(Incident.recorded_at, Incident.id).execution_options(yield_per=batch)
    for incident in session.scalars(ordered):
        yield row(incident, key)
        session.expunge(incident)  # keep the identity map from growing with the export


def ndjson(session: Session, stmt: Select[Any], key: bytes, metadata: dict[str, Any],
           batch: int = 1000) -> Iterator[str]:
    """One JSON object per line, then a final {"metadata": ...} line with the filters and the row count."""
    count = 0
    for item in _rows(session, stmt, key, batch):
        count += 1
        yield json.dumps(item, separators=(",", ":")) + "\n"
    yield json.dumps({"metadata": metadata | {"rowCount": count}}, separators=(",", ":")) + "\n"


def _cell(value: Any) -> Any:
    if isinstance(value, list):
        value = ";".join(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        # A spreadsheet would run it as a formula (OWASP CSV injection): a leading quote keeps it text.
        return "'" + value
    return "" if value is None else value


def csv_lines(session: Session, stmt: Select[Any], key: bytes, batch: int = 1000) -> Iterator[str]:
    """A header line and one line per row; lists joined with ';'. The metadata travels in the headers."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(COLUMNS)
    yield flush()
    for item in _rows(session, stmt, key, batch):
        writer.writerow([_cell(item[column]) for column in COLUMNS])
        yield flush()
