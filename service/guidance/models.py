"""A municipality's own reporting routes and follow-up days, set by an admin over those of the data file."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from service import clock
from service.db import Base, UTCDateTime


class MunicipalityGuidance(Base):
    __tablename__ = "municipality_guidance"

    municipality_code: Mapped[str] = mapped_column(String(6), primary_key=True)
    routes: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    follow_up_days: Mapped[int] = mapped_column(SmallInteger)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=clock.now, onupdate=clock.now)
