"""Plain-text rendering of the performance and cost reports for the command line."""

from __future__ import annotations

import datetime as dt
from typing import Any


def _num(value: float | None, fmt: str = ".2f", unit: str = "") -> str:
    return "-" if value is None else f"{value:{fmt}}{unit}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _period(report: dict[str, Any]) -> str:
    p = report["period"]
    start = "the beginning" if p["seconds"] is None else _when(p["start"])
    return f"from {start} to {_when(p['end'])}"


def performance_text(report: dict[str, Any]) -> str:
    """The performance report as aligned text lines."""
    t, a = report["totals"], report["averages"]
    lines = [
        f"Performance {_period(report)}",
        f"  transcriptions {t['transcriptions']}, model runs {t['model_runs']}, "
        f"audio {t['audio_s']:.1f} s, processing {t['processing_s']:.1f} s, "
        f"CPU {t['cpu_seconds']:.1f} s",
        f"  escalation rate {_pct(report['escalation_rate'])}, mean final score "
        f"{_num(a['final_score'], '.3f')}, mean WER {_num(a['wer'], '.3f')}, "
        f"runs per transcription {_num(a['runs_per_transcription'])}",
        f"  time saved vs always-largest {t['time_saved_s']:.1f} s "
        f"(largest-only estimate {t['largest_only_s']:.1f} s)",
    ]
    if report["models"]:
        lines.append("")
        lines.append(
            f"  {'model':<16}{'runs':>6}{'final':>7}{'accept':>8}{'escal.':>8}"
            f"{'p50 s':>9}{'p95 s':>9}{'RTF':>7}{'score':>7}"
        )
        for name, m in report["models"].items():
            lat = m["latency_s"]
            lines.append(
                f"  {name:<16}{m['runs']:>6}{m['final']:>7}{_pct(m['acceptance_rate']):>8}"
                f"{_pct(m['escalation_rate']):>8}{lat['p50']:>9.3f}{lat['p95']:>9.3f}"
                f"{_num(m['real_time_factor']):>7}{_num(m['mean_score'], '.3f'):>7}"
            )
    if report["reasons"]:
        reasons = ", ".join(f"{k} {v}" for k, v in report["reasons"].items())
        lines += ["", f"  reasons: {reasons}"]
    hist = report["quality"]["score_histogram"]
    if any(b["count"] for b in hist):
        lines += ["", "  final score distribution:"]
        top = max(b["count"] for b in hist)
        for b in hist:
            bar = "#" * round(30 * b["count"] / top)
            lines.append(f"    {b['low']:.1f}-{b['high']:.1f} {b['count']:>6} {bar}")
    lines += ["", "  recommendations:"]
    recs = report["recommendations"]
    lines += [f"    - {r['message']}" for r in recs] or ["    none: nothing stands out"]
    return "\n".join(lines)


def cost_text(report: dict[str, Any], top: int = 10) -> str:
    """The cost report as text: totals, per-model cost and the ``top`` most expensive jobs."""
    t, cur = report["totals"], report["prices"]["currency"]
    lines = [
        f"Cost {_period(report)} ({report['prices']['cpu_hour']:g} {cur} per CPU-hour)",
        f"  jobs {t['jobs']}, CPU {t['cpu_seconds']:.1f} s, cost {t['cost']:.4f} {cur}, "
        f"per job {_num(t['mean_cost_per_job'], '.4f')} {cur}",
        f"  always-largest ({report['largest_model'] or '-'}) estimate "
        f"{t['largest_only_cost']:.4f} {cur}: saved {t['saved']:.4f} {cur} "
        f"({_pct(t['saved_share'])})",
    ]
    if report["per_model"]:
        lines.append("")
        for name, m in report["per_model"].items():
            lines.append(f"  {name:<16} CPU {m['cpu_seconds']:>10.1f} s  {m['cost']:>12.4f} {cur}")
    jobs = sorted(report["jobs"], key=lambda j: j["cost"], reverse=True)[:top]
    if jobs:
        lines += ["", f"  most expensive jobs (top {len(jobs)}):"]
        for j in jobs:
            lines.append(
                f"    {j['job_id']:<24} {' → '.join(j['models']):<32} CPU "
                f"{j['cpu_seconds']:>8.1f} s  {j['cost']:.4f} {cur}  saved {j['saved']:.4f}"
            )
    return "\n".join(lines)


def summary_text(report: dict[str, Any]) -> str:
    """Text for a performance or cost report (chosen by its ``kind``)."""
    return cost_text(report) if report.get("kind") == "cost" else performance_text(report)
