"""Disclosure invariants of service.stats.disclosure: threshold, dominance, contributor noise, cell-key rounding and
the ptable file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.stats import make_ptable
from service.stats.disclosure import (
    CONTRIBUTOR_SPREAD,
    KEY_SPACE,
    NOISE_UNIT,
    SUPPRESSED,
    ZERO,
    Cell,
    DisclosureRules,
    Part,
    cell_key,
    contributor_noise,
    load_ptable,
    parse_ptable,
    perturbed_round,
    perturbed_value,
    ptable_version,
    rate,
    release,
    release_many,
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


def one_part(count: int, key: int = 0, noise: int = 0) -> list[Part]:
    return [Part(count, key, noise)]


def spread_release(count: int, key: int, rules: DisclosureRules = RULES) -> Cell:
    """A cell of one institution whose records each have a resident of their own and no noise."""
    return release(count, [1] * count, one_part(count, key), rules)


@st.composite
def cells(draw: st.DrawFn, max_size: int = 80) -> tuple[int, list[int], list[Part]]:
    """A random cell: count, contributions, and its institutions' parts (noise bounded as contributors make it)."""
    institutions = draw(st.integers(1, 4))
    parts, contributions = [], []
    for _ in range(institutions):
        owners = draw(st.lists(st.one_of(st.none(), st.integers(0, 12)), max_size=max_size // institutions))
        keys = draw(st.lists(record_keys, min_size=len(owners), max_size=len(owners)))
        noises = draw(st.lists(st.integers(0, 255), min_size=13, max_size=13))
        by_owner: dict[object, int] = {}
        noise = 0
        for index, owner in enumerate(owners):
            by_owner[("record", index) if owner is None else owner] = by_owner.get(owner, 0) + 1
            noise += 2 * (noises[owner] if owner is not None else noises[index % 13]) - NOISE_UNIT
        contributions += list(by_owner.values())
        parts.append(Part(len(owners), sum(keys), noise))
    return sum(p.count for p in parts), contributions, parts


# --- the perturbation table --------------------------------------------------------------------------------------


def test_ptable_file_is_what_make_ptable_generates_bit_for_bit():
    assert PTABLE_FILE.read_text(encoding="utf-8") == make_ptable.render(make_ptable.build_ptable())
    assert make_ptable.main(["--check"]) == 0


def test_ptable_document_states_version_base_generator_and_seed():
    document = json.loads(PTABLE_FILE.read_text(encoding="utf-8"))
    assert {k: document[k] for k in ("version", "base", "generatedBy", "seed")} == {
        "version": "2026.2",
        "base": 5,
        "generatedBy": "python -m service.stats.make_ptable",
        "seed": make_ptable.SEED,
    }
    assert ptable_version() == "2026.2"


def test_the_two_orders_are_different_permutations_of_the_keys():
    table = load_ptable()
    assert sorted(table.order) == sorted(table.shared_order) == list(range(KEY_SPACE))
    assert table.order != table.shared_order
    dithers = sorted(table.dither(key) for key in range(KEY_SPACE))
    assert dithers == [(rank + 0.5) / KEY_SPACE for rank in range(KEY_SPACE)]


def test_a_different_seed_gives_a_different_table():
    assert make_ptable.build_ptable(seed=1)["order"] != make_ptable.build_ptable()["order"]


def _broken(change) -> dict:  # type: ignore[no-untyped-def]
    document = make_ptable.build_ptable()
    change(document)
    return document


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.update(base=10),
        lambda d: d.update(version=""),
        lambda d: d.update(seed="x"),
        lambda d: d.pop("order"),
        lambda d: d.pop("sharedOrder"),
        lambda d: d.update(order=d["order"][:-1]),
        lambda d: d.update(order=[0, *d["order"][1:]] if d["order"][0] else [1, *d["order"][1:]]),
        lambda d: d.update(sharedOrder=[str(k) for k in d["sharedOrder"]]),
    ],
    ids=["base", "version", "seed", "no order", "no shared order", "short", "repeated key", "strings"],
)
def test_parse_ptable_refuses_a_malformed_table(change):
    with pytest.raises(ValueError, match="ptable"):
        parse_ptable(_broken(change))


def test_a_dither_needs_a_cell_key():
    with pytest.raises(ValueError, match="cell key"):
        load_ptable().dither(256)


# --- rules, cells, keys ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [{"k": 4}, {"k": 12}, {"dominance_n": 0}, {"dominance_n": 4}, {"dominance_share": 0.49}, {"dominance_share": 1.0},
     {"base": 10}],
)
def test_unsafe_rules_are_refused(overrides):
    with pytest.raises(ValueError):
        DisclosureRules(**overrides)


def test_default_rules_are_k10_two_residents_75_percent_base5_and_attributes_from_20():
    assert (RULES.k, RULES.dominance_n, RULES.dominance_share, RULES.base, RULES.table_k) == (10, 2, 0.75, 5, 20)


def test_cell_as_dict_and_invariant():
    assert Cell(15, False).as_dict() == {"value": 15, "suppressed": False}
    assert Cell(None, True).as_dict() == {"value": None, "suppressed": True}
    with pytest.raises(ValueError):
        Cell(None, False)
    with pytest.raises(ValueError):
        Cell(10, True)


def test_resident_key_and_contributor_noise_are_stable_and_spread():
    pseudonym = "ab" * 32
    assert resident_key(pseudonym) == resident_key(pseudonym)
    assert contributor_noise(pseudonym) == contributor_noise(pseudonym)
    keys = {resident_key(f"{i:064x}") for i in range(2000)}
    noises = [contributor_noise(f"{i:064x}") for i in range(2000)]
    assert keys <= set(range(KEY_SPACE)) and len(keys) > 200
    assert all(n % 2 and -NOISE_UNIT <= n <= NOISE_UNIT for n in noises)
    assert abs(sum(noises) / len(noises)) < 15  # centred on zero: unbiased
    assert len(set(noises)) > 200


def test_cell_key_is_the_sum_mod_256():
    assert cell_key([]) == 0
    assert cell_key([200, 100]) == 44
    assert cell_key([255] * 256) == 0


def test_a_part_cannot_carry_more_noise_than_its_incidents_allow():
    with pytest.raises(ValueError):
        Part(2, 0, 511)
    with pytest.raises(ValueError):
        Part(-1)


# --- threshold and dominance -------------------------------------------------------------------------------------


def test_zero_is_released_as_zero_or_as_told_and_small_counts_are_suppressed():
    assert release(0, [], [], RULES) == ZERO
    assert release(0, [], [], RULES, zero=SUPPRESSED) == SUPPRESSED
    for count in range(1, 10):
        assert spread_release(count, 123) == SUPPRESSED
    assert spread_release(10, 123) == Cell(10, False)


def test_two_residents_with_more_than_75_percent_dominate():
    assert release(10, [8, 1, 1], one_part(10, 7), RULES) == SUPPRESSED
    assert release(10, [1, 8, 1], one_part(10, 7), RULES) == SUPPRESSED  # order of contributions does not matter
    assert release(10, [3, 3, 2, 2], one_part(10, 7), RULES).suppressed is False


def test_dominance_boundary_is_at_most_the_share():
    assert release(20, [10, 5, 5], one_part(20, 7), RULES).suppressed is False  # exactly 75%
    assert release(20, [10, 6, 4], one_part(20, 7), RULES).suppressed is True  # 80%
    one_resident = DisclosureRules(dominance_n=1, dominance_share=0.5)
    assert release(20, [10, 10], one_part(20, 7), one_resident).suppressed is False
    assert release(20, [11, 9], one_part(20, 7), one_resident).suppressed is True
    assert release(100, [57, 1], one_part(100, 7), DisclosureRules(dominance_n=1, dominance_share=0.57)
                   ).suppressed is False


def test_contributions_and_parts_must_fit_the_count():
    with pytest.raises(ValueError):
        release(10, [8, 3], one_part(10), RULES)
    with pytest.raises(ValueError):
        release(10, [0, 1], one_part(10), RULES)
    with pytest.raises(ValueError):
        release(10, [1], one_part(9), RULES)

    # The same refusals from release_many, for an invalid cell beside a valid one; and a part with too much noise.
    for count, tops, parts in ((10, [8, 3], [(10, 0, 0)]), (10, [0, 1], [(10, 0, 0)]), (10, [1], [(9, 0, 0)]),
                               (-1, [], []), (1, [1], [(1, 0, NOISE_UNIT + 1)])):
        with pytest.raises(ValueError):
            release_many([0, count], [[], tops], [[], parts], RULES)

# --- rounding ----------------------------------------------------------------------------------------------------


def test_rounding_is_unbiased_over_the_keys():
    for count in range(300):
        mean = sum(round_to_base(count, key) for key in range(KEY_SPACE)) / KEY_SPACE
        assert abs(mean - count) < 0.01


def test_a_count_12_is_released_as_10_or_15_with_probabilities_near_60_and_40_percent():
    released = [round_to_base(12, key) for key in range(KEY_SPACE)]
    assert set(released) == {10, 15}
    assert released.count(15) == 102


def test_for_a_fixed_dither_a_larger_value_is_never_released_lower():
    for key in range(KEY_SPACE):
        dither = load_ptable().dither(key)
        values = [perturbed_round(v / 7, dither) for v in range(1400)]
        assert values == sorted(values), key
        assert all(abs(value - v / 7) < 5 for v, value in enumerate(values))


def test_contributor_noise_moves_a_value_by_at_most_a_third_of_its_incidents():
    for noise in (-NOISE_UNIT * 30, 0, NOISE_UNIT * 30):
        for key in range(0, KEY_SPACE, 17):
            value = perturbed_value(one_part(30, key, noise))
            assert 30 - 10 - 5 < value < 30 + 10 + 5
    assert perturbed_value(one_part(30, 0, NOISE_UNIT * 30)) >= 35  # a third up: 40, then rounded
    assert perturbed_value(one_part(30, 0, -NOISE_UNIT * 30)) <= 25
    assert pytest.approx(1 / 3) == CONTRIBUTOR_SPREAD


def test_a_cell_of_one_institution_is_its_part_and_a_shared_cell_the_sum_of_its_parts():
    table = load_ptable()
    alone = perturbed_value([Part(23, 77, 100)])
    assert alone == perturbed_round(23 + 100 / 765, table.dither(77))
    shared = perturbed_value([Part(23, 77, 100), Part(14, 3, -50)])
    assert shared == (perturbed_round(23 + 100 / 765, table.dither(77, shared=True))
                      + perturbed_round(14 - 50 / 765, table.dither(3, shared=True)))
    assert perturbed_value([Part(23, 77 + 256 * 3, 100)]) == alone  # the key sum counts mod 256


# --- properties of released values over random data --------------------------------------------------------------


@settings(max_examples=400)
@given(cell=cells(), rules=rules_strategy)
def test_no_released_value_lies_between_1_and_k_minus_1(cell, rules):
    count, contributions, parts = cell
    released = release(count, contributions, parts, rules)
    assert released.suppressed or released.value == 0 or released.value >= rules.k
    if 0 < count < rules.k:
        assert released.suppressed


@settings(max_examples=400)
@given(cell=cells(), rules=rules_strategy)
def test_released_values_are_multiples_of_5_within_rounding_and_a_third_of_the_count(cell, rules):
    count, contributions, parts = cell
    released = release(count, contributions, parts, rules)
    if not released.suppressed and released.value > rules.k:
        assert released.value % 5 == 0
        assert abs(released.value - count) < 5 * len(parts) + count / 3


@settings(max_examples=300)
@given(data=st.data(), cell_size=st.integers(0, 60))
def test_same_records_give_the_same_answer_in_any_order_or_grouping(data, cell_size):
    keys = data.draw(st.lists(record_keys, min_size=cell_size, max_size=cell_size))
    noises = data.draw(st.lists(st.integers(-255, 255), min_size=cell_size, max_size=cell_size))
    order = data.draw(st.permutations(range(cell_size)))
    split = data.draw(st.integers(0, cell_size))
    whole = Part(cell_size, sum(keys), sum(noises))
    # A route that first sums key and noise sums per sub-cell (as rollups do) must reach the same part.
    shuffled = Part(cell_size, sum(keys[i] for i in order), sum(noises[i] for i in order))
    via_parts = Part(cell_size, sum(keys[:split]) + sum(keys[split:]), sum(noises[:split]) + sum(noises[split:]))
    assert perturbed_value([whole]) == perturbed_value([shuffled]) == perturbed_value([via_parts])


# --- rates -------------------------------------------------------------------------------------------------------


@given(many=st.lists(cells(), max_size=12), rules=rules_strategy, zero=st.sampled_from([ZERO, SUPPRESSED]))
def test_release_many_releases_each_cell_as_release_does(many, rules, zero):
    expected = [release(count, sorted(tops, reverse=True)[: rules.dominance_n], parts, rules, zero=zero)
                for count, tops, parts in many]
    assert release_many([count for count, _, _ in many],
                        [sorted(tops, reverse=True)[: rules.dominance_n] for _, tops, _ in many],
                        [[(p.count, p.key_sum, p.noise_sum) for p in parts] for _, _, parts in many],
                        rules, zero=zero) == expected


def test_rates_use_the_released_value_and_are_suppressed_with_their_count():
    key = next(k for k in range(KEY_SPACE) if round_to_base(12, k) == 10)
    released = spread_release(12, key)
    assert released == Cell(10, False)
    assert rate(released, exposure=40.0, per=10) == pytest.approx(2.5)  # 10 / 40 * 10, not 12 / 40 * 10
    assert rate(spread_release(7, key), exposure=40.0, per=10) is None
    assert rate(released, exposure=0.0, per=10) is None
    assert rate(Cell(0, False), exposure=3.0, per=10) == 0.0
    with pytest.raises(ValueError):
        rate(released, exposure=-1.0, per=10)
