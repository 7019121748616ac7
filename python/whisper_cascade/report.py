"""Performance and cost reports over the store's job, decision and quality records.

Transcriptions are grouped from the records by :mod:`whisper_cascade.report_data`. Both reports
are plain JSON-ready dicts; the method behind every number is in ``docs/reports.md``.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Any

from whisper_cascade.config import Prices
from whisper_cascade.errors import InvalidArgumentError
from whisper_cascade.report_data import (
    Transcription,
    load_transcriptions,
    mean,
    parse_period,
    percentile,
    rate,
    window,
)
from whisper_cascade.report_text import summary_text
from whisper_cascade.store.base import JobRecord, Store

__all__ = [
    "Transcription",
    "cost_report",
    "load_transcriptions",
    "page_jobs",
    "parse_period",
    "percentile",
    "performance_report",
    "summary_text",
]

SCORE_BINS = 10
MIN_EVIDENCE = 5  # a recommendation needs at least this many transcriptions behind it
ESCALATION_HIGH = 0.5
ACCEPT_LOW = 0.05
LOW_SCORE = 0.5
MAX_JOBS_PAGE = 10_000
LOW_SCORE_SHARE = 0.2


def _latency(values: list[float]) -> dict[str, float]:
    return {
        "min": min(values),
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "max": max(values),
    }


def _cost_rate(runs: list[JobRecord]) -> float:
    """CPU-seconds per audio second: orders models from cheapest to most expensive."""
    return sum(r.cpu_seconds for r in runs) / max(1e-9, sum(r.audio_duration_s for r in runs))


def _model_stats(items: list[Transcription]) -> dict[str, dict[str, Any]]:
    runs: dict[str, list[JobRecord]] = defaultdict(list)
    for t in items:
        for r in t.runs:
            runs[r.model].append(r)
    started = Counter(t.initial_model for t in items)
    escalated_from = Counter(t.initial_model for t in items if t.escalated)
    final = Counter(t.final_model for t in items)
    out: dict[str, dict[str, Any]] = {}
    for model, rs in sorted(runs.items(), key=lambda kv: _cost_rate(kv[1])):
        times = [r.processing_time_s for r in rs]
        audio = sum(r.audio_duration_s for r in rs)
        out[model] = {
            "runs": len(rs),
            "started": started[model],
            "final": final[model],
            "acceptance_rate": rate(final[model], len(rs)),
            "escalation_rate": rate(escalated_from[model], started[model]),
            "mean_score": mean([r.score for r in rs]),
            "processing_s": sum(times),
            "cpu_seconds": sum(r.cpu_seconds for r in rs),
            "real_time_factor": sum(times) / audio if audio > 0 else None,
            "latency_s": _latency(times),
        }
    return out


def _score_histogram(scores: list[float]) -> list[dict[str, float]]:
    counts = [0] * SCORE_BINS
    for s in scores:
        counts[min(SCORE_BINS - 1, max(0, int(s * SCORE_BINS)))] += 1
    return [
        {"low": i / SCORE_BINS, "high": (i + 1) / SCORE_BINS, "count": c}
        for i, c in enumerate(counts)
    ]


def _bucket_seconds(span: float) -> float:
    for size in (300.0, 3600.0, 6 * 3600.0, 86400.0, 7 * 86400.0):
        if span / size <= 48:
            return size
    return 30 * 86400.0


def _trends(items: list[Transcription]) -> dict[str, Any]:
    if not items:
        return {"bucket_s": None, "buckets": []}
    first, last = items[0].created_at, items[-1].created_at
    size = _bucket_seconds(last - first)
    groups: dict[float, list[Transcription]] = defaultdict(list)
    for t in items:
        groups[math.floor(t.created_at / size) * size].append(t)
    buckets = []
    for start in sorted(groups):
        g = groups[start]
        scores = [s for s in (t.final_score for t in g) if s is not None]
        buckets.append(
            {
                "start": start,
                "transcriptions": len(g),
                "escalation_rate": rate(sum(t.escalated for t in g), len(g)),
                "mean_score": mean(scores),
                "mean_processing_s": mean([t.processing_s for t in g]),
                "time_saved_s": sum(t.time_saved_s for t in g),
            }
        )
    return {"bucket_s": size, "buckets": buckets}


def _recommendations(items: list[Transcription], models: dict[str, Any]) -> list[dict[str, Any]]:
    recs: list[dict[str, Any]] = []
    pairs: dict[tuple[str, str], list[Transcription]] = defaultdict(list)
    for t in items:
        pairs[(t.content_class, t.initial_model)].append(t)
    for (cls, model), group in sorted(pairs.items()):
        share = sum(t.escalated for t in group) / len(group)
        if len(group) >= MIN_EVIDENCE and share >= ESCALATION_HIGH:
            target = Counter(t.final_model for t in group if t.escalated).most_common(1)[0][0]
            recs.append(
                {
                    "kind": "raise_start",
                    "content_class": cls,
                    "model": model,
                    "value": share,
                    "evidence": len(group),
                    "message": f"{share:.0%} of {len(group)} '{cls}' transcriptions starting on "
                    f"{model} escalated: start that content class at {target}",
                }
            )
    for model, st in models.items():
        share = st["acceptance_rate"]
        if st["runs"] >= MIN_EVIDENCE and share is not None and share < ACCEPT_LOW:
            recs.append(
                {
                    "kind": "drop_model",
                    "model": model,
                    "value": share,
                    "evidence": st["runs"],
                    "message": f"{model} was accepted in only {share:.0%} of {st['runs']} runs: "
                    "drop it from the ladder",
                }
            )
    scores = [s for s in (t.final_score for t in items) if s is not None]
    low = sum(s < LOW_SCORE for s in scores)
    if len(scores) >= MIN_EVIDENCE and low / len(scores) >= LOW_SCORE_SHARE:
        share = low / len(scores)
        recs.append(
            {
                "kind": "check_audio",
                "value": share,
                "evidence": len(scores),
                "message": f"{share:.0%} of {len(scores)} final scores are below {LOW_SCORE}: "
                "check the audio quality (noise, level, sample rate) of those sources",
            }
        )
    saved = sum(t.time_saved_s for t in items)
    if len(items) >= MIN_EVIDENCE and saved < 0:
        recs.append(
            {
                "kind": "cascade_slower",
                "value": saved,
                "evidence": len(items),
                "message": f"the cascade took {-saved:.1f} s longer than always running the "
                "largest model: start higher on the ladder or loosen the thresholds",
            }
        )
    return recs


def performance_report(
    store: Store, period_s: float | None = None, now: float | None = None
) -> dict[str, Any]:
    """Totals, averages, escalation rate, per-model stats, score distribution, trends and
    recommendations over the last ``period_s`` seconds (everything when None)."""
    start, end = window(period_s, now)
    items = load_transcriptions(store, start)
    quality = store.quality_since(start)
    models = _model_stats(items)
    scores = [s for s in (t.final_score for t in items) if s is not None]
    wers = [q.wer for q in quality if q.has_reference and q.wer is not None]
    processing = sum(t.processing_s for t in items)
    saved = sum(t.time_saved_s for t in items)
    return {
        "kind": "performance",
        "period": {"start": start, "end": end, "seconds": period_s},
        "totals": {
            "transcriptions": len(items),
            "model_runs": sum(len(t.runs) for t in items),
            "audio_s": sum(t.audio_s for t in items),
            "processing_s": processing,
            "cpu_seconds": sum(t.cpu_seconds for t in items),
            "time_saved_s": saved,
            "largest_only_s": processing + saved,
            "escalated": sum(t.escalated for t in items),
        },
        "averages": {
            "processing_s": mean([t.processing_s for t in items]),
            "runs_per_transcription": mean([float(len(t.runs)) for t in items]),
            "final_score": mean(scores),
            "wer": mean(wers),
        },
        "escalation_rate": rate(sum(t.escalated for t in items), len(items)),
        "reasons": dict(Counter(t.reason for t in items).most_common()),
        "model_usage": dict(Counter(t.final_model for t in items).most_common()),
        "models": models,
        "content_classes": dict(Counter(t.content_class for t in items).most_common()),
        "quality": {
            "score_histogram": _score_histogram(scores),
            "low_score_share": rate(sum(s < LOW_SCORE for s in scores), len(scores)),
            "measurements": len(quality),
            "with_reference": len(wers),
            "mean_wer": mean(wers),
        },
        "trends": _trends(items),
        "recommendations": _recommendations(items, models),
    }


def _largest_model(items: list[Transcription]) -> str | None:
    """The model the "always-largest" baseline runs: named in decision metrics when recorded,
    else the model with the slowest observed real-time factor."""
    named = Counter(str(t.metrics["largest_model"]) for t in items if "largest_model" in t.metrics)
    if named:
        return named.most_common(1)[0][0]
    rtf: dict[str, list[float]] = defaultdict(list)
    for t in items:
        for r in t.runs:
            if r.audio_duration_s > 0:
                rtf[r.model].append(r.processing_time_s / r.audio_duration_s)
    return max(rtf, key=lambda m: sum(rtf[m]) / len(rtf[m])) if rtf else None


def cost_report(
    store: Store, prices: Prices, period_s: float | None = None, now: float | None = None
) -> dict[str, Any]:
    """Per-job CPU-seconds, models and cost, and the savings against always-largest."""
    start, end = window(period_s, now)
    items = load_transcriptions(store, start)
    largest = _largest_model(items)
    jobs: list[dict[str, Any]] = []
    per_model: dict[str, dict[str, float]] = defaultdict(lambda: {"cpu_seconds": 0.0, "cost": 0.0})
    for t in items:
        used = [r.model for r in t.runs]
        cost = prices.cost(t.cpu_seconds, used)
        for r in t.runs:
            per_model[r.model]["cpu_seconds"] += r.cpu_seconds
            per_model[r.model]["cost"] += prices.cost(r.cpu_seconds, [r.model])
        # The baseline's CPU time scales the job's CPU time by its estimated wall-time ratio.
        baseline_s = t.processing_s + t.time_saved_s
        ratio = baseline_s / t.processing_s if t.processing_s > 0 else 1.0
        base_cpu = max(0.0, t.cpu_seconds * ratio)
        base_cost = prices.cost(base_cpu, [largest] if largest else [])
        jobs.append(
            {
                "job_id": t.job_id,
                "created_at": t.created_at,
                "models": used,
                "final_model": t.final_model,
                "cpu_seconds": t.cpu_seconds,
                "cost": cost,
                "largest_only_cpu_seconds": base_cpu,
                "largest_only_cost": base_cost,
                "saved": base_cost - cost,
            }
        )
    total = sum(j["cost"] for j in jobs)
    baseline = sum(j["largest_only_cost"] for j in jobs)
    return {
        "kind": "cost",
        "period": {"start": start, "end": end, "seconds": period_s},
        "prices": {
            "cpu_hour": prices.cpu_hour,
            "currency": prices.currency,
            "per_model": dict(prices.per_model),
        },
        "largest_model": largest,
        "totals": {
            "jobs": len(jobs),
            "cpu_seconds": sum(j["cpu_seconds"] for j in jobs),
            "cost": total,
            "largest_only_cpu_seconds": sum(j["largest_only_cpu_seconds"] for j in jobs),
            "largest_only_cost": baseline,
            "saved": baseline - total,
            "saved_share": (baseline - total) / baseline if baseline > 0 else None,
            "mean_cost_per_job": total / len(jobs) if jobs else None,
        },
        "per_model": {m: dict(v) for m, v in sorted(per_model.items())},
        "jobs": jobs,
    }


def page_jobs(report: dict[str, Any], limit: int = 100, offset: int = 0) -> dict[str, Any]:
    """``report`` (a :func:`cost_report`) with only ``jobs[offset:offset + limit]`` listed.

    Totals and per-model sums still cover every job; ``jobs_total``, ``limit`` and ``offset``
    say which page this is. ``limit`` must be 1..10000 and ``offset`` >= 0.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_JOBS_PAGE:
        raise InvalidArgumentError(f"limit must be an integer in 1..{MAX_JOBS_PAGE}, got {limit!r}")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidArgumentError(f"offset must be an integer >= 0, got {offset!r}")
    jobs = report["jobs"]
    return {
        **report,
        "jobs_total": len(jobs),
        "limit": limit,
        "offset": offset,
        "jobs": jobs[offset : offset + limit],
    }
