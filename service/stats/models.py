"""Rollups (folded from pending changes): statistics read rows in proportion to units and periods, not incidents."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, UTCDateTime

MEASURES = ("incidents", "step2", "step5", "reported")
KEY_SUMS = {"incidents": "key_sum", "step2": "step2_key_sum", "step5": "step5_key_sum",
            "reported": "reported_key_sum"}
NOISE_SUMS = {"incidents": "noise_sum", "step2": "step2_noise_sum", "step5": "step5_noise_sum",
              "reported": "reported_noise_sum"}
GROUPS = ("institution", "location", "postcode4", "municipality")
BREAKDOWNS = {"kind": "kind", "exploitationType": "exploitation_type", "ageBand": "age_band"}
DELAY_BANDS = (1, 3, 7, 14, 30, 60, 90, 180, 365, 730, 3650)  # days; occurredAt is at most 10 years back
MAX_PERIODS = 60  # in one trend
CURVE_POINTS = 25  # exposures at which hotspots carry the funnel's limits: enough for a smooth curve
TOP = 3  # top contributions kept per measure: the largest dominance_n the disclosure rules allow
TOPS = {measure: tuple(f"{measure}_top{i}" for i in range(1, TOP + 1)) for measure in MEASURES}
MEASURED = tuple(name for measure in MEASURES for name in (measure, KEY_SUMS[measure], NOISE_SUMS[measure]))


class Measured:
    """Per measure, the active incidents counted, the plain sum of their record keys (a cell's key is that sum mod
    256) and the sum of their contributors' noise (see disclosure.contributor_noise). Step 2 and step 5 count signals
    that reached at least that meldcode step; `reported` those formally reported to any body. After the key columns
    of a table (sort_order)."""

    incidents: Mapped[int] = mapped_column(Integer, default=0, sort_order=1)
    key_sum: Mapped[int] = mapped_column(Integer, default=0, sort_order=1)
    noise_sum: Mapped[int] = mapped_column(Integer, default=0, sort_order=1)
    step2: Mapped[int] = mapped_column(Integer, default=0, sort_order=1)
    step2_key_sum: Mapped[int] = mapped_column(Integer, default=0, sort_order=1)
    step2_noise_sum: Mapped[int] = mapped_column(Integer, default=0, sort_order=1)
    step5: Mapped[int] = mapped_column(Integer, default=0, sort_order=1)
    step5_key_sum: Mapped[int] = mapped_column(Integer, default=0, sort_order=1)
    step5_noise_sum: Mapped[int] = mapped_column(Integer, default=0, sort_order=1)
    reported: Mapped[int] = mapped_column(Integer, default=0, sort_order=1)
    reported_key_sum: Mapped[int] = mapped_column(Integer, default=0, sort_order=1)
    reported_noise_sum: Mapped[int] = mapped_column(Integer, default=0, sort_order=1)



class Rollup(Measured, Base):
    """Active incidents per (grain, bucket, location, kind, exploitation type, age band), with cell-key sums."""

    __tablename__ = "incident_rollup"

    grain: Mapped[str] = mapped_column(String(5), primary_key=True)
    period: Mapped[str] = mapped_column(String(8), primary_key=True)
    location_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("location.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), primary_key=True)
    exploitation_type: Mapped[str] = mapped_column(String(40), primary_key=True)
    age_band: Mapped[str] = mapped_column(String(20), primary_key=True)

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


class UnitKeyed:
    """The key of a unit summary: period type and period, level ('location' or 'institution'), the unit's id, and
    the municipality it is restricted to ('' for an institution as a whole). First in both tables (sort_order)."""

    period_type: Mapped[str] = mapped_column(String(7), primary_key=True, sort_order=-1)
    period: Mapped[str] = mapped_column(String(8), primary_key=True, sort_order=-1)
    level: Mapped[str] = mapped_column(String(11), primary_key=True, sort_order=-1)
    unit: Mapped[str] = mapped_column(String(36), primary_key=True, sort_order=-1)
    municipality_code: Mapped[str] = mapped_column(String(6), primary_key=True, sort_order=-1)


class UnitTally(UnitKeyed, Measured, Base):
    """A unit's released-ready summary per month, quarter and year, kept by folds so hotspots read one row per unit.

    Units are a location, an institution (`municipality_code` '') and an institution within one municipality (its
    locations there). Pseudonyms are keyed per institution, so no resident is shared between institutions: a
    municipality's or the country's summary is the merge of its institutions' rows (sums, and the largest of their
    top contributions), which is exact. Per measure, `*_of_residents` is the part contributed by residents and
    `*_top1..3` the largest contributions of single residents; `residents` counts residents with an active incident.
    """

    __tablename__ = "unit_tally"

    residents: Mapped[int] = mapped_column(Integer, default=0)
    residents_key_sum: Mapped[int] = mapped_column(Integer, default=0)
    residents_noise_sum: Mapped[int] = mapped_column(Integer, default=0)
    incidents_of_residents: Mapped[int] = mapped_column(Integer, default=0)
    incidents_top1: Mapped[int] = mapped_column(Integer, default=0)
    incidents_top2: Mapped[int] = mapped_column(Integer, default=0)
    incidents_top3: Mapped[int] = mapped_column(Integer, default=0)
    step2_of_residents: Mapped[int] = mapped_column(Integer, default=0)
    step2_top1: Mapped[int] = mapped_column(Integer, default=0)
    step2_top2: Mapped[int] = mapped_column(Integer, default=0)
    step2_top3: Mapped[int] = mapped_column(Integer, default=0)
    step5_of_residents: Mapped[int] = mapped_column(Integer, default=0)
    step5_top1: Mapped[int] = mapped_column(Integer, default=0)
    step5_top2: Mapped[int] = mapped_column(Integer, default=0)
    step5_top3: Mapped[int] = mapped_column(Integer, default=0)
    reported_of_residents: Mapped[int] = mapped_column(Integer, default=0)
    reported_top1: Mapped[int] = mapped_column(Integer, default=0)
    reported_top2: Mapped[int] = mapped_column(Integer, default=0)
    reported_top3: Mapped[int] = mapped_column(Integer, default=0)


class UnitResident(UnitKeyed, Base):
    """Incidents per resident pseudonym in each unit summary: what keeps `UnitTally`'s residents and tops exact.

    Never leaves the database, and is never read by a statistics request: only folds and rebuilds read it.
    """

    __tablename__ = "unit_resident"

    resident_pseudonym: Mapped[str] = mapped_column(String(64), primary_key=True)
    incidents: Mapped[int] = mapped_column(Integer, default=0)
    step2: Mapped[int] = mapped_column(Integer, default=0)
    step5: Mapped[int] = mapped_column(Integer, default=0)
    reported: Mapped[int] = mapped_column(Integer, default=0)


class PendingChange(Base):
    """An incident as counted, +1 or -1, written by the change's own transaction and not yet folded into the
    rollups (rollups.fold): one compact row per change instead of some 22 rollup rows on the write path. Never
    leaves the database; a fold deletes what it adds, so a pseudonym stays here no longer than its change is pending.
    """

    __tablename__ = "rollup_pending"

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                     autoincrement=True)
    sign: Mapped[int] = mapped_column(SmallInteger)
    incident_id: Mapped[uuid.UUID]
    institution_id: Mapped[uuid.UUID]
    location_id: Mapped[uuid.UUID]
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(40))
    exploitation_type: Mapped[str] = mapped_column(String(40))
    age_band: Mapped[str] = mapped_column(String(20))
    resident_pseudonym: Mapped[str | None] = mapped_column(String(64))
    record_key: Mapped[int] = mapped_column(SmallInteger)
    meldcode_step: Mapped[int] = mapped_column(SmallInteger)
    reported: Mapped[bool] = mapped_column(Boolean)
