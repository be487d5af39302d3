"""Liveness, readiness and Prometheus metrics (outside /v1's contract)."""

from __future__ import annotations

import ast
import functools
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import Counter, Histogram
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from service.auth.access import operator, public
from service.db import db
from service.http import problem, produces
from service.metrics import CONTENT_TYPE, exposition

if TYPE_CHECKING:
    from alembic.config import Config

# migrations/ at the top of the source tree, installed as service/migrations (pyproject.toml): either way found here.
MIGRATIONS = next(path for path in (Path(__file__).resolve().parent / "migrations",
                                    Path(__file__).resolve().parent.parent / "migrations") if path.is_dir())
blp = Blueprint("operations", __name__)

REQUESTS = Counter("http_requests_total", "HTTP requests answered", ["route", "method", "status"])
LATENCY = Histogram("http_request_duration_seconds", "Time to answer a request", ["route", "method"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))


# alembic is imported where migrations run (the CLI, tests), never by a serving worker: it costs each worker about
# 10 MiB of resident memory, and /readyz only needs the newest revision's id and the database's.


def alembic_config(database_url: str | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if database_url:
        config.set_main_option("sqlalchemy.url", database_url)
    return config


def newest_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


@functools.cache
def schema_head() -> str | None:
    """The newest revision, as alembic's `heads` finds it, read from the migration scripts without importing them:
    the one revision no other revision names as its down_revision (None when there are no migrations)."""
    revisions: dict[str, tuple[str, ...]] = {}
    for script in sorted((MIGRATIONS / "versions").glob("*.py")):
        assigned = {}
        for node in ast.parse(script.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                assigned[node.targets[0].id] = node.value
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
                assigned[node.target.id] = node.value
        if "revision" in assigned:
            down = ast.literal_eval(assigned["down_revision"]) if "down_revision" in assigned else None
            revisions[ast.literal_eval(assigned["revision"])] = (down,) if isinstance(down, str) else tuple(down or ())
    named = {down for downs in revisions.values() for down in downs}
    heads = [revision for revision in revisions if revision not in named]
    if len(heads) > 1:
        raise RuntimeError(f"the migrations have {len(heads)} heads: {', '.join(sorted(heads))}")
    return heads[0] if heads else None


def schema_revision(connection: Connection) -> str | None:
    """The revision the database is at (None before the first migration), as alembic records it."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


@blp.get("/healthz")
@produces("application/json")
@public
def healthz() -> dict[str, str]:
    """The process is alive (it does not look at the database)."""
    return {"status": "ok"}


@blp.get("/readyz")
@public
def readyz() -> Response | dict[str, str]:
    """The database answers and its schema is at the newest migration."""
    expected = schema_head()
    try:
        with db.long_read() as reader:  # a read: it must not wait for a writer (SQLite's write lock)
            current = schema_revision(reader.connection())
    except SQLAlchemyError:
        return problem(503, "The database is unreachable.", headers={"Retry-After": "5"})
    if current != expected:
        return problem(503, "The database schema is not at the newest migration; run `risk-register db upgrade`.",
                       headers={"Retry-After": "30"})
    return {"status": "ready", "schemaRevision": current}


@blp.get("/metrics")
@produces(CONTENT_TYPE.split(";")[0])
@operator
def metrics() -> Response:
    """Prometheus metrics for operators holding METRICS_TOKEN: requests by route and status, latency, and the domain
    metrics of metrics.py. Without METRICS_TOKEN configured it is not served at all."""
    return Response(exposition(), content_type=CONTENT_TYPE)


AUDITED = "(audited)"


def _labels(response: Response) -> tuple[str, str, str]:
    """Route, method and status of a request, as metrics may show them. The routes of the register's data (audited:
    incidents, statistics, exports, the access log) share one label and show only a status class, so that no
    series counts signals recorded, one by one, finer than the statistics' rules allow."""
    if request.url_rule is None:
        return "unmatched", request.method, str(response.status_code)
    if _audited(current_app.view_functions.get(request.endpoint or "")):
        return AUDITED, "-", f"{response.status_code // 100}xx"
    return request.url_rule.rule, request.method, str(response.status_code)


def _audited(view: Any) -> bool:
    """Whether a route serves the register's data: any of its methods writes access events (OPTIONS included)."""
    view_class = getattr(view, "view_class", None)
    handlers = [getattr(view_class, m, None) for m in ("get", "post", "patch", "put", "delete")] if view_class \
        else [view]
    return any(getattr(handler, "audit_event", None) for handler in handlers)


def _observe(response: Response) -> Response:
    route, method, status = _labels(response)
    REQUESTS.labels(route, method, status).inc()
    LATENCY.labels(route, method).observe(time.perf_counter() - g.get("started", time.perf_counter()))
    return response


def init_app(app: Flask) -> None:
    app.register_blueprint(blp)
    app.after_request(_observe)
