"""Funnel limits, bands, overdispersion and empirical-Bayes ordering of service.stats.funnel."""

from __future__ import annotations

import math

import numpy as np
import orjson
import pytest
from scipy import stats

from service.stats.funnel import (
    BANDS,
    WINSORISED_NULL_MEAN,
    eb_estimates,
    exact_poisson_interval,
    funnel_band,
    funnel_bands,
    funnel_limits,
    overdispersion,
    poisson_limits,
    rate_change_pvalues,
)
from service.stats.service import control_limits, funnel_curve

# --- exact intervals and limits ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("observed", "lower", "upper"),
    # Published exact (Garwood) 95% limits for a Poisson count, e.g. the tables in Documenta Geigy and in
    # Public Health England's confidence-interval guidance.
    [(0, 0.0, 3.689), (1, 0.0253, 5.572), (10, 4.795, 18.390), (20, 12.217, 30.888)],
)
def test_exact_interval_matches_published_values(observed, lower, upper):
    got = exact_poisson_interval(observed, 0.95)
    assert got == pytest.approx((lower, upper), abs=6e-4)


def test_exact_interval_for_10_at_95_percent_is_4_795_to_18_39():
    lower, upper = exact_poisson_interval(10, 0.95)
    assert (round(lower, 3), round(upper, 2)) == (4.795, 18.39)


@pytest.mark.parametrize("expected", [0.3, 2.0, 10.0, 37.5, 250.0])
@pytest.mark.parametrize("level", [0.95, 0.998])
def test_limits_bound_the_exact_poisson_tail_checked_with_scipy(expected, level):
    tail = (1 - level) / 2
    lower, upper = poisson_limits(expected, level)
    first_above = math.floor(upper) + 1
    assert stats.poisson.sf(first_above - 1, expected) <= tail < stats.poisson.sf(first_above - 2, expected)
    if lower > 0:
        last_below = math.ceil(lower) - 1
        assert stats.poisson.cdf(last_below, expected) <= tail < stats.poisson.cdf(last_below + 1, expected)
    else:
        assert stats.poisson.pmf(0, expected) >= tail  # not even 0 is surprisingly low


def test_limit_for_e10_at_99_8_percent_against_scipy_directly():
    lower, upper = poisson_limits(10.0, 0.998)
    # The continuous Poisson tail: P(X >= x) = regularised lower gamma(x, E) = gamma.cdf(E, a=x).
    assert stats.gamma.cdf(10.0, a=upper) == pytest.approx(0.001, rel=1e-8)
    assert stats.gamma.sf(10.0, a=lower + 1) == pytest.approx(0.001, rel=1e-8)
    assert (round(lower, 3), round(upper, 3)) == (1.371, 21.571)
    assert stats.poisson.sf(21, 10.0) < 0.001 < stats.poisson.sf(20, 10.0)  # 22 is beyond, 21 is not


def test_limits_are_dual_to_the_exact_interval():
    lower_10, upper_10 = exact_poisson_interval(10, 0.95)
    assert poisson_limits(lower_10, 0.95)[1] == pytest.approx(10.0, abs=1e-5)
    assert poisson_limits(upper_10, 0.95)[0] == pytest.approx(10.0, abs=1e-5)


def test_limits_need_a_positive_expectation_and_a_level():
    with pytest.raises(ValueError):
        poisson_limits(0.0, 0.95)
    with pytest.raises(ValueError):
        poisson_limits(10.0, 1.0)


# --- bands -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("observed", "expected", "band"),
    [
        (10, 10.0, "within"),
        (17, 10.0, "within"),  # P(X >= 17) = 0.027
        (18, 10.0, "above95"),  # P(X >= 18) = 0.014: an interval around E (up to 18.39) would miss it
        (22, 10.0, "above998"),
        (3, 10.0, "below95"),
        (4, 10.0, "within"),
        (1, 10.0, "below998"),
        (0, 3.0, "within"),  # P(X = 0) = 0.05: nothing can be low
        (130, 100.0, "above95"),
        (65, 100.0, "below998"),
    ],
)
def test_band_classification(observed, expected, band):
    assert funnel_band(observed, expected) == band
    assert band in BANDS


def test_overdispersion_widens_limits_and_never_narrows_them():
    assert funnel_band(18, 10.0, phi=2.0) == "within"
    assert funnel_band(18, 10.0, phi=0.5) == "above95"  # phi <= 1 is not applied
    for expected in (0.5, 3.0, 10.0, 80.0, 400.0):
        for level in (0.95, 0.998):
            exact = poisson_limits(expected, level)
            for phi in (1.01, 1.5, 3.0):
                lower, upper = funnel_limits(expected, level, phi)
                assert lower <= exact[0] and upper >= exact[1]
    z = stats.norm.ppf(0.975)
    assert funnel_limits(400.0, 0.95, 2.0) == pytest.approx((400 - z * math.sqrt(800), 400 + z * math.sqrt(800)))


@pytest.mark.parametrize("phi", [1.0, 2.5])
def test_limits_and_the_curve_are_plain_numbers_the_json_writer_takes(phi):
    """Hotspots are written with orjson, which refuses numpy's floats: widened limits came from numpy (a 500 in
    bench/run.py, where a national table is overdispersed)."""
    [limits] = control_limits([10.0], phi)
    curve = funnel_curve(0.4, [12.0, 80.0, 300.0], phi)
    assert all(type(value) is float for value in [*limits.values(), *(v for p in curve for v in p.values())])
    assert orjson.loads(orjson.dumps({"limits": limits, "curve": curve}))["limits"] == limits


# --- overdispersion ----------------------------------------------------------------------------------------------


def _simulated_units(rng: np.random.Generator, counts) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    exposure = rng.uniform(20, 200, size=150)
    observed = counts(0.2 * exposure)
    expected = observed.sum() / exposure.sum() * exposure  # against the reference, as the hotspots do
    return observed, expected


def test_overdispersed_counts_give_phi_above_1_5():
    rng = np.random.default_rng(2005)
    size = 4.0  # negative binomial: variance = mean + mean^2 / size
    observed, expected = _simulated_units(rng, lambda mean: rng.negative_binomial(size, size / (size + mean)))
    assert overdispersion(observed, expected) > 1.5


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_poisson_counts_give_phi_near_1(seed):
    rng = np.random.default_rng(seed)
    observed, expected = _simulated_units(rng, rng.poisson)
    assert 0.7 <= overdispersion(observed, expected) <= 1.4


def test_winsorised_null_mean_is_that_of_winsorised_standard_normal_z():
    z = np.random.default_rng(0).standard_normal(400_000)
    z_w = np.clip(z, np.percentile(z, 10), np.percentile(z, 90))
    assert float(np.mean(z_w**2)) == pytest.approx(WINSORISED_NULL_MEAN, abs=0.005)
    observed, expected = [5, 9, 14, 20, 31, 8, 12, 40, 3, 17, 22, 11], [8.0, 10, 12, 18, 25, 9, 15, 30, 6, 14, 20, 12]
    z = (np.array(observed) - expected) / np.sqrt(expected)
    spiegelhalter = np.mean(np.clip(z, np.percentile(z, 10), np.percentile(z, 90)) ** 2)
    assert overdispersion(observed, expected) == pytest.approx(spiegelhalter / WINSORISED_NULL_MEAN)


def test_overdispersion_winsorises_a_single_outlier():
    expected = [10.0] * 20
    observed = [10.0] * 19 + [100.0]
    assert overdispersion(observed, expected) < 1.0  # the outlier is pulled in to the 90th percentile


def test_overdispersion_refuses_bad_input():
    with pytest.raises(ValueError):
        overdispersion([], [])
    with pytest.raises(ValueError):
        overdispersion([1, 2], [1.0])
    with pytest.raises(ValueError):
        overdispersion([1, 2], [1.0, 0.0])


# --- empirical Bayes ---------------------------------------------------------------------------------------------

# A small location (1 incident in 1 place-month), a large one with a persistent problem (30 in 100) and five
# ordinary ones around 0.1 per place-month.
OBSERVED = [1, 30, 10, 12, 8, 5, 9]
EXPOSURE = [1, 100, 100, 120, 90, 60, 110]


def test_eb_ranks_the_large_persistent_location_above_the_small_one():
    raw = [o / n for o, n in zip(OBSERVED, EXPOSURE, strict=True)]
    eb = eb_estimates(OBSERVED, EXPOSURE)
    assert raw[0] > raw[1]  # by raw rate the small location tops the list
    assert eb[1] > eb[0]
    assert max(range(len(eb)), key=eb.__getitem__) == 1


def test_eb_lies_between_the_raw_rate_and_the_pooled_mean():
    pooled = sum(OBSERVED) / sum(EXPOSURE)
    for o, n, estimate in zip(OBSERVED, EXPOSURE, eb_estimates(OBSERVED, EXPOSURE), strict=True):
        raw = o / n
        assert min(raw, pooled) <= estimate <= max(raw, pooled)
        assert estimate != raw  # everyone is shrunk a little
    # The smaller the exposure, the stronger the pull: the small location moves most of the way to the mean.
    eb = eb_estimates(OBSERVED, EXPOSURE)
    assert (1.0 - eb[0]) / (1.0 - pooled) > 0.8
    assert (0.3 - eb[1]) / (0.3 - pooled) < 0.5


def test_eb_with_no_excess_variation_pools_fully_and_handles_edges():
    exposure = [10.0, 20.0, 40.0]
    flat = eb_estimates([1, 2, 4], exposure)
    assert flat == pytest.approx([0.1, 0.1, 0.1], rel=1e-4)
    assert eb_estimates([0, 0, 0], exposure) == [0.0, 0.0, 0.0]
    assert eb_estimates([3, 0], [10.0, 0.0])[1] == pytest.approx(eb_estimates([3], [10.0])[0])
    with pytest.raises(ValueError):
        eb_estimates([1], [0.0])
    with pytest.raises(ValueError):
        eb_estimates([1, 2], [1.0])


# --- many units at once ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("phi", [1.0, 1.8])
def test_bands_of_many_units_are_the_bands_of_each(phi):
    rng = np.random.default_rng(7)
    expected = rng.choice([0.2, 1, 4, 15, 60, 300, 2000], 600) * rng.uniform(0.5, 2, 600)
    observed = rng.poisson(expected * rng.choice([0.3, 1, 1, 2.5], 600))

    bands = funnel_bands(observed.tolist(), expected.tolist(), phi)

    assert bands == [funnel_band(o, e, phi) for o, e in zip(observed, expected, strict=True)]
    assert set(bands) == set(BANDS)  # every band occurs, so each branch was compared


def test_bands_refuse_what_has_no_band():
    with pytest.raises(ValueError, match="integers"):
        funnel_bands([1.5], [2.0])
    with pytest.raises(ValueError, match="positive"):
        funnel_bands([1], [0.0])


def test_rate_change_pvalues_are_scipys_binomtest_for_each_unit():
    rng = np.random.default_rng(11)
    n = rng.choice([0, 1, 2, 5, 20, 100, 1000, 6000], 800)
    shares = rng.uniform(0.02, 0.98, 800)
    counts = rng.binomial(n, np.clip(shares * rng.choice([0.5, 1, 1.6], 800), 0, 1))

    pvalues = rate_change_pvalues(counts.tolist(), (n - counts).tolist(), shares.tolist())

    wanted = [stats.binomtest(int(k), int(m), p).pvalue if m else 1.0
              for k, m, p in zip(counts, n, shares, strict=True)]
    assert pvalues == pytest.approx(wanted, rel=1e-9, abs=1e-15)
    assert min(pvalues) < 0.001 and max(pvalues) == 1.0  # both tails and the middle were compared
