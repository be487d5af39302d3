"""Load and validate the versioned code lists shipped in taxonomy.yaml."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Any

import yaml

INDICATOR_GROUPS = frozenset(
    {"recruitment", "sexualExploitation", "criminalExploitation", "visitor", "absence"}
)

# Document key -> Taxonomy attribute, in the order the document lists them.
_TERM_LISTS = {
    "kinds": "kinds",
    "exploitationTypes": "exploitation_types",
    "ageBands": "age_bands",
    "indicators": "indicators",
    "meldcodeSteps": "meldcode_steps",
    "reportedTo": "reported_to",
    "riskLevels": "risk_levels",
    "relationsClaimed": "relations_claimed",
}


@dataclass(frozen=True)
class Term:
    code: str | int  # int only for meldcodeSteps, whose codes are the step numbers
    label_en: str
    label_nl: str

    def as_document(self) -> dict[str, Any]:
        return {"code": self.code, "labelEn": self.label_en, "labelNl": self.label_nl}


@dataclass(frozen=True)
class Indicator(Term):
    group: str
    kinds: frozenset[str]

    def as_document(self) -> dict[str, Any]:
        return {**super().as_document(), "group": self.group, "kinds": sorted(self.kinds)}


@dataclass(frozen=True)
class Taxonomy:
    """One version of the code lists; every mapping is keyed by code, in document order."""

    version: str
    kinds: Mapping[str, Term]
    exploitation_types: Mapping[str, Term]
    age_bands: Mapping[str, Term]
    indicators: Mapping[str, Indicator]
    meldcode_steps: Mapping[int, Term]
    reported_to: Mapping[str, Term]
    risk_levels: Mapping[str, Term]
    relations_claimed: Mapping[str, Term]

    def indicators_for(self, kind: str) -> frozenset[str]:
        """Return the indicator codes that apply to `kind` (empty for an unknown kind)."""
        return frozenset(code for code, ind in self.indicators.items() if kind in ind.kinds)

    def invalid_indicators(self, kind: str, codes: Iterable[str]) -> list[str]:
        """Return the codes that are unknown or do not apply to `kind`, in input order."""
        valid = self.indicators_for(kind)
        return [code for code in codes if code not in valid]

    def as_document(self) -> dict[str, Any]:
        """Return the camelCase document served by GET /v1/taxonomy."""
        doc: dict[str, Any] = {"version": self.version}
        for key, attr in _TERM_LISTS.items():
            doc[key] = [term.as_document() for term in getattr(self, attr).values()]
        return doc


def _terms(doc: Mapping[str, Any], key: str, kinds: Mapping[str, Term]) -> dict[Any, Any]:
    code_type = int if key == "meldcodeSteps" else str
    entries = doc.get(key)
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"taxonomy: '{key}' must be a non-empty list")
    terms: dict[Any, Any] = {}
    for i, entry in enumerate(entries):
        where = f"taxonomy: {key}[{i}]"
        if not isinstance(entry, dict):
            raise ValueError(f"{where} must be a mapping")
        code = entry.get("code")
        # bool is an int subclass; a stray `yes` must not become step 1
        if not isinstance(code, code_type) or isinstance(code, bool) or code == "":
            raise ValueError(f"{where} has a missing or non-{code_type.__name__} code")
        if code in terms:
            raise ValueError(f"taxonomy: duplicate code {code!r} in '{key}'")
        for label in ("labelEn", "labelNl"):
            if not isinstance(entry.get(label), str) or not entry[label].strip():
                raise ValueError(f"{where} ({code}) has an empty {label}")
        terms[code] = Term(code, entry["labelEn"], entry["labelNl"])
        if key == "indicators":
            terms[code] = _indicator(terms[code], entry, where, kinds)
    return terms


def _indicator(term: Term, entry: Mapping[str, Any], where: str, kinds: Mapping[str, Term]) -> Indicator:
    group, applies_to = entry.get("group"), entry.get("kinds")
    if not isinstance(group, str) or group not in INDICATOR_GROUPS:
        raise ValueError(f"{where} ({term.code}) has unknown group {group!r}")
    if not isinstance(applies_to, list) or not applies_to:
        raise ValueError(f"{where} ({term.code}) must list the kinds it applies to")
    # isinstance first: a YAML list or mapping here is unhashable and would raise TypeError
    unknown = [kind for kind in applies_to if not isinstance(kind, str) or kind not in kinds]
    if unknown:
        raise ValueError(f"{where} ({term.code}) names unknown kinds {unknown}")
    return Indicator(term.code, term.label_en, term.label_nl, group, frozenset(applies_to))


def parse(text: str) -> Taxonomy:
    """Parse and validate a taxonomy YAML document; raise ValueError naming the first problem."""
    doc = yaml.safe_load(text)
    if not isinstance(doc, dict):
        raise ValueError("taxonomy: document must be a mapping")
    if not isinstance(doc.get("version"), str) or not doc["version"]:
        raise ValueError("taxonomy: 'version' must be a non-empty string")
    lists: dict[str, dict[Any, Any]] = {}
    for key, attr in _TERM_LISTS.items():
        # kinds come first in _TERM_LISTS, so indicators are checked against validated kinds
        lists[attr] = _terms(doc, key, lists.get("kinds", {}))
    # read-only views: load_taxonomy() hands one cached instance to every request
    return Taxonomy(version=doc["version"], **{a: MappingProxyType(t) for a, t in lists.items()})


@functools.cache
def load_taxonomy() -> Taxonomy:
    """Return the taxonomy shipped with the service, parsed and validated once per process."""
    text = resources.files(__package__).joinpath("taxonomy.yaml").read_text(encoding="utf-8")
    return parse(text)
