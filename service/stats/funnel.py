"""Hotspot scoring: exact Poisson funnel limits, overdispersion and empirical-Bayes rates.

A unit (institution, location, PC4, municipality) has an observed count O and an exposure N in place-months; its
expected count is E = reference rate * N. The funnel plot asks whether O is surprising for a Poisson(E) count, and the
empirical-Bayes estimate orders units without letting a tiny unit with one bad month top the list.

Distributions come from scipy.special alone (incomplete gamma and beta functions and their inverses): scipy.stats
and scipy.optimize would add some 45 MiB to every worker.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import special

BANDS = ("below998", "below95", "within", "above95", "above998")
FUNNEL_LEVELS = (0.95, 0.998)
# E[z_w^2] for z ~ N(0, 1) winsorised at its 10th and 90th percentiles c: P(|z| < c) - 2 c pdf(c) + 0.2 c^2.
_C = float(special.ndtri(0.9))
WINSORISED_NULL_MEAN = 0.8 - 2 * _C * math.exp(-(_C**2) / 2) / math.sqrt(2 * math.pi) + 0.2 * _C**2


def _check_level(p: float) -> float:
    if not 0 < p < 1:
        raise ValueError(f"level must be in (0, 1), got {p}")
    return (1 - p) / 2


def exact_poisson_interval(observed: int, p: float) -> tuple[float, float]:
    """Return the exact (Garwood) two-sided interval at level `p` for the mean of a Poisson count `observed`.

    lower = chi2.ppf(a/2, 2x) / 2 (0 when x = 0), upper = chi2.ppf(1 - a/2, 2x + 2) / 2, a = 1 - p; for x = 10 at
    95% this is (4.795, 18.390), as in the published tables.
    """
    tail = _check_level(p)
    if observed < 0:
        raise ValueError(f"observed must be non-negative, got {observed}")
    # chi2.ppf(q, 2x) / 2 is the q-quantile of a Gamma(x, 1).
    lower = special.gammaincinv(observed, tail) if observed > 0 else 0.0
    upper = special.gammaincinv(observed + 1, 1 - tail)
    return float(lower), float(upper)


def poisson_limits(expected: float, p: float) -> tuple[float, float]:
    """Return exact Poisson control limits (lower, upper) at two-sided level `p` for a count whose mean is `expected`.

    The limits are the continuous solutions, via the Poisson-gamma identity, of
        P(X >= upper) = (1 - p) / 2   and   P(X <= lower) = (1 - p) / 2,   X ~ Poisson(expected),
    i.e. gammainc(upper, E) = a/2 and gammaincc(lower + 1, E) = a/2. So an integer count lies strictly outside them
    exactly when the exact one-sided Poisson test rejects, and an in-control unit falls above (below) the upper
    (lower) limit with probability at most (1 - p) / 2: the probability-based limits recommended by Seaton and
    Manktelow (2012) over limits built from a confidence interval around E. Dually, `upper` is the count whose
    exact interval (exact_poisson_interval) has E as its lower end. The lower limit is floored at 0.
    """
    [lower], [upper] = funnel_limits_many([expected], p)
    return lower, upper


def funnel_limits(expected: float, p: float, phi: float = 1.0) -> tuple[float, float]:
    """Return the funnel's control limits at level `p`, widened for overdispersion when `phi` > 1.

    phi <= 1: the exact Poisson limits. phi > 1: Spiegelhalter's (2005) multiplicative overdispersion model,
    E -/+ z * sqrt(phi * E) with z the normal quantile, but never narrower than the exact limits (for small E the
    normal upper limit lies below the skewed exact one, and an overdispersion adjustment must not flag more units).
    """
    [lower], [upper] = funnel_limits_many([expected], p, phi)
    return lower, upper


def funnel_limits_many(expected: Sequence[float], p: float, phi: float = 1.0) -> tuple[list[float], list[float]]:
    """funnel_limits for many expected counts at once (one pass of scipy's ufuncs), as Python floats."""
    tail = _check_level(p)
    e = np.asarray(expected, dtype=float)
    if np.any(~(e > 0)):
        raise ValueError(f"expected must be positive, got {e[~(e > 0)][0]}")
    # gammainc(x, E) = P(Poisson(E) >= x) for integer x, falling in x; gdtrib(1, q, E) is the x where it is q.
    upper = special.gdtrib(1, tail, e)
    # gammaincc(x + 1, E) = P(Poisson(E) <= x) for integer x, rising in x from 0 at x = -1.
    lower = np.maximum(special.gdtrib(1, 1 - tail, e) - 1, 0.0)
    if phi > 1:
        spread = special.ndtri(1 - tail) * np.sqrt(phi * e)
        lower, upper = np.minimum(lower, np.maximum(e - spread, 0.0)), np.maximum(upper, e + spread)
    return lower.tolist(), upper.tolist()  # Python floats: the JSON writer refuses numpy's


def funnel_band(observed: float, expected: float, phi: float = 1.0) -> str:
    """Return where `observed` falls against the 95% and 99.8% limits for `expected`: one of BANDS.

    A count on a limit is "within"; with phi > 1 the widened limits of funnel_limits are used.
    """
    lower95, upper95 = funnel_limits(expected, 0.95, phi)
    lower998, upper998 = funnel_limits(expected, 0.998, phi)
    if observed > upper998:
        return "above998"
    if observed > upper95:
        return "above95"
    if observed < lower998:
        return "below998"
    if observed < lower95:
        return "below95"
    return "within"


def funnel_bands(observed: Sequence[int], expected: Sequence[float], phi: float = 1.0) -> list[str]:
    """funnel_band for many units at once and without root finding, for integer counts.

    By the identities in poisson_limits, an integer O lies above the exact upper limit exactly when
    gammainc(O, E) < (1 - p) / 2, and below the lower one exactly when gammaincc(O + 1, E) < (1 - p) / 2; with
    phi > 1 it must also lie beyond the normal limits E -/+ z sqrt(phi E) (funnel_limits takes the wider of the two).
    """
    o = np.asarray(observed, dtype=float)
    e = np.asarray(expected, dtype=float)
    if o.shape != e.shape or np.any(e <= 0) or np.any(o < 0) or np.any(o != np.round(o)):
        raise ValueError("counts must be non-negative integers and every expected count positive")

    def beyond(p: float) -> tuple[np.ndarray, np.ndarray]:
        tail = _check_level(p)
        above = (o > 0) & (special.gammainc(np.maximum(o, 1), e) < tail)
        below = special.gammaincc(o + 1, e) < tail
        if phi > 1:
            spread = special.ndtri(1 - tail) * np.sqrt(phi * e)
            above &= o > e + spread
            below &= o < np.maximum(e - spread, 0.0)
        return above, below

    above998, below998 = beyond(0.998)
    above95, below95 = beyond(0.95)
    return [BANDS[4] if a998 else BANDS[3] if a95 else BANDS[0] if b998 else BANDS[1] if b95 else BANDS[2]
            for a998, a95, b998, b95 in zip(above998, above95, below998, below95, strict=True)]


def rate_change_pvalues(counts: Sequence[int], previous: Sequence[int], shares: Sequence[float]) -> list[float]:
    """Two-sided p-values of the exact conditional test of two Poisson rates, for many units at once.

    Given n = count + previous, count ~ Binomial(n, share) when the rates are equal (share: this period's part of
    the two exposures). The p-value is scipy.stats.binomtest(count, n, share).pvalue: the probability of every
    outcome no more likely than the one observed (relative tolerance 1e-7). The outcome on the other side of the
    mode where the tail starts is found by a bisection over all units together.
    """
    k = np.asarray(counts, dtype=np.int64)
    n = k + np.asarray(previous, dtype=np.int64)
    p = np.asarray(shares, dtype=float)
    if np.any(k < 0) or np.any(n < k) or np.any((p <= 0) | (p >= 1)):
        raise ValueError("counts must be non-negative and shares in (0, 1)")
    d = _binomial_pmf(k, n, p) * (1 + 1e-7)
    mode = n * p
    low = k < mode
    # Below the mode: the first outcome above it at most as likely (n + 1 if none); above: the last one below it.
    lo = np.where(low, np.ceil(mode), -1).astype(np.int64)
    hi = np.where(low, n + 1, np.floor(mode)).astype(np.int64)
    while np.any(lo < hi):
        mid = np.where(low, (lo + hi) // 2, (lo + hi + 1) // 2)
        unlikely = _binomial_pmf(mid, n, p) <= d
        hi = np.where(low & unlikely, mid, np.where(~low & ~unlikely, mid - 1, hi))
        lo = np.where(low & ~unlikely, mid + 1, np.where(~low & unlikely, mid, lo))
    # bdtr(x, n, p) = P(X <= x) and bdtrc(x, n, p) = P(X > x); P(X <= -1) = 0.
    pvalues = np.where(low, special.bdtr(k, n, p) + special.bdtrc(lo - 1, n, p),
                       special.bdtrc(k - 1, n, p) + np.where(lo < 0, 0.0, special.bdtr(np.maximum(lo, 0), n, p)))
    return [float(v) for v in np.where(k == mode, 1.0, np.minimum(pvalues, 1.0))]


def _binomial_pmf(k: np.ndarray, n: np.ndarray, p: np.ndarray) -> np.ndarray:
    """P(X = k) for X ~ Binomial(n, p), elementwise; 0 outside 0..n."""
    with np.errstate(divide="ignore", invalid="ignore"):
        log_pmf = (special.gammaln(n + 1) - special.gammaln(k + 1) - special.gammaln(n - k + 1)
                   + special.xlogy(k, p) + special.xlog1py(n - k, -p))
    return np.where((k < 0) | (k > n), 0.0, np.exp(log_pmf))


def overdispersion(observed: Sequence[float], expected: Sequence[float]) -> float:
    """Return the overdispersion factor phi from 10% winsorised Poisson z-scores (Spiegelhalter, 2005), not floored.

    z_i = (O_i - E_i) / sqrt(E_i); the z below the 10th percentile are set to it and those above the 90th to it, so
    a few true outliers do not inflate phi. Spiegelhalter's estimate is mean(z_w ** 2); here it is divided by
    WINSORISED_NULL_MEAN (0.679), its value for standard normal z, so that phi is about 1 when the counts are
    Poisson: the undivided estimate sits near 0.68 then, and a rule "apply when above 1" would ignore real
    overdispersion up to about 1.47. Callers apply phi only when it exceeds 1 (funnel_limits ignores phi <= 1);
    limits are never narrowed below the Poisson ones. Every E_i must be positive; use a dozen units or more.
    """
    o = np.asarray(observed, dtype=float)
    e = np.asarray(expected, dtype=float)
    if o.shape != e.shape or o.ndim != 1 or o.size == 0:
        raise ValueError("observed and expected must be non-empty sequences of the same length")
    if np.any(e <= 0):
        raise ValueError("every expected count must be positive")
    z = (o - e) / np.sqrt(e)
    z_w = np.clip(z, np.percentile(z, 10), np.percentile(z, 90))
    return float(np.mean(z_w**2)) / WINSORISED_NULL_MEAN


def _gamma_prior(o: np.ndarray, n: np.ndarray) -> tuple[float, float]:
    """Marshall's (1991) global method-of-moments gamma prior (alpha, beta) for the unit rates."""
    observed_units = n > 0
    mean = o.sum() / n.sum()
    rates = o[observed_units] / n[observed_units]
    # Exposure-weighted: a unit with one place-month would otherwise dominate the spread and undo the shrinkage.
    spread = np.sum(n[observed_units] * (rates - mean) ** 2) / n.sum()
    variance = spread - mean / n[observed_units].mean()
    # No excess spread over Poisson noise means full pooling; the floor keeps alpha and beta finite.
    variance = max(variance, 1e-6 * mean**2)
    return mean**2 / variance, mean / variance


def eb_estimates(observed: Sequence[float], exposure: Sequence[float]) -> list[float]:
    """Return Poisson-gamma empirical-Bayes rates, one per unit, in the order given (per unit of exposure).

    Model: O_i ~ Poisson(theta_i * N_i), theta_i ~ Gamma(alpha, beta). The prior is fitted by moments (Marshall,
    1991): mean m = sum O / sum N; variance v = sum N_i (O_i/N_i - m)^2 / sum N - m / mean(N), floored at a tiny
    positive value (1e-6 m^2) when the rates vary no more than Poisson noise explains; alpha = m^2 / v, beta = m / v.
    The estimate is the posterior mean (O_i + alpha) / (N_i + beta): a weighted average of the raw rate and m with
    weight N_i / (N_i + beta) on the raw rate, so it always lies between the two and a unit with little exposure is
    pulled strongly towards m. A unit with zero exposure gets m. All zero observed gives all zeros.
    """
    o = np.asarray(observed, dtype=float)
    n = np.asarray(exposure, dtype=float)
    if o.shape != n.shape or o.ndim != 1 or o.size == 0:
        raise ValueError("observed and exposure must be non-empty sequences of the same length")
    if np.any(o < 0) or np.any(n < 0) or np.any((n == 0) & (o > 0)) or n.sum() == 0:
        raise ValueError("counts and exposures must be non-negative, with exposure wherever there are counts")
    if o.sum() == 0:
        return [0.0] * o.size
    alpha, beta = _gamma_prior(o, n)
    return [float(x) for x in (o + alpha) / (n + beta)]
