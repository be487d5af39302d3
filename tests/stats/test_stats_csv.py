"""Statistics as CSV (Accept: text/csv): the same figures as the JSON of the same request, a row per unit and
figure, nothing suppressed showing, readable under both delimiters, no cell a spreadsheet would run."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from service.auth.models import Role
from service.spreadsheet import BOM
from tests.factories import make_institution, make_location
from tests.stats.factories import seed

pytestmark = pytest.mark.clock("2026-11-20")

COLUMNS = ["period", "unitId", "unitName", "figure", "value", "suppressed"]
FORMULA = ("=", "+", "-", "@", "\t", "\r")
REQUESTS = [
    ("/v1/stats/hotspots", {"period": "2026-Q2", "groupBy": "location"}),
    ("/v1/stats/hotspots", {"period": "2026-Q2", "groupBy": "institution", "breakdown": "kind"}),
    ("/v1/stats/hotspots", {"period": "2026-Q2", "groupBy": "municipality"}),
    ("/v1/stats/trends", {"periodType": "quarter", "from": "2026-Q1", "to": "2026-Q3", "groupBy": "location"}),
    ("/v1/stats/reporting-funnel", {"period": "2026-Q2", "groupBy": "institution"}),
]


@pytest.fixture
def analyst(token_for) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return token_for(Role.ANALYST)


@pytest.fixture
def recorded(session) -> None:  # type: ignore[no-untyped-def]
    """A large, a medium and a small location; the small one's name starts with a formula character."""
    institution = make_institution(session, name="-Jeugdzorg Noord")
    seed(session, make_location(session, institution, name="=Huis aan de Dijk"), 30, reported=True,
         meldcode_step=5)
    seed(session, make_location(session, institution), 12, kind="absence")
    seed(session, make_location(session, make_institution(session), name="@Kamer"), 4)


def table(client, headers, path, params, delimiter):  # type: ignore[no-untyped-def]
    response = client.get(path, query_string=params | {"delimiter": delimiter},
                          headers=headers | {"Accept": "text/csv"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/csv"
    text = response.get_data(as_text=True)
    assert text.startswith(BOM)
    rows = list(csv.reader(io.StringIO(text[len(BOM):], newline=""), delimiter=delimiter))
    assert rows[0] == COLUMNS
    assert all(len(row) == len(COLUMNS) for row in rows)
    assert all(line.startswith('"') for line in text[len(BOM):].split("\r\n") if line)  # every cell quoted
    return rows[1:]


def number(text: str, delimiter: str) -> float:
    return float(text.replace(",", ".") if delimiter == ";" else text)


def figures(body: Any, prefix: str = "") -> dict[str, Any]:
    """The JSON's figures by name, a cell {value, suppressed} as one figure."""
    found: dict[str, Any] = {}
    for name, value in body.items():
        if isinstance(value, dict) and set(value) == {"value", "suppressed"}:
            found[prefix + name] = value
        elif isinstance(value, dict):
            found |= figures(value, f"{prefix}{name}.")
        elif isinstance(value, list):
            for n, item in enumerate(value):
                found |= figures(item, f"{prefix}{name}.{n}.")
        else:
            found[prefix + name] = value
    return found


def json_rows(path: str, body: dict[str, Any]) -> dict[tuple[str, str, str], Any]:
    """What the CSV must say, keyed by (period, unitId, figure), read from the JSON."""
    expected: dict[tuple[str, str, str], Any] = {}
    if path.endswith("trends"):
        for series in body["units"]:
            for point in series["series"]:
                expected |= {(point["period"], series["unit"]["id"], k): v for k, v in figures(point).items()
                             if k != "period"}
        for point in body["total"]:
            expected |= {(point["period"], "", f"total.{k}"): v for k, v in figures(point).items() if k != "period"}
        return expected
    for row in body["units"]:
        unit = row["unit"]["id"]
        own = {k: v for k, v in row.items() if k not in ("unit", "previous", "breakdown")}
        expected |= {(body["period"], unit, k): v for k, v in figures(own).items()}
        if row.get("previous"):
            expected |= {(row["previous"]["period"], unit, k): v for k, v in figures(row["previous"]).items()
                         if k != "period"}
        for part in row.get("breakdown", ()):
            expected[(body["period"], unit, f"breakdown.{part['value']}")] = part["incidents"]
    scope = "reference" if "reference" in body else "total"
    expected |= {(body["period"], "", f"{scope}.{k}"): v for k, v in figures(body[scope]).items()}
    return expected


@pytest.mark.usefixtures("recorded")
@pytest.mark.parametrize("delimiter", [",", ";"])
@pytest.mark.parametrize(("path", "params"), REQUESTS)
def test_the_csv_says_what_the_json_of_the_same_request_says(client, analyst, path, params, delimiter):
    body = client.get(path, query_string=params | {"delimiter": delimiter}, headers=analyst).get_json()
    rows = table(client, analyst, path, params, delimiter)
    expected = json_rows(path, body)

    got = {(period, unit, figure): (value, suppressed) for period, unit, _, figure, value, suppressed in rows}
    assert len(got) == len(rows)  # one row per unit and figure
    assert set(got) == set(expected)
    names = {row["unit"]["id"]: row["unit"]["name"] for row in body["units"]} | {"": ""}
    assert {(unit, name) for _, unit, name, *_ in rows} <= {(u, n if n[:1] not in FORMULA else "'" + n)
                                                            for u, n in names.items()}
    for key, (value, suppressed) in got.items():
        want = expected[key]
        if isinstance(want, dict):  # a cell: suppressed shows as empty
            assert suppressed == ("true" if want["suppressed"] else "false")
            assert value == ("" if want["value"] is None else str(want["value"]))
        else:
            assert suppressed == ""
            if want is None:
                assert value == ""
            elif isinstance(want, bool):
                assert value == str(want).lower()
            elif isinstance(want, int | float):
                assert number(value, delimiter) == want
            else:
                assert value == want


@pytest.mark.usefixtures("recorded")
@pytest.mark.parametrize("delimiter", [",", ";"])
@pytest.mark.parametrize(("path", "params"), REQUESTS)
def test_no_csv_cell_shows_a_suppressed_count_or_starts_a_formula(client, analyst, path, params, delimiter):
    rows = table(client, analyst, path, params, delimiter)

    assert not [cell for row in rows for cell in row if cell[:1] in FORMULA]
    suppressed = [row for row in rows if row[5] == "true"]
    assert suppressed or params["groupBy"] == "municipality"  # the small location, a breakdown code, a stage
    assert all(row[4] == "" for row in suppressed)
    counts = [int(row[4]) for row in rows if row[5] == "false" and row[4]]
    assert counts and all(value % 5 == 0 and not 1 <= value <= 9 for value in counts)


def test_a_semicolon_table_writes_decimals_with_a_comma_for_dutch_excel(client, analyst, recorded):
    path, params = REQUESTS[0]
    comma = {tuple(row[:4]): row[4] for row in table(client, analyst, path, params, ",")}
    semicolon = {tuple(row[:4]): row[4] for row in table(client, analyst, path, params, ";")}

    assert comma.keys() == semicolon.keys()
    fractions = [key for key, value in comma.items() if "." in value and key[3] != "unitName"]
    assert fractions
    assert all(semicolon[key] == comma[key].replace(".", ",") for key in fractions)


def test_csv_keeps_the_rules_of_json_an_out_of_scope_municipality_is_refused(client, token_for, recorded):
    headers = token_for(Role.ANALYST, municipality_codes=["GM0307"]) | {"Accept": "text/csv"}

    refused = client.get("/v1/stats/hotspots", headers=headers,
                         query_string={"period": "2026-Q2", "groupBy": "location", "municipalityCode": "GM0014"})

    assert refused.status_code == 403
    assert refused.mimetype == "application/problem+json"


def test_an_unknown_delimiter_is_a_problem_naming_it(client, analyst):
    response = client.get("/v1/stats/hotspots", headers=analyst | {"Accept": "text/csv"},
                          query_string={"period": "2026-Q2", "groupBy": "location", "delimiter": "|"})

    assert response.status_code == 400
    assert [e["pointer"] for e in response.get_json()["errors"]] == ["/delimiter"]
