"""Incidents, their revisions, and idempotency keys."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, SmallInteger, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from service import clock
from service.db import Base, UTCDateTime, value_enum


class Status(enum.StrEnum):
    """Whether an incident counts: a retracted one stays on record but is left out of every statistic."""

    ACTIVE = "active"
    RETRACTED = "retracted"


class Incident(Base):
    """One signal. Never updated in place by a client except through a correction, which writes a revision.

    Identities are not here: the resident is an HMAC pseudonym under the institution's key, and a visitor's
    plate and phone number are HMAC fingerprints under a service-wide key.
    """

    __tablename__ = "incident"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    institution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("institution.id"))
    location_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("location.id"))
    client_reference: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(40))
    exploitation_type: Mapped[str] = mapped_column(String(40))
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=clock.now)
    resident_pseudonym: Mapped[str | None] = mapped_column(String(64))
    resident_key_version: Mapped[int | None] = mapped_column(SmallInteger, index=True)
    resident_age_band: Mapped[str] = mapped_column(String(20))
    indicators: Mapped[list[str]] = mapped_column(JSON, default=list)
    note: Mapped[str | None] = mapped_column(Text)

    absence_ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    absence_whereabouts_known: Mapped[bool | None]
    absence_risk_level: Mapped[str | None] = mapped_column(String(20))
    absence_reported_missing_to_police: Mapped[bool | None]

    visitor_estimated_age_band: Mapped[str | None] = mapped_column(String(20))
    visitor_relation_claimed: Mapped[str | None] = mapped_column(String(40))
    visitor_plate_fingerprint: Mapped[str | None] = mapped_column(String(64), index=True)
    visitor_phone_fingerprint: Mapped[str | None] = mapped_column(String(64), index=True)
    visitor_fingerprint_key_version: Mapped[int | None] = mapped_column(SmallInteger, index=True)

    meldcode_step: Mapped[int | None] = mapped_column(SmallInteger)
    reported_to: Mapped[list[str]] = mapped_column(JSON, default=list)
    reported_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    status: Mapped[Status] = mapped_column(value_enum(Status), default=Status.ACTIVE)
    version: Mapped[int] = mapped_column(Integer, default=1)
    taxonomy_version: Mapped[str] = mapped_column(String(20))
    # Fixed random 0-255 per record: the cell-key perturbation of statistics sums these (DESIGN §5).
    record_key: Mapped[int] = mapped_column(SmallInteger)
    retracted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("institution_id", "client_reference"),
        Index("ix_incident_institution_id_recorded_at_id", "institution_id", "recorded_at", "id"),
        Index("ix_incident_institution_id_occurred_at", "institution_id", "occurred_at"),
        Index("ix_incident_institution_id_resident_pseudonym", "institution_id", "resident_pseudonym"),
        Index("ix_incident_location_id_occurred_at", "location_id", "occurred_at"),
    )

    @property
    def resident_recorded(self) -> bool:
        return self.resident_pseudonym is not None

    @property
    def absence(self) -> dict[str, Any] | None:
        if self.absence_risk_level is None:
            return None
        return {"ended_at": self.absence_ended_at, "whereabouts_known": self.absence_whereabouts_known,
                "risk_level": self.absence_risk_level,
                "reported_missing_to_police": self.absence_reported_missing_to_police}

    @property
    def visitor(self) -> dict[str, Any] | None:
        if self.visitor_relation_claimed is None:
            return None
        return {"estimated_age_band": self.visitor_estimated_age_band,
                "relation_claimed": self.visitor_relation_claimed,
                "vehicle_plate_recorded": self.visitor_plate_fingerprint is not None,
                "phone_number_recorded": self.visitor_phone_fingerprint is not None}

    @property
    def follow_up(self) -> dict[str, Any] | None:
        if self.meldcode_step is None and not self.reported_to and self.reported_at is None:
            return None
        return {"meldcode_step": self.meldcode_step, "reported_to": self.reported_to,
                "reported_at": self.reported_at}


@dataclass(frozen=True)
class Counted:
    """What statistics count of an incident, taken before a change so that what it was counted as can be left:
    plain values, nothing of the ORM object (which the change goes on to modify)."""

    id: uuid.UUID
    active: bool
    institution_id: uuid.UUID
    location_id: uuid.UUID
    occurred_at: dt.datetime
    kind: str
    exploitation_type: str
    age_band: str
    resident_pseudonym: str | None
    record_key: int
    meldcode_step: int
    reported: bool

    @classmethod
    def of(cls, incident: Incident) -> Counted:
        return cls(incident.id, incident.status is Status.ACTIVE, incident.institution_id, incident.location_id,
                   incident.occurred_at, incident.kind, incident.exploitation_type, incident.resident_age_band,
                   incident.resident_pseudonym, incident.record_key, incident.meldcode_step or 0,
                   bool(incident.reported_to))


class Revision(Base):
    """A correction or retraction: who, when, why, and old and new values of the fields that may be shown."""

    __tablename__ = "incident_revision"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("incident.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text)
    client_id: Mapped[uuid.UUID]
    changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=clock.now)
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (UniqueConstraint("incident_id", "version"),)


class IdempotencyKey(Base):
    """The first response to a client's Idempotency-Key, replayed for 24 hours (kept with the work it records).

    The key itself is not kept, only a keyed hash of it: clients build keys from anything, client numbers
    included ("CL-0042-111222333")."""

    __tablename__ = "idempotency_key"

    client_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    response_status: Mapped[int] = mapped_column(SmallInteger)
    response_body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=clock.now)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
