"""Housekeeping on a timetable: `risk-register schedule` for deployments without cron."""

from __future__ import annotations

import logging
from typing import Any

from click.testing import CliRunner

from service.cli import main
from service.housekeeping import HOUR, TIMETABLE, Job, run_timetable


class FakeTime:
    """A monotonic clock that a wait moves forward, and a stop that is set once `until` seconds have passed."""

    def __init__(self, until: float) -> None:
        self.now, self.until = 0.0, until

    def monotonic(self) -> float:
        return self.now

    def is_set(self) -> bool:
        return self.now >= self.until

    def wait(self, timeout: float) -> bool:
        self.now += timeout
        return self.is_set()


def test_the_timetable_runs_every_job_at_start_and_then_at_its_interval():
    time = FakeTime(until=25 * HOUR)
    ran: list[tuple[str, float]] = []
    jobs = [Job(name, every, lambda _app, name=name: ran.append((name, time.now / HOUR)) or {})
            for name, every in (("hourly", HOUR), ("daily", 24 * HOUR))]

    failures = run_timetable(None, time, jobs=jobs, monotonic=time.monotonic)  # type: ignore[arg-type]

    assert failures == 0
    assert ran == [("hourly", 0), ("daily", 0), *(("hourly", h) for h in range(1, 24)), ("hourly", 24),
                   ("daily", 24)]


def test_the_compose_timetable_is_maintenance_hourly_and_retention_daily():
    assert [(job.name, job.every_seconds) for job in TIMETABLE] == [("maintenance purge", HOUR),
                                                                    ("retention purge", 24 * HOUR)]


def test_a_failing_job_is_logged_without_its_message_and_the_others_still_run(caplog):
    time = FakeTime(until=1)
    ran: list[str] = []

    def fails(_app: Any) -> dict[str, Any]:
        raise RuntimeError("cannot purge CL-0042")

    jobs = [Job("first", HOUR, fails), Job("second", HOUR, lambda _app: ran.append("second") or {"removed": 0})]
    caplog.set_level(logging.INFO, logger="service.housekeeping")

    failures = run_timetable(None, time, once=True, jobs=jobs, monotonic=time.monotonic)  # type: ignore[arg-type]

    assert (failures, ran) == (1, ["second"])
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("ERROR", "first failed; next try in 3600 s"), ("INFO", "second: {'removed': 0}")]


def test_schedule_once_runs_both_purges_and_logs_their_counts(tmp_path, caplog):
    env = {"INSTANCE_PATH": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path / 'h.sqlite3'}"}
    runner = CliRunner()
    assert runner.invoke(main, ["db", "upgrade"], env=env).exit_code == 0
    caplog.set_level(logging.INFO, logger="service.housekeeping")

    result = runner.invoke(main, ["schedule", "--once"], env=env)

    assert result.exit_code == 0, result.output
    assert [(r.job, r.result) for r in caplog.records if hasattr(r, "job")] == [  # type: ignore[attr-defined]
        ("maintenance purge", {"idempotencyKeysRemoved": 0, "revokedTokensRemoved": 0}),
        ("retention purge", {"dryRun": False, "incidents": 0, "revisions": 0, "idempotencyKeys": 0,
                             "revokedTokens": 0})]
