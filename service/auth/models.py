"""API clients and revoked tokens."""

from __future__ import annotations

import datetime as dt
import enum
import uuid

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from service import clock
from service.db import Base, UTCDateTime, value_enum


class Role(enum.StrEnum):
    """What an API client may do: institution (record and read its own incidents), analyst (statistics in its
    scope), auditor (exports and the access log in its scope), admin (institutions, locations and clients)."""

    INSTITUTION = "institution"
    ANALYST = "analyst"
    AUDITOR = "auditor"
    ADMIN = "admin"


class ApiClient(Base):
    """One calling system or person. Only a slow hash of its secret is kept."""

    __tablename__ = "api_client"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(value_enum(Role))
    institution_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("institution.id"))
    municipality_codes: Mapped[list[str]] = mapped_column(JSON, default=list)
    secret_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=clock.now)
    secret_rotated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    deactivated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_api_client_created_at_id", "created_at", "id"),)


class RevokedToken(Base):
    """A token refused before it expires. Kept until its expiry has passed; then it is refused anyway."""

    __tablename__ = "revoked_token"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_client.id"))
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    revoked_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=clock.now)
