"""The service's one clock: nothing else reads the wall clock for domain time, and moving it moves the service."""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import pytest

from service import clock, create_app
from service.auth.models import Role
from service.clock import AMSTERDAM, CLOCK, Clock, noon_in_amsterdam
from service.config import ConfigurationError, load_settings
from service.periods import labels_of
from tests.conftest import SUITE_CLOCK

SERVICE = Path(__file__).resolve().parent.parent / "service"
# Calls that read the wall clock: X.now(), X.today(), X.utcnow() on anything but the service's clock, time.time().
CLOCK_NAMES = {"clock", "CLOCK", "self"}


def wall_clock_reads(source: str) -> list[int]:
    """Line numbers of calls in `source` that read the wall clock rather than the service's clock."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        owner = node.func.value
        name = owner.id if isinstance(owner, ast.Name) else owner.attr if isinstance(owner, ast.Attribute) else ""
        reads_date = node.func.attr in ("now", "today", "utcnow") and name not in CLOCK_NAMES
        if reads_date or (node.func.attr == "time" and name == "time"):
            found.append(node.lineno)
    return found


@pytest.mark.parametrize("source", [
    "import datetime as dt\nx = dt.datetime.now(dt.UTC)",
    "from datetime import date\nx = date.today()",
    "import datetime\nx = datetime.datetime.utcnow()",
    "import time\nx = time.time()",
])
def test_the_source_check_finds_every_way_of_reading_the_wall_clock(source):
    assert wall_clock_reads(source) == [2]


def test_the_source_check_leaves_the_services_clock_and_durations_alone():
    assert wall_clock_reads("from service import clock\nimport time\n"
                            "a = clock.now(); b = clock.today(); c = time.perf_counter(); d = time.monotonic()") == []


def test_no_module_but_the_clock_reads_the_wall_clock():
    offenders = {str(path.relative_to(SERVICE)): lines for path in sorted(SERVICE.rglob("*.py"))
                 if path.name != "clock.py" and (lines := wall_clock_reads(path.read_text(encoding="utf-8")))}
    assert offenders == {}


# --- the clock ----------------------------------------------------------------------------------------------------


def test_a_started_clock_reads_the_moment_and_keeps_ticking():
    moment = dt.datetime(2028, 2, 29, 11, 0, tzinfo=dt.UTC)
    own = Clock()
    own.start_at(moment)
    first, second = own.now(), own.now()
    assert dt.timedelta(0) <= first - moment < dt.timedelta(seconds=5)
    assert second >= first
    assert own.moved


def test_a_frozen_clock_stands_still_and_reset_returns_to_the_system_clock():
    own = Clock()
    own.freeze(dt.datetime(2030, 6, 15, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))))
    assert own.now() == own.now() == dt.datetime(2030, 6, 15, 8, 0, tzinfo=dt.UTC)
    own.reset()
    assert not own.moved
    assert abs(own.now() - dt.datetime.now(dt.UTC)) < dt.timedelta(seconds=5)


def test_a_naive_moment_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        Clock().freeze(dt.datetime(2027, 12, 31, 12, 0))


@pytest.mark.parametrize(("utc", "local_day"), [
    (dt.datetime(2027, 12, 31, 22, 59, tzinfo=dt.UTC), dt.date(2027, 12, 31)),  # 23:59 CET
    (dt.datetime(2027, 12, 31, 23, 0, tzinfo=dt.UTC), dt.date(2028, 1, 1)),  # midnight CET
    (dt.datetime(2030, 6, 14, 22, 0, tzinfo=dt.UTC), dt.date(2030, 6, 15)),  # midnight CEST
])
def test_today_is_the_day_in_amsterdam(utc, local_day):
    own = Clock()
    own.freeze(utc)
    assert own.today() == local_day


def test_noon_in_amsterdam_follows_summer_time():
    assert noon_in_amsterdam(dt.date(2030, 6, 15)) == dt.datetime(2030, 6, 15, 10, 0, tzinfo=dt.UTC)
    assert noon_in_amsterdam(dt.date(2027, 12, 31)) == dt.datetime(2027, 12, 31, 11, 0, tzinfo=dt.UTC)


@pytest.mark.clock("2028-02-29")
def test_the_clock_marker_sets_the_services_clock_for_one_test():
    assert clock.today() == dt.date(2028, 2, 29)
    assert clock.now().astimezone(AMSTERDAM).hour == 12


# --- CLOCK_START --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "moment"), [
    ("2027-12-31", dt.datetime(2027, 12, 31, 11, 0, tzinfo=dt.UTC)),
    ("2030-06-15T08:30:00+02:00", dt.datetime(2030, 6, 15, 6, 30, tzinfo=dt.UTC)),
])
def test_clock_start_is_a_day_or_a_moment_with_offset(tmp_path, text, moment):
    settings = load_settings({"INSTANCE_PATH": str(tmp_path), "CLOCK_START": text})
    assert settings.clock_start == moment


@pytest.mark.parametrize("text", ["2030-06-15T08:30:00", "tomorrow", "2027-02-30"])
def test_clock_start_without_offset_or_not_a_date_is_refused(tmp_path, text):
    with pytest.raises(ConfigurationError, match="CLOCK_START must be"):
        load_settings({"INSTANCE_PATH": str(tmp_path), "CLOCK_START": text})


def test_production_refuses_to_move_the_clock(tmp_path):
    environ = {"APP_ENV": "production", "TOKEN_SECRET": "s" * 40, "PSEUDONYM_MASTER_KEY": "ab" * 32,
               "INSTANCE_PATH": str(tmp_path), "CLOCK_START": "2030-06-15"}
    with pytest.raises(ConfigurationError, match="production runs on the system clock"):
        load_settings(environ)


def test_an_app_with_clock_start_answers_as_on_that_day(settings, client, token_for):
    create_app(settings.with_overrides(clock_start=noon_in_amsterdam(dt.date(2030, 6, 15))))
    analyst = token_for(Role.ANALYST)
    today = labels_of(clock.now())

    assert clock.today() == dt.date(2030, 6, 15)
    assert client.get("/v1/stats/hotspots", query_string={"period": today["month"], "groupBy": "location"},
                      headers=analyst).status_code == 200
    refused = client.get("/v1/stats/hotspots", query_string={"period": "2030-07", "groupBy": "location"},
                         headers=analyst)
    assert refused.status_code == 400
    assert refused.get_json()["errors"] == [{"pointer": "/period", "detail": "The period has not started yet.",
                                             "in": "query"}]


def test_the_suite_clock_is_put_back_after_a_test_moves_it():
    # Runs after the test above, which moved the process's clock through create_app.
    assert CLOCK.setting() == SUITE_CLOCK
