"""Disclosure control for released counts: threshold K, the NK dominance rule, contributor noise and cell-key rounding.

A released count is computed, never read off the data:

1. 0 stays 0 where a zero is harmless (a unit in a period); 1..K-1, or a cell whose two largest contributors hold
   more than 75% of it, is suppressed.
2. Every contributor (a resident, or an incident without one) carries a fixed noise factor in [-1/3, 1/3], taken
   from its pseudonym (or the incident's id), which never leaves the database. A cell's value is its count plus
   each contributor's incidents in it times that factor. The noise is additive: a parent is its children's sum, so
   differencing released figures (an institution minus its other locations, a quarter minus two months) yields the
   perturbed value of what it isolates, never the count. A contributor who dominates a cell (a young person with 30
   of its 39 signals) is blurred by a third of their contribution in every figure that holds them: the p% rule's
   protection interval with p = 33%, the share the NK rule (2 contributors, 75%) leaves to everyone else.
3. The value is rounded to base 5 by a dither taken from the cell key (the sum of the records' random keys mod 256)
   through the published perturbation table (ptable.json): unbiased, monotone in the value, and the same for the
   same records, whatever query, grouping or order produced them.
4. A cell holding records of several institutions is the sum of each institution's part, rounded with a dither from
   that part's own records (by the table's second order, so that a part is not the institution's own released
   cell). An institution that writes to a shared cell re-rolls its own part only: averaging many of its writes
   tells it the others' rounded parts, never their counts.

Nothing here touches Flask or the database.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from importlib import resources
from itertools import chain
from typing import Any

import numpy as np

from service.incidents.identities import contributor_seed

KEY_SPACE = 256
ROUNDING_BASE = 5
CONTRIBUTOR_SPREAD = Fraction(1, 3)  # each contributor's incidents count between 1 - 1/3 and 1 + 1/3 each
NOISE_UNIT = 255  # a noise byte h gives 2h - 255: odd, in -255..255


@dataclass(frozen=True)
class PerturbationTable:
    """One version of the cell-key table: the rank of each key in two fixed random orders of 0..255. A cell key's
    dither is its rank, scaled into (0, 1); the second order dithers the parts of cells shared by institutions."""

    version: str
    base: int
    seed: int
    order: tuple[int, ...]
    shared_order: tuple[int, ...]

    @functools.cached_property
    def _ranks(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        ranks = ([0] * KEY_SPACE, [0] * KEY_SPACE)
        for table, order in zip(ranks, (self.order, self.shared_order), strict=True):
            for rank, key in enumerate(order):
                table[key] = rank
        return tuple(ranks[0]), tuple(ranks[1])

    @functools.cached_property
    def dithers(self) -> np.ndarray:
        """Every dither at once: row 0 the first order's by key, row 1 the shared order's (for release_many)."""
        return (np.array(self._ranks, dtype=np.float64) + 0.5) / KEY_SPACE

    def dither(self, key: int, *, shared: bool = False) -> float:
        """The rounding dither of a cell key: (rank + 1/2) / 256, uniform over (0, 1) for a uniform key."""
        if not 0 <= key < KEY_SPACE:
            raise ValueError(f"cell key must be in 0..{KEY_SPACE - 1}, got {key}")
        return (self._ranks[shared][key] + 0.5) / KEY_SPACE


@dataclass(frozen=True)
class DisclosureRules:
    """Threshold K, the NK dominance rule and the rounding base; invalid or unsafe settings raise ValueError.

    K must be at least 5 and a multiple of the base. A cell of an attribute (a kind or exploitation-type filter, or
    a breakdown) is released only inside a unit whose own count reaches `table_k` (2K), and then only from K up:
    its zeros are suppressed too, so a table never shows where among its cells a small count lies.
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

    @property
    def table_k(self) -> int:
        """The smallest count of a unit whose attribute cells (filters, breakdowns) may be released."""
        return 2 * self.k


@dataclass(frozen=True)
class Part:
    """What one institution adds to a cell: its count, the plain sum of its records' keys, and the sum of its
    contributors' noise (2h - 255 for each incident of a contributor whose noise byte is h)."""

    count: int
    key_sum: int = 0
    noise_sum: int = 0

    def __post_init__(self) -> None:
        if self.count < 0 or abs(self.noise_sum) > NOISE_UNIT * self.count:
            raise ValueError("a part's count is not negative and its noise is at most 255 per incident")


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


def _byte(identity: str, index: int) -> int:
    # The contributor's seed: kept through key rotations, so re-keying pseudonyms moves no released figure.
    return contributor_seed(identity)[index]


def resident_key(pseudonym: str) -> int:
    """Return the resident's record key 0..255: the first byte of its contributor seed (of SHA-256 of its
    first-version pseudonym), the same on every call and under every key version."""
    return _byte(pseudonym, 0)


def contributor_noise(identity: str) -> int:
    """Return a contributor's noise per incident, 2h - 255 for h the second byte of its contributor seed (of
    SHA-256 of the resident's first-version pseudonym, or of the incident's id): fixed, so the same contributor is
    blurred alike everywhere, and under every key version."""
    return 2 * _byte(identity, 1) - NOISE_UNIT


def cell_key(keys: Iterable[int]) -> int:
    """Return the cell key of a set of records: the sum of their keys mod 256 (independent of order or grouping)."""
    return sum(keys) % KEY_SPACE


def _order(document: Mapping[str, Any], name: str) -> tuple[int, ...]:
    order = document.get(name)
    if not isinstance(order, list) or sorted(order) != list(range(KEY_SPACE)):
        raise ValueError(f"ptable: {name} must be a permutation of 0..{KEY_SPACE - 1}")
    return tuple(order)


def parse_ptable(document: Mapping[str, Any]) -> PerturbationTable:
    """Validate a perturbation table document and return it; any deviation from the promised shape raises ValueError.

    Checked: a version, base 5, an integer seed, and two orders that are each a permutation of the 256 keys.
    """
    if not isinstance(document.get("version"), str) or not document["version"]:
        raise ValueError("ptable: version must be a non-empty string")
    if document.get("base") != ROUNDING_BASE:
        raise ValueError(f"ptable: base must be {ROUNDING_BASE}")
    if not isinstance(document.get("seed"), int):
        raise ValueError("ptable: seed must be an integer")
    return PerturbationTable(document["version"], ROUNDING_BASE, document["seed"], _order(document, "order"),
                             _order(document, "sharedOrder"))


@functools.cache
def load_ptable() -> PerturbationTable:
    """Return the shipped perturbation table, read and validated once per process."""
    text = resources.files("service.stats").joinpath("ptable.json").read_text(encoding="utf-8")
    return parse_ptable(json.loads(text))


def ptable_version() -> str:
    """Return the version of the shipped perturbation table (stated in every statistics response)."""
    return load_ptable().version


def perturbed_round(value: float, dither: float) -> int:
    """Round `value` to a multiple of 5 by its dither: up exactly when the remainder's share of 5 plus the dither
    reaches 1. Over a uniform dither the mean is the value itself; for a fixed dither it never decreases as the
    value grows; it is always within 5 of the value."""
    return ROUNDING_BASE * math.floor(value / ROUNDING_BASE + dither)


def round_to_base(count: int, key: int) -> int:
    """A whole count of one institution's records rounded by the dither of its cell key (no contributor noise)."""
    return perturbed_round(count, load_ptable().dither(key))


def part_value(part: Part, *, shared: bool) -> int:
    """One institution's part of a cell, perturbed by its contributors and rounded by the dither of its records:
    of the table's second order when the cell is `shared` with other institutions."""
    return perturbed_round(part.count + float(CONTRIBUTOR_SPREAD) * part.noise_sum / NOISE_UNIT,
                           load_ptable().dither(part.key_sum % KEY_SPACE, shared=shared))


def perturbed_value(parts: Sequence[Part]) -> int:
    """The rounded, perturbed value of a cell made of these institutions' parts (see the module's points 2-4)."""
    return sum(part_value(part, shared=len(parts) > 1) for part in parts if part.count)


def is_dominated(count: int, top_contributions: Sequence[int], rules: DisclosureRules) -> bool:
    """Return True when the `dominance_n` largest contributors account for more than `dominance_share` of `count`."""
    top = sum(sorted(top_contributions, reverse=True)[: rules.dominance_n])
    share = _exact(rules.dominance_share)
    return top * share.denominator > share.numerator * count


@functools.cache
def _exact(share: float) -> Fraction:
    """The share as its decimal text says: 0.57 * 100 must compare as 57, not 56.99999999999999."""
    return Fraction(str(share))


def release(count: int, top_contributions: Sequence[int], parts: Sequence[Part], rules: DisclosureRules, *,
            zero: Cell = ZERO) -> Cell:
    """Return what may be published for a cell of `count` incidents made of these institutions' `parts`.

    - 0 is released as `zero`: 0 for a unit, suppressed for an attribute cell (see DisclosureRules).
    - 1..K-1 is suppressed.
    - A cell whose `dominance_n` largest contributors hold more than `dominance_share` of it is suppressed.
      `top_contributions` are per-contributor incident counts in any order: a resident's incidents in the cell, and
      1 for each incident without a resident. At least the `dominance_n` largest must be present.
    - Otherwise the perturbed value of its parts (at least K: a count of K or more is never shown below K).
    """
    if count < 0 or sum(part.count for part in parts) != count:
        raise ValueError("the parts must add up to the count, which is not negative")
    if min(top_contributions, default=1) < 1 or sum(top_contributions) > count:
        raise ValueError("contributions must be positive and cannot add up to more than the count")
    if count == 0:
        return zero
    if count < rules.k or is_dominated(count, top_contributions, rules):
        return SUPPRESSED
    return Cell(max(rules.k, perturbed_value(parts)), False)


def release_many(counts: Sequence[int], top_contributions: Sequence[Sequence[int]],
                 parts: Sequence[Sequence[tuple[int, int, int]]], rules: DisclosureRules, *,
                 zero: Cell = ZERO) -> list[Cell]:
    """`release` of many cells at once: the same cells, computed in one pass of numpy over all their parts (a
    hotspots request releases a few thousand). Each cell's parts are given as (count, key_sum, noise_sum) tuples,
    checked as Part checks them; any invalid cell raises ValueError, as `release` would for it."""
    cells = len(counts)
    if len(top_contributions) != cells or len(parts) != cells:
        raise ValueError("a count, top contributions and parts for every cell")
    if not cells:
        return []
    count = np.array(counts, dtype=np.int64)
    sizes = np.array([len(p) for p in parts], dtype=np.int64)
    owner = np.repeat(np.arange(cells), sizes)
    part_count, key_sum, noise_sum = np.fromiter(chain.from_iterable(chain.from_iterable(parts)), dtype=np.int64
                                                 ).reshape(-1, 3).T
    if np.any(part_count < 0) or np.any(np.abs(noise_sum) > NOISE_UNIT * part_count):
        raise ValueError("a part's count is not negative and its noise is at most 255 per incident")
    if np.any(count < 0) or np.any(np.bincount(owner, weights=part_count, minlength=cells) != count):
        raise ValueError("the parts must add up to the count, which is not negative")
    # The contributions as rows of a matrix, padded with zeros (which no contribution can be: checked below).
    given = np.array([len(t) for t in top_contributions], dtype=np.int64)
    flat = np.fromiter(chain.from_iterable(top_contributions), dtype=np.int64)
    tops = np.zeros((cells, int(given.max())), dtype=np.int64)
    row = np.repeat(np.arange(cells), given)
    tops[row, np.arange(len(flat)) - np.repeat(np.cumsum(given) - given, given)] = flat
    if np.any(flat < 1) or np.any(tops.sum(axis=1) > count):
        raise ValueError("contributions must be positive and cannot add up to more than the count")
    share = _exact(rules.dominance_share)
    largest = -np.sort(-tops, axis=1)[:, : rules.dominance_n].sum(axis=1)
    hidden = (count < rules.k) | (largest * share.denominator > share.numerator * count)
    # Each part as part_value rounds it, the same float operations in the same order; parts of 0 add nothing.
    dither = load_ptable().dithers[(sizes[owner] > 1).astype(np.int64), np.mod(key_sum, KEY_SPACE)]
    value = ROUNDING_BASE * np.floor((part_count + float(CONTRIBUTOR_SPREAD) * noise_sum / NOISE_UNIT)
                                     / ROUNDING_BASE + dither)
    perturbed = np.bincount(owner, weights=np.where(part_count > 0, value, 0.0), minlength=cells)
    return [zero if n == 0 else SUPPRESSED if h else Cell(max(rules.k, int(v)), False)
            for n, h, v in zip(count.tolist(), hidden.tolist(), perturbed.tolist(), strict=True)]


def rate(released_count: Cell, exposure: float, per: float) -> float | None:
    """Return released count / exposure * `per`, computed from the released value only.

    None when the count is suppressed (a rate would reveal it) or the exposure is zero.
    """
    if exposure < 0 or per <= 0:
        raise ValueError("exposure must be non-negative and per positive")
    if released_count.value is None or exposure == 0:
        return None
    return released_count.value / exposure * per
