"""Institutions, locations and capacity history."""

from __future__ import annotations

import datetime as dt
import enum
import uuid

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from service import clock
from service.db import Base, UTCDateTime, value_enum


class Sector(enum.StrEnum):
    """The kind of care an institution gives: youthCare, secureYouthCare (closed youth care), disabilityCare,
    mentalHealth, shelter, or other."""

    YOUTH_CARE = "youthCare"
    SECURE_YOUTH_CARE = "secureYouthCare"
    DISABILITY_CARE = "disabilityCare"
    MENTAL_HEALTH = "mentalHealth"
    SHELTER = "shelter"
    OTHER = "other"


class Setting(enum.StrEnum):
    """How a location houses its residents: open, semiSecure, secure, shelter, or dayCare (no overnight stay)."""

    OPEN = "open"
    SEMI_SECURE = "semiSecure"
    SECURE = "secure"
    SHELTER = "shelter"
    DAY_CARE = "dayCare"


class Institution(Base):
    __tablename__ = "institution"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))
    sector: Mapped[Sector] = mapped_column(value_enum(Sector))
    municipality_code: Mapped[str] = mapped_column(String(6), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=clock.now)

    __table_args__ = (Index("ix_institution_created_at_id", "created_at", "id"),)


class Location(Base):
    __tablename__ = "location"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    institution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("institution.id"))
    name: Mapped[str] = mapped_column(String(200))
    postcode4: Mapped[str] = mapped_column(String(4))
    municipality_code: Mapped[str] = mapped_column(String(6), index=True)
    setting: Mapped[Setting] = mapped_column(value_enum(Setting))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=clock.now)

    capacities: Mapped[list[Capacity]] = relationship(
        order_by="Capacity.valid_from", cascade="all, delete-orphan", lazy="selectin"
    )

    __table_args__ = (Index("ix_location_institution_id_created_at_id", "institution_id", "created_at", "id"),)


class Capacity(Base):
    """The number of places a location had from `valid_from` until the next entry."""

    __tablename__ = "capacity"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    location_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("location.id", ondelete="CASCADE"))
    valid_from: Mapped[dt.date]
    places: Mapped[int]

    __table_args__ = (UniqueConstraint("location_id", "valid_from"),)
