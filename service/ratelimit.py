"""Rate limits per client (per address before a client is known), with the IETF RateLimit headers.

Counts live in memory by default, or in Redis when REDIS_URL is set, so that every gunicorn host shares them.
"""

from __future__ import annotations

import time

from flask import Flask, Response, current_app, g
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits.storage import MemoryStorage

from service import clock
from service.config import Settings
from service.docs import blp as docs
from service.operations import blp as operations


class InlineExpiryMemoryStorage(MemoryStorage):
    """limits' in-memory storage, with its bookkeeping done inline at most once a second instead of by a timer
    thread. The stock one starts a new threading.Timer on most hits (each lives 10 ms): under load that was a
    thread start, and a wait for it to be scheduled, on every other request (the write path's profile, issue 6).
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


def _client_or_address() -> str:
    return g.get("client_id") or get_remote_address()


def _rate_limit_headers(response: Response) -> Response:
    """RateLimit-Policy and RateLimit (draft-ietf-httpapi-ratelimit-headers), and Retry-After on a 429."""
    current = current_app.extensions["limiter"].current_limit
    if current is None:
        return response
    reset = max(int(current.reset_at - clock.wall_time()), 0)
    response.headers["RateLimit-Policy"] = f"{current.limit.amount};w={current.limit.get_expiry()}"
    response.headers["RateLimit"] = (f"limit={current.limit.amount}, remaining={max(current.remaining, 0)}, "
                                     f"reset={reset}")
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
    # The token endpoints are public and run Argon2: a tighter limit per address keeps guessing and floods slow.
    from service.auth.routes import oauth

    limiter.limit(settings.token_rate_limit)(oauth)
    app.extensions["limiter"] = limiter
    app.after_request(_rate_limit_headers)
