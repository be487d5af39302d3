"""The guidance data file is checked against the taxonomy when it is loaded; advice at domain level."""

from __future__ import annotations

from importlib import resources

import pytest
import yaml

from service.guidance.data import parse
from service.guidance.service import Signal, adviser_for
from service.taxonomy.service import load_taxonomy

SHIPPED = yaml.safe_load(resources.files("service.guidance").joinpath("guidance.yaml").read_text(encoding="utf-8"))


def with_rule(**changes: object) -> str:
    doc = yaml.safe_load(yaml.safe_dump(SHIPPED))
    doc["rules"][0] |= changes
    return yaml.safe_dump(doc)


def test_every_route_and_rule_names_its_source_and_date():
    entries = [*SHIPPED["routes"], *SHIPPED["rules"],
               *(route for entry in SHIPPED["municipalities"].values() for route in entry["routes"])]
    assert all(entry["source"] and len(entry["date"]) == 10 for entry in entries)
    assert {route["code"] for route in SHIPPED["routes"]} == {"veiligThuis", "coMensha", "police",
                                                              "meldMisdaadAnoniem", "fier"}


@pytest.mark.parametrize(("changes", "problem"), [
    ({"when": {}}, "non-empty `when`"),
    ({"when": {"kinds": ["burglary"]}}, "names no or unknown codes"),
    ({"when": {"colour": ["red"]}}, "unknown condition"),
    ({"when": {"riskLevels": ["red"]}}, "riskLevels belong to absences"),
    ({"when": {"kinds": ["suspiciousVisitor"], "indicatorsAny": ["nameTattoo"]}}, "none of its indicators"),
    ({"routes": ["nowhere"]}, "names no or unknown routes"),
    ({"reasonEn": "two\nlines"}, "reasonEn on one line"),
])
def test_a_rule_that_cannot_be_right_is_refused_when_loaded(changes, problem):
    with pytest.raises(ValueError, match=problem):
        parse(with_rule(**changes), load_taxonomy())


def test_the_shipped_file_parses():
    assert parse(yaml.safe_dump(SHIPPED), load_taxonomy()).version == SHIPPED["version"]


def test_a_decided_signal_has_no_next_step_and_says_so(session):
    adviser = adviser_for(session, "GM0014")

    reported = adviser.advise(Signal("recruitmentAttempt", "unknown", meldcode_step=2, reported=True))
    first = adviser.advise(Signal("recruitmentAttempt", "unknown"))

    assert reported["next_meldcode_step"] is None and reported["reason_en"].startswith("A decision is recorded")
    assert first["next_meldcode_step"]["step"] == 1
    assert adviser.follow_up_days == 7
