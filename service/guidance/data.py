"""Load and check the versioned guidance data (guidance.yaml): routes, meldcode questions and the rules that pick
routes. Every code a rule names is checked against the taxonomy, so a rule can never wait for a code that does not
exist."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

from service.taxonomy.service import Taxonomy, load_taxonomy

NONE_RECORDED = 0  # the meldcode step of a signal that records none
# A route's fields as the data file spells them -> as the service keeps them (and the wire shows them, camelCase).
ROUTE_FIELDS = {"code": "code", "labelEn": "label_en", "labelNl": "label_nl", "purposeEn": "purpose_en",
                "purposeNl": "purpose_nl", "meldcodeSteps": "meldcode_steps", "source": "source", "date": "date"}
ROUTE_OPTIONAL = {"phone": "phone", "website": "website", "reportedTo": "reported_to"}
ROUTE_KEPT = (*ROUTE_FIELDS.values(), *ROUTE_OPTIONAL.values())
DEFAULT = "default"


@dataclass(frozen=True)
class Rule:
    """Fires when every condition it names holds: each maps a signal attribute to the values that satisfy it."""

    code: str
    when: Mapping[str, frozenset[Any]]
    routes: tuple[str, ...]
    reason_en: str
    reason_nl: str
    source: str
    date: str


@dataclass(frozen=True)
class Municipal:
    routes: tuple[dict[str, Any], ...]
    follow_up_days: int


@dataclass(frozen=True)
class GuidanceData:
    version: str
    questions: Mapping[int, dict[str, str]]
    national: Mapping[str, dict[str, Any]]
    municipalities: Mapping[str, Municipal]
    rules: tuple[Rule, ...]

    def municipal(self, municipality_code: str | None) -> Municipal:
        return self.municipalities.get(municipality_code or DEFAULT, self.municipalities[DEFAULT])


def _condition_codes(taxonomy: Taxonomy) -> dict[str, set[Any]]:
    """What each condition of a rule may name: taxonomy codes (and step 0 for none recorded)."""
    return {"kinds": set(taxonomy.kinds), "exploitationTypes": set(taxonomy.exploitation_types),
            "ageBands": set(taxonomy.age_bands), "riskLevels": set(taxonomy.risk_levels),
            "indicatorsAny": set(taxonomy.indicators), "meldcodeSteps": {NONE_RECORDED, *taxonomy.meldcode_steps}}


def _route(route: Any, where: str, taxonomy: Taxonomy) -> dict[str, Any]:
    """A route entry of the data file, as the service keeps it; raise ValueError naming the first problem."""
    if not isinstance(route, dict):
        raise ValueError(f"{where} must be a mapping")
    for field in ROUTE_FIELDS:
        if field not in route:
            raise ValueError(f"{where} lacks {field}")
    unknown = set(route) - set(ROUTE_FIELDS) - set(ROUTE_OPTIONAL)
    if unknown:
        raise ValueError(f"{where} has unknown fields {sorted(unknown)}")
    steps = route["meldcodeSteps"]
    if not isinstance(steps, list) or not steps or any(step not in taxonomy.meldcode_steps for step in steps):
        raise ValueError(f"{where} ({route['code']}) names no or unknown meldcode steps")
    if route.get("reportedTo") is not None and route["reportedTo"] not in taxonomy.reported_to:
        raise ValueError(f"{where} ({route['code']}) reports to an unknown body")
    return {kept: route.get(field) for field, kept in (ROUTE_FIELDS | ROUTE_OPTIONAL).items()}


def _rule(entry: Any, where: str, taxonomy: Taxonomy, route_codes: set[str]) -> Rule:
    if not isinstance(entry, dict) or not isinstance(entry.get("when"), dict) or not entry["when"]:
        raise ValueError(f"{where} needs a non-empty `when`: a rule without conditions cannot be shown not to fire")
    allowed = _condition_codes(taxonomy)
    when: dict[str, frozenset[Any]] = {}
    for condition, values in entry["when"].items():
        if condition not in allowed:
            raise ValueError(f"{where} has unknown condition {condition!r}")
        if not isinstance(values, list) or not values or any(value not in allowed[condition] for value in values):
            raise ValueError(f"{where} ({condition}) names no or unknown codes")
        when[condition] = frozenset(values)
    if "riskLevels" in when and when.get("kinds") != frozenset({"absence"}):
        raise ValueError(f"{where}: riskLevels belong to absences; name kinds: [absence]")
    if "indicatorsAny" in when and not any(
            taxonomy.indicators[code].kinds & when.get("kinds", frozenset(taxonomy.kinds))
            for code in when["indicatorsAny"]):
        raise ValueError(f"{where}: none of its indicators applies to its kinds")
    routes = entry.get("routes")
    if not isinstance(routes, list) or not routes or any(code not in route_codes for code in routes):
        raise ValueError(f"{where} names no or unknown routes")
    for field in ("code", "reasonEn", "reasonNl", "source", "date"):
        if not isinstance(entry.get(field), str) or not entry[field] or "\n" in entry[field]:
            raise ValueError(f"{where} needs {field} on one line")
    return Rule(entry["code"], when, tuple(routes), entry["reasonEn"], entry["reasonNl"], entry["source"],
                entry["date"])


def parse(text: str, taxonomy: Taxonomy) -> GuidanceData:
    """Parse and check a guidance document; raise ValueError naming the first problem."""
    doc = yaml.safe_load(text)
    if not isinstance(doc, dict) or not isinstance(doc.get("version"), str):
        raise ValueError("guidance: a mapping with a version is needed")
    questions = doc.get("meldcodeQuestions") or {}
    if set(questions) != set(taxonomy.meldcode_steps):
        raise ValueError("guidance: meldcodeQuestions must ask one question per meldcode step")
    national = {}
    for i, route in enumerate(doc.get("routes") or []):
        checked = _route(route, f"guidance: routes[{i}]", taxonomy)
        national[checked["code"]] = checked
    municipalities = {}
    for code, entry in (doc.get("municipalities") or {}).items():
        where = f"guidance: municipalities.{code}"
        routes = tuple(_route(r, f"{where}.routes[{i}]", taxonomy) for i, r in enumerate(entry["routes"]))
        municipalities[code] = Municipal(routes, int(entry["followUpDays"]))
    if DEFAULT not in municipalities:
        raise ValueError("guidance: municipalities.default is needed")
    route_codes = set(national) | {route["code"] for m in municipalities.values() for route in m.routes}
    rules = tuple(_rule(entry, f"guidance: rules[{i}]", taxonomy, route_codes)
                  for i, entry in enumerate(doc.get("rules") or []))
    if len({rule.code for rule in rules}) != len(rules):
        raise ValueError("guidance: rule codes must be unique")
    return GuidanceData(doc["version"], questions, national, municipalities, rules)


@functools.cache
def load_guidance() -> GuidanceData:
    """The guidance shipped with the service, parsed and checked once per process."""
    text = resources.files(__package__).joinpath("guidance.yaml").read_text(encoding="utf-8")
    return parse(text, load_taxonomy())
