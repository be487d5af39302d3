"""An export streams: exporting 100,000 rows takes hardly more of the process's memory than 1,000 rows.

The rows are bulk-inserted in batches (one executemany each; no rollups, since an export reads the incident table
only). Each export's body is then iterated chunk by chunk without being kept, sampling the process's resident set
size (RSS) as it goes. The peak RSS while streaming 100,000 rows may exceed the peak while streaming 1,000 rows by
less than BOUND. A control keeps the 100,000-row body instead, and must exceed the bound: that shows the measurement
would catch an export that buffered (the NDJSON body is about 80 MiB).

RSS rather than tracemalloc: tracemalloc makes the 100,000-row export five times slower (about 40 s instead of 8 s);
measured with it once, the traced peak grew by 3.2 MiB (NDJSON) and 3.6 MiB (CSV).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import datetime as dt
import gc
import json
import os
import resource
import secrets
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import insert
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from service import clock
from service.auth.models import Role
from service.incidents.models import Incident, Status
from service.taxonomy.service import load_taxonomy
from tests.audit.test_access_log import month_label, scoped_party
from tests.factories import make_institution, make_location

ROWS, BASELINE_ROWS, SEED_BATCH = 100_000, 1_000, 5_000
MiB = 2**20
BOUND = 25 * MiB  # allowed growth of peak RSS from a 1,000-row to a 100,000-row export
NDJSON, CSV = "application/x-ndjson", "text/csv"

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads RSS from /proc/self/statm")


def rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _release_freed_memory() -> None:
    """Give freed memory back to the OS, so that a buffering export could not hide in memory freed earlier."""
    gc.collect()
    libc = ctypes.util.find_library("c")
    if libc:
        trim: Callable[[int], int] | None = getattr(ctypes.CDLL(libc), "malloc_trim", None)
        if trim is not None:
            trim(0)


def _seed(connection: Connection, location: Any, n: int) -> None:
    now = clock.now()
    version = load_taxonomy().version
    for first in range(0, n, SEED_BATCH):
        connection.execute(insert(Incident), [
            {"id": uuid.uuid4(), "institution_id": location.institution_id, "location_id": location.id,
             "client_reference": f"MEM-{i:07d}", "kind": "recruitmentAttempt", "exploitation_type": "criminal",
             "occurred_at": now - dt.timedelta(hours=1, seconds=i % 3600), "recorded_at": now,
             "resident_pseudonym": secrets.token_hex(32), "resident_key_version": 1, "resident_age_band": "16to17",
             "indicators": ["approachedAtEntrance", "offeredMoneyOrGifts"], "note": "Stond bij het hek.",
             "meldcode_step": 2, "reported_to": ["veiligThuis"], "reported_at": now, "status": Status.ACTIVE,
             "version": 1, "taxonomy_version": version, "record_key": i % 256}
            for i in range(first, min(first + SEED_BATCH, n))])


def _export(client: FlaskClient, headers: dict[str, str], media: str, *, keep: bool = False) -> tuple[int, int, int]:
    """(peak RSS above the RSS before the request, rows, body bytes) of one export read as a stream."""
    _release_freed_memory()
    before = peak = rss()
    response = client.get("/v1/exports/incidents", headers=headers | {"Accept": media}, buffered=False,
                          query_string={"from": month_label(1), "to": month_label()})
    assert response.status_code == 200
    kept: list[bytes] = []
    lines = size = 0
    last = b""
    for n, chunk in enumerate(response.iter_encoded()):
        lines += chunk.count(b"\n")
        size += len(chunk)
        last = chunk
        if keep:
            kept.append(chunk)
        if n % 200 == 0:
            peak = max(peak, rss())
    peak = max(peak, rss())
    response.close()
    rows = lines - 1  # NDJSON: the metadata line; CSV: the header line
    if media == NDJSON:
        assert json.loads(last)["metadata"]["rowCount"] == rows
    assert int(response.headers["Export-Row-Count"]) == rows
    del kept
    return peak - before, rows, size


@pytest.mark.slow
def test_exporting_100k_rows_keeps_memory_flat(
        client: FlaskClient, session: Session, connection: Connection, token_for: Any) -> None:
    small = make_location(session, make_institution(session, municipality_code="GM0034"))
    large = make_location(session, make_institution(session, municipality_code="GM0014"))
    session.flush()
    started = time.perf_counter()
    _seed(connection, small, BASELINE_ROWS)
    _seed(connection, large, ROWS)
    report = [f"seeded {ROWS + BASELINE_ROWS} rows in {time.perf_counter() - started:.1f}s"]
    few = scoped_party(session, token_for, Role.AUDITOR, ["GM0034"]).headers
    many = scoped_party(session, token_for, Role.AUDITOR, ["GM0014"]).headers
    growths = {}

    for media in (NDJSON, CSV):
        baseline, baseline_rows, _ = _export(client, few, media)
        started = time.perf_counter()
        peak, rows, size = _export(client, many, media)
        assert (baseline_rows, rows) == (BASELINE_ROWS, ROWS)
        growths[media] = peak - baseline
        report.append(f"{media}: {rows} rows ({size / MiB:.1f} MiB) in {time.perf_counter() - started:.1f}s, "
                      f"peak RSS +{peak / MiB:.1f} MiB vs +{baseline / MiB:.1f} MiB for {baseline_rows} rows: "
                      f"growth {growths[media] / MiB:.1f} MiB")
    control, _, _ = _export(client, many, NDJSON, keep=True)
    report.append(f"control (body kept): peak RSS +{control / MiB:.1f} MiB")
    report.append(f"ru_maxrss {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    print("\n" + "\n".join(report))

    assert control > BOUND, f"the measurement cannot see a buffered export: {'; '.join(report)}"
    for media, growth in growths.items():
        assert growth < BOUND, (f"{media}: peak RSS grew by {growth / MiB:.1f} MiB from {BASELINE_ROWS} to {ROWS} "
                                f"rows (bound {BOUND / MiB:.0f} MiB): {'; '.join(report)}")
