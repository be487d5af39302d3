"""The guidance data file is checked against the taxonomy when it is loaded; advice at domain level."""

from __future__ import annotations

from importlib import resources

import pytest
import yaml

from service.guidance.data import parse
from service.guidance.service import Signal, adviser, adviser_for
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


def test_signals_that_fire_the_same_rules_at_the_same_step_share_one_advice_and_others_do_not():
    """An adviser gives one advice object per outcome (a batch's answer then dumps it once), never another's."""
    advice = adviser("GM0014")
    quiet = Signal("recruitmentAttempt", "unknown", "12to15", meldcode_step=2)

    same = advice.advise(Signal("recruitmentAttempt", "unknown", "16to17", meldcode_step=2))
    later = advice.advise(Signal("recruitmentAttempt", "unknown", "12to15", meldcode_step=3))
    fired = advice.advise(Signal("recruitmentAttempt", "criminal", "12to15", indicators=frozenset({"multiplePhones"}),
                                 meldcode_step=2))

    assert advice.advise(quiet) is same and same["rules"] == [] and same["next_meldcode_step"]["step"] == 3
    assert later is not same and later["next_meldcode_step"]["step"] == 4
    assert fired is not same and fired["rules"] == ["criminalExploitation"]
    assert adviser("GM0014").advise(quiet) is not same  # one adviser a request: nothing kept between them
