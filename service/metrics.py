"""Domain metrics for operators, beside the HTTP ones of operations.py, and the /metrics exposition.

- statistics requests answered, by endpoint (hotspots, trends, reporting-funnel), never by unit or filter;
- the time to append an access event (the chain's lock included);
- the database pool (connections checked out, pool size, overflow in use, idle), read from SQLAlchemy's pool when
  /metrics is scraped;
- requests refused by a rate limit, by limit;
- what is running: API and package version;
- incidents in the register, rounded down to a hundred (on PostgreSQL the planner's estimate): coarse on purpose.

None of them is labelled by anything a request names (unit, institution, location, client), so /metrics is no
side channel for the statistics (DESIGN §5).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from importlib import metadata

from flask import Flask, Response, current_app, request
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import QueuePool

from service.config import API_VERSION
from service.db import db

# The text format generate_latest writes (prometheus_client's CONTENT_TYPE_LATEST names a newer one).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
STATISTICS_PREFIX = "/v1/stats/"
TOKEN_PREFIX = "/v1/oauth/"
INCIDENTS_STEP = 100

STATISTICS_REQUESTS = Counter("risk_register_statistics_requests_total", "Statistics requests answered, by endpoint",
                              ["endpoint"])
ACCESS_LOG_APPEND = Histogram("risk_register_access_log_append_seconds",
                              "Time to insert one access event (unlinked, no lock: the sealer links it)",
                              buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
RATE_LIMITED = Counter("risk_register_rate_limited_total",
                       "Requests refused with 429, by limit (token: the token endpoints per address; api: per client)",
                       ["limit"])


def package_version() -> str:
    try:
        return metadata.version("risk-register")
    except metadata.PackageNotFoundError:
        return "unknown"


class ScrapeTimeMetrics(Collector):
    """What is read when /metrics is scraped: the build, and this process's database pool."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.version = package_version()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        build = GaugeMetricFamily("risk_register_build_info", "The running API and package version (always 1)",
                                  labels=["api_version", "version"])
        build.add_metric([API_VERSION, self.version], 1)
        yield build
        pool = self.app.extensions["database"]["engine"].pool
        # Pools without a size (SQLite in memory, NullPool) have nothing to report.
        for name, documentation, value in (
            ("checked_out", "Connections in use by a request or a command", pool.checkedout()),
            ("size", "Connections the pool keeps open (pool_size)", pool.size()),
            ("overflow", "Connections open beyond pool_size", max(pool.overflow(), 0)),
            ("checked_in", "Open connections waiting in the pool", pool.checkedin()),
        ) if isinstance(pool, QueuePool) else ():
            yield GaugeMetricFamily(f"risk_register_db_pool_{name}", f"{documentation}, in this process", value=value)
        # Read after the pool's gauges: it takes a connection of its own.
        yield GaugeMetricFamily("risk_register_incidents_recorded", "Incidents in the register, rounded down to a "
                                "hundred (PostgreSQL: the planner's estimate)", value=self._incidents_recorded())

    def _incidents_recorded(self) -> int:
        engine = self.app.extensions["database"]["engine"]
        estimate = (text("SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE relname = 'incident'")
                    if engine.dialect.name == "postgresql" else text("SELECT count(*) FROM incident"))
        try:
            with db.long_read() as reader:  # a read of its own: it must not wait for writers (SQLite's write lock)
                found = reader.scalar(estimate) or 0
        except SQLAlchemyError:
            return 0  # a scrape must not fail with the database: /readyz reports that
        return int(found) // INCIDENTS_STEP * INCIDENTS_STEP


def exposition() -> bytes:
    """Every metric in Prometheus' text format: the process's (or, under gunicorn, all workers'), then the app's."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        # Under gunicorn each worker writes its own files; collect all of them.
        process = CollectorRegistry()
        multiprocess.MultiProcessCollector(process)
    else:
        process = REGISTRY
    return generate_latest(process) + generate_latest(current_app.extensions["metrics"])


def _count_domain_events(response: Response) -> Response:
    rule = request.url_rule.rule if request.url_rule else ""
    if rule.startswith(STATISTICS_PREFIX) and response.status_code < 400:
        STATISTICS_REQUESTS.labels(rule.removeprefix(STATISTICS_PREFIX)).inc()
    if response.status_code == 429:
        RATE_LIMITED.labels("token" if rule.startswith(TOKEN_PREFIX) else "api").inc()
    return response


def init_app(app: Flask) -> None:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ScrapeTimeMetrics(app))
    app.extensions["metrics"] = registry
    app.after_request(_count_domain_events)
