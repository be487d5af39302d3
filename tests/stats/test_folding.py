"""A change leaves one pending row in its own transaction; reads, the background folder and `risk-register stats
fold` fold what is pending into the rollups, each change exactly once, and nothing committed is ever lost."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading
import uuid
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.audit.sealing import Rounds
from service.auth.models import Role
from service.cli import main
from service.incidents.service import record_incidents, retract_incident
from service.stats import rollups
from service.stats.folding import MALLOC_TRIM, fold_everything, fold_round
from service.stats.models import PendingChange, ResidentRollup, Rollup, UnitTally
from tests.factories import make_location
from tests.stats.factories import KEYS, caller_of, expected_cell, incident_values, seed
from tests.stats.test_rollups import rollup_rows

pytestmark = pytest.mark.clock("2026-11-20")

HOTSPOTS = "/v1/stats/hotspots"
IN_Q2 = dt.datetime(2026, 5, 12, 10, tzinfo=dt.UTC)


def pending(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(PendingChange)) or 0


def stored_incidents(session: Session, location_id: Any) -> int:
    """What unit_tally holds for the location in 2026-Q2, read raw: without folding."""
    return session.scalar(select(func.coalesce(func.sum(UnitTally.incidents), 0)).where(
        UnitTally.period_type == "quarter", UnitTally.period == "2026-Q2", UnitTally.level == "location",
        UnitTally.unit == str(location_id))) or 0


def test_a_write_leaves_one_pending_row_per_change_and_no_rollup_row(session):
    location = make_location(session)
    seed(session, location, 5)

    assert pending(session) == 5
    assert stored_incidents(session, location.id) == 0
    assert rollups.fold(session) == 5
    assert (pending(session), stored_incidents(session, location.id)) == (0, 5)
    assert rollups.fold(session) == 0  # nothing is folded twice


def test_a_change_undone_before_its_fold_leaves_no_empty_cell(session):
    """A write and its retraction folded together add nothing: no cell row is made for them (as `apply` does on
    SQLite, so does the fold in SQL on PostgreSQL)."""
    location = make_location(session)
    [incident] = seed(session, location, 1)
    retract_incident(session, caller_of(location.institution_id), incident.id, "Entered at the wrong location")

    assert rollups.fold(session) == 2
    assert session.scalar(select(func.count()).select_from(Rollup)) == 0
    assert session.scalar(select(func.count()).select_from(ResidentRollup)) == 0


def test_a_backlog_folds_a_chunk_at_a_time_to_the_same_rollups(session, monkeypatch):
    location = make_location(session)
    seed(session, location, 11)
    monkeypatch.setattr(rollups, "FOLD_CHUNK", 3)  # 3 + 3 + 3 + 2

    assert rollups.fold(session, limit=4) == 4  # a limit across chunks: 3 + 1
    assert rollups.fold(session) == 7
    assert (pending(session), stored_incidents(session, location.id)) == (0, 11)
    written = rollup_rows(session)
    rollups.rebuild(session)
    assert rollup_rows(session) == written


def test_a_statistics_read_folds_what_is_pending_first(client, session, token_for):
    location = make_location(session)
    recorded = seed(session, location, 30)
    assert pending(session) == 30

    response = client.get(HOTSPOTS, query_string={"period": "2026-Q2", "groupBy": "location"},
                          headers=token_for(Role.ANALYST))

    assert response.status_code == 200
    assert pending(session) == 0
    assert response.get_json()["reference"]["incidents"] == expected_cell(recorded)
    written = rollup_rows(session)
    rollups.rebuild(session)
    assert rollup_rows(session) == written


def test_a_rebuild_counts_what_was_pending_and_clears_it(session):
    location = make_location(session)
    seed(session, location, 3)

    rollups.rebuild(session)

    assert pending(session) == 0
    assert stored_incidents(session, location.id) == 3


def test_a_change_that_rolls_back_leaves_nothing_pending(committing_register):
    location, caller = uuid.UUID(committing_register.location_id), caller_of(committing_register.institution_id)
    with Session(committing_register.engine) as session:
        record_incidents(session, caller, [incident_values(location, occurred_at=IN_Q2)], KEYS)
        session.rollback()
        assert pending(session) == 0


def test_a_crash_between_the_write_and_the_fold_loses_nothing(committing_register):
    """The pending row commits with its incident: a process that dies before any fold leaves it for the next."""
    location, caller = uuid.UUID(committing_register.location_id), caller_of(committing_register.institution_id)
    with Session(committing_register.engine) as session:
        record_incidents(session, caller, [incident_values(location, occurred_at=IN_Q2)], KEYS)
        session.commit()
    committing_register.engine.dispose()  # the writing process is gone; nothing folded

    _client_id, headers = committing_register.bearer(Role.ANALYST, municipality_codes=["*"])
    response = committing_register.app.test_client().get(
        HOTSPOTS, query_string={"period": "2026-Q2", "groupBy": "location"}, headers=headers)

    assert response.status_code == 200
    with Session(committing_register.engine) as session:
        assert pending(session) == 0
        assert stored_incidents(session, location) == 1


def test_two_concurrent_folders_never_fold_a_change_twice(committing_register, monkeypatch):
    """PostgreSQL. The first folder pauses after taking the pending rows, before it commits; the second must wait
    for it and then find them gone, not apply them again."""
    location, caller = uuid.UUID(committing_register.location_id), caller_of(committing_register.institution_id)
    with Session(committing_register.engine) as session:
        record_incidents(session, caller, [incident_values(location, occurred_at=IN_Q2, resident=f"R-{i % 3}")
                                           for i in range(12)], KEYS, batch=True)
        session.commit()
    taken, folded, errors = threading.Event(), {}, []
    apply = rollups.apply

    def apply_then_pause(session: Session, changes: Any, municipalities: Any = None) -> None:
        changes = list(changes)
        apply(session, changes, municipalities)
        if threading.current_thread().name == "first":
            taken.set()
            threading.Event().wait(1.0)  # the second folder runs now

    monkeypatch.setattr(rollups, "apply", apply_then_pause)

    def run(name: str) -> None:
        if name == "second":
            taken.wait(10)
        with Session(committing_register.engine) as session:
            try:
                folded[name] = rollups.fold(session)
                session.commit()
            except Exception as exc:
                errors.append((name, type(exc).__name__))

    threads = [threading.Thread(target=run, name=name, args=(name,)) for name in ("first", "second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert not errors
    assert folded == {"first": 12, "second": 0}
    with Session(committing_register.engine) as session:
        assert stored_incidents(session, location) == 12
        written = rollup_rows(session)
        rollups.rebuild(session)
        assert rollup_rows(session) == written
        session.rollback()


def test_the_background_folder_and_the_command_empty_the_backlog(committing_register):
    location, caller = uuid.UUID(committing_register.location_id), caller_of(committing_register.institution_id)
    engine, app = committing_register.engine, committing_register.app

    def write(n: int) -> None:
        with Session(engine) as session:
            record_incidents(session, caller, [incident_values(location, occurred_at=IN_Q2) for _ in range(n)],
                             KEYS, batch=True)
            session.commit()

    write(3)
    assert fold_round(app, limit=2) == 2
    assert fold_everything(app) == 1
    write(2)
    folder = Rounds(app, 0.05, lambda app: fold_round(app) > 0, "rollup-folder").start()
    try:
        for _ in range(100):
            with Session(engine) as session:
                if not pending(session):
                    break
            threading.Event().wait(0.05)
    finally:
        assert folder.stop()
    write(1)
    result = CliRunner().invoke(main, ["stats", "fold"],
                                env={"DATABASE_URL": app.extensions["settings"].database_url,
                                     "INSTANCE_PATH": str(app.extensions["settings"].instance_path)})

    assert result.exit_code == 0, result.output
    assert result.output.strip() == '{"changesFolded": 1}'
    with Session(engine) as session:
        assert (pending(session), stored_incidents(session, location)) == (0, 6)


FRAGMENTED_HEAP = """
import sys
from service.stats import folding

def rss_kib():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))

# A fold's kind of garbage: many heap blocks freed, with small survivors between them, so the heap cannot shrink.
blocks, survivors = [], []
for _ in range(2000):
    blocks.append(bytearray(20_000))
    survivors.append(bytearray(600))
del blocks
before = rss_kib()
folding.return_free_memory()
print(before - rss_kib())
"""


@pytest.mark.skipif(MALLOC_TRIM is None, reason="the C library has no malloc_trim (not glibc)")
def test_a_worker_hands_back_what_a_fold_freed():
    """Freed heap memory goes back to the system, so a worker does not keep the peak of its largest fold."""
    returned = subprocess.run([sys.executable, "-c", FRAGMENTED_HEAP], capture_output=True, text=True,  # noqa: S603
                              check=True)
    assert int(returned.stdout) > 20_000  # KiB of the 40 MB freed
