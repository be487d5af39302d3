"""Rate limits per client (per address before a client is known), with the IETF RateLimit headers.

Counts live in memory by default, or in Redis when REDIS_URL is set, so that every gunicorn host shares them.
"""

from __future__ import annotations

import time

from flask import Flask, Response, current_app, g
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from service.config import Settings
from service.operations import blp as operations


def _client_or_address() -> str:
    return g.get("client_id") or get_remote_address()


def _rate_limit_headers(response: Response) -> Response:
    """RateLimit-Policy and RateLimit (draft-ietf-httpapi-ratelimit-headers), and Retry-After on a 429."""
    current = current_app.extensions["limiter"].current_limit
    if current is None:
        return response
    reset = max(int(current.reset_at - time.time()), 0)
    response.headers["RateLimit-Policy"] = f"{current.limit.amount};w={current.limit.get_expiry()}"
    response.headers["RateLimit"] = (f"limit={current.limit.amount}, remaining={max(current.remaining, 0)}, "
                                     f"reset={reset}")
    if response.status_code == 429:
        response.headers["Retry-After"] = str(max(reset, 1))
    return response


def init_app(app: Flask, settings: Settings) -> None:
    """Register after authentication: the limit is counted per verified client, not per claimed one."""
    limiter = Limiter(key_func=_client_or_address, app=app, default_limits=[settings.rate_limit],
                      storage_uri=settings.redis_url or "memory://", strategy="moving-window",
                      key_prefix="risk-register", headers_enabled=False)
    limiter.exempt(operations)
    # The token endpoints are public and run Argon2: a tighter limit per address keeps guessing and floods slow.
    from service.auth.routes import oauth

    limiter.limit(settings.token_rate_limit)(oauth)
    app.extensions["limiter"] = limiter
    app.after_request(_rate_limit_headers)
