"""Rate limits per client, with RateLimit headers and a 429 problem; shared through Redis when configured, and
through the database for the token endpoints."""

from __future__ import annotations

import os
import threading
import time

import pytest
import redis
from flask_jwt_extended import create_access_token
from limits import parse
from sqlalchemy import func, select

from service import create_app
from service.auth import service as auth_service
from service.auth.models import Role
from service.http import PROBLEM_JSON
from service.ratelimit import RateLimitHit, Window, count_shared_hit
from tests.factories import make_client

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _app(settings, connection, **overrides):  # type: ignore[no-untyped-def]
    app = create_app(settings.with_overrides(**({"rate_limit": "3 per minute"} | overrides)))
    app.extensions["database"]["sessionmaker"].configure(bind=connection, join_transaction_mode="create_savepoint")
    return app


def _bearer(app, session, role=Role.ADMIN):  # type: ignore[no-untyped-def]
    client, _ = make_client(session, role=role)
    with app.app_context():
        token = create_access_token(identity=str(client.id), additional_claims=auth_service.token_claims(client))
    return {"Authorization": f"Bearer {token}"}


def _exhaust(http, headers):  # type: ignore[no-untyped-def]
    answers = [http.get("/v1/institutions", headers=headers) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    return answers


def test_a_client_over_its_limit_gets_a_429_problem_with_retry_after(settings, connection, session):
    app = _app(settings, connection)
    answers = _exhaust(app.test_client(), _bearer(app, session))
    assert [a.headers["RateLimit"].split(", ")[1] for a in answers[:3]] == [
        "remaining=2", "remaining=1", "remaining=0"]
    assert all(a.headers["RateLimit-Policy"] == "3;w=60" for a in answers)
    refused = answers[3]
    assert refused.mimetype == PROBLEM_JSON and refused.json["status"] == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["RateLimit"].startswith("limit=3, remaining=0, reset=")


def test_limits_are_per_client(settings, connection, session):
    app = _app(settings, connection)
    http = app.test_client()
    _exhaust(http, _bearer(app, session))
    assert http.get("/v1/institutions", headers=_bearer(app, session)).status_code == 200


def test_counting_in_memory_starts_no_thread_per_request(settings, connection, session, monkeypatch):
    app = _app(settings, connection, rate_limit="5 per minute")
    http, headers = app.test_client(), _bearer(app, session)
    http.get("/v1/institutions", headers=headers)  # the storage exists from here on
    started: list[threading.Thread] = []
    original = threading.Thread.start
    monkeypatch.setattr(threading.Thread, "start", lambda thread: started.append(thread) or original(thread))

    answers = [http.get("/v1/institutions", headers=headers).status_code for _ in range(5)]
    time.sleep(0.02)  # past the 10 ms a stock expiry timer lives, so the next hit would start another
    answers.append(http.get("/v1/institutions", headers=headers).status_code)

    assert answers == [200, 200, 200, 200, 429, 429]
    assert started == []


def test_health_and_metrics_are_not_limited(settings, connection):
    http = _app(settings, connection).test_client()
    assert [http.get("/healthz").status_code for _ in range(6)] == [200] * 6


@pytest.fixture
def redis_url() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.ConnectionError:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"Redis at {REDIS_URL} is required under CI=true")
        pytest.skip(f"no Redis at {REDIS_URL}")
    return REDIS_URL


def test_two_hosts_share_the_count_through_redis(settings, connection, session, redis_url):
    # Counts are per client id, and every test's client is new: earlier runs cannot leak into this one.
    first = _app(settings, connection, redis_url=redis_url)
    second = _app(settings, connection, redis_url=redis_url)
    headers = _bearer(first, session)
    first_http, second_http = first.test_client(), second.test_client()
    statuses = [first_http.get("/v1/institutions", headers=headers).status_code,
                second_http.get("/v1/institutions", headers=headers).status_code,
                first_http.get("/v1/institutions", headers=headers).status_code,
                second_http.get("/v1/institutions", headers=headers).status_code]
    assert statuses == [200, 200, 200, 429]


WRONG_SECRET = {"grant_type": "client_credentials", "client_id": "nobody", "client_secret": "x"}


def test_the_token_endpoint_has_a_tighter_limit_per_address(settings, connection):
    app = _app(settings, connection, token_rate_limit="2 per minute")
    http = app.test_client()
    answers = [http.post("/v1/oauth/token", data=WRONG_SECRET) for _ in range(3)]

    assert [a.status_code for a in answers] == [401, 401, 429]
    assert [a.headers["RateLimit"].split(", ")[1] for a in answers] == [
        "remaining=1", "remaining=0", "remaining=0"]
    assert all(a.headers["RateLimit-Policy"] == "2;w=60" for a in answers)
    refused = answers[2]
    assert refused.mimetype == PROBLEM_JSON and refused.json["detail"] == "2 per 1 minute"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60


def test_the_token_limit_is_shared_by_every_worker_without_redis(settings, connection, session):
    # Two apps on one database stand for two gunicorn workers (or hosts): the count lives in the database.
    first, second = (_app(settings, connection, token_rate_limit="3 per minute", redis_url="") for _ in range(2))
    statuses = [app.test_client().post("/v1/oauth/token", data=WRONG_SECRET).status_code
                for app in (first, second, first, second, first)]

    assert statuses == [401, 401, 401, 429, 429]
    assert session.scalar(select(func.count()).select_from(RateLimitHit)) == 3  # refused hits are not counted


def test_the_revocation_endpoint_shares_the_token_limit(settings, connection):
    http = _app(settings, connection, token_rate_limit="2 per minute").test_client()
    statuses = [http.post("/v1/oauth/token", data=WRONG_SECRET).status_code,
                http.post("/v1/oauth/revoke", data={"token": "x", "client_id": "nobody", "client_secret": "x"})
                .status_code,
                http.post("/v1/oauth/token", data=WRONG_SECRET).status_code]
    assert statuses == [401, 401, 429]


def test_expired_hits_are_forgotten_as_new_ones_arrive(session):
    limit = parse("2 per minute")
    assert count_shared_hit(session, "token/a", limit, now=1000.0)[0]
    assert count_shared_hit(session, "token/b", limit, now=1002.0)[0]
    assert count_shared_hit(session, "token/a", limit, now=1030.0)[0]
    allowed, window = count_shared_hit(session, "token/a", limit, now=1059.0)
    assert (allowed, window) == (False, Window(amount=2, seconds=60, remaining=0, reset_at=1060.0))

    allowed, window = count_shared_hit(session, "token/a", limit, now=1061.0)  # the hit at 1000 has left the window

    assert (allowed, window) == (True, Window(amount=2, seconds=60, remaining=0, reset_at=1090.0))
    assert sorted(session.execute(select(RateLimitHit.key, RateLimitHit.at))) == [
        ("token/a", 1030.0), ("token/a", 1061.0), ("token/b", 1002.0)]
    count_shared_hit(session, "token/a", limit, now=1062.0)  # every address's expired hits go, not only its own
    assert ("token/b", 1002.0) not in set(session.execute(select(RateLimitHit.key, RateLimitHit.at)))


def test_the_pinned_limits_calls_the_scheduler_the_service_replaces(monkeypatch):
    """service/ratelimit.py overrides a private method of limits' MemoryStorage (pinned in pyproject.toml): this
    version must still call it on every hit, and the override must start no timer thread."""
    import threading

    from limits import __version__, parse
    from limits.storage import MemoryStorage

    from service.ratelimit import InlineExpiryMemoryStorage

    assert __version__ == "5.8.0"
    assert callable(getattr(MemoryStorage, "_MemoryStorage__schedule_expiry", None))
    called = []
    monkeypatch.setattr(InlineExpiryMemoryStorage, "_MemoryStorage__schedule_expiry",
                        lambda self: called.append(1))
    storage = InlineExpiryMemoryStorage()
    limit = parse("5 per minute")
    storage.acquire_entry("key", limit.amount, limit.get_expiry())
    storage.incr("counter", 60)
    assert called == [1, 1]
    monkeypatch.undo()
    fresh = InlineExpiryMemoryStorage()
    fresh.timer.join()  # the one limits starts when it is built
    started = threading.active_count()
    for _ in range(50):
        fresh.acquire_entry("key", 100, 60)
    assert threading.active_count() == started
    assert not fresh.timer.is_alive()
