"""Access events, linked into a keyed hash chain."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, SmallInteger, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, UTCDateTime


class AccessEvent(Base):
    """One access to incident data, statistics, exports or this log. Inserted by the request whose work it records,
    never deleted; only its sealing columns are written once, later, by the sealer (service/audit/chain.py). The
    request signs the event's content (`mac`), so an event the service did not write is found.

    Sealing gives the event its place `chain_seq`, the previous event's hash `prev_hash`, and `hash`: HMAC-SHA256
    under chain key `key_version` (kept outside the database) of the event's canonical form, which includes
    `prev_hash`: changing, removing or inserting a sealed event breaks the chain at that point. A key handover event
    also carries `handover_hash`, the same form signed with the new key.
    """

    __tablename__ = "access_event"

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                     autoincrement=True)
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    event_type: Mapped[str] = mapped_column(String(20))
    client_id: Mapped[uuid.UUID | None]
    role: Mapped[str | None] = mapped_column(String(20))
    acted_for: Mapped[str | None] = mapped_column(Text)
    municipality_code: Mapped[str | None] = mapped_column(String(6))
    route: Mapped[str] = mapped_column(String(200))
    records: Mapped[list[str]] = mapped_column(JSON, default=list)
    record_count: Mapped[int | None]
    filters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    outcome: Mapped[int] = mapped_column(SmallInteger)
    request_id: Mapped[str | None] = mapped_column(String(128))
    # Written with the event by the request: HMAC of its content under chain key `mac_version` (NULL before 0011).
    mac: Mapped[str | None] = mapped_column(String(64))
    mac_version: Mapped[int | None] = mapped_column(SmallInteger)
    # The sealing columns: NULL until the sealer links the event into the chain.
    chain_seq: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), unique=True)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    key_version: Mapped[int | None] = mapped_column(SmallInteger)
    handover_hash: Mapped[str | None] = mapped_column(String(64))
    sealed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_access_event_unsealed", "seq", postgresql_where=text("chain_seq IS NULL"),
              sqlite_where=text("chain_seq IS NULL")),
        Index("ix_access_event_occurred_at_seq", "occurred_at", "seq"),
        Index("ix_access_event_client_id", "client_id"),
    )
