"""Liveness, readiness, Prometheus metrics and the offline assets of the API docs (outside /v1's contract)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import swagger_ui_bundle
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Blueprint, Flask, Response, g, request, send_from_directory
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from sqlalchemy.exc import SQLAlchemyError

from service.auth.access import public
from service.db import db
from service.http import problem, produces

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
blp = Blueprint("operations", __name__)

REQUESTS = Counter("http_requests_total", "HTTP requests answered", ["route", "method", "status"])
LATENCY = Histogram("http_request_duration_seconds", "Time to answer a request", ["route", "method"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))


def alembic_config(database_url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if database_url:
        config.set_main_option("sqlalchemy.url", database_url)
    return config


def newest_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


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
    expected = newest_revision()
    try:
        with db.engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    except SQLAlchemyError:
        return problem(503, "The database is unreachable.", headers={"Retry-After": "5"})
    if current != expected:
        return problem(503, "The database schema is not at the newest migration; run `risk-register db upgrade`.",
                       headers={"Retry-After": "30"})
    return {"status": "ready", "schemaRevision": current}


@blp.get("/metrics")
@produces(CONTENT_TYPE_LATEST.split(";")[0])
@public
def metrics() -> Response:
    """Prometheus metrics: requests by route, method and status, and latency."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        # Under gunicorn each worker writes its own files; collect all of them.
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
    return Response(generate_latest(), mimetype=CONTENT_TYPE_LATEST)


@blp.get("/v1/docs/assets/<path:filename>")
@produces("*/*")
@public
def docs_asset(filename: str) -> Response:
    """Swagger UI's scripts and styles, served here because care networks often have no internet."""
    return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename, max_age=86400)


def _observe(response: Response) -> Response:
    route = request.url_rule.rule if request.url_rule else "unmatched"
    REQUESTS.labels(route, request.method, str(response.status_code)).inc()
    LATENCY.labels(route, request.method).observe(time.perf_counter() - g.get("started", time.perf_counter()))
    return response


def init_app(app: Flask) -> None:
    app.register_blueprint(blp)
    app.after_request(_observe)
