"""The export's first serialisation, one ORM entity and one dict per row: the oracle its fast path must equal.

Kept apart from the service on purpose: tests compare the service's output with it byte for byte, and
bench/export_rate.py measures the fast path against it in the same run.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import io
import json
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import Session

from service.exports.schemas import COLUMNS
from service.incidents.models import Incident
from service.registry.models import Institution, Location


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def row(incident: Incident, key: bytes, institution_name: str, location_name: str) -> dict[str, Any]:
    pseudonym = incident.resident_pseudonym
    return {
        "id": str(incident.id), "institutionId": str(incident.institution_id), "institutionName": institution_name,
        "locationId": str(incident.location_id), "locationName": location_name,
        "clientReference": incident.client_reference,
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
    # The service selects columns; this version read entities (and, since issue 15, the names beside them).
    entities = stmt.with_only_columns(Incident, Institution.name, Location.name)
    ordered = entities.order_by(Incident.recorded_at, Incident.id).execution_options(yield_per=batch)
    for incident, institution_name, location_name in session.execute(ordered):
        yield row(incident, key, institution_name, location_name)
        session.expunge(incident)


def ndjson(session: Session, stmt: Select[Any], key: bytes, metadata: dict[str, Any],
           batch: int = 1000) -> Iterator[str]:
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
        return "'" + value
    return "" if value is None else value


def csv_lines(session: Session, stmt: Select[Any], key: bytes, delimiter: str = ",", batch: int = 1000
              ) -> Iterator[str]:
    # Since issue 15: a byte order mark, every cell quoted and a choice of delimiter, for spreadsheets.
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer, delimiter=delimiter, quoting=csv.QUOTE_ALL, lineterminator="\r\n")

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
