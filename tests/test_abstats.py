"""A/B statistics against scipy and known values; mSPRT error rate under continuous peeking."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from scipy import stats

from whisper_cascade.abstats import (
    mann_whitney,
    min_sample_size,
    msprt,
    two_proportion_z,
    welch_t,
)
from whisper_cascade.errors import InvalidArgumentError


def test_welch_matches_scipy_including_the_interval() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(0.0, 1.0, 30), rng.normal(0.7, 2.5, 45)
    r = welch_t(a, b, alpha=0.1)
    ref = stats.ttest_ind(b, a, equal_var=False)
    ci = ref.confidence_interval(confidence_level=0.9)
    assert r.diff == pytest.approx(b.mean() - a.mean())
    assert r.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    assert r.t == pytest.approx(ref.statistic, rel=1e-10)
    assert r.df == pytest.approx(ref.df, rel=1e-10)
    assert (r.ci_low, r.ci_high) == (pytest.approx(ci.low), pytest.approx(ci.high))


def test_welch_textbook_value_and_constant_samples() -> None:
    # equal n, equal variances: t = (5 - 3) / sqrt(2.5/5 + 2.5/5) = 2, df = 8
    r = welch_t([1, 2, 3, 4, 5], [3, 4, 5, 6, 7])
    assert r.t == pytest.approx(2.0) and r.df == pytest.approx(8.0)
    assert r.p_value == pytest.approx(2 * stats.t.sf(2.0, 8))
    same = welch_t([1.0, 1.0], [1.0, 1.0])
    assert same.p_value == 1.0 and same.diff == 0.0
    apart = welch_t([1.0, 1.0], [2.0, 2.0])
    assert apart.p_value == 0.0 and apart.ci_low == apart.ci_high == 1.0


def test_mann_whitney_matches_scipy() -> None:
    rng = np.random.default_rng(5)
    a, b = rng.lognormal(0, 1, 25), rng.lognormal(0.8, 1, 30)
    r = mann_whitney(a, b)
    ref = stats.mannwhitneyu(b, a, alternative="two-sided")
    assert r.u == ref.statistic and r.p_value == pytest.approx(ref.pvalue)
    assert r.prob_b_greater == pytest.approx(ref.statistic / (25 * 30))
    # b entirely above a: U = n_a n_b, exact p = 2 / C(6, 3)
    top = mann_whitney([1, 2, 3], [4, 5, 6])
    assert top.u == 9 and top.p_value == pytest.approx(2 / 20) and top.prob_b_greater == 1.0
    assert mann_whitney([2, 2], [2, 2, 2]).p_value == 1.0


def test_two_proportion_known_value() -> None:
    # 10/100 vs 20/100: pooled p = 0.15, z = 0.1 / sqrt(0.15*0.85*0.02) = 1.980
    r = two_proportion_z(10, 100, 20, 100)
    assert r.z == pytest.approx(0.1 / math.sqrt(0.15 * 0.85 * 0.02))
    assert r.p_value == pytest.approx(2 * stats.norm.sf(r.z))
    se = math.sqrt(0.1 * 0.9 / 100 + 0.2 * 0.8 / 100)
    assert r.ci_low == pytest.approx(0.1 - 1.959964 * se, rel=1e-5)
    assert r.ci_high == pytest.approx(0.1 + 1.959964 * se, rel=1e-5)
    none = two_proportion_z(0, 50, 0, 60)
    assert none.p_value == 1.0 and none.diff == 0.0
    with pytest.raises(InvalidArgumentError):
        two_proportion_z(5, 4, 1, 10)


def test_min_sample_size_known_values() -> None:
    # classic table: d = 0.5, alpha 0.05, power 0.8 → 63 (normal approx; t-test: 64)
    assert min_sample_size(0.5) == 63
    assert min_sample_size(0.2) == 393
    assert min_sample_size(-0.2) == 393
    assert min_sample_size(0.5, power=0.9) == 85
    for bad in (0.0, math.inf):
        with pytest.raises(InvalidArgumentError):
            min_sample_size(bad)
    with pytest.raises(InvalidArgumentError):
        min_sample_size(0.5, power=1.0)


def test_msprt_closed_form_at_one_look() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 10), rng.normal(0.5, 1, 10)
    r = msprt(a, b, tau2=0.3)
    assert r.looks == 1  # burn-in: only after the 20th value do both arms have 10
    v = a.var(ddof=1) / 10 + b.var(ddof=1) / 10
    d = b.mean() - a.mean()
    lam = math.sqrt(v / (v + 0.3)) * math.exp(0.3 * d * d / (2 * v * (v + 0.3)))
    assert r.p_value == pytest.approx(min(1.0, 1 / lam))
    assert msprt([1.0] * 5, [2.0] * 5).looks == 0


def test_msprt_always_valid_under_continuous_peeking() -> None:
    """A/A streams checked after every observation: false positives stay <= alpha."""
    rng = np.random.default_rng(42)
    started = time.perf_counter()
    streams, n, alpha = 300, 600, 0.05
    hits = sum(
        msprt(rng.normal(0, 1, n), rng.normal(0, 1, n), alpha=alpha).significant
        for _ in range(streams)
    )
    skewed = sum(
        msprt(rng.lognormal(0, 1, n), rng.lognormal(0, 1, n), alpha=alpha).significant
        for _ in range(streams)
    )
    # Naive fixed-horizon t-test after every observation, for contrast: far above alpha.
    naive = 0
    for _ in range(100):
        a, b = rng.normal(0, 1, 200), rng.normal(0, 1, 200)
        naive += any(stats.ttest_ind(a[:k], b[:k]).pvalue < alpha for k in range(10, 201, 5))
    assert hits / streams <= alpha and skewed / streams <= alpha
    assert naive / 100 > alpha
    assert time.perf_counter() - started < 10


def test_msprt_detects_a_clear_difference_and_respects_order() -> None:
    rng = np.random.default_rng(7)
    detected = sum(
        msprt(rng.normal(0, 1, 400), rng.normal(0.4, 1, 400)).significant for _ in range(50)
    )
    assert detected >= 48
    a, b = rng.normal(0, 1, 300), rng.normal(1.0, 1, 300)
    r = msprt(a, b)
    assert r.significant and r.crossed_at is not None and r.crossed_at < 200
    # all of a first, then b: no look until b has burn-in values, so a later crossing
    order = [0] * 300 + [1] * 300
    late = msprt(a, b, order=order)
    assert late.crossed_at is not None and late.crossed_at > 300
    with pytest.raises(InvalidArgumentError):
        msprt(a, b, order=[0] * 600)


def test_bad_inputs_raise_typed_errors() -> None:
    with pytest.raises(InvalidArgumentError):
        welch_t([1.0], [1.0, 2.0])
    with pytest.raises(InvalidArgumentError):
        welch_t([1.0, math.nan], [1.0, 2.0])
    with pytest.raises(InvalidArgumentError):
        welch_t([1.0, 2.0], [1.0, 2.0], alpha=1.5)
    with pytest.raises(InvalidArgumentError):
        msprt([1.0, 2.0], [1.0, 2.0], tau2=0.0)
    with pytest.raises(InvalidArgumentError):
        msprt([1.0, 2.0], [1.0, 2.0], burn_in=1)
    with pytest.raises(InvalidArgumentError):
        mann_whitney([], [1.0])
