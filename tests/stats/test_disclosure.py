"""Disclosure invariants of service.stats.disclosure: threshold, dominance, cell-key rounding and the ptable file."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.stats import make_ptable
from service.stats.disclosure import (
    KEY_SPACE,
    Cell,
    DisclosureRules,
    cell_key,
    load_ptable,
    parse_ptable,
    ptable_version,
    rate,
    release,
    resident_key,
    round_to_base,
)

PTABLE_FILE = Path(__file__).parents[2] / "service" / "stats" / "ptable.json"
RULES = DisclosureRules()
record_keys = st.integers(min_value=0, max_value=KEY_SPACE - 1)
rules_strategy = st.builds(
    DisclosureRules,
    k=st.sampled_from([5, 10, 15, 20]),
    dominance_n=st.integers(1, 3),
    dominance_share=st.sampled_from([0.5, 0.6, 0.75, 0.9]),
)


def _records(residents: list[int | None], keys: list[int]) -> tuple[int, int, list[int]]:
    """Return (count, cell key, contributions) for records owned by `residents` (None: no resident)."""
    contributions: dict[object, int] = {}
    for index, resident in enumerate(residents):
        owner = ("record", index) if resident is None else resident  # a record without a resident stands alone
        contributions[owner] = contributions.get(owner, 0) + 1
    return len(residents), cell_key(keys), list(contributions.values())


@st.composite
def cells(draw: st.DrawFn, max_size: int = 80) -> tuple[int, int, list[int]]:
    size = draw(st.integers(0, max_size))
    residents = draw(st.lists(st.one_of(st.none(), st.integers(0, 12)), min_size=size, max_size=size))
    keys = draw(st.lists(record_keys, min_size=size, max_size=size))
    return _records(residents, keys)


def _released(count: int, key: int, rules: DisclosureRules = RULES) -> int | None:
    """Release a cell whose records all belong to different residents (never dominated when count >= K)."""
    return release(count, key, [1] * count, rules).value


# --- the perturbation table --------------------------------------------------------------------------------------


def test_ptable_file_is_what_make_ptable_generates_bit_for_bit():
    assert PTABLE_FILE.read_text(encoding="utf-8") == make_ptable.render(make_ptable.build_ptable())
    assert make_ptable.main(["--check"]) == 0


def test_ptable_document_states_version_base_generator_and_seed():
    document = json.loads(PTABLE_FILE.read_text(encoding="utf-8"))
    assert {k: document[k] for k in ("version", "base", "generatedBy", "seed")} == {
        "version": "2026.1",
        "base": 5,
        "generatedBy": "python -m service.stats.make_ptable",
        "seed": make_ptable.SEED,
    }
    assert ptable_version() == "2026.1"


def test_ptable_rounds_up_round_256r_over_5_keys_nested_by_residue():
    table = load_ptable().round_up
    assert [sum(row) for row in table] == [0, 51, 102, 154, 205]
    for residue in range(1, 4):
        up_now = {key for key in range(KEY_SPACE) if table[residue][key]}
        up_next = {key for key in range(KEY_SPACE) if table[residue + 1][key]}
        assert up_now < up_next


def test_a_different_seed_gives_a_different_table():
    assert make_ptable.build_ptable(seed=1)["roundUp"] != make_ptable.build_ptable()["roundUp"]


def _broken(change) -> dict:  # type: ignore[no-untyped-def]
    document = make_ptable.build_ptable()
    change(document)
    return document


def _swap_nesting(document: dict) -> None:
    row1, row2 = document["roundUp"]["1"], document["roundUp"]["2"]
    bits = list(row1)
    bits[row1.index("1")], bits[row2.index("0")] = "0", "1"  # same count, no longer a subset of residue 2
    document["roundUp"]["1"] = "".join(bits)


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.update(base=10),
        lambda d: d.update(version=""),
        lambda d: d.update(seed="x"),
        lambda d: d["roundUp"].pop("4"),
        lambda d: d["roundUp"].update({"0": "0" * KEY_SPACE}),
        lambda d: d["roundUp"].update({"2": d["roundUp"]["2"][:-1]}),
        lambda d: d["roundUp"].update({"2": d["roundUp"]["2"].replace("0", "x", 1)}),
        lambda d: d["roundUp"].update({"2": d["roundUp"]["3"]}),
        _swap_nesting,
    ],
    ids=["base", "version", "seed", "missing residue", "extra residue", "length", "alphabet", "count", "nesting"],
)
def test_parse_ptable_refuses_a_malformed_table(change):
    with pytest.raises(ValueError, match="ptable"):
        parse_ptable(_broken(change))


# --- rules, cells, keys ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [{"k": 4}, {"k": 12}, {"dominance_n": 0}, {"dominance_n": 4}, {"dominance_share": 0.49}, {"dominance_share": 1.0},
     {"base": 10}],
)
def test_unsafe_rules_are_refused(overrides):
    with pytest.raises(ValueError):
        DisclosureRules(**overrides)


def test_default_rules_are_k10_two_residents_75_percent_base5():
    assert (RULES.k, RULES.dominance_n, RULES.dominance_share, RULES.base) == (10, 2, 0.75, 5)


def test_cell_as_dict_and_invariant():
    assert Cell(15, False).as_dict() == {"value": 15, "suppressed": False}
    assert Cell(None, True).as_dict() == {"value": None, "suppressed": True}
    with pytest.raises(ValueError):
        Cell(None, False)
    with pytest.raises(ValueError):
        Cell(10, True)


def test_resident_key_is_a_stable_byte_of_the_pseudonym():
    pseudonym = "ab" * 32
    assert resident_key(pseudonym) == resident_key(pseudonym)
    keys = {resident_key(f"{i:064x}") for i in range(2000)}
    assert keys <= set(range(KEY_SPACE))
    assert len(keys) > 200  # spread over the key space, not a constant


def test_cell_key_is_the_sum_mod_256():
    assert cell_key([]) == 0
    assert cell_key([200, 100]) == 44
    assert cell_key([255] * 256) == 0


# --- threshold and dominance -------------------------------------------------------------------------------------


def test_zero_is_released_as_zero_and_small_counts_are_suppressed():
    assert release(0, 123, [], RULES) == Cell(0, False)
    for count in range(1, 10):
        assert release(count, 123, [1] * count, RULES) == Cell(None, True)
    assert release(10, 123, [1] * 10, RULES) == Cell(10, False)


def test_two_residents_with_more_than_75_percent_dominate():
    assert release(10, 7, [8, 1, 1], RULES) == Cell(None, True)
    assert release(10, 7, [1, 8, 1], RULES) == Cell(None, True)  # order of contributions does not matter
    assert release(10, 7, [3, 3, 2, 2], RULES).suppressed is False


def test_dominance_boundary_is_at_most_the_share():
    assert release(20, 7, [10, 5, 5], RULES).suppressed is False  # exactly 75%
    assert release(20, 7, [10, 6, 4], RULES).suppressed is True  # 80%
    one_resident = DisclosureRules(dominance_n=1, dominance_share=0.5)
    assert release(20, 7, [10, 10], one_resident).suppressed is False
    assert release(20, 7, [11, 9], one_resident).suppressed is True
    assert release(100, 7, [57, 1], DisclosureRules(dominance_n=1, dominance_share=0.57)).suppressed is False


def test_contributions_must_fit_the_count():
    with pytest.raises(ValueError):
        release(10, 0, [8, 3], RULES)
    with pytest.raises(ValueError):
        release(10, 0, [0, 1], RULES)
    with pytest.raises(ValueError):
        release(10, 256, [1], RULES)


# --- properties of released values over random data --------------------------------------------------------------


@settings(max_examples=400)
@given(cell=cells(), rules=rules_strategy)
def test_no_released_value_lies_between_1_and_k_minus_1(cell, rules):
    count, key, contributions = cell
    released = release(count, key, contributions, rules)
    assert released.suppressed or released.value == 0 or released.value >= rules.k
    if 0 < count < rules.k:
        assert released.suppressed


@settings(max_examples=400)
@given(cell=cells(), rules=rules_strategy)
def test_released_values_are_multiples_of_5_within_one_rounding_step(cell, rules):
    count, key, contributions = cell
    released = release(count, key, contributions, rules)
    if not released.suppressed:
        assert released.value % 5 == 0
        assert abs(released.value - count) < 5


@settings(max_examples=300)
@given(data=st.data(), cell_size=st.integers(0, 60))
def test_same_records_give_the_same_answer_in_any_order_or_grouping(data, cell_size):
    residents = data.draw(st.lists(st.integers(0, 30), min_size=cell_size, max_size=cell_size))
    keys = data.draw(st.lists(record_keys, min_size=cell_size, max_size=cell_size))
    order = data.draw(st.permutations(range(cell_size)))
    split = data.draw(st.integers(0, cell_size))
    count, key, contributions = _records(residents, keys)
    shuffled = _records([residents[i] for i in order], [keys[i] for i in order])
    # A route that first sums key sums per sub-cell (as rollups do) must reach the same cell key.
    via_parts = cell_key([cell_key(keys[:split]), cell_key(keys[split:])])
    assert shuffled[1] == via_parts == key
    assert release(*shuffled, RULES) == release(count, via_parts, contributions, RULES)


def test_rounding_is_unbiased_over_the_keys():
    for count in range(300):
        mean = sum(round_to_base(count, key) for key in range(KEY_SPACE)) / KEY_SPACE
        assert abs(mean - count) < 0.01  # at most 0.008: round(256 r / 5) / 256 instead of r / 5
        assert abs(mean - count) <= 0.05


def test_a_count_12_is_released_as_10_or_15_with_probabilities_near_60_and_40_percent():
    released = [round_to_base(12, key) for key in range(KEY_SPACE)]
    assert set(released) == {10, 15}
    assert released.count(15) == 102


def test_for_a_fixed_key_one_more_record_never_lowers_the_released_value():
    for key in range(KEY_SPACE):
        values = [round_to_base(count, key) for count in range(200)]
        assert values == sorted(values), key
        released = [_released(count, key) for count in range(RULES.k, 200)]
        assert released == sorted(released), key


@settings(max_examples=300)
@given(keys=st.lists(record_keys, min_size=RULES.k, max_size=120), delta=st.sampled_from([-1, 1]))
def test_one_incident_more_or_less_is_indistinguishable_whenever_rounding_allows(keys, delta):
    """For the released value v of a cell, some key of an added (or removed) record gives the neighbour cell v too,
    whenever v is a possible rounding of the neighbour's count; so v alone does not tell the two apart."""
    count = len(keys)
    neighbour = count + delta
    if neighbour < RULES.k:
        return
    value = _released(count, cell_key(keys))
    low = 5 * (neighbour // 5)
    possible = {low, low + 5} if neighbour % 5 else {low}
    if value not in possible:
        return
    neighbour_values = {_released(neighbour, key) for key in range(KEY_SPACE)}
    assert value in neighbour_values


def test_a_suppressed_cell_is_not_recovered_as_released_total_minus_released_cells():
    """The total is rounded as a cell of its own, with the key of all its records. That key contains the suppressed
    cell's record keys, so given the other cells' keys it is still uniform and its rounding is a coin independent of
    theirs: total minus the others is the suppressed count plus a sum of independent rounding errors, not the count.
    (Summing released cells instead would make the difference the suppressed cell's own rounding.) The difference
    is always a multiple of 5, so it can equal a count of 1..9 only when that count is 5; the stronger check is
    that one difference fits several suppressed counts."""
    rng = random.Random(4)
    differs = 0
    counts_by_difference: dict[int, set[int]] = {}
    for _ in range(200):
        hidden = [rng.randrange(KEY_SPACE) for _ in range(rng.randint(1, RULES.k - 1))]
        others = [[rng.randrange(KEY_SPACE) for _ in range(rng.randint(RULES.k, 60))] for _ in range(rng.randint(1, 4))]
        assert release(len(hidden), cell_key(hidden), [1] * len(hidden), RULES).suppressed
        every_key = hidden + [key for cell in others for key in cell]
        total = _released(len(every_key), cell_key(every_key))
        difference = total - sum(_released(len(cell), cell_key(cell)) for cell in others)
        differs += difference != len(hidden)
        counts_by_difference.setdefault(difference, set()).add(len(hidden))
    assert differs >= 0.2 * 200
    assert max(len(counts) for counts in counts_by_difference.values()) >= 5


# --- rates -------------------------------------------------------------------------------------------------------


def test_rates_use_the_released_value_and_are_suppressed_with_their_count():
    key = next(k for k in range(KEY_SPACE) if round_to_base(12, k) == 10)
    released = release(12, key, [1] * 12, RULES)
    assert rate(released, exposure=40.0, per=10) == pytest.approx(2.5)  # 10 / 40 * 10, not 12 / 40 * 10
    assert rate(release(7, key, [1] * 7, RULES), exposure=40.0, per=10) is None
    assert rate(released, exposure=0.0, per=10) is None
    assert rate(Cell(0, False), exposure=3.0, per=10) == 0.0
    with pytest.raises(ValueError):
        rate(released, exposure=-1.0, per=10)
