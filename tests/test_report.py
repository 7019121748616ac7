"""Performance and cost reports, SVG charts, the dashboard page and the ``report`` command."""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from report_support import NOW, populate
from whisper_cascade.abreport import build_results
from whisper_cascade.abtest import ABTest, ABTestConfig
from whisper_cascade.cli import main
from whisper_cascade.config import Prices
from whisper_cascade.errors import InvalidArgumentError
from whisper_cascade.report import (
    cost_report,
    page_jobs,
    parse_period,
    percentile,
    performance_report,
    summary_text,
)
from whisper_cascade.report_html import render_dashboard
from whisper_cascade.report_svg import (
    bar_chart,
    fmt_number,
    histogram,
    line_chart,
    nice_ticks,
    percentile_chart,
)
from whisper_cascade.store import DecisionRecord, JobRecord, SqliteStore, Store, open_store

PRICES = Prices(cpu_hour=0.36, currency="EUR", per_model={"micro-l": 0.01})


def _job(
    job: str,
    model: str,
    took: float,
    *,
    cls: str = "short/clean/simple",
    score: float = 0.8,
    t: float = NOW - 100,
    audio: float = 10.0,
    cpu: float | None = None,
) -> JobRecord:
    return JobRecord(
        job_id=job, model=model, audio_duration_s=audio, processing_time_s=took, score=score,
        content_class=cls, cpu_seconds=took * 2 if cpu is None else cpu,
        peak_memory_bytes=1, created_at=t,
    )  # fmt: skip


def _decision(
    job: str,
    first: str,
    final: str,
    saved: float,
    *,
    score: float | None = None,
    t: float = NOW - 100,
) -> DecisionRecord:
    metrics = {} if score is None else {"score": score}
    reason = "accepted" if first == final else "low_score"
    return DecisionRecord(job, first, final, reason, json.dumps(metrics), saved, created_at=t)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return SqliteStore(tmp_path / "store.db")


def test_performance_report_matches_the_simulation(store: Store) -> None:
    truth = populate(store, n=60)
    rep = performance_report(store, None, now=NOW)
    t = rep["totals"]
    assert t["transcriptions"] == truth.transcriptions
    assert t["model_runs"] == truth.runs
    assert t["escalated"] == truth.escalated
    assert rep["escalation_rate"] == pytest.approx(truth.escalated / truth.transcriptions)
    assert math.isclose(t["processing_s"], truth.processing_s)
    assert math.isclose(t["cpu_seconds"], truth.cpu_seconds)
    assert math.isclose(t["time_saved_s"], truth.time_saved_s)
    assert t["largest_only_s"] == pytest.approx(truth.processing_s + truth.time_saved_s)
    assert rep["model_usage"] == dict(truth.final)
    assert list(rep["models"]) == ["micro-s", "micro-m", "micro-l"]  # cheapest first
    for m in rep["models"].values():
        lat = m["latency_s"]
        assert lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p95"] <= lat["p99"] <= lat["max"]
    assert rep["models"]["micro-l"]["acceptance_rate"] == 1.0
    assert rep["models"]["micro-l"]["escalation_rate"] is None  # never a starting model
    hist = rep["quality"]["score_histogram"]
    assert len(hist) == 10 and sum(b["count"] for b in hist) == truth.transcriptions
    buckets = rep["trends"]["buckets"]
    assert rep["trends"]["bucket_s"] == 3600.0
    assert sum(b["transcriptions"] for b in buckets) == truth.transcriptions
    assert [b["start"] for b in buckets] == sorted(b["start"] for b in buckets)
    assert rep["quality"]["with_reference"] == 20 and 0 <= rep["averages"]["wer"] <= 0.4
    json.dumps(rep)  # JSON-ready


def test_period_filters_old_records(store: Store) -> None:
    truth = populate(store, n=60)
    rep = performance_report(store, 3600, now=NOW)
    assert rep["totals"]["transcriptions"] == truth.recent
    assert rep["period"] == {"start": NOW - 3600, "end": NOW, "seconds": 3600}
    with pytest.raises(InvalidArgumentError):
        performance_report(store, -5)


def test_cost_report_per_job_and_savings(store: Store) -> None:
    # job a: escalated s → l, 30 s processing, saved 10 s → always-largest runs 40 s
    store.record_job(_job("a", "micro-s", 10.0, cpu=18.0))
    store.record_job(_job("a", "micro-l", 20.0, cpu=42.0))
    store.record_decision(_decision("a", "micro-s", "micro-l", 10.0))
    store.record_job(_job("b", "micro-s", 5.0, cpu=9.0))  # no decision: accepted by micro-s
    rep = cost_report(store, PRICES, None, now=NOW)
    jobs = {j["job_id"]: j for j in rep["jobs"]}
    assert rep["largest_model"] == "micro-l"  # slowest real-time factor
    assert jobs["a"]["models"] == ["micro-s", "micro-l"]
    assert jobs["a"]["cost"] == pytest.approx(60 / 3600 * 0.36 + 0.01)
    assert jobs["a"]["largest_only_cpu_seconds"] == pytest.approx(60 * 40 / 30)
    assert jobs["a"]["largest_only_cost"] == pytest.approx(80 / 3600 * 0.36 + 0.01)
    assert jobs["b"]["cost"] == pytest.approx(9 / 3600 * 0.36)
    assert jobs["b"]["largest_only_cost"] == pytest.approx(9 / 3600 * 0.36 + 0.01)
    t = rep["totals"]
    assert t["cost"] == pytest.approx(jobs["a"]["cost"] + jobs["b"]["cost"])
    assert t["saved"] == pytest.approx(t["largest_only_cost"] - t["cost"])
    assert rep["per_model"]["micro-l"]["cost"] == pytest.approx(42 / 3600 * 0.36 + 0.01)
    assert rep["prices"]["currency"] == "EUR"
    text = summary_text(rep)
    assert "EUR" in text and "micro-s → micro-l" in text


def test_recommendations_fire_on_their_triggers(store: Store) -> None:
    for i in range(6):  # noisy audio starting on micro-s always escalates to micro-l
        store.record_job(_job(f"n{i}", "micro-s", 1.0, cls="short/noisy/simple", score=0.3))
        store.record_job(_job(f"n{i}", "micro-m", 3.0, cls="short/noisy/simple", score=0.3))
        store.record_job(_job(f"n{i}", "micro-l", 9.0, cls="short/noisy/simple", score=0.4))
        store.record_decision(_decision(f"n{i}", "micro-s", "micro-l", -5.0, score=0.4))
    perf = performance_report(store, None, now=NOW)
    recs = {r["kind"]: r for r in perf["recommendations"]}
    page = render_dashboard(perf, cost_report(store, PRICES, now=NOW))
    assert page.count("<li><b>") == len(perf["recommendations"]) == 5  # both lower rungs dropped
    assert "6 observations" in page
    assert recs["raise_start"]["content_class"] == "short/noisy/simple"
    assert recs["raise_start"]["value"] == 1.0 and "micro-l" in recs["raise_start"]["message"]
    drops = {r["model"] for r in perf["recommendations"] if r["kind"] == "drop_model"}
    assert drops == {"micro-s", "micro-m"}
    assert recs["drop_model"]["value"] == 0.0 and recs["drop_model"]["evidence"] == 6
    assert recs["check_audio"]["value"] == 1.0
    assert recs["cascade_slower"]["value"] == pytest.approx(-30.0)


def test_healthy_traffic_has_no_recommendation(store: Store) -> None:
    for i in range(10):
        store.record_job(_job(f"c{i}", "micro-s", 1.0, score=0.9))
        store.record_decision(_decision(f"c{i}", "micro-s", "micro-s", 2.0, score=0.9))
    rep = performance_report(store, None, now=NOW)
    assert rep["recommendations"] == []
    assert "nothing stands out" in summary_text(rep)


def test_empty_store_reports_and_dashboard(store: Store) -> None:
    perf = performance_report(store, 86400, now=NOW)
    cost = cost_report(store, PRICES, 86400, now=NOW)
    assert perf["totals"]["transcriptions"] == 0 and perf["escalation_rate"] is None
    assert cost["totals"]["cost"] == 0 and cost["largest_model"] is None
    html = render_dashboard(perf, cost)
    assert 'id="no-data"' in html and "No A/B tests." in html and "no data" in html
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "transcriptions 0" in summary_text(perf) and "jobs 0" in summary_text(cost)


def test_dashboard_renders_ab_results_generically(store: Store) -> None:
    populate(store, n=20)
    perf = performance_report(store, None, now=NOW)
    cost = cost_report(store, PRICES, None, now=NOW)
    ab = [
        {"test_id": "t1", "p_value": 0.012, "significant": True,
         "arms": {"control": {"n": 40, "mean_wer": 0.2}, "treat<x>": {"n": 38, "lift": 0.1}}},
        {"name": "second", "arms": [{"arm": "a", "n": 3}, {"arm": "b", "n": 4}], "tags": [1, 2]},
    ]  # fmt: skip
    html = render_dashboard(perf, cost, ab, title="Ops & <stats>")
    assert "<title>Ops &amp; &lt;stats&gt;</title>" in html
    assert "treat&lt;x&gt;" in html and "<th>mean_wer</th>" in html and "<th>lift</th>" in html
    assert "<h3>t1</h3>" in html and "<h3>second</h3>" in html and "0.012" in html
    assert ">yes<" in html and "<td>1, 2</td>" in html
    assert html.count('class="chart"') == 9


def _ab_table(html: str) -> str:
    start = html.index('<table class="ab ab-comparisons">')
    return html[start : html.index("</table>", start)]


def test_dashboard_renders_ab_comparisons_as_a_table(store: Store) -> None:
    rng = np.random.default_rng(3)
    cfg = ABTestConfig("s <vs> m", {"A": "fast", "B": "accurate"}, metric="wer", min_samples=10)
    test = ABTest("t1", cfg, "running", 0.0, 0.0, None, None, cfg.split)
    obs = [
        (arm, {"wer": float(rng.normal(mean, 0.05)), "latency_s": 1.0 + i % 3, "failed": False})
        for i in range(60)
        for arm, mean in (("A", 0.30), ("B", 0.10))
    ]
    res = build_results(test, obs, now=5.0)
    perf = performance_report(store, None, now=NOW)
    html = render_dashboard(perf, cost_report(store, PRICES, None, now=NOW), [res])
    table = _ab_table(html)
    heads = re.findall(r"<th>(.*?)</th>", table)
    assert heads == [
        "metric", "arm A", "A value", "arm B", "B value", "difference",
        "confidence interval", "p-value", "always-valid p", "significant", "winner",
    ]  # fmt: skip
    assert "{" not in table and "}" not in table and "&quot;" not in table
    rows = re.findall(r"<tr><td>(.*?)</td></tr>", table)
    cells = {r.split("</td><td>")[0]: r.split("</td><td>") for r in rows}
    assert set(cells) == {"wer", "latency", "failure_rate"}
    wer = cells["wer"]
    assert wer[1] == "A" and wer[3] == "B" and float(wer[5]) < 0
    low, high = (float(x) for x in wer[6].split(" to "))
    assert low < float(wer[5]) < high < 0
    assert float(wer[7]) < 0.001 and wer[9] == "yes" and wer[10] == "B"
    assert cells["failure_rate"][9] == "no" and cells["failure_rate"][10] == "–"
    assert cells["latency"][9] == "no" and cells["latency"][10] == "–"
    assert "s &lt;vs&gt; m" in html and "<td>winner</td><td>B</td>" in html
    assert "arms: (A: fast, B: accurate); split: (A: 0.5, B: 0.5)" in html  # config, no JSON
    assert "{" not in html[html.index('id="ab"') :]  # no raw JSON anywhere in the A/B section


def test_svg_charts_are_wellformed_and_escaped() -> None:
    ns = {"s": "http://www.w3.org/2000/svg"}
    svg = bar_chart(
        ["a<b", "c"], {"x": [1.0, 2.0], "y": [3.0, math.nan]}, title="T&T", chart_id="b"
    )
    root = ET.fromstring(svg)
    assert root.find("s:title", ns).text == "T&T"  # type: ignore[union-attr]
    assert len(root.findall(".//s:rect[@class='bar']", ns)) == 3  # NaN skipped
    assert "a&lt;b" in svg
    hist = ET.fromstring(histogram([(0, 0.5, 2), (0.5, 1, 4)], title="h", chart_id="h"))
    assert len(hist.findall(".//s:rect[@class='bar']", ns)) == 2
    line = line_chart({"v": [(NOW, 1.0), (NOW + 60, None), (NOW + 120, 3.0)]}, title="l",
                      chart_id="l")  # fmt: skip
    assert len(ET.fromstring(line).findall(".//s:circle[@class='point']", ns)) == 2
    single = ET.fromstring(line_chart({"v": [(NOW, 2.0)]}, title="one", chart_id="o"))
    assert len(single.findall(".//s:circle", ns)) == 1
    box = percentile_chart(
        {"m": {"min": 1, "p50": 2, "p95": 3, "p99": 4, "max": 5}, "bad": {"min": 1}},
        title="p", chart_id="p",
    )  # fmt: skip
    assert len(ET.fromstring(box).findall(".//s:g[@class='box']", ns)) == 1
    for empty in (
        bar_chart([], {}, title="e", chart_id="e"),
        histogram([(0, 1, 0)], title="e", chart_id="e"),
        line_chart({"v": []}, title="e", chart_id="e"),
        percentile_chart({}, title="e", chart_id="e"),
    ):
        assert ET.fromstring(empty).find(".//s:text[@class='empty']", ns) is not None


def test_odd_records_and_long_spans(store: Store) -> None:
    store.record_job(_job("x", "micro-s", 1.0, score=0.7, t=NOW - 400 * 86400))
    store.record_decision(DecisionRecord("x", "micro-s", "micro-s", "accepted", "{bad", 0.0,
                                         created_at=NOW - 400 * 86400))  # fmt: skip
    store.record_job(_job("y", "micro-s", 1.0, score=0.6, t=NOW - 10))
    store.record_decision(DecisionRecord("y", "micro-s", "micro-s", "accepted", "[1]", 0.0,
                                         created_at=NOW - 10))  # fmt: skip
    rep = performance_report(store, None, now=NOW)
    assert rep["averages"]["final_score"] == pytest.approx(0.65)  # from the runs' scores
    assert rep["trends"]["bucket_s"] == 30 * 86400.0
    cost = cost_report(store, PRICES, None, now=NOW)
    page = render_dashboard(rep, cost, [{"name": "n", "p_value": math.nan, "big": 2.5e6}])
    assert ">nan<" in page


def test_page_jobs_checks_its_arguments(store: Store) -> None:
    populate(store, n=5)
    rep = cost_report(store, PRICES, None, now=NOW)
    assert page_jobs(rep, 10000, 0)["jobs"] == rep["jobs"]
    assert page_jobs(rep, 2, 4)["jobs"] == rep["jobs"][4:]
    assert page_jobs(rep)["limit"] == 100 and "jobs_total" not in rep  # the input is untouched
    for limit, offset in ((0, 0), (10001, 0), (True, 0), (1, -1), (1, 1.5)):
        with pytest.raises(InvalidArgumentError):
            page_jobs(rep, limit, offset)  # type: ignore[arg-type]


def test_helpers() -> None:
    assert fmt_number(2.5e6) == "2.5M" and fmt_number(1500) == "1.5k" and fmt_number(0.25) == "0.25"
    assert parse_period("24h") == 86400 and parse_period("30m") == 1800
    assert (
        parse_period("2w") == 1209600 and parse_period("90") == 90 and parse_period("ALL") is None
    )
    for bad in ("", "-1h", "0", "1y", "h"):
        with pytest.raises(InvalidArgumentError):
            parse_period(bad)
    assert percentile([3.0, 1.0, 2.0, 4.0], 50) == 2.5 and percentile([7.0], 99) == 7.0
    assert nice_ticks(0, 7.3) == [0, 2, 4, 6, 8]
    assert nice_ticks(5, 5) == [5, 6, 7, 8, 9, 10]
    assert nice_ticks(0, math.inf) == [0.0, 1.0]


def test_cli_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "store.db"
    with open_store(db) as s:
        truth = populate(s, n=30, hours=2)  # NOW is in the future, so 'all' sees everything
    cfg = tmp_path / "c.toml"
    cfg.write_text('[prices]\ncpu_hour = 1.5\ncurrency = "CHF"\n')
    assert main(["report", "--db", str(db), "--period", "all"]) == 0
    out = capsys.readouterr().out
    assert f"transcriptions {truth.transcriptions}" in out and "recommendations:" in out
    assert main(["report", "cost", "--db", str(db), "--period", "all", "--json",
                 "--config", str(cfg)]) == 0  # fmt: skip
    rep = json.loads(capsys.readouterr().out)
    assert rep["kind"] == "cost" and rep["prices"]["currency"] == "CHF"
    assert rep["totals"]["cost"] == pytest.approx(truth.cpu_seconds / 3600 * 1.5)
    assert rep["jobs_total"] == rep["totals"]["jobs"] == len(rep["jobs"]) == truth.transcriptions
    assert rep["limit"] == 100 and rep["offset"] == 0
    assert main(["report", "cost", "--db", str(db), "--period", "all", "--json",
                 "--config", str(cfg), "--limit", "2", "--offset", "5"]) == 0  # fmt: skip
    page = json.loads(capsys.readouterr().out)
    assert page["jobs"] == rep["jobs"][5:7] and page["jobs_total"] == truth.transcriptions
    assert page["limit"] == 2 and page["offset"] == 5
    assert page["totals"]["jobs"] == truth.transcriptions
    assert page["totals"] == rep["totals"] and page["per_model"] == rep["per_model"]
    ab = tmp_path / "ab.json"
    ab.write_text(json.dumps({"name": "exp-1", "arms": {"a": {"n": 1}}}))
    out_html = tmp_path / "d.html"
    assert main(["report", "--db", str(db), "--period", "all", "--html", str(out_html),
                 "--ab", str(ab)]) == 0  # fmt: skip
    page = out_html.read_text()
    assert "exp-1" in page and page.count('class="bar"') > 10
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--period", "soon"], "invalid period"),
        (["--ab", "missing.json"], "cannot read A/B results"),
        (["--ab", "bad.json"], "not valid JSON"),
        (["--ab", "list.json"], "must be an object or a list of objects"),
        (["--html", "nodir/x/d.html"], "cannot write dashboard"),
        (["cost", "--json", "--limit", "0"], "limit must be an integer in 1..10000"),
        (["cost", "--json", "--limit", "10001"], "limit must be an integer in 1..10000"),
        (["cost", "--json", "--offset", "-1"], "offset must be an integer >= 0"),
    ],
)
def test_cli_report_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    args: list[str], message: str,
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.json").write_text("{nope")
    (tmp_path / "list.json").write_text("[1, 2]")
    assert main(["report", "--db", str(tmp_path / "s.db"), *args]) == 1
    assert message in capsys.readouterr().err


def test_report_on_postgres(request: pytest.FixtureRequest) -> None:
    from pg_support import PgServer

    server: PgServer = request.getfixturevalue("pg_server")
    with open_store(server.new_database()) as s:
        truth = populate(s, n=25)
        rep = performance_report(s, None, now=NOW)
        cost = cost_report(s, PRICES, None, now=NOW)
    assert rep["totals"]["transcriptions"] == truth.transcriptions
    assert rep["totals"]["escalated"] == truth.escalated
    assert cost["totals"]["cpu_seconds"] == pytest.approx(truth.cpu_seconds)


@pytest.mark.parametrize(
    ("seconds", "label"),
    [(300.0, "5 min"), (3600.0, "1 h"), (5400.0, "1.5 h"), (86400.0, "1 day"), (30.0, "30 s")],
)
def test_trend_bucket_labels_read_naturally(seconds: float, label: str) -> None:
    from whisper_cascade.report_html import _duration_label

    assert _duration_label(seconds) == label
