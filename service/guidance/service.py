"""Guidance for a signal: the next meldcode step to consider, the routes the rules pick, and why, in one line.
Plain functions: a session and values in. Advice is worded as the meldcode's questions; it never decides."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.orm import Session

from service.errors import FieldError, InvalidInput
from service.guidance.data import NONE_RECORDED, ROUTE_KEPT, GuidanceData, Rule, load_guidance
from service.guidance.models import MunicipalityGuidance
from service.registry.models import Institution
from service.taxonomy.service import load_taxonomy

FINAL_STEP = 5


@dataclass(frozen=True)
class Signal:
    """What guidance reads of a signal, logged or not."""

    kind: str
    exploitation_type: str
    age_band: str = "unknown"
    risk_level: str | None = None
    indicators: frozenset[str] = frozenset()
    meldcode_step: int | None = None
    reported: bool = False

    def satisfies(self, condition: str, values: frozenset[Any]) -> bool:
        if condition == "indicatorsAny":
            return bool(self.indicators & values)
        own = {"kinds": self.kind, "exploitationTypes": self.exploitation_type, "ageBands": self.age_band,
               "riskLevels": self.risk_level, "meldcodeSteps": self.meldcode_step or NONE_RECORDED}[condition]
        return own in values


def fires(rule: Rule, signal: Signal) -> bool:
    return all(signal.satisfies(condition, values) for condition, values in rule.when.items())


@dataclass(frozen=True)
class Adviser:
    """The guidance of one municipality: the data file's rules over its routes (its own, or the file's)."""

    data: GuidanceData
    routes: dict[str, dict[str, Any]]
    follow_up_days: int
    # The advice given so far, by what it depends on: signals that fire the same rules at the same step get one
    # object (a batch has few: 47 in the benchmark's 500), which its answer dumps once (incidents' batch_body).
    given: dict[tuple[tuple[str, ...], int | None], dict[str, Any]] = field(default_factory=dict, compare=False,
                                                                             repr=False)

    def advise(self, signal: Signal) -> dict[str, Any]:
        fired = [rule for rule in self.data.rules if fires(rule, signal)]
        step = signal.meldcode_step or NONE_RECORDED
        decided = step >= FINAL_STEP or signal.reported
        key = (tuple(rule.code for rule in fired), None if decided else step + 1)
        if key not in self.given:
            self.given[key] = self._advice(fired, key[1])
        return self.given[key]

    def _advice(self, fired: list[Rule], next_number: int | None) -> dict[str, Any]:
        codes = list(dict.fromkeys(code for rule in fired for code in rule.routes if code in self.routes))
        next_step = None if next_number is None else self._step(next_number)
        if fired:
            reason_en = " ".join(rule.reason_en for rule in fired)
            reason_nl = " ".join(rule.reason_nl for rule in fired)
        elif next_step is not None:
            reason_en = f"Meldcode step {next_step['step']}: {next_step['question_en']}"
            reason_nl = f"Meldcode stap {next_step['step']}: {next_step['question_nl']}"
        else:
            reason_en = "A decision is recorded: is what was decided (a report, help) recorded with the signal?"
            reason_nl = "Er is een besluit vastgelegd: staat wat besloten is (een melding, hulp) bij het signaal?"
        return {"version": self.data.version, "next_meldcode_step": next_step,
                "routes": [self.routes[code] for code in codes], "rules": [rule.code for rule in fired],
                "reason_en": reason_en, "reason_nl": reason_nl}

    def _step(self, step: int) -> dict[str, Any]:
        term = load_taxonomy().meldcode_steps[step]
        question = self.data.questions[step]
        return {"step": step, "label_en": term.label_en, "label_nl": term.label_nl,
                "question_en": question["questionEn"], "question_nl": question["questionNl"]}


def _override(session: Session, municipality_code: str | None) -> MunicipalityGuidance | None:
    return None if municipality_code is None else session.get(MunicipalityGuidance, municipality_code)


def adviser_for(session: Session, municipality_code: str | None) -> Adviser:
    """The guidance of a municipality: its routes and follow-up days as an admin set them, else the data file's."""
    return adviser(municipality_code, _override(session, municipality_code))


def adviser(municipality_code: str | None, own: MunicipalityGuidance | None = None) -> Adviser:
    """The guidance of a municipality from the data file, or from an admin's override (`own`)."""
    data = load_guidance()
    municipal = data.municipal(municipality_code)
    routes = own.routes if own is not None else municipal.routes
    days = own.follow_up_days if own is not None else municipal.follow_up_days
    scoped = [{**route, "scope": "national"} for route in data.national.values()]
    scoped += [{**route, "scope": "municipal"} for route in routes]
    return Adviser(data, {route["code"]: route for route in scoped}, days)


def with_override(stmt: Select[Any], municipality_code: ColumnElement[str]) -> Select[Any]:
    """`stmt` with one more column, the admin's override of the municipality `municipality_code` names (None
    without one): a caller that queries anyway reads the guidance in the same statement, never a stale copy."""
    return stmt.add_columns(MunicipalityGuidance).outerjoin(
        MunicipalityGuidance, MunicipalityGuidance.municipality_code == municipality_code)


def adviser_of_institution(session: Session, institution_id: uuid.UUID) -> Adviser:
    """The guidance of the municipality an institution belongs to (one statement)."""
    row = session.execute(with_override(select(Institution.municipality_code), Institution.municipality_code)
                          .where(Institution.id == institution_id)).first()
    return adviser(None) if row is None else adviser(row[0], row[1])


def municipal_guidance(session: Session, municipality_code: str) -> dict[str, Any]:
    """A municipality's routes and follow-up days, and whether they are its own or the data file's."""
    own = _override(session, municipality_code)
    if own is not None:
        return {"municipality_code": municipality_code, "source": "override", "routes": own.routes,
                "follow_up_days": own.follow_up_days, "updated_at": own.updated_at}
    municipal = load_guidance().municipal(municipality_code)
    return {"municipality_code": municipality_code, "source": "dataFile", "routes": list(municipal.routes),
            "follow_up_days": municipal.follow_up_days, "updated_at": None}


def set_municipal_guidance(session: Session, municipality_code: str, routes: Sequence[dict[str, Any]],
                           follow_up_days: int) -> dict[str, Any]:
    """Replace a municipality's routes (national routes stay) and its follow-up days."""
    national = load_guidance().national
    errors = [FieldError(f"/routes/{i}/code", "A national route's code; choose another.")
              for i, route in enumerate(routes) if route["code"] in national]
    _check_unique(errors, [route["code"] for route in routes])
    if errors:
        raise InvalidInput(f"{len(errors)} invalid field(s); see errors.", errors=errors)
    own = _override(session, municipality_code)
    if own is None:
        own = MunicipalityGuidance(municipality_code=municipality_code)
        session.add(own)
    own.routes = [{field: route.get(field) for field in ROUTE_KEPT} for route in routes]
    own.follow_up_days = follow_up_days
    session.flush()
    return municipal_guidance(session, municipality_code)


def _check_unique(errors: list[FieldError], codes: Iterable[Any]) -> None:
    seen: set[Any] = set()
    for i, code in enumerate(codes):
        if code in seen:
            errors.append(FieldError(f"/routes/{i}/code", "Repeats another route's code."))
        seen.add(code)


def reset_municipal_guidance(session: Session, municipality_code: str) -> None:
    """Go back to the data file's routes and follow-up days."""
    own = _override(session, municipality_code)
    if own is not None:
        session.delete(own)
        session.flush()
