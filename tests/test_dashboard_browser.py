"""The dashboard in headless Chromium: loads cleanly, shows charts with data, screenshot kept."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from browser_support import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS
from report_support import NOW, populate
from whisper_cascade.abreport import build_results
from whisper_cascade.abtest import ABTest, ABTestConfig
from whisper_cascade.config import Prices
from whisper_cascade.report import cost_report, performance_report
from whisper_cascade.report_html import render_dashboard
from whisper_cascade.store import open_store

AB_ARMS = (("A", 0.2), ("B", 0.0))
AB_HEADERS = [
    "metric", "arm A", "A value", "arm B", "B value", "difference", "confidence interval",
    "p-value", "always-valid p", "significant", "winner",
]  # fmt: skip

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="/usr/bin/chromium not installed (apt-get install chromium)"
)


def _render(tmp_path: Path, populated: bool) -> Path:
    with open_store(tmp_path / "store.db") as store:
        if populated:
            populate(store, n=80)
        perf = performance_report(store, None, now=NOW)
        cost = cost_report(store, Prices(cpu_hour=0.08, per_model={"micro-l": 0.0005}), now=NOW)
    cfg = ABTestConfig("s vs m", {"A": "fast", "B": "accurate"}, metric="wer", min_samples=5)
    test = ABTest("t1", cfg, "running", 0.0, 0.0, None, None, cfg.split)
    obs = [(arm, {"wer": 0.1 * (i % 4) + bump}) for i in range(40) for arm, bump in AB_ARMS]
    ab = [build_results(test, obs, now=NOW)]
    page = tmp_path / "dashboard.html"
    page.write_text(render_dashboard(perf, cost, ab if populated else None), encoding="utf-8")
    return page


def _open(page: Path, screenshot: Path | None) -> dict[str, object]:
    sync_api = pytest.importorskip("playwright.sync_api")
    profile = tempfile.mkdtemp(prefix="wc-chromium-")
    errors: list[str] = []
    requests: list[str] = []
    try:
        with sync_api.sync_playwright() as pw:
            ctx = pw.chromium.launch_persistent_context(
                profile, executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True,
                viewport={"width": 1400, "height": 900},
            )  # fmt: skip
            try:
                tab = ctx.new_page()
                tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                tab.on("pageerror", lambda e: errors.append(str(e)))
                tab.on("request", lambda r: requests.append(r.url))
                tab.goto(page.as_uri(), wait_until="load")
                counts = tab.evaluate(
                    """() => Object.fromEntries([...document.querySelectorAll('svg.chart')].map(
                        s => [s.dataset.chart, {
                          bars: s.querySelectorAll('.bar').length,
                          points: s.querySelectorAll('.point').length,
                          boxes: s.querySelectorAll('.box').length,
                          empty: s.querySelectorAll('.empty').length,
                          width: s.getBoundingClientRect().width}]))"""
                )
                if screenshot is not None:
                    screenshot.parent.mkdir(parents=True, exist_ok=True)
                    tab.screenshot(path=str(screenshot), full_page=True)
                no_data = tab.locator("#no-data").count()
                ab_table = tab.locator("#ab table.ab-comparisons")
                ab_heads = ab_table.locator("th").all_inner_texts() if ab_table.count() else []
                ab_text = ab_table.inner_text() if ab_table.count() else ""
            finally:
                ctx.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    return {
        "errors": errors,
        "requests": requests,
        "charts": counts,
        "no_data": no_data,
        "ab_heads": ab_heads,
        "ab_text": ab_text,
    }


def test_dashboard_in_chromium(tmp_path: Path) -> None:
    shot = ARTIFACTS / "dashboard.png"
    shot.unlink(missing_ok=True)
    seen = _open(_render(tmp_path, populated=True), shot)
    assert seen["errors"] == []
    assert all(u.startswith("file://") for u in seen["requests"])  # type: ignore[attr-defined]
    charts = seen["charts"]
    assert isinstance(charts, dict)
    assert charts["model-usage"]["bars"] == 3
    assert charts["escalation"]["bars"] == 2  # micro-l never starts, so it has no rate
    assert charts["scores"]["bars"] == 10
    assert charts["latency"]["boxes"] == 3
    assert charts["trend-volume"]["points"] >= 10
    assert charts["trend-quality"]["points"] >= 20
    assert charts["cost-total"]["bars"] == 2
    assert charts["cost-models"]["bars"] == 3
    assert all(c["empty"] == 0 and c["width"] > 100 for c in charts.values())
    assert seen["no_data"] == 0
    assert seen["ab_heads"] == AB_HEADERS
    ab_text = seen["ab_text"]
    assert isinstance(ab_text, str) and "wer\tA\t" in ab_text and "\tyes\tB" in ab_text
    assert "{" not in ab_text and "}" not in ab_text and '"' not in ab_text
    assert shot.stat().st_size > 20_000


def test_empty_dashboard_in_chromium(tmp_path: Path) -> None:
    seen = _open(_render(tmp_path, populated=False), ARTIFACTS / "dashboard-empty.png")
    assert seen["errors"] == []
    assert seen["no_data"] == 1 and seen["ab_heads"] == []
    charts = seen["charts"]
    assert isinstance(charts, dict)
    assert charts and all(c["empty"] == 1 and c["bars"] == 0 for c in charts.values())
