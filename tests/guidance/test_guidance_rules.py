"""Every rule of the guidance data file, through GET /v1/guidance: a signal that meets its conditions fires it, and
for each condition a signal that misses only that one does not. Parametrised over the data, so a rule added to the
file is tested without a line here."""

from __future__ import annotations

from typing import Any

import pytest

from service.auth.models import Role
from service.guidance.data import Rule, load_guidance
from service.taxonomy.service import load_taxonomy

TAXONOMY = load_taxonomy()
RULES = load_guidance().rules
STEPS = [0, *TAXONOMY.meldcode_steps]


def _pick(values: Any, default: Any) -> Any:
    return sorted(values)[0] if values else default


def firing(rule: Rule) -> dict[str, Any]:
    """A signal (as GET /v1/guidance's query) that meets every condition of the rule."""
    when = rule.when
    kinds = sorted(when.get("kinds", TAXONOMY.kinds))
    indicators: list[str] = []
    kind = kinds[0]
    if "indicatorsAny" in when:
        kind, indicator = next((k, i) for k in kinds for i in sorted(when["indicatorsAny"])
                               if k in TAXONOMY.indicators[i].kinds)
        indicators = [indicator]
    query: dict[str, Any] = {"kind": kind, "exploitationType": _pick(when.get("exploitationTypes"), "unknown"),
                             "residentAgeBand": _pick(when.get("ageBands"), "unknown"), "indicators": indicators}
    if kind == "absence":
        query["riskLevel"] = _pick(when.get("riskLevels"), "green")
    step = _pick(when.get("meldcodeSteps"), 0)
    if step:
        query["meldcodeStep"] = step
    return query


def _outside(values: frozenset[Any], universe: Any) -> Any:
    return next((value for value in universe if value not in values), None)


def missing_one(rule: Rule) -> list[tuple[str, dict[str, Any]]]:
    """For each condition of the rule, a signal that meets all the others but not that one."""
    variants = []
    for condition, values in rule.when.items():
        query = firing(rule)
        if condition == "kinds":
            other = _outside(values, TAXONOMY.kinds)
            query["kind"] = other
            query["indicators"] = [i for i in query["indicators"] if other in TAXONOMY.indicators[i].kinds]
            if other != "absence":
                query.pop("riskLevel", None)
        elif condition == "exploitationTypes":
            query["exploitationType"] = _outside(values, TAXONOMY.exploitation_types)
        elif condition == "ageBands":
            query["residentAgeBand"] = _outside(values, TAXONOMY.age_bands)
        elif condition == "riskLevels":
            query["riskLevel"] = _outside(values, TAXONOMY.risk_levels)
        elif condition == "indicatorsAny":
            query["indicators"] = [i for i in TAXONOMY.indicators_for(query["kind"]) if i not in values][:1]
        elif condition == "meldcodeSteps":
            step = _outside(values, STEPS)
            query.pop("meldcodeStep", None)
            if step:
                query["meldcodeStep"] = step
        assert None not in query.values(), f"{rule.code}: {condition} covers every code, so it cannot fail"
        variants.append((condition, query))
    return variants


FIRING = [pytest.param(rule, id=rule.code) for rule in RULES]
NOT_FIRING = [pytest.param(rule, query, id=f"{rule.code}-without-{condition}")
              for rule in RULES for condition, query in missing_one(rule)]


@pytest.fixture
def headers(token_for):  # type: ignore[no-untyped-def]
    return token_for(Role.INSTITUTION)  # an institution of Groningen (GM0014), whose routes the data file fills in


def guidance(client, headers, query: dict[str, Any]) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    response = client.get("/v1/guidance", query_string=query, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.json


def test_the_data_file_has_rules():
    assert len(RULES) >= 8
    assert len(NOT_FIRING) >= len(RULES)


@pytest.mark.parametrize("rule", FIRING)
def test_a_signal_that_meets_every_condition_fires_the_rule(client, headers, rule):
    body = guidance(client, headers, firing(rule))

    assert rule.code in body["rules"]
    assert {route["code"] for route in body["routes"]} >= set(rule.routes)
    assert rule.reason_en in body["reasonEn"] and rule.reason_nl in body["reasonNl"]
    assert "\n" not in body["reasonEn"]


@pytest.mark.parametrize(("rule", "query"), NOT_FIRING)
def test_a_signal_that_misses_one_condition_does_not_fire_the_rule(client, headers, rule, query):
    body = guidance(client, headers, query)

    assert rule.code not in body["rules"]
    assert rule.reason_en not in body["reasonEn"]
