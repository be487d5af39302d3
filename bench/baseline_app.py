"""The physical reference: a minimal Flask + SQLAlchemy app that inserts one row and answers JSON.

    DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1/rr_bench_x \
        .venv/bin/python -m gunicorn -c python:service.gunicorn --workers 2 bench.baseline_app:app   # from the root

`POST /rows` validates nothing beyond JSON, inserts one row of about the width of an incident (29 columns: a UUID
key, timestamps, JSON lists, short strings, small integers) into `baseline_row` through a SQLAlchemy session, commits
and answers 201 with a small JSON document. `GET /hello` answers `{"hello": "world"}` without touching the database.
The table is created at import if it is missing; it lives in the benchmark's scratch database.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid

from flask import Flask, jsonify, request
from sqlalchemy import JSON, Boolean, DateTime, Integer, SmallInteger, String, Text, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker


class Base(DeclarativeBase):
    pass


class Row(Base):
    __tablename__ = "baseline_row"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    institution_id: Mapped[uuid.UUID]
    location_id: Mapped[uuid.UUID]
    client_reference: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(40))
    exploitation_type: Mapped[str] = mapped_column(String(40))
    occurred_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    resident_ref: Mapped[str | None] = mapped_column(String(64))
    resident_key_version: Mapped[int | None] = mapped_column(SmallInteger)
    resident_age_band: Mapped[str] = mapped_column(String(20))
    indicators: Mapped[list[str]] = mapped_column(JSON)
    note: Mapped[str | None] = mapped_column(Text)
    absence_ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    absence_whereabouts_known: Mapped[bool | None] = mapped_column(Boolean)
    absence_risk_level: Mapped[str | None] = mapped_column(String(20))
    absence_reported_missing_to_police: Mapped[bool | None] = mapped_column(Boolean)
    visitor_estimated_age_band: Mapped[str | None] = mapped_column(String(20))
    visitor_relation_claimed: Mapped[str | None] = mapped_column(String(40))
    visitor_plate: Mapped[str | None] = mapped_column(String(64))
    visitor_phone: Mapped[str | None] = mapped_column(String(64))
    meldcode_step: Mapped[int | None] = mapped_column(SmallInteger)
    reported_to: Mapped[list[str]] = mapped_column(JSON)
    reported_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(30))
    version: Mapped[int] = mapped_column(Integer)
    taxonomy_version: Mapped[str] = mapped_column(String(20))
    record_key: Mapped[int] = mapped_column(SmallInteger)
    retracted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


engine = create_engine(os.environ["DATABASE_URL"], pool_pre_ping=False)
Base.metadata.create_all(engine)
Session = sessionmaker(engine)
app = Flask(__name__)


def _when(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


@app.get("/hello")
def hello() -> object:
    return jsonify(hello="world")


@app.post("/rows")
def create() -> object:
    body = request.get_json()
    absence, visitor, follow_up = body.get("absence") or {}, body.get("visitor") or {}, body.get("followUp") or {}
    row = Row(id=uuid.uuid4(), institution_id=uuid.UUID(body["institutionId"]),
              location_id=uuid.UUID(body["locationId"]),
              client_reference=body["clientReference"], kind=body["kind"],
              exploitation_type=body["exploitationType"], occurred_at=_when(body["occurredAt"]),
              recorded_at=dt.datetime.now(dt.UTC), resident_ref=body.get("residentRef"), resident_key_version=1,
              resident_age_band=body["residentAgeBand"], indicators=body.get("indicators", []),
              note=body.get("note"), absence_ended_at=_when(absence.get("endedAt")),
              absence_whereabouts_known=absence.get("whereaboutsKnown"), absence_risk_level=absence.get("riskLevel"),
              absence_reported_missing_to_police=absence.get("reportedMissingToPolice"),
              visitor_estimated_age_band=visitor.get("estimatedAgeBand"),
              visitor_relation_claimed=visitor.get("relationClaimed"), visitor_plate=visitor.get("vehiclePlate"),
              visitor_phone=visitor.get("phoneNumber"), meldcode_step=follow_up.get("meldcodeStep"),
              reported_to=follow_up.get("reportedTo", []), reported_at=_when(follow_up.get("reportedAt")),
              status="active", version=1, taxonomy_version="2026.1", record_key=7)
    answer = {"id": str(row.id), "clientReference": row.client_reference, "status": row.status,
              "recordedAt": row.recorded_at.isoformat(), "version": row.version}
    with Session() as session:
        session.add(row)
        session.commit()
    return jsonify(answer), 201
