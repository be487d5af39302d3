"""Fixed periods (ISO week, month, quarter, year), bucketed in Europe/Amsterdam: statistics and exports ask by them.

Cell rollups are kept per ISO week and per month, a quarter or a year being the union of its months; unit
summaries are kept per month, quarter and year (UNIT_PERIOD_TYPES).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import marshmallow as ma

from service import clock
from service.clock import AMSTERDAM
from service.schemas import Text

WEEK, MONTH = "week", "month"
PERIOD_TYPES = ("week", "month", "quarter", "year")
UNIT_PERIOD_TYPES = ("month", "quarter", "year")
DAYS_PER_MONTH = 365.25 / 12

# ASCII digits only, matched whole: "2026-10\n" or full-width digits are not a period.
_PATTERNS = {
    "week": re.compile(r"(\d{4})-W(\d{2})", re.ASCII),
    "month": re.compile(r"(\d{4})-(\d{2})", re.ASCII),
    "quarter": re.compile(r"(\d{4})-Q([1-4])", re.ASCII),
    "year": re.compile(r"(\d{4})", re.ASCII),
}


@dataclass(frozen=True)
class Period:
    """A fixed period: its label, the rollup grain and buckets that make it up, and its local days [start, end)."""

    label: str
    type: str
    start: dt.date
    end: dt.date

    @property
    def grain(self) -> str:
        return WEEK if self.type == "week" else MONTH

    @property
    def buckets(self) -> tuple[str, ...]:
        if self.type == "week":
            return (self.label,)
        months, day = [], self.start
        while day < self.end:
            months.append(f"{day.year}-{day.month:02d}")
            day = _add_months(day, 1)
        return tuple(months)

    def previous(self) -> Period:
        return _period(self.type, self.start - dt.timedelta(days=1))

    def next(self) -> Period:
        return _period(self.type, self.end)


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def _period(period_type: str, day: dt.date) -> Period:
    """The period of `period_type` that contains local day `day`."""
    if period_type == "week":
        year, week, _ = day.isocalendar()
        start = dt.date.fromisocalendar(year, week, 1)
        return Period(f"{year}-W{week:02d}", "week", start, start + dt.timedelta(days=7))
    if period_type == "month":
        start = day.replace(day=1)
        return Period(f"{day.year}-{day.month:02d}", "month", start, _add_months(start, 1))
    if period_type == "quarter":
        quarter = (day.month - 1) // 3 + 1
        start = dt.date(day.year, 3 * quarter - 2, 1)
        return Period(f"{day.year}-Q{quarter}", "quarter", start, _add_months(start, 3))
    return Period(str(day.year), "year", dt.date(day.year, 1, 1), dt.date(day.year + 1, 1, 1))


def parse_period(text: str, today: dt.date) -> Period:
    """A period label such as 2026-W41, 2026-10, 2026-Q3 or 2026. Raises ValueError for malformed or future ones."""
    for period_type, pattern in _PATTERNS.items():
        match = pattern.fullmatch(text)
        if not match:
            continue
        year = int(match.group(1))
        number = int(match.group(2)) if match.lastindex and match.lastindex > 1 else 1
        try:
            if period_type == "week":
                first_day = dt.date.fromisocalendar(year, number, 1)
            elif period_type == "month":
                first_day = dt.date(year, number, 1)
            elif period_type == "quarter":
                first_day = dt.date(year, 3 * number - 2, 1)
            else:
                first_day = dt.date(year, 1, 1)
        except ValueError:
            raise ValueError("No such period.") from None
        if year < 2000:
            raise ValueError("Periods start in 2000.")
        if first_day > today:
            raise ValueError("The period has not started yet.")
        return _period(period_type, first_day)
    raise ValueError(f"Use {PERIOD_LABELS}.")


def period_range(first: Period, last: Period, limit: int) -> list[Period]:
    """Every period from `first` to `last` inclusive (same type), at most `limit`."""
    if first.type != last.type:
        raise ValueError("from and to must be periods of the same type.")
    if last.start < first.start:
        raise ValueError("to must not be before from.")
    periods = [first]
    while periods[-1].start < last.start:
        periods.append(periods[-1].next())
        if len(periods) > limit:
            raise ValueError(f"At most {limit} periods.")
    return periods


def local_day(moment: dt.datetime) -> dt.date:
    return moment.astimezone(AMSTERDAM).date()


def labels_of(moment: dt.datetime) -> dict[str, str]:
    """The label of each period type that `moment` falls in (Amsterdam time): week, month, quarter and year."""
    day = local_day(moment)
    return {period_type: _period(period_type, day).label for period_type in PERIOD_TYPES}


PERIOD_PATTERN = r"^[0-9]{4}(-W[0-9]{2}|-[0-9]{2}|-Q[1-4])?$"
PERIOD_LABELS = "2026-W41, 2026-10, 2026-Q3 or 2026"


class PeriodField(Text):
    """A query parameter naming a fixed period, loaded as the Period it names (not one that has not started)."""

    def __init__(self, **kwargs: Any) -> None:
        metadata = {"pattern": PERIOD_PATTERN, "description": f"A fixed period, not in the future: {PERIOD_LABELS} "
                    "(Europe/Amsterdam)"} | kwargs.pop("metadata", {})
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Period:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return parse_period(text, clock.today())
        except ValueError as exc:
            raise ma.ValidationError(str(exc)) from None

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else value.label
