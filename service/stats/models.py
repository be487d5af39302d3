"""Rollups kept on the write path, so statistics read rows in proportion to units and periods, not incidents."""

from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base


class Rollup(Base):
    """Active incidents per (grain, bucket, location, kind, exploitation type, age band), with cell-key sums.

    `*_key_sum` is the plain sum of record keys; a cell's key is that sum mod 256. Step 2 and step 5 count
    signals that reached at least that meldcode step; `reported` those formally reported to any body.
    """

    __tablename__ = "incident_rollup"

    grain: Mapped[str] = mapped_column(String(5), primary_key=True)
    period: Mapped[str] = mapped_column(String(8), primary_key=True)
    location_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("location.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), primary_key=True)
    exploitation_type: Mapped[str] = mapped_column(String(40), primary_key=True)
    age_band: Mapped[str] = mapped_column(String(20), primary_key=True)
    incidents: Mapped[int] = mapped_column(Integer, default=0)
    key_sum: Mapped[int] = mapped_column(Integer, default=0)
    step2: Mapped[int] = mapped_column(Integer, default=0)
    step2_key_sum: Mapped[int] = mapped_column(Integer, default=0)
    step5: Mapped[int] = mapped_column(Integer, default=0)
    step5_key_sum: Mapped[int] = mapped_column(Integer, default=0)
    reported: Mapped[int] = mapped_column(Integer, default=0)
    reported_key_sum: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (Index("ix_incident_rollup_grain_period", "grain", "period"),)


class ResidentRollup(Base):
    """Incidents per resident pseudonym in each rollup cell: for distinct residents and the dominance rule.

    Never leaves the database: statistics release only counts computed from it.
    """

    __tablename__ = "resident_rollup"

    grain: Mapped[str] = mapped_column(String(5), primary_key=True)
    period: Mapped[str] = mapped_column(String(8), primary_key=True)
    location_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("location.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), primary_key=True)
    exploitation_type: Mapped[str] = mapped_column(String(40), primary_key=True)
    age_band: Mapped[str] = mapped_column(String(20), primary_key=True)
    resident_pseudonym: Mapped[str] = mapped_column(String(64), primary_key=True)
    incidents: Mapped[int] = mapped_column(Integer, default=0)
    step2: Mapped[int] = mapped_column(Integer, default=0)
    step5: Mapped[int] = mapped_column(Integer, default=0)
    reported: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (Index("ix_resident_rollup_grain_period", "grain", "period"),)
