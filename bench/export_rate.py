"""The export's serialisation rate in-process: the fast path against the first one, in the same run.

    .venv/bin/python -m bench.export_rate [--incidents 100000] [--rounds 3] [--database-url URL]
                                          [--server-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

Without --database-url it creates a scratch database, fills it with `bench.generate.generate()` and drops it
afterwards; with one it uses that database as it is (already generated). Each round exports every incident of a
national auditor over the generated years, read in a REPEATABLE READ session as the route does, alternating the
first serialisation (tests/exports/reference.py: ORM entities, a dict and json.dumps per row) with the service's,
for NDJSON and CSV; it prints rows/s (wall clock, and per CPU second of this process, which the machine's noise
moves less), their ratio, and how far the process's peak RSS grew.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import secrets
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

if not __package__:  # started as a file, not with -m: see bench/_bootstrap.py
    import _bootstrap  # noqa: F401

from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from bench.common import SERVER_URL, scratch_database, upgrade
from bench.generate import generate


def timed(produce: Callable[[], Iterator[str | bytes]]) -> tuple[float, float, int]:
    """(seconds, CPU seconds of this process, lines) of reading one export to the end, encoded as it is sent."""
    started, cpu = time.perf_counter(), time.process_time()
    lines = 0
    for chunk in produce():
        lines += (chunk if isinstance(chunk, bytes) else chunk.encode()).count(b"\n")
    return time.perf_counter() - started, time.process_time() - cpu, lines


def measure(url: str, rounds: int) -> dict[str, Any]:
    from service.auth.access import Caller
    from service.auth.models import Role
    from service.exports import service
    from service.periods import parse_period
    from tests.exports import reference

    engine = create_engine(url).execution_options(isolation_level="REPEATABLE READ")
    today = dt.date.today()
    first, last = parse_period(str(today.year - 3), today), parse_period(str(today.year), today)
    caller = Caller(uuid.uuid4(), Role.AUDITOR, None, ("*",))
    stmt = service.exported_incidents(caller, first, last, dt.datetime.now(dt.UTC))
    key, metadata = secrets.token_bytes(32), {"filters": {"from": first.label, "to": last.label}}
    variants: dict[str, Callable[[Session], Iterator[str]]] = {
        "ndjson first": lambda s: reference.ndjson(s, stmt, key, metadata),
        "ndjson now": lambda s: service.ndjson(s, stmt, key, metadata),
        "csv first": lambda s: reference.csv_lines(s, stmt, key),
        "csv now": lambda s: service.csv_lines(s, stmt, key),
    }
    with Session(engine) as session:
        rows = service.count_rows(session, stmt)
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for n in range(rounds):
        for name, produce in variants.items():
            with Session(engine) as session:
                elapsed, used, lines = timed(lambda produce=produce, session=session: produce(session))
            assert lines == rows + 1, f"{name}: {lines} lines for {rows} rows"
            seconds[name].append(elapsed)
            cpu[name].append(used)
            print(f"round {n + 1} {name}: {rows / elapsed:,.0f} rows/s, {used / rows * 1e6:.1f} us CPU/row here",
                  file=sys.stderr)
    engine.dispose()
    rates = {name: round(rows / min(times)) for name, times in seconds.items()}
    cpu_rates = {name: round(rows / min(times)) for name, times in cpu.items()}
    return {"rows": rows, "rounds": rounds, "rowsPerSecond (best round)": rates,
            "rowsPerCpuSecond of this process (best round; PostgreSQL's work excluded)": cpu_rates,
            "speedup": {fmt: round(rates[f"{fmt} now"] / rates[f"{fmt} first"], 2) for fmt in ("ndjson", "csv")},
            "peakRssGrowthMiB": round((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", help="an already generated database to use as it is")
    parser.add_argument("--server-url", default=SERVER_URL)
    args = parser.parse_args()
    if args.database_url:
        print(json.dumps(measure(args.database_url, args.rounds), indent=2))
        return 0
    with scratch_database(args.server_url, "rr_bench") as url:
        upgrade(url)
        generate(url, args.incidents, secrets.token_bytes(32))
        print(json.dumps(measure(url, args.rounds), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
