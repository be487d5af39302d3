"""Statistics as tables for CSV: one row per unit and figure, read from the body the JSON answer holds.

Every row is (period, unitId, unitName, figure, value, suppressed). A released cell gives its value and
`suppressed` false; a suppressed cell gives an empty value and `suppressed` true; a figure derived from cells (a
rate, a limit, a band) gives its value, empty where the JSON has null, and an empty `suppressed`. The scope's own
figures (the reference, or the total) have an empty unit and `reference.` or `total.` before the figure's name.
Nothing is computed here, so the CSV says exactly what the JSON of the same request says.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

COLUMNS = ("period", "unitId", "unitName", "figure", "value", "suppressed")
SCOPE = {"id": "", "name": ""}
Row = tuple[Any, ...]


def _is_cell(value: Any) -> bool:
    return isinstance(value, Mapping) and set(value) == {"value", "suppressed"}


def _figures(period: str, unit: Mapping[str, str], figures: Mapping[str, Any], prefix: str = "") -> Iterator[Row]:
    for name, value in figures.items():
        figure = prefix + name
        if _is_cell(value):
            yield period, unit["id"], unit["name"], figure, value["value"], value["suppressed"]
        elif isinstance(value, Mapping):
            yield from _figures(period, unit, value, f"{figure}.")
        elif isinstance(value, list):
            for n, item in enumerate(value):
                yield from _figures(period, unit, item if isinstance(item, Mapping) else {str(n): item},
                                    f"{figure}.{n}." if isinstance(item, Mapping) else f"{figure}.")
        else:
            yield period, unit["id"], unit["name"], figure, value, None


def _without(mapping: Mapping[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if k not in names}


def hotspot_rows(body: Mapping[str, Any]) -> Iterator[Row]:
    """Each unit's figures in the period, its previous period's under that period, its breakdown as
    `breakdown.<code>`; then the reference's."""
    period = body["period"]
    for row in body["units"]:
        unit = row["unit"]
        yield from _figures(period, unit, _without(row, "unit", "previous", "breakdown"))
        if row["previous"] is not None:
            yield from _figures(row["previous"]["period"], unit, _without(row["previous"], "period"))
        for part in row.get("breakdown", ()):
            yield from _figures(period, unit, {f"breakdown.{part['value']}": part["incidents"]})
    yield from _figures(period, SCOPE, body["reference"], "reference.")


def trend_rows(body: Mapping[str, Any]) -> Iterator[Row]:
    """Each unit's figures period by period; then the total's."""
    for series in body["units"]:
        for point in series["series"]:
            yield from _figures(point["period"], series["unit"], _without(point, "period"))
    for point in body["total"]:
        yield from _figures(point["period"], SCOPE, _without(point, "period"), "total.")


def funnel_rows(body: Mapping[str, Any]) -> Iterator[Row]:
    """Each unit's stages and shares; then the total's."""
    period = body["period"]
    for row in body["units"]:
        yield from _figures(period, row["unit"], _without(row, "unit"))
    yield from _figures(period, SCOPE, body["total"], "total.")
