"""Statistics for A/B tests: pure functions over samples (numpy/scipy).

Every two-sample function reports the difference as ``b - a`` (second sample minus first).

* :func:`welch_t` — Welch's unequal-variance t-test with a confidence interval for the
  difference of means.
* :func:`mann_whitney` — Mann–Whitney U (two-sided), robust to skewed metrics such as latency.
* :func:`two_proportion_z` — pooled z-test for a difference of rates (failure rate) with a Wald
  confidence interval.
* :func:`msprt` — the mixture sequential probability ratio test (normal mixture, Johari et al.,
  "Always Valid Inference", 2017): an always-valid p-value, so results may be watched after
  every observation without inflating the false-positive rate.
* :func:`min_sample_size` — per-arm sample size of a two-sample test (normal approximation).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from whisper_cascade.errors import InvalidArgumentError

__all__ = [
    "DEFAULT_MSPRT_EFFECT",
    "MSPRT_BURN_IN",
    "MannWhitneyResult",
    "MsprtResult",
    "ProportionResult",
    "WelchResult",
    "mann_whitney",
    "min_sample_size",
    "msprt",
    "two_proportion_z",
    "welch_t",
]

# The default mixing distribution of :func:`msprt` is N(0, (DEFAULT_MSPRT_EFFECT * sigma)^2):
# tuned to standardized differences of about a quarter standard deviation (small-to-medium).
DEFAULT_MSPRT_EFFECT = 0.25
# Observations per arm before the sequential test starts (the plug-in variance is too noisy
# before that to keep the false-positive guarantee).
MSPRT_BURN_IN = 10


def _sample(x: Sequence[float] | np.ndarray, name: str, minimum: int) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64).ravel()
    if arr.size < minimum:
        raise InvalidArgumentError(f"{name} needs at least {minimum} values, got {arr.size}")
    if not np.all(np.isfinite(arr)):
        raise InvalidArgumentError(f"{name} contains NaN or infinite values")
    return arr


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise InvalidArgumentError(f"alpha must be in (0, 1), got {alpha}")


@dataclass(frozen=True)
class WelchResult:
    """Difference of means ``b - a``, its ``1 - alpha`` confidence interval, t, df and p."""

    diff: float
    ci_low: float
    ci_high: float
    t: float
    df: float
    p_value: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def welch_t(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, alpha: float = 0.05
) -> WelchResult:
    """Welch's t-test of ``mean(b) - mean(a)`` (two-sided); each sample needs 2+ values."""
    _check_alpha(alpha)
    x, y = _sample(a, "a", 2), _sample(b, "b", 2)
    va, vb = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    diff = float(y.mean() - x.mean())
    se2 = va + vb
    if se2 == 0.0:  # both samples constant: the difference is exact
        p = 1.0 if diff == 0.0 else 0.0
        t = 0.0 if diff == 0.0 else math.copysign(math.inf, diff)
        return WelchResult(diff, diff, diff, t, float(x.size + y.size - 2), p)
    se = math.sqrt(se2)
    df = se2**2 / (va**2 / (x.size - 1) + vb**2 / (y.size - 1))
    t = diff / se
    p = float(2.0 * stats.t.sf(abs(t), df))
    half = float(stats.t.ppf(1.0 - alpha / 2.0, df)) * se
    return WelchResult(diff, diff - half, diff + half, float(t), float(df), p)


@dataclass(frozen=True)
class MannWhitneyResult:
    """U statistic of ``b`` versus ``a``, two-sided p, and P(b > a) + P(b = a) / 2."""

    u: float
    p_value: float
    prob_b_greater: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def mann_whitney(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray
) -> MannWhitneyResult:
    """Mann–Whitney U test (two-sided, scipy's automatic exact/asymptotic method)."""
    x, y = _sample(a, "a", 1), _sample(b, "b", 1)
    if np.ptp(np.concatenate([x, y])) == 0.0:  # all tied: no evidence either way
        return MannWhitneyResult(x.size * y.size / 2.0, 1.0, 0.5)
    res = stats.mannwhitneyu(y, x, alternative="two-sided")
    u = float(res.statistic)
    return MannWhitneyResult(u, float(res.pvalue), u / (x.size * y.size))


@dataclass(frozen=True)
class ProportionResult:
    """Rates of both arms, difference ``rate_b - rate_a`` with its CI, z and p."""

    rate_a: float
    rate_b: float
    diff: float
    ci_low: float
    ci_high: float
    z: float
    p_value: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def two_proportion_z(
    successes_a: int, trials_a: int, successes_b: int, trials_b: int, alpha: float = 0.05
) -> ProportionResult:
    """Two-proportion z-test (pooled variance for p, unpooled Wald interval for the CI)."""
    _check_alpha(alpha)
    for name, s, n in (("a", successes_a, trials_a), ("b", successes_b, trials_b)):
        if n < 1 or not 0 <= s <= n:
            raise InvalidArgumentError(f"arm {name}: need 0 <= successes <= trials and trials >= 1")
    pa, pb = successes_a / trials_a, successes_b / trials_b
    diff = pb - pa
    pooled = (successes_a + successes_b) / (trials_a + trials_b)
    se0 = math.sqrt(pooled * (1.0 - pooled) * (1.0 / trials_a + 1.0 / trials_b))
    if se0 == 0.0:
        z, p = 0.0, 1.0
    else:
        z = diff / se0
        p = float(2.0 * stats.norm.sf(abs(z)))
    se = math.sqrt(pa * (1.0 - pa) / trials_a + pb * (1.0 - pb) / trials_b)
    half = float(stats.norm.ppf(1.0 - alpha / 2.0)) * se
    return ProportionResult(pa, pb, diff, diff - half, diff + half, float(z), p)


@dataclass(frozen=True)
class MsprtResult:
    """Always-valid p-value of ``mean(b) - mean(a)`` after the last observation.

    ``p_value`` is the running minimum of ``1 / Lambda`` over every look; ``significant`` is
    ``p_value < alpha`` (the boundary was crossed at some look); ``crossed_at`` is the number of
    observations (both arms) at the first crossing, else None; ``tau2`` is the mixing variance
    used at the last look.
    """

    diff: float
    p_value: float
    significant: bool
    crossed_at: int | None
    looks: int
    tau2: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def msprt(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    *,
    tau2: float | None = None,
    alpha: float = 0.05,
    order: Sequence[int] | np.ndarray | None = None,
    burn_in: int = MSPRT_BURN_IN,
) -> MsprtResult:
    """The normal-mixture mSPRT of H0: equal means, looked at after every observation.

    ``order`` gives the arrival order of the observations (0 for an ``a`` value, 1 for ``b``;
    default alternating). At each look with ``burn_in``+ values per arm, the difference of means
    ``d`` has variance ``V = s_a^2/n_a + s_b^2/n_b`` (plug-in sample variances) and the mixture
    likelihood ratio over ``theta ~ N(0, tau2)`` is
    ``Lambda = sqrt(V / (V + tau2)) * exp(tau2 * d^2 / (2 V (V + tau2)))``.
    With ``tau2=None`` the mixing variance is ``(DEFAULT_MSPRT_EFFECT * s)^2`` with ``s^2`` the
    pooled per-observation variance at that look, which makes the test scale-free.
    """
    _check_alpha(alpha)
    if tau2 is not None and not tau2 > 0:
        raise InvalidArgumentError(f"tau2 must be > 0, got {tau2}")
    if burn_in < 2:
        raise InvalidArgumentError("burn_in must be >= 2 (a variance needs two values)")
    x, y = _sample(a, "a", 0), _sample(b, "b", 0)
    if order is None:
        flags = np.array([0] * x.size + [1] * y.size, dtype=np.int64)
        rank = np.concatenate([np.arange(x.size), np.arange(y.size)])
        flags = flags[np.argsort(rank * 2 + flags, kind="stable")]
    else:
        flags = np.asarray(order, dtype=np.int64).ravel()
        if (
            flags.size != x.size + y.size
            or int(np.sum(flags == 1)) != y.size
            or not np.all((flags == 0) | (flags == 1))
        ):
            raise InvalidArgumentError("order must hold one 0 per a value and one 1 per b value")
    vals = np.empty(flags.size)
    vals[flags == 0] = x
    vals[flags == 1] = y
    stats_ = [_running(vals, flags == arm) for arm in (0, 1)]
    (na, ma, va), (nb, mb, vb) = stats_
    ready = (na >= burn_in) & (nb >= burn_in)
    diff = float(y.mean() - x.mean()) if x.size and y.size else 0.0
    if not np.any(ready):
        return MsprtResult(diff, 1.0, False, None, 0, tau2)
    na, nb, ma, mb, va, vb = (s[ready] for s in (na, nb, ma, mb, va, vb))
    d = mb - ma
    v = va / na + vb / nb
    if tau2 is None:
        pooled = ((na - 1) * va + (nb - 1) * vb) / (na + nb - 2)
        mix = (DEFAULT_MSPRT_EFFECT**2) * pooled
    else:
        mix = np.full(d.shape, tau2)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_lr = 0.5 * np.log(v / (v + mix)) + mix * d**2 / (2.0 * v * (v + mix))
    # Zero variance so far: no evidence unless the means already differ exactly.
    degenerate = (v <= 0) | (mix <= 0)
    log_lr = np.where(degenerate, np.where(d != 0, np.inf, 0.0), log_lr)
    p_seq = np.minimum.accumulate(np.minimum(1.0, np.exp(-log_lr)))
    crossed = np.flatnonzero(p_seq < alpha)
    looks = int(ready.sum())
    first = None
    if crossed.size:
        first = int(np.flatnonzero(ready)[crossed[0]]) + 1
    return MsprtResult(diff, float(p_seq[-1]), bool(crossed.size), first, looks, float(mix[-1]))


def _running(vals: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Count, mean and sample variance of the masked values after each position."""
    n = np.cumsum(mask).astype(np.float64)
    w = np.where(mask, vals, 0.0)
    # Shift by the first value so the sum-of-squares formula does not lose precision.
    shift = vals[mask][0] if mask.any() else 0.0
    w = np.where(mask, w - shift, 0.0)
    s1 = np.cumsum(w)
    s2 = np.cumsum(w * w)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(n > 0, s1 / n, 0.0) + shift
        var = np.where(n > 1, (s2 - s1 * s1 / np.maximum(n, 1)) / (n - 1), 0.0)
    return n, mean, np.maximum(var, 0.0)


def min_sample_size(effect_size: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Observations per arm for a two-sided two-sample test to detect a standardized effect.

    ``effect_size`` is Cohen's d (difference of means over the common standard deviation);
    ``n = 2 (z_{1-alpha/2} + z_{power})^2 / d^2``, rounded up (normal approximation; the exact
    t-test needs about one more observation per arm).
    """
    _check_alpha(alpha)
    if not 0.0 < power < 1.0:
        raise InvalidArgumentError(f"power must be in (0, 1), got {power}")
    if not (math.isfinite(effect_size) and effect_size != 0.0):
        raise InvalidArgumentError(f"effect_size must be finite and non-zero, got {effect_size}")
    z = float(stats.norm.ppf(1.0 - alpha / 2.0) + stats.norm.ppf(power))
    return max(2, math.ceil(2.0 * z * z / (effect_size * effect_size)))
