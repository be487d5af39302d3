"""Rate limits per client (per address before a client is known), with the IETF RateLimit headers.

- RATE_LIMIT, per client: counted in memory by each worker process, or in Redis when REDIS_URL is set, so that every
  worker and host shares the count.
- TOKEN_RATE_LIMIT, per address, on the endpoints that check client secrets: always counted in the database, which
  every worker and host shares with or without Redis. A guessing attacker gets the limit, not the limit times the
  number of workers; these endpoints are slow (Argon2) anyway, so the count's write costs little.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from flask import Flask, Response, current_app, g, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from sqlalchemy import Double, Index, String, delete, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from service import clock
from service.config import Settings
from service.db import Base, db
from service.docs import blp as docs
from service.http import problem, view_handler
from service.operations import blp as operations

# One lock for every shared count on PostgreSQL (SQLite has one writer): the counting transaction is short, and
# with one lock the expired hits of all addresses can be deleted without two transactions deleting the same rows.
SHARED_COUNT_LOCK = 0x7261_7465_6C69_6D74  # "ratelimt"


class InlineExpiryMemoryStorage(MemoryStorage):
    """limits' in-memory storage, with its bookkeeping done inline at most once a second instead of by a timer
    thread. The stock one starts a new threading.Timer on most hits (each lives 10 ms): under load that was a
    thread start, and a wait for it to be scheduled, on every other request (the write path's profile).
    Expiry only frees memory; the limits themselves compare timestamps on every hit and are unchanged."""

    STORAGE_SCHEME = ["register-memory"]
    EVERY_SECONDS = 1.0

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: str) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self._next_expiry = time.monotonic() + self.EVERY_SECONDS

    # Named as MemoryStorage's private scheduler, which its hit methods call: this replaces it.
    def _MemoryStorage__schedule_expiry(self) -> None:
        now = time.monotonic()
        if now >= self._next_expiry:
            self._next_expiry = now + self.EVERY_SECONDS
            self._MemoryStorage__expire_events()  # type: ignore[attr-defined]


class RateLimitHit(Base):
    """One request counted against a limit shared through the database (the token endpoints', per address).
    Hits older than the limit's window are deleted as new ones arrive."""

    __tablename__ = "rate_limit_hit"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(100))
    at: Mapped[float] = mapped_column(Double)  # seconds since the epoch, by the wall clock (clock.wall_time)

    __table_args__ = (Index("ix_rate_limit_hit_key_at", "key", "at"), Index("ix_rate_limit_hit_at", "at"))


@dataclass(frozen=True)
class Window:
    """Where a caller stands against one limit: what the RateLimit headers report."""

    amount: int
    seconds: int
    remaining: int
    reset_at: float


def count_shared_hit(session: Session, key: str, limit: RateLimitItem, now: float) -> tuple[bool, Window]:
    """Count one hit of `key` in a moving window kept in the database; (allowed, window). A refused hit is not
    counted, as in limits' moving window. The caller commits (the count must outlive a refused request)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(SHARED_COUNT_LOCK)))
    seconds = limit.get_expiry()
    session.execute(delete(RateLimitHit).where(RateLimitHit.at <= now - seconds))
    hits = list(session.scalars(select(RateLimitHit.at).where(RateLimitHit.key == key).order_by(RateLimitHit.at)))
    allowed = len(hits) < limit.amount
    if allowed:
        session.add(RateLimitHit(key=key, at=now))
        hits.append(now)
    return allowed, Window(limit.amount, seconds, limit.amount - len(hits), hits[0] + seconds)


def _client_or_address() -> str:
    return g.get("client_id") or get_remote_address()


def _checks_secrets() -> bool:
    return getattr(view_handler(current_app.view_functions.get(request.endpoint or "")), "checks_secrets", False)


def _limit_token_requests(limit: RateLimitItem) -> Response | None:
    """The limit per address of views that check secrets, counted in a transaction of its own that commits before
    the work (a refused secret rolls the request back, and must still count)."""
    if not _checks_secrets():
        return None
    session = db.sessionmaker()
    try:
        allowed, window = count_shared_hit(session, f"token/{get_remote_address()}", limit, clock.wall_time())
        session.commit()
    finally:
        session.close()
    g.rate_window = window
    return None if allowed else problem(429, str(limit))


def _window() -> Window | None:
    if "rate_window" in g:
        return g.rate_window
    current = current_app.extensions["limiter"].current_limit
    if current is None:
        return None
    return Window(current.limit.amount, current.limit.get_expiry(), current.remaining, current.reset_at)


def _rate_limit_headers(response: Response) -> Response:
    """RateLimit-Policy and RateLimit (draft-ietf-httpapi-ratelimit-headers), and Retry-After on a 429."""
    window = _window()
    if window is None:
        return response
    reset = max(int(window.reset_at - clock.wall_time()), 0)
    response.headers["RateLimit-Policy"] = f"{window.amount};w={window.seconds}"
    response.headers["RateLimit"] = f"limit={window.amount}, remaining={max(window.remaining, 0)}, reset={reset}"
    if response.status_code == 429:
        response.headers["Retry-After"] = str(max(reset, 1))
    return response


def init_app(app: Flask, settings: Settings) -> None:
    """Register after authentication: the limit is counted per verified client, not per claimed one."""
    limiter = Limiter(key_func=_client_or_address, app=app, default_limits=[settings.rate_limit],
                      storage_uri=settings.redis_url or "register-memory://", strategy="moving-window",
                      key_prefix="risk-register", headers_enabled=False)
    limiter.exempt(operations)
    limiter.exempt(docs)
    # Views that check secrets are public and run Argon2: a tighter limit per address keeps guessing and floods
    # slow, and it holds across workers and hosts whatever the deployment.
    limiter.request_filter(_checks_secrets)
    token_limit = parse(settings.token_rate_limit)
    app.before_request(lambda: _limit_token_requests(token_limit))
    app.extensions["limiter"] = limiter
    app.after_request(_rate_limit_headers)
