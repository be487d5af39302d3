"""The service's one clock: every reading of domain time ("now", "today") goes through `now()` and `today()`.

Nothing else in service/ reads the wall clock for domain time (tests/test_clock.py reads the source to hold this),
so the tests, the demo and the CI run on other days can say what day it is.

- In production it is the system clock.
- `CLOCK_START` (refused in production) or a test moves it to another moment, from which it keeps ticking, so the
  order of writes (recordedAt) is kept; a test may also `freeze` it.

Token expiry and rate-limit windows stay on the system clock (`wall_time`): PyJWT and limits enforce them, and a
settable clock must never extend a token or a window.
"""

from __future__ import annotations

import datetime as dt
import time
from zoneinfo import ZoneInfo

AMSTERDAM = ZoneInfo("Europe/Amsterdam")  # periods are bucketed, and "today" is taken, in Dutch local time


class Clock:
    """The system clock, optionally moved by a fixed offset or frozen at one moment."""

    def __init__(self) -> None:
        self._offset = dt.timedelta(0)
        self._frozen: dt.datetime | None = None

    def now(self) -> dt.datetime:
        """The current moment, timezone-aware, in UTC."""
        if self._frozen is not None:
            return self._frozen
        return dt.datetime.now(dt.UTC) + self._offset

    def today(self) -> dt.date:
        """The current day in Europe/Amsterdam, the day periods are bucketed by."""
        return self.now().astimezone(AMSTERDAM).date()

    def start_at(self, moment: dt.datetime) -> None:
        """Read `moment` now and tick on from there."""
        self._frozen, self._offset = None, _aware(moment) - dt.datetime.now(dt.UTC)

    def freeze(self, moment: dt.datetime) -> None:
        """Read `moment` until told otherwise."""
        self._frozen = _aware(moment).astimezone(dt.UTC)

    def reset(self) -> None:
        """Back to the system clock."""
        self._offset, self._frozen = dt.timedelta(0), None

    def setting(self) -> tuple[dt.timedelta, dt.datetime | None]:
        """How the clock is set now, for `restore`: a moved clock restored later has kept ticking meanwhile."""
        return self._offset, self._frozen

    def restore(self, setting: tuple[dt.timedelta, dt.datetime | None]) -> None:
        self._offset, self._frozen = setting

    @property
    def moved(self) -> bool:
        return self._frozen is not None or bool(self._offset)


def _aware(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:
        raise ValueError("the clock takes timezone-aware moments only")
    return moment


def noon_in_amsterdam(day: dt.date) -> dt.datetime:
    """Midday of a local day, in UTC: the moment `CLOCK_START=2027-12-31` stands for."""
    return dt.datetime.combine(day, dt.time(12), AMSTERDAM).astimezone(dt.UTC)


CLOCK = Clock()


def now() -> dt.datetime:
    """The current moment (UTC, aware) by the service's clock."""
    return CLOCK.now()


def today() -> dt.date:
    """The current day in Europe/Amsterdam by the service's clock."""
    return CLOCK.today()


def wall_time() -> float:
    """Seconds since the epoch by the system clock: for token and rate-limit arithmetic only, never domain time."""
    return time.time()
