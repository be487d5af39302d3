"""contributor noise in the statistics rollups, and every rollup counted again from the incidents

Adds a noise sum per measure to the cells and the unit summaries (and one for distinct residents), then empties the
four rollup tables and counts them again from the active incidents. The count is written out here, frozen as of
this revision, and imports nothing of the application: later changes to the service cannot break this upgrade. It
also fills the unit summaries that 0005 now only creates.

On PostgreSQL with millions of incidents it reads them once in a stream and takes minutes; a register of a few
hundred thousand incidents upgrades in seconds.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter, defaultdict
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
MEASURES = ("incidents", "step2", "step5", "reported")
KEY = {"incidents": "key_sum", "step2": "step2_key_sum", "step5": "step5_key_sum", "reported": "reported_key_sum"}
NOISE = {"incidents": "noise_sum", "step2": "step2_noise_sum", "step5": "step5_noise_sum",
         "reported": "reported_noise_sum"}
CELL_KEY = ("grain", "period", "location_id", "kind", "exploitation_type", "age_band")
UNIT_KEY = ("period_type", "period", "level", "unit", "municipality_code")
TOP = 3


def _byte(text: str, index: int) -> int:
    return hashlib.sha256(text.encode("utf-8")).digest()[index]


def _labels(moment: dt.datetime) -> dict[str, str]:
    day = moment.astimezone(AMSTERDAM).date()
    year, week, _ = day.isocalendar()
    return {"week": f"{year}-W{week:02d}", "month": f"{day.year}-{day.month:02d}",
            "quarter": f"{day.year}-Q{(day.month - 1) // 3 + 1}", "year": str(day.year)}


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _count_again(connection: sa.Connection) -> None:
    incident = sa.table(
        "incident", sa.column("id", sa.Uuid()), sa.column("institution_id", sa.Uuid()),
        sa.column("location_id", sa.Uuid()), sa.column("kind", sa.String()), sa.column("exploitation_type", sa.String()),
        sa.column("occurred_at", sa.DateTime(timezone=True)), sa.column("resident_pseudonym", sa.String()),
        sa.column("resident_age_band", sa.String()), sa.column("meldcode_step", sa.Integer()),
        sa.column("reported_to", sa.JSON()), sa.column("status", sa.String()), sa.column("record_key", sa.Integer()))
    location = sa.table("location", sa.column("id", sa.Uuid()), sa.column("municipality_code", sa.String()))
    cells: dict[tuple, Counter] = defaultdict(Counter)
    residents: dict[tuple, Counter] = defaultdict(Counter)
    units: dict[tuple, Counter] = defaultdict(Counter)
    unit_residents: dict[tuple, Counter] = defaultdict(Counter)
    rows = connection.execute(
        sa.select(incident, location.c.municipality_code).join(location, location.c.id == incident.c.location_id)
        .where(incident.c.status == "active").execution_options(yield_per=5000))
    for row in rows:
        step = row.meldcode_step or 0
        measures = [m for m, yes in zip(MEASURES, (True, step >= 2, step >= 5, bool(row.reported_to)), strict=True)
                    if yes]
        labels = _labels(_aware(row.occurred_at))
        pseudonym = row.resident_pseudonym
        noise = 2 * _byte(pseudonym or str(row.id), 1) - 255
        location_id, institution_id = str(row.location_id), str(row.institution_id)
        for measure in measures:
            for grain in ("week", "month"):
                cell = (grain, labels[grain], row.location_id, row.kind, row.exploitation_type, row.resident_age_band)
                cells[cell].update({measure: 1, KEY[measure]: row.record_key, NOISE[measure]: noise})
                if pseudonym:
                    residents[(*cell, pseudonym)][measure] += 1
            for period_type in ("month", "quarter", "year"):
                for level, unit, municipality in (("location", location_id, row.municipality_code),
                                                  ("institution", institution_id, ""),
                                                  ("institution", institution_id, row.municipality_code)):
                    key = (period_type, labels[period_type], level, unit, municipality)
                    units[key].update({measure: 1, KEY[measure]: row.record_key, NOISE[measure]: noise})
                    if pseudonym:
                        units[key][f"{measure}_of_residents"] += 1
                        unit_residents[(*key, pseudonym)][measure] += 1
    by_unit: dict[tuple, list[tuple[str, Counter]]] = defaultdict(list)
    for (*key, pseudonym), counted in unit_residents.items():
        by_unit[tuple(key)].append((pseudonym, counted))
    for key, found in by_unit.items():
        present = [p for p, counted in found if counted["incidents"] > 0]
        units[key].update({"residents": len(present), "residents_key_sum": sum(_byte(p, 0) for p in present),
                           "residents_noise_sum": sum(2 * _byte(p, 1) - 255 for p in present)})
        for measure in MEASURES:
            tops = sorted((counted[measure] for _, counted in found), reverse=True)[:TOP]
            units[key].update({f"{measure}_top{i}": value for i, value in enumerate(tops, start=1)})

    def write(table: str, key: tuple[str, ...], values: tuple[str, ...], found: dict[tuple, Counter]) -> None:
        target = sa.table(table, *[sa.column(c, sa.Uuid() if c == "location_id" else None) for c in (*key, *values)])
        batch = [dict(zip(key, k, strict=True)) | {v: counted.get(v, 0) for v in values} for k, counted in found.items()]
        for start in range(0, len(batch), 5000):
            connection.execute(sa.insert(target), batch[start:start + 5000])

    measured = tuple(c for m in MEASURES for c in (m, KEY[m], NOISE[m]))
    write("incident_rollup", CELL_KEY, measured, cells)
    write("resident_rollup", (*CELL_KEY, "resident_pseudonym"), MEASURES, residents)
    write("unit_resident", (*UNIT_KEY, "resident_pseudonym"), MEASURES, unit_residents)
    write("unit_tally", UNIT_KEY, (*measured, "residents", "residents_key_sum", "residents_noise_sum",
                                   *(c for m in MEASURES for c in (f"{m}_of_residents",
                                                                   *(f"{m}_top{i}" for i in range(1, TOP + 1))))),
          units)


def upgrade() -> None:
    for table in ("incident_rollup", "unit_tally"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in NOISE.values():
                batch_op.add_column(sa.Column(column, sa.Integer(), nullable=False, server_default="0"))
            if table == "unit_tally":
                batch_op.add_column(sa.Column("residents_noise_sum", sa.Integer(), nullable=False,
                                              server_default="0"))
    connection = op.get_bind()
    for table in ("resident_rollup", "incident_rollup", "unit_resident", "unit_tally"):
        connection.execute(sa.text(f"DELETE FROM {table}"))  # noqa: S608 - fixed names
    _count_again(connection)


def downgrade() -> None:
    for table in ("unit_tally", "incident_rollup"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            if table == "unit_tally":
                batch_op.drop_column("residents_noise_sum")
            for column in NOISE.values():
                batch_op.drop_column(column)
