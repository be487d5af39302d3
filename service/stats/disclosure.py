"""Disclosure control for released counts: threshold K, the NK dominance rule and cell-key rounding to base 5.

Every incident carries a random record key 0..255 and every resident a key derived from its pseudonym. A cell's key
is the sum of its records' keys mod 256; the perturbation table (ptable.json, see make_ptable.py) turns (count mod 5,
cell key) into "round up" or "round down". The same set of records therefore always releases the same number,
whatever query, grouping or order produced it, so asking again or slicing differently cannot average the noise away.
Nothing here touches Flask or the database.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from importlib import resources
from typing import Any

KEY_SPACE = 256
ROUNDING_BASE = 5


@dataclass(frozen=True)
class PerturbationTable:
    """One version of the cell-key table: `round_up[r][key]` says whether residue r rounds up under that key."""

    version: str
    base: int
    seed: int
    round_up: tuple[tuple[bool, ...], ...]  # index 0 is residue 0: never adjusted


@dataclass(frozen=True)
class DisclosureRules:
    """Threshold K, the NK dominance rule and the rounding base; invalid or unsafe settings raise ValueError.

    K must be at least 5 and a multiple of the base: then counts of K or more round to at least K, so no released
    value lies between 1 and K-1 (with K = 12 a count of 12 could be released as 10).
    """

    k: int = 10
    dominance_n: int = 2
    dominance_share: float = 0.75
    base: int = ROUNDING_BASE

    def __post_init__(self) -> None:
        if self.base != ROUNDING_BASE:
            raise ValueError(f"rounding base must be {ROUNDING_BASE}, the base of the perturbation table")
        if self.k < 5 or self.k % self.base:
            raise ValueError(f"K must be at least 5 and a multiple of {self.base}, got {self.k}")
        if not 1 <= self.dominance_n <= 3:
            raise ValueError(f"dominance_n must be 1, 2 or 3, got {self.dominance_n}")
        if not 0.5 <= self.dominance_share < 1:
            raise ValueError(f"dominance_share must be in [0.5, 1), got {self.dominance_share}")


@dataclass(frozen=True)
class Cell:
    """A released count: `value` is None exactly when the cell is suppressed."""

    value: int | None
    suppressed: bool

    def __post_init__(self) -> None:
        if self.suppressed != (self.value is None):
            raise ValueError("a cell is suppressed exactly when it has no value")

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "suppressed": self.suppressed}


ZERO, SUPPRESSED = Cell(0, False), Cell(None, True)


def resident_key(pseudonym: str) -> int:
    """Return the resident's record key 0..255: the first byte of SHA-256 of its pseudonym, the same on every call."""
    return hashlib.sha256(pseudonym.encode("utf-8")).digest()[0]


def cell_key(keys: Iterable[int]) -> int:
    """Return the cell key of a set of records: the sum of their keys mod 256 (independent of order or grouping)."""
    return sum(keys) % KEY_SPACE


def parse_ptable(document: Mapping[str, Any]) -> PerturbationTable:
    """Validate a perturbation table document and return it; any deviation from the promised shape raises ValueError.

    Checked: base 5; for each residue 1..4 a 256-character string of 0/1 with exactly round(256 r / 5) ones; and
    the keys that round up for r are a subset of those for r + 1 (what makes rounding monotone in the count).
    """
    if not isinstance(document.get("version"), str) or not document["version"]:
        raise ValueError("ptable: version must be a non-empty string")
    if document.get("base") != ROUNDING_BASE:
        raise ValueError(f"ptable: base must be {ROUNDING_BASE}")
    if not isinstance(document.get("seed"), int):
        raise ValueError("ptable: seed must be an integer")
    table = document.get("roundUp")
    expected_residues = {str(r) for r in range(1, ROUNDING_BASE)}
    if not isinstance(table, Mapping) or set(table) != expected_residues:
        raise ValueError(f"ptable: roundUp must have exactly the residues {sorted(expected_residues)}")
    rows: list[tuple[bool, ...]] = [(False,) * KEY_SPACE]
    for residue in range(1, ROUNDING_BASE):
        bits = table[str(residue)]
        if not isinstance(bits, str) or len(bits) != KEY_SPACE or set(bits) - {"0", "1"}:
            raise ValueError(f"ptable: roundUp[{residue}] must be {KEY_SPACE} characters of 0 and 1")
        row = tuple(bit == "1" for bit in bits)
        if sum(row) != round(KEY_SPACE * residue / ROUNDING_BASE):
            raise ValueError(f"ptable: roundUp[{residue}] must round up round(256 * {residue} / 5) keys")
        if any(below and not above for below, above in zip(rows[-1], row, strict=True)):
            raise ValueError(f"ptable: keys rounding up for residue {residue - 1} must round up for {residue}")
        rows.append(row)
    return PerturbationTable(document["version"], ROUNDING_BASE, document["seed"], tuple(rows))


@functools.cache
def load_ptable() -> PerturbationTable:
    """Return the shipped perturbation table, read and validated once per process."""
    text = resources.files("service.stats").joinpath("ptable.json").read_text(encoding="utf-8")
    return parse_ptable(json.loads(text))


def ptable_version() -> str:
    """Return the version of the shipped perturbation table (stated in every statistics response)."""
    return load_ptable().version


def round_to_base(count: int, key: int) -> int:
    """Return `count` rounded to a multiple of 5 by unbiased random rounding, the coin being the cell key.

    A count 5q + r is released as 5q + 5 for round(256 r / 5) of the 256 keys and as 5q for the rest, so over a
    uniform key the expected value is the count up to a bias of at most 0.008 (residue 2 rounds up with probability
    102/256 = 0.3984 instead of 0.4; residues 1, 3, 4: 51/256, 154/256, 205/256). The result is always within 4 of
    the count, and for a fixed key it never decreases as the count grows.
    """
    if count < 0:
        raise ValueError(f"count must be non-negative, got {count}")
    if not 0 <= key < KEY_SPACE:
        raise ValueError(f"cell key must be in 0..{KEY_SPACE - 1}, got {key}")
    quotient, residue = divmod(count, ROUNDING_BASE)
    up = load_ptable().round_up[residue][key]
    return ROUNDING_BASE * (quotient + up)


def is_dominated(count: int, top_contributions: Sequence[int], rules: DisclosureRules) -> bool:
    """Return True when the `dominance_n` largest contributors account for more than `dominance_share` of `count`."""
    top = sum(sorted(top_contributions, reverse=True)[: rules.dominance_n])
    share = _exact(rules.dominance_share)
    return top * share.denominator > share.numerator * count


@functools.cache
def _exact(share: float) -> Fraction:
    """The share as its decimal text says: 0.57 * 100 must compare as 57, not 56.99999999999999."""
    return Fraction(str(share))


def release(count: int, key: int, top_contributions: Sequence[int], rules: DisclosureRules) -> Cell:
    """Return what may be published for a cell of `count` incidents whose cell key is `key`.

    - 0 is released as 0.
    - 1..K-1 is suppressed.
    - A cell whose `dominance_n` largest contributors hold more than `dominance_share` of it is suppressed.
      `top_contributions` are per-contributor incident counts in any order: a resident's incidents in the cell, and
      1 for each incident without a resident. At least the `dominance_n` largest must be present; the rest may be
      left out. Their sum cannot exceed `count`.
    - Otherwise the count is rounded to base 5 by the perturbation table (`round_to_base`); since K is a multiple
      of 5, a count of K or more is released as K or more.
    """
    if count < 0:
        raise ValueError(f"count must be non-negative, got {count}")
    if min(top_contributions, default=1) < 1 or sum(top_contributions) > count:
        raise ValueError("contributions must be positive and cannot add up to more than the count")
    if count == 0:
        return ZERO
    if count < rules.k or is_dominated(count, top_contributions, rules):
        return SUPPRESSED
    return Cell(round_to_base(count, key), False)


def rate(released_count: Cell, exposure: float, per: float) -> float | None:
    """Return released count / exposure * `per`, computed from the released value only.

    None when the count is suppressed (a rate would reveal it) or the exposure is zero.
    """
    if exposure < 0 or per <= 0:
        raise ValueError("exposure must be non-negative and per positive")
    if released_count.value is None or exposure == 0:
        return None
    return released_count.value / exposure * per
