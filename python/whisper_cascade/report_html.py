"""The dashboard: one self-contained HTML page (inline CSS and SVG, no scripts, no external
resources) built from a performance report, a cost report and optional A/B test results."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from whisper_cascade import report_svg as svg
from whisper_cascade.abtest import METRICS

_CSS = """
body{font-family:sans-serif;margin:0;background:#f5f6f8;color:#222}
header{background:#24324a;color:#fff;padding:14px 24px}
header h1{margin:0;font-size:20px}header p{margin:4px 0 0;font-size:13px;opacity:.8}
main{padding:16px 24px;max-width:1360px}
section{background:#fff;border-radius:6px;padding:12px 16px;margin:0 0 16px;
box-shadow:0 1px 2px rgba(0,0,0,.08)}
h2{font-size:16px;margin:4px 0 10px}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{background:#fff;border-radius:6px;padding:10px 14px;min-width:150px;
box-shadow:0 1px 2px rgba(0,0,0,.08)}
.card b{display:block;font-size:20px}.card span{font-size:12px;color:#666}
.charts{display:flex;flex-wrap:wrap;gap:12px}.charts svg{max-width:100%;height:auto}
table{border-collapse:collapse;font-size:13px;margin:4px 0 8px}
th,td{padding:4px 10px;border-bottom:1px solid #e5e5e5;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f0f2f5}
.empty{color:#777;font-style:italic}ul.recs li{margin:4px 0}
"""


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _fmt(value: Any, top: bool = True) -> str:
    """A cell's text; dicts and lists read ``a: 1; b: x, y; c: (d: 2, e: 3)``, never JSON."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.4g}"
    if isinstance(value, dict):
        sep = "; " if top else ", "
        text = sep.join(f"{k}: {_fmt(v, top=False)}" for k, v in value.items())
        return text if top else f"({text})"
    if isinstance(value, list | tuple):
        text = ", ".join(_fmt(v, top=False) for v in value)
        return text if top else f"({text})"
    return str(value)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _card(label: str, value: str) -> str:
    return f'<div class="card"><b>{_e(value)}</b><span>{_e(label)}</span></div>'


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], cls: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(_fmt(c))}</td>" for c in r) + "</tr>" for r in rows)
    attr = f' class="{_e(cls)}"' if cls else ""
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _section(title: str, content: str, sid: str) -> str:
    return f'<section id="{_e(sid)}"><h2>{_e(title)}</h2>{content}</section>'


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _summary(perf: Mapping[str, Any], cost: Mapping[str, Any]) -> str:
    t, ct, cur = perf["totals"], cost["totals"], cost["prices"]["currency"]
    cards = [
        _card("transcriptions", str(t["transcriptions"])),
        _card("escalation rate", _pct(perf["escalation_rate"])),
        _card("mean final score", _fmt(perf["averages"]["final_score"])),
        _card("audio processed", f"{t['audio_s']:.1f} s"),
        _card("time saved vs always-largest", f"{t['time_saved_s']:.1f} s"),
        _card(f"cost ({cur})", f"{ct['cost']:.4g}"),
        _card(f"saved vs always-largest ({cur})", f"{ct['saved']:.4g}"),
    ]
    return '<div class="cards">' + "".join(cards) + "</div>"


def _perf_charts(perf: Mapping[str, Any]) -> str:
    models: Mapping[str, Any] = perf["models"]
    names = list(models)
    usage = perf["model_usage"]
    charts = [
        svg.bar_chart(
            names,
            {"final model": [float(usage.get(n, 0)) for n in names]},
            title="Model usage (final model per transcription)",
            chart_id="model-usage",
            y_label="transcriptions",
        ),
        svg.bar_chart(
            [n for n in names if models[n]["escalation_rate"] is not None],
            {
                "escalation rate": [
                    float(m["escalation_rate"])
                    for m in models.values()
                    if m["escalation_rate"] is not None
                ]
            },
            title="Escalation rate by starting model",
            chart_id="escalation",
            y_label="share escalated",
            value_fmt="{:.1%}",
        ),
        svg.histogram(
            [(b["low"], b["high"], b["count"]) for b in perf["quality"]["score_histogram"]],
            title="Final score distribution",
            chart_id="scores",
            x_label="score",
        ),
        svg.percentile_chart(
            {n: m["latency_s"] for n, m in models.items()},
            title="Processing time per run (min, p50–p95, p99, max)",
            chart_id="latency",
        ),
    ]
    return '<div class="charts">' + "".join(charts) + "</div>"


def _trend_charts(perf: Mapping[str, Any]) -> str:
    buckets = perf["trends"]["buckets"]
    size = perf["trends"]["bucket_s"]
    per = f"per {_duration_label(size)}" if size else ""
    charts = [
        svg.line_chart(
            {"transcriptions": [(b["start"], b["transcriptions"]) for b in buckets]},
            title=f"Transcriptions {per}",
            chart_id="trend-volume",
            y_label="count",
        ),
        svg.line_chart(
            {
                "escalation rate": [(b["start"], b["escalation_rate"]) for b in buckets],
                "mean score": [(b["start"], b["mean_score"]) for b in buckets],
            },
            title="Escalation rate and mean final score",
            chart_id="trend-quality",
        ),
        svg.line_chart(
            {"time saved (s)": [(b["start"], b["time_saved_s"]) for b in buckets]},
            title=f"Time saved vs always-largest {per}",
            chart_id="trend-saved",
            y_label="seconds",
        ),
    ]
    return '<div class="charts">' + "".join(charts) + "</div>"


def _model_table(perf: Mapping[str, Any]) -> str:
    rows = [
        [
            name,
            m["runs"],
            m["started"],
            m["final"],
            _pct(m["acceptance_rate"]),
            _pct(m["escalation_rate"]),
            m["latency_s"]["p50"],
            m["latency_s"]["p90"],
            m["latency_s"]["p99"],
            m["real_time_factor"],
            m["mean_score"],
        ]
        for name, m in perf["models"].items()
    ]
    if not rows:
        return '<p class="empty">No model runs in this period.</p>'
    headers = ["model", "runs", "started", "final", "accepted", "escalated"]
    headers += ["p50 s", "p90 s", "p99 s", "RTF", "mean score"]
    return _table(headers, rows, "models")


def _cost_section(cost: Mapping[str, Any]) -> str:
    t, cur = cost["totals"], cost["prices"]["currency"]
    if not t["jobs"]:
        return '<p class="empty">No jobs in this period, so no cost.</p>'
    per_model = cost["per_model"]
    chart = svg.bar_chart(
        ["this period"],
        {"cascade": [t["cost"]], f"always {cost['largest_model']}": [t["largest_only_cost"]]},
        title=f"Cost ({cur}): cascade vs always-largest",
        chart_id="cost-total",
        y_label=cur,
        width=360,
    )
    chart += svg.bar_chart(
        list(per_model),
        {"cost": [m["cost"] for m in per_model.values()]},
        title=f"Cost per model ({cur})",
        chart_id="cost-models",
        y_label=cur,
    )
    note = (
        f"<p>{cost['prices']['cpu_hour']:g} {_e(cur)} per CPU-hour; {t['jobs']} jobs, "
        f"{t['cpu_seconds']:.1f} CPU-s, cost {t['cost']:.4g} {_e(cur)} "
        f"(always-largest estimate {t['largest_only_cost']:.4g}, "
        f"saved {_pct(t['saved_share'])}).</p>"
    )
    top = sorted(cost["jobs"], key=lambda j: j["cost"], reverse=True)[:10]
    rows = [
        [j["job_id"], " → ".join(j["models"]), j["cpu_seconds"], j["cost"], j["saved"]] for j in top
    ]
    table = _table(["job", "models", "CPU s", f"cost {cur}", f"saved {cur}"], rows, "jobs")
    return note + '<div class="charts">' + chart + "</div><h2>Most expensive jobs</h2>" + table


def _ab_section(results: Sequence[Mapping[str, Any]] | None) -> str:
    if not results:
        return '<p class="empty">No A/B tests.</p>'
    out = []
    for i, res in enumerate(results):
        name = res.get("name") or res.get("test_id") or f"test {i + 1}"
        comparisons = _comparison_rows(res)
        nested = {k for k, v in res.items() if _records(v) is not None}
        if comparisons is not None:
            nested.add("comparisons")
        scalars = [[k, v] for k, v in res.items() if k not in nested]
        out.append(f"<h3>{_e(name)}</h3>" + _table(["field", "value"], scalars, "ab"))
        for key, value in res.items():
            rows = _records(value)
            if rows is None or key == "comparisons" and comparisons is not None:
                continue
            cols = list(dict.fromkeys(c for _, r in rows for c in r))
            body = [[label, *(r.get(c) for c in cols)] for label, r in rows]
            out.append(f"<h4>{_e(key)}</h4>" + _table([key, *cols], body, "ab"))
        if comparisons is not None:
            level = _decision_level(res)
            out.append(
                "<h4>comparisons</h4>"
                + _table(AB_COMPARISON_HEADERS, comparisons, "ab ab-comparisons")
                + f"<p><small>difference = B − A with its {1 - float(res.get('alpha') or 0.05):.0%}"
                f" confidence interval and fixed-sample p-value (Welch t; two-proportion z for "
                f"failure_rate); significant: the always-valid mSPRT p-value is below "
                f"{_e(_fmt(level))}; winner: the better arm on that metric when significant."
                "</small></p>"
            )
    return "".join(out)


AB_COMPARISON_HEADERS = (
    "metric", "arm A", "A value", "arm B", "B value", "difference", "confidence interval",
    "p-value", "always-valid p", "significant", "winner",
)  # fmt: skip


def _decision_level(res: Mapping[str, Any]) -> float:
    level = res.get("decision_alpha", res.get("alpha"))
    return float(level) if isinstance(level, int | float) else 0.05


def _comparison_rows(res: Mapping[str, Any]) -> list[list[Any]] | None:
    """One row per (metric, arm) of an A/B results document's ``comparisons`` (the shape of
    :func:`whisper_cascade.abreport.build_results`), or None when it has another shape."""
    comps = res.get("comparisons")
    if not isinstance(comps, dict) or not all(
        isinstance(v, list) and all(isinstance(c, dict) for c in v) for v in comps.values()
    ):
        return None
    level = _decision_level(res)
    rows = []
    for metric, items in comps.items():
        direction = METRICS.get(metric, ("", "lower"))[1]
        if metric == res.get("metric") and res.get("direction") in ("lower", "higher"):
            direction = res["direction"]
        for c in items:
            test = c.get("welch_t") or c.get("two_proportion_z") or {}
            seq = c.get("msprt") or {}
            a, b = c.get("mean_control"), c.get("mean_arm")
            diff = test.get("diff", seq.get("diff"))
            if diff is None and a is not None and b is not None:
                diff = b - a
            ci = "–"
            if test.get("ci_low") is not None and test.get("ci_high") is not None:
                ci = f"{_fmt(test['ci_low'])} to {_fmt(test['ci_high'])}"
            p_seq = seq.get("p_value")
            significant = p_seq is not None and p_seq < level
            winner = None
            if significant and a is not None and b is not None and a != b:
                b_better = b < a if direction == "lower" else b > a
                winner = c.get("arm") if b_better else c.get("control")
            rows.append(
                [metric, c.get("control"), a, c.get("arm"), b, diff, ci, test.get("p_value"),
                 p_seq, significant, winner]
            )  # fmt: skip
    return rows


def _records(value: Any) -> list[tuple[str, Mapping[str, Any]]] | None:
    """Nested tables of an A/B result: a dict of dicts, or a list of dicts, else None."""
    if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
        return [(str(k), v) for k, v in value.items()]
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return [(str(v.get("name", v.get("arm", i + 1))), v) for i, v in enumerate(value)]
    return None


def _recommendations(perf: Mapping[str, Any]) -> str:
    recs = perf["recommendations"]
    if not recs:
        return '<p class="empty">Nothing stands out: no recommendation.</p>'
    items = "".join(
        f"<li><b>{_e(r['kind'])}</b>: {_e(r['message'])} "
        f"<small>(value {_e(_fmt(r['value']))}, {_e(r['evidence'])} observations)</small></li>"
        for r in recs
    )
    return f'<ul class="recs">{items}</ul>'


def render_dashboard(
    performance: Mapping[str, Any],
    cost: Mapping[str, Any],
    ab_results: Sequence[Mapping[str, Any]] | None = None,
    title: str = "whisper-cascade dashboard",
) -> str:
    """The dashboard page for a :func:`~whisper_cascade.report.performance_report`, a
    :func:`~whisper_cascade.report.cost_report` and optional A/B result dicts."""
    p = performance["period"]
    since = "all time" if p["seconds"] is None else f"since {_when(p['start'])}"
    empty = performance["totals"]["transcriptions"] == 0
    parts = [
        _summary(performance, cost),
        (
            '<p class="empty" id="no-data">No transcriptions recorded in this period: the '
            "charts fill in once the cascade has written job and decision records.</p>"
            if empty
            else ""
        ),
        _section("Models, escalation, quality and latency", _perf_charts(performance), "perf"),
        _section("Per-model statistics", _model_table(performance), "models"),
        _section("Trends", _trend_charts(performance), "trends"),
        _section("Cost", _cost_section(cost), "cost"),
        _section("A/B tests", _ab_section(ab_results), "ab"),
        _section("Recommendations", _recommendations(performance), "recommendations"),
    ]
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{_e(title)}</h1><p>{_e(since)} to {_e(_when(p['end']))}</p></header>"
        f"<main>{''.join(parts)}</main></body></html>\n"
    )


def _duration_label(seconds: float) -> str:
    """``300`` → ``"5 min"``, ``3600`` → ``"1 h"``, ``86400`` → ``"1 day"``."""
    for unit, label in ((86400.0, "day"), (3600.0, "h"), (60.0, "min")):
        if seconds >= unit:
            return f"{seconds / unit:.3g} {label}"
    return f"{seconds:.3g} s"
