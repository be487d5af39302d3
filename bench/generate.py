"""A synthetic national register for the benchmarks, loaded by COPY and then rolled up by `rebuild`.

    .venv/bin/python -m bench.generate [--incidents 1000000] [--server-url postgresql+psycopg://postgres@127.0.0.1/postgres]

Standalone it creates a scratch database `rr_bench_<random>`, runs `alembic upgrade head`, generates, prints the
timings and drops the database again; `bench/run.py` and `bench/export_rate.py` call `generate()` on scratch
databases of their own.

- 40 municipalities, 400 institutions (10 each), 2,000 locations (5 each) with capacities of 4-40 places.
- Incidents over the 3 years before today, with seasonality (more in winter), skewed location rates (log-normal,
  and 2% of the locations are hotspots at 6x), repeat residents (a Zipf-like pool per location, so a few residents
  account for many absences), and about 12% formally reported (meldcode step 5, or an 8% share otherwise).
- Rows go straight into `incident` by psycopg's COPY (with the real pseudonyms: HMAC under the institution's key,
  `service.incidents.identities`), then `service.stats.rollups.rebuild` fills `incident_rollup` and
  `resident_rollup` in one transaction, as `risk-register stats rebuild` does, and the tables are ANALYZEd.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import random
import secrets
import sys
import time
import uuid
from itertools import accumulate
from typing import Any

if not __package__:  # started as a file, not with -m: see bench/_bootstrap.py
    import _bootstrap  # noqa: F401

from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from bench.common import SERVER_URL, indicators_by_kind, scratch_database, upgrade

MUNICIPALITIES, INSTITUTIONS_PER, LOCATIONS_PER = 40, 10, 5
# The incident table, then the statistics' tables.
TABLES = ("incident", "incident_rollup", "resident_rollup", "unit_tally", "unit_resident")
YEARS = 3
HOTSPOT_SHARE, HOTSPOT_FACTOR = 0.02, 6.0
COLUMNS = ("id", "institution_id", "location_id", "client_reference", "kind", "exploitation_type", "occurred_at",
           "recorded_at", "resident_pseudonym", "resident_key_version", "resident_age_band", "indicators", "note",
           "absence_ended_at", "absence_whereabouts_known", "absence_risk_level",
           "absence_reported_missing_to_police", "visitor_estimated_age_band", "visitor_relation_claimed",
           "visitor_plate_fingerprint", "visitor_phone_fingerprint", "meldcode_step", "reported_to", "reported_at",
           "status", "version", "taxonomy_version", "record_key", "retracted_at")


def registry(session: Session, rng: random.Random, since: dt.date) -> list[dict[str, Any]]:
    """Institutions and locations with capacities; returns each location with its institution and weight."""
    from service.registry.models import Capacity, Institution, Location, Sector, Setting

    sectors, settings = list(Sector), list(Setting)
    locations = []
    for m in range(MUNICIPALITIES):
        code = f"GM{14 + 17 * m:04d}"
        for i in range(INSTITUTIONS_PER):
            institution = Institution(name=f"Instelling {m + 1}.{i + 1}", sector=rng.choice(sectors),
                                      municipality_code=code)
            session.add(institution)
            session.flush()
            for j in range(LOCATIONS_PER):
                places = rng.randint(4, 40)
                location = Location(institution_id=institution.id, name=f"Locatie {m + 1}.{i + 1}.{j + 1}",
                                    postcode4=f"{1000 + rng.randrange(9000)}", municipality_code=code,
                                    setting=rng.choice(settings),
                                    capacities=[Capacity(valid_from=since, places=places)])
                session.add(location)
                rate = rng.lognormvariate(0, 0.6) * (HOTSPOT_FACTOR if rng.random() < HOTSPOT_SHARE else 1.0)
                locations.append({"location": location, "institution": institution, "places": places,
                                  "weight": places * rate})
    session.flush()
    return locations


def _rows(rng: random.Random, spot: dict[str, Any], count: int, days: list[dt.date], day_weights: list[float],
          pseudonyms: list[str], resident_weights: list[float], now: dt.datetime, indicators: dict[str, list[str]],
          taxonomy_version: str, key_version: int) -> Any:
    """`count` incidents of one location, as COPY rows in COLUMNS order."""
    institution_id, location_id = spot["institution"].id, spot["location"].id
    for day in rng.choices(days, cum_weights=day_weights, k=count):
        occurred = min(dt.datetime.combine(day, dt.time(), dt.UTC) + dt.timedelta(seconds=rng.randrange(86400)),
                       now - dt.timedelta(minutes=5))
        kind = rng.choices(("absence", "recruitmentAttempt", "suspiciousVisitor"), cum_weights=(5, 8, 10))[0]
        pseudonym = None if rng.random() < 0.1 else rng.choices(pseudonyms, cum_weights=resident_weights)[0]
        absence = (None, None, None, None)
        visitor = (None, None, None)
        if kind == "absence":
            absence = (min(occurred + dt.timedelta(hours=rng.randint(2, 40)), now), rng.random() < 0.5,
                       rng.choice(("green", "orange", "red")), rng.random() < 0.3)
        elif kind == "suspiciousVisitor":
            visitor = ("23plus", rng.choice(("friend", "unknown")),
                       secrets.token_hex(32) if rng.random() < 0.3 else None)
        step = rng.choices((None, 1, 2, 3, 5), cum_weights=(3, 6, 8, 9, 10))[0]
        reported = step == 5 or rng.random() < 0.08
        yield (uuid.uuid4(), institution_id, location_id, f"GEN-{uuid.uuid4().hex[:20]}", kind,
               rng.choices(("criminal", "sexual", "labour", "unknown"), cum_weights=(5, 9, 10, 12))[0],
               occurred, min(occurred + dt.timedelta(hours=rng.randint(0, 72)), now),
               pseudonym, key_version if pseudonym else None,
               rng.choice(("12to15", "16to17", "16to17", "18to22")),
               json.dumps(rng.sample(indicators[kind], k=min(len(indicators[kind]), rng.randint(1, 3)))),
               None, *absence, *visitor, None, step,
               json.dumps(["veiligThuis"] if reported else []),
               min(occurred + dt.timedelta(days=rng.randint(1, 20)), now) if reported else None,
               "active", 1, taxonomy_version, rng.randrange(256), None)


def generate(database_url: str, incidents: int, master_key: bytes, key_version: int = 1,
             seed: int = 2026) -> dict[str, Any]:
    """Fill an upgraded, empty database; returns timings, the location ids per institution and the sizes."""
    from service.incidents.identities import pseudonymise_resident
    from service.stats.rollups import rebuild
    from service.taxonomy.service import load_taxonomy

    rng = random.Random(seed)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    first_day = now.date() - dt.timedelta(days=365 * YEARS)
    days = [first_day + dt.timedelta(days=n) for n in range((now.date() - first_day).days + 1)]
    # Seasonality: about 1.6x as many signals in January as in July.
    day_weights = list(accumulate(1 + 0.23 * math.cos(2 * math.pi * (d.timetuple().tm_yday - 15) / 365.25)
                                  for d in days))
    taxonomy = load_taxonomy()
    indicators = indicators_by_kind()
    engine = create_engine(database_url)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    # Not expired on commit: the registry's objects are read after the session has closed.
    with Session(engine, expire_on_commit=False) as session:
        spots = registry(session, rng, first_day)
        session.commit()
        timings["registrySeconds"] = round(time.perf_counter() - started, 2)
        total_weight = sum(s["weight"] for s in spots)
        counts = [int(incidents * s["weight"] / total_weight) for s in spots]
        for n in range(incidents - sum(counts)):
            counts[n % len(counts)] += 1
        started = time.perf_counter()
        raw = engine.raw_connection()
        try:
            cursor = raw.driver_connection.cursor()
            with cursor.copy(f"COPY incident ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for spot, count in zip(spots, counts, strict=True):
                    pool = spot["places"] * 4
                    pseudonyms = [pseudonymise_resident(master_key, key_version, spot["institution"].id,
                                                        f"CL-{spot['location'].postcode4}-{n}") for n in range(pool)]
                    resident_weights = list(accumulate(1 / (n + 1) ** 0.9 for n in range(pool)))
                    for row in _rows(rng, spot, count, days, day_weights, pseudonyms, resident_weights, now,
                                     indicators, taxonomy.version, key_version):
                        copy.write_row(row)
            raw.commit()
        finally:
            raw.close()
        timings["copySeconds"] = round(time.perf_counter() - started, 2)
        started = time.perf_counter()
        rebuilt = rebuild(session)
        session.commit()
        timings["rebuildSeconds"] = round(time.perf_counter() - started, 2)
    started = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE incident"))
        connection.execute(text("VACUUM ANALYZE incident_rollup"))
        for table in ("resident_rollup", "unit_tally", "unit_resident"):
            connection.execute(text(f"VACUUM ANALYZE {table}"))
        sizes = {t: connection.execute(text(f"SELECT count(*) FROM {t}")).scalar()  # noqa: S608 - fixed names
                 for t in TABLES}
        # Table, indexes and TOAST together, after VACUUM: what each table takes on disk.
        stored = {t: connection.execute(text("SELECT pg_total_relation_size(CAST(:t AS regclass))"), {"t": t}).scalar()
                  for t in TABLES}
    timings["analyzeSeconds"] = round(time.perf_counter() - started, 2)
    engine.dispose()
    by_institution: dict[str, list[str]] = {}
    for spot in spots:
        by_institution.setdefault(str(spot["institution"].id), []).append(str(spot["location"].id))
    return {"incidents": incidents, "rebuilt": rebuilt, "rows": sizes, "bytes": stored, "timings": timings,
            "municipalities": MUNICIPALITIES, "institutions": len(by_institution), "locations": len(spots),
            "firstDay": first_day.isoformat(), "locationsByInstitution": by_institution,
            "loadPath": "COPY into incident, then service.stats.rollups.rebuild (as `risk-register stats rebuild`)"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--incidents", type=int, default=1_000_000)
    parser.add_argument("--server-url", default=SERVER_URL)
    args = parser.parse_args()
    with scratch_database(args.server_url, "rr_bench") as url:
        upgrade(url)
        result = generate(url, args.incidents, secrets.token_bytes(32))
    result.pop("locationsByInstitution")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
