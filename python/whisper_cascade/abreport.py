"""Results of an A/B test: per-arm metrics, tests against the control arm, the winner.

Samples per metric: ``wer``, ``score`` and ``latency_s`` come from observations that did not
fail and report the value; ``cost`` from every observation reporting it; ``failure_rate`` from
every observation (``failed`` missing counts as a success). Each non-control arm is compared
with the control (the first arm) on every metric with data: Welch t and Mann–Whitney U for
continuous metrics, a two-proportion z-test for the failure rate, and the mSPRT always-valid
p-value in observation order. The winner is decided on the primary metric only, by the mSPRT
(valid however often results are read) at ``alpha / (arms - 1)`` (Bonferroni), and only once
every arm has ``min_samples`` values of the primary metric.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from whisper_cascade import abstats
from whisper_cascade.abtest import METRICS
from whisper_cascade.errors import InvalidArgumentError

if TYPE_CHECKING:
    from whisper_cascade.abtest import ABTest

__all__ = ["build_results"]

Obs = list[tuple[str, dict[str, Any]]]


def _value(metric: str, m: dict[str, Any]) -> float | None:
    key = METRICS[metric][0]
    failed = bool(m.get("failed", False))
    if metric == "failure_rate":
        return 1.0 if failed else 0.0
    if metric != "cost" and failed:
        return None
    v = m.get(key)
    return None if v is None else float(v)


def _samples(metric: str, obs: Obs, arm: str) -> np.ndarray:
    vals = [_value(metric, m) for a, m in obs if a == arm]
    return np.array([v for v in vals if v is not None], dtype=np.float64)


def _mean(x: np.ndarray) -> float | None:
    return float(x.mean()) if x.size else None


def _arm_summary(obs: Obs, arm: str, target: str, primary: str) -> dict[str, Any]:
    lat = _samples("latency", obs, arm)
    wer = _samples("wer", obs, arm)
    fails = _samples("failure_rate", obs, arm)
    return {
        "target": target,
        "n": int(fails.size),
        "n_primary": int(_samples(primary, obs, arm).size),
        "n_failed": int(fails.sum()),
        "failure_rate": _mean(fails),
        "score_mean": _mean(_samples("score", obs, arm)),
        "latency_mean_s": _mean(lat),
        "latency_p50_s": float(np.percentile(lat, 50)) if lat.size else None,
        "latency_p95_s": float(np.percentile(lat, 95)) if lat.size else None,
        "cost_mean": _mean(_samples("cost", obs, arm)),
        "n_with_reference": int(wer.size),
        "wer_mean": _mean(wer),
    }


def _compare(metric: str, obs: Obs, control: str, arm: str, alpha: float) -> dict[str, Any]:
    a, b = _samples(metric, obs, control), _samples(metric, obs, arm)
    out: dict[str, Any] = {
        "arm": arm,
        "control": control,
        "n_control": int(a.size),
        "n_arm": int(b.size),
        "mean_control": _mean(a),
        "mean_arm": _mean(b),
    }
    if metric == "failure_rate":
        if a.size and b.size:
            z = abstats.two_proportion_z(int(a.sum()), a.size, int(b.sum()), b.size, alpha)
            out["two_proportion_z"] = z.to_dict()
    elif a.size >= 2 and b.size >= 2:
        out["welch_t"] = abstats.welch_t(a, b, alpha).to_dict()
        out["mann_whitney"] = abstats.mann_whitney(a, b).to_dict()
        sd = float(np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2.0))
        d = (b.mean() - a.mean()) / sd if sd > 0 else 0.0
        out["effect_size"] = float(d)
        out["n_per_arm_for_observed_effect"] = (
            abstats.min_sample_size(float(d), alpha) if d != 0.0 else None
        )
    order = [0 if a_ == control else 1 for a_, m in obs if a_ in (control, arm)]
    vals = [_value(metric, m) for a_, m in obs if a_ in (control, arm)]
    keep = [i for i, v in enumerate(vals) if v is not None]
    out["msprt"] = abstats.msprt(a, b, alpha=alpha, order=[order[i] for i in keep]).to_dict()
    return out


def _better(direction: str, x: float, y: float) -> bool:
    return x < y if direction == "lower" else x > y


def _winner(
    test: ABTest, arms: dict[str, dict[str, Any]], comps: list[dict[str, Any]]
) -> tuple[str | None, str, float]:
    cfg = test.config
    level = cfg.alpha / max(1, len(cfg.arms) - 1)
    short = {a: s["n_primary"] for a, s in arms.items() if s["n_primary"] < cfg.min_samples}
    if short:
        detail = ", ".join(f"{a} {n}/{cfg.min_samples}" for a, n in short.items())
        return None, f"minimum sample size not reached ({detail})", level
    sig = [c for c in comps if c["msprt"]["significant"] and c["msprt"]["p_value"] < level]
    better = [
        c
        for c in sig
        if c["mean_arm"] is not None
        and c["mean_control"] is not None
        and _better(cfg.direction, c["mean_arm"], c["mean_control"])
    ]
    if better:
        best = min(better, key=lambda c: c["mean_arm"] * (1 if cfg.direction == "lower" else -1))
        p = best["msprt"]["p_value"]
        return (
            best["arm"],
            f"{best['arm']} beats {cfg.control} (mSPRT p={p:.3g} < {level:.3g})",
            level,
        )
    if sig and len(sig) == len(comps):
        return cfg.control, f"{cfg.control} beats every other arm (mSPRT p < {level:.3g})", level
    p_min = min(c["msprt"]["p_value"] for c in comps)
    return (
        None,
        f"no significant difference on {cfg.metric} (mSPRT p={p_min:.3g} >= {level:.3g})",
        level,
    )


def build_results(test: ABTest, obs: Obs, *, now: float) -> dict[str, Any]:
    """The results document of ``test`` given its observations ``(arm, metrics)`` in order."""
    cfg = test.config
    unknown = {a for a, _ in obs} - set(cfg.arms)
    if unknown:
        raise InvalidArgumentError(f"observations of unknown arms {sorted(unknown)}")
    arms = {arm: _arm_summary(obs, arm, target, cfg.metric) for arm, target in cfg.arms.items()}
    control = cfg.control
    others = [a for a in cfg.arms if a != control]
    metrics: dict[str, list[dict[str, Any]]] = {}
    for metric in METRICS:
        if all(_samples(metric, obs, a).size == 0 for a in cfg.arms):
            continue
        metrics[metric] = [_compare(metric, obs, control, arm, cfg.alpha) for arm in others]
    comps = metrics.get(cfg.metric, [])
    if comps:
        winner, reason, level = _winner(test, arms, comps)
    else:
        winner, reason = None, f"no observations of the primary metric {cfg.metric}"
        level = cfg.alpha / max(1, len(others))
    end = test.ended_at if test.status != "running" and test.ended_at else now
    return {
        **test.to_dict(),
        "metric": cfg.metric,
        "direction": cfg.direction,
        "alpha": cfg.alpha,
        "decision_alpha": level,
        "control": control,
        "n_total": len(obs),
        "elapsed_s": None if test.started_at is None else max(0.0, end - test.started_at),
        "min_samples": cfg.min_samples,
        "min_samples_reached": all(s["n_primary"] >= cfg.min_samples for s in arms.values()),
        "arms": arms,
        "comparisons": metrics,
        "winner": winner,
        "winner_reason": reason,
    }
