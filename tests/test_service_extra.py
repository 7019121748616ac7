"""The service's A/B, report and dashboard endpoints over real HTTP on loopback: uvicorn in a
thread, real whisper.cpp on tiny random models, a real SQLite store, Chromium on the page."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from browser_support import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS
from service_support import SAMPLE, expect_error, service_settings
from whisper_cascade.abtest import assign_arm
from whisper_cascade.ladders import Ladder
from whisper_cascade.models import ModelSpec
from whisper_cascade.service import ServiceSettings, create_app
from whisper_cascade.service.background import serve_in_thread as serve
from whisper_cascade.store import open_store

ARMS = {"A": "accept-all", "B": "escalate"}
FINAL = {"A": "micro-s", "B": "micro-l"}  # accept-all stops on the first rung, escalate climbs


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        '[prices]\ncpu_hour = 3.6\ncurrency = "EUR"\n[prices.per_model]\n"micro-l" = 0.5\n',
        encoding="utf-8",
    )
    return path


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


def _settings(models: Path, db: Path, config: Path, **kw: object) -> ServiceSettings:
    return service_settings(models, db, config=str(config), **kw)


@pytest.fixture
def url(models: Path, db: Path, config: Path) -> Iterator[str]:
    with serve(create_app(_settings(models, db, config))) as base:
        yield base


def _transcribe(url: str, headers: dict[str, str] | None = None, **fields: str) -> httpx.Response:
    return httpx.post(
        url + "/transcribe",
        files={"file": ("clip.wav", SAMPLE)},
        data=fields,
        headers=headers,
        timeout=120,
    )


def _ok(r: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    assert body["success"] is True, body
    return body


def _create(url: str, **body: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {"name": "s vs l", "arms": ARMS, "min_samples": 2, **body}
    return _ok(httpx.post(url + "/ab-tests", json=payload, timeout=30), 201)


def _sessions(test_id: str) -> dict[str, str]:
    """One session id per arm, chosen by the same hash the service uses."""
    found: dict[str, str] = {}
    i = 0
    while len(found) < 2:
        session = f"user-{i}"
        found.setdefault(assign_arm(test_id, session, {"A": 0.5, "B": 0.5}), session)
        i += 1
    return found


def test_ab_crud_and_lifecycle(url: str) -> None:
    test = _create(url, split={"A": 0.5, "B": 0.5}, metric="latency", max_samples=50)
    tid = test["test_id"]
    assert test["status"] == "created" and test["config"]["arms"] == ARMS
    assert test["config"]["metric"] == "latency" and test["config"]["direction"] == "lower"
    listed = _ok(httpx.get(url + "/ab-tests"))["tests"]
    assert [t["test_id"] for t in listed] == [tid]
    assert _ok(httpx.get(f"{url}/ab-tests/{tid}"))["name"] == "s vs l"
    # not running yet: routing is refused
    expect_error(_transcribe(url, ab_test=tid, session_id="u1"), 409, "StateError")
    started = _ok(httpx.post(f"{url}/ab-tests/{tid}/start"))
    assert started["status"] == "running" and started["started_at"] is not None
    stopped = _ok(httpx.post(f"{url}/ab-tests/{tid}/stop"))
    assert stopped["status"] == "stopped" and stopped["end_reason"] == "stopped by request"
    expect_error(_transcribe(url, ab_test=tid, session_id="u1"), 409, "StateError")
    assert _ok(httpx.post(f"{url}/ab-tests/{tid}/start"))["status"] == "running"
    results = _ok(httpx.get(f"{url}/ab-tests/{tid}/results"))
    assert results["n_total"] == 0 and results["winner"] is None
    for path in ("", "/start", "/stop", "/results"):
        method = httpx.post if path in ("/start", "/stop") else httpx.get
        assert "nope" in expect_error(
            method(f"{url}/ab-tests/nope{path}"), 404, "ABTestNotFoundError"
        )
    expect_error(_transcribe(url, ab_test="nope", session_id="u1"), 404, "ABTestNotFoundError")


BAD_DEFINITIONS: list[tuple[dict[str, Any], str]] = [
    ({"arms": {"A": "accept-all", "B": "/tmp/ggml-x.bin"}}, "/tmp/ggml-x.bin"),
    ({"arms": {"A": "accept-all", "B": "micro-s,micro-l"}}, "micro-s,micro-l"),
    ({"arms": {"A": "accept-all", "B": "../models"}}, "../models"),
    ({"arms": {"A": "accept-all", "B": "whisper-1"}}, "whisper-1"),
    ({"arms": {"A": "accept-all"}}, "two arms"),
    ({"arms": ["accept-all", "escalate"]}, "arms"),
    ({"split": {"A": 0.9, "B": 0.3}}, "sum to 1"),
    ({"split": {"A": 1.0}}, "split"),
    ({"metric": "beauty"}, "beauty"),
    ({"alpha": 0.9}, "alpha"),
    ({"min_samples": 1}, "min_samples"),
    ({"max_duration_s": -5}, "max_duration_s"),
    ({"name": "  "}, "name"),
    ({"min_samples": "7"}, "min_samples"),
    ({"colour": "red"}, "colour"),
]


def test_create_refuses_bad_definitions(url: str) -> None:
    for body, needle in BAD_DEFINITIONS:
        payload = {"name": "t", "arms": ARMS, **body}
        r = httpx.post(url + "/ab-tests", json=payload, timeout=30)
        assert r.status_code == 400, (body, r.text)
        assert needle in r.json()["error"]["message"], (body, r.text)
    r = httpx.post(url + "/ab-tests", content=b"{not json", timeout=30)
    assert r.status_code == 400
    assert _ok(httpx.get(url + "/ab-tests"))["tests"] == []


def test_sticky_routing_records_and_results(url: str, db: Path) -> None:
    tid = _create(url)["test_id"]
    _ok(httpx.post(f"{url}/ab-tests/{tid}/start"))
    sessions = _sessions(tid)
    seen: dict[str, list[str]] = {}
    for arm, session in sessions.items():
        for i in range(2):
            if i == 0:
                r = _transcribe(url, ab_test=tid, session_id=session)
            else:  # the headers work as the fields do
                r = _transcribe(url, {"X-AB-Test": tid, "X-Session-Id": session})
            body = _ok(r)
            assert body["ab"] == {"test_id": tid, "arm": arm, "recorded": True}
            assert body["session_id"] == session
            assert body["model_selection"]["final_model"] == FINAL[arm]
            seen.setdefault(session, []).append(body["ab"]["arm"])
    assert all(len(set(arms)) == 1 for arms in seen.values())  # sticky
    results = _ok(httpx.get(f"{url}/ab-tests/{tid}/results"))
    assert results["n_total"] == 4 and results["control"] == "A"
    assert {a: results["arms"][a]["n"] for a in ARMS} == {"A": 2, "B": 2}
    assert results["arms"]["B"]["target"] == "escalate"
    with open_store(db) as store:
        obs = store.ab_observations(tid)
        jobs = {j.job_id for j in store.jobs_since(0)}
    assert len(obs) == 4 and {o.job_id for o in obs} <= jobs

    # the OpenAI route joins through the headers; text formats get the arm as headers
    arm, session = "B", sessions["B"]
    hdr = {"X-AB-Test": tid, "X-Session-Id": session}
    form = {"model": "whisper-1", "response_format": "verbose_json"}
    r = httpx.post(
        url + "/v1/audio/transcriptions",
        files={"file": ("clip.wav", SAMPLE)},
        data=form,
        headers=hdr,
        timeout=120,
    )
    assert r.status_code == 200, r.text
    assert r.json()["ab"]["arm"] == arm and r.json()["model_selection"]["final_model"] == "micro-l"
    r = httpx.post(
        url + "/v1/audio/transcriptions",
        files={"file": ("clip.wav", SAMPLE)},
        data={"model": "whisper-1", "response_format": "text"},
        headers=hdr,
        timeout=120,
    )
    assert r.status_code == 200 and r.headers["x-ab-arm"] == arm
    assert r.headers["x-ab-test-id"] == tid
    r = httpx.post(
        url + "/v1/audio/transcriptions",
        files={"file": ("clip.wav", SAMPLE)},
        data={"model": "whisper-1"},
        headers={"X-AB-Test": "nope", "X-Session-Id": session},
        timeout=120,
    )
    assert r.status_code == 404 and r.json()["error"]["type"] == "ABTestNotFoundError"

    metrics = httpx.get(url + "/metrics").text
    counts = {
        (s.labels["test"], s.labels["arm"]): s.value
        for fam in text_string_to_metric_families(metrics)
        for s in fam.samples
        if s.name == "whisper_cascade_ab_assignments_total"
    }
    assert counts == {(tid, "A"): 2.0, (tid, "B"): 4.0}
    assert _ok(httpx.get(f"{url}/ab-tests/{tid}/results"))["n_total"] == 6


def test_implicit_test_and_routing_errors(url: str) -> None:
    tid = _create(url, max_samples=2)["test_id"]
    # no running test: a session id alone joins nothing
    assert "ab" not in _ok(_transcribe(url, session_id="u1"))
    _ok(httpx.post(f"{url}/ab-tests/{tid}/start"))
    body = _ok(_transcribe(url, session_id="u1"))  # the only running test
    assert body["ab"]["test_id"] == tid and body["ab"]["arm"] in ARMS
    assert "ab" not in _ok(_transcribe(url, session_id="u1", preset="accept-all"))
    assert "ab" not in _ok(_transcribe(url))  # no session
    assert "session" in expect_error(_transcribe(url, ab_test=tid), 400, "InvalidArgumentError")
    expect_error(
        _transcribe(url, ab_test=tid, session_id="u1", preset="escalate"),
        400,
        "InvalidArgumentError",
    )
    # bad audio is refused and not recorded
    r = httpx.post(
        url + "/transcribe",
        files={"file": ("x.wav", b"not audio")},
        data={"ab_test": tid, "session_id": "u1"},
        timeout=60,
    )
    expect_error(r, 415, "AudioError")
    assert _ok(httpx.get(f"{url}/ab-tests/{tid}/results"))["n_total"] == 1
    # the second observation reaches max_samples: completed, and then neither start nor stop
    _ok(_transcribe(url, ab_test=tid, session_id="u2"))
    test = _ok(httpx.get(f"{url}/ab-tests/{tid}"))
    assert test["status"] == "completed" and "max_samples" in test["end_reason"]
    expect_error(httpx.post(f"{url}/ab-tests/{tid}/start"), 409, "StateError")
    expect_error(httpx.post(f"{url}/ab-tests/{tid}/stop"), 409, "StateError")
    expect_error(_transcribe(url, ab_test=tid, session_id="u1"), 409, "StateError")
    assert "ab" not in _ok(_transcribe(url, session_id="u1"))  # nothing running any more


def test_failing_arm_is_recorded_as_failed(models: Path, db: Path, config: Path) -> None:
    ghost = Ladder("ghost", (ModelSpec("ghost-s", "ggml-ghost-s.bin"),))  # no such file
    settings = _settings(models, db, config, ladders={"ghost": ghost})
    with serve(create_app(settings)) as url:
        tid = _create(url, arms={"A": "accept-all", "B": "ghost"})["test_id"]
        _ok(httpx.post(f"{url}/ab-tests/{tid}/start"))
        session = _sessions(tid)["B"]
        r = _transcribe(url, ab_test=tid, session_id=session)
        assert r.status_code in (500, 503) and r.json()["success"] is False, r.text
        # the OpenAI json body carries the arm too
        r = httpx.post(
            url + "/v1/audio/transcriptions",
            files={"file": ("clip.wav", SAMPLE)},
            data={"model": "whisper-1"},
            headers={"X-AB-Test": tid, "X-Session-Id": _sessions(tid)["A"]},
            timeout=120,
        )
        assert r.status_code == 200 and r.json()["ab"]["arm"] == "A" and "text" in r.json()
        results = _ok(httpx.get(f"{url}/ab-tests/{tid}/results"))
        assert results["arms"]["B"]["n_failed"] == 1 and results["arms"]["B"]["failure_rate"] == 1
        assert results["arms"]["A"]["n_failed"] == 0 and results["n_total"] == 2


def test_completed_meanwhile_keeps_the_result(url: str) -> None:
    tid = _create(url, max_samples=1)["test_id"]
    _ok(httpx.post(f"{url}/ab-tests/{tid}/start"))
    sessions = [
        s for s in (f"u{i}" for i in range(64)) if assign_arm(tid, s, {"A": 0.5, "B": 0.5}) == "B"
    ]
    with ThreadPoolExecutor(
        2
    ) as pool:  # both are assigned before either records (escalate is slow)
        rs = list(pool.map(lambda s: _transcribe(url, ab_test=tid, session_id=s), sessions[:2]))
    bodies = [r.json() for r in rs]
    recorded = [b["ab"]["recorded"] for b in bodies if b["success"]]
    # either the second was still assigned (result kept, nothing recorded) or it came too late
    assert sorted(recorded) == [False, True] or sorted(r.status_code for r in rs) == [200, 409]
    assert _ok(httpx.get(f"{url}/ab-tests/{tid}/results"))["n_total"] == 1
    assert _ok(httpx.get(f"{url}/ab-tests/{tid}"))["status"] == "completed"


def test_transcription_lands_in_reports(url: str, db: Path) -> None:
    empty = _ok(httpx.get(url + "/selection-metrics", params={"period": "24h"}))
    assert empty["kind"] == "performance" and empty["totals"]["transcriptions"] == 0
    ms = _ok(_transcribe(url, preset="escalate"))["model_selection"]
    with open_store(db) as store:
        decisions = store.decisions_since(0)
    assert [(d.job_id, d.initial_model, d.final_model) for d in decisions] == [
        (ms["job_id"], "micro-s", "micro-l")
    ]
    perf = _ok(httpx.get(url + "/selection-metrics", params={"period": "24h"}))
    assert perf["totals"]["transcriptions"] == 1 and perf["totals"]["model_runs"] == 3
    assert perf["model_usage"] == {"micro-l": 1} and perf["escalation_rate"] == 1.0
    assert perf["period"]["seconds"] == 86400
    assert (
        _ok(httpx.get(url + "/selection-metrics", params={"period": "all"}))["period"]["seconds"]
        is None
    )
    cost = _ok(httpx.get(url + "/cost-report", params={"period": "7d"}))
    assert cost["prices"] == {"cpu_hour": 3.6, "currency": "EUR", "per_model": {"micro-l": 0.5}}
    job = cost["jobs"][0]
    assert job["job_id"] == ms["job_id"] and job["models"] == ["micro-s", "micro-m", "micro-l"]
    assert job["cost"] == pytest.approx(job["cpu_seconds"] / 1000 + 0.5)
    for path in ("/selection-metrics", "/cost-report", "/dashboard"):
        msg = expect_error(
            httpx.get(url + path, params={"period": "soon"}), 400, "InvalidArgumentError"
        )
        assert "period" in msg


def test_cost_report_pages_jobs_but_totals_cover_all(url: str) -> None:
    for _ in range(3):
        _ok(_transcribe(url))
    full = _ok(httpx.get(url + "/cost-report", params={"period": "all", "limit": 10000}))
    assert full["jobs_total"] == full["totals"]["jobs"] == len(full["jobs"]) == 3
    assert full["limit"] == 10000 and full["offset"] == 0
    assert _ok(httpx.get(url + "/cost-report"))["limit"] == 100  # the default
    page = _ok(httpx.get(url + "/cost-report", params={"period": "all", "limit": 1, "offset": 1}))
    assert page["jobs"] == full["jobs"][1:2] and page["jobs_total"] == 3
    assert page["limit"] == 1 and page["offset"] == 1
    assert page["totals"] == full["totals"] and page["per_model"] == full["per_model"]
    past = _ok(httpx.get(url + "/cost-report", params={"period": "all", "offset": 3}))
    assert past["jobs"] == [] and past["jobs_total"] == 3
    for params in ({"limit": 0}, {"limit": 10001}, {"limit": "ten"}, {"offset": -1}):
        msg = expect_error(
            httpx.get(url + "/cost-report", params=params), 400, "InvalidRequestError"
        )
        assert next(iter(params)) in msg


def test_dashboard_html(url: str) -> None:
    tid = _create(url, name="presets <s> vs <l>")["test_id"]
    _ok(httpx.post(f"{url}/ab-tests/{tid}/start"))
    for session in _sessions(tid).values():
        _ok(_transcribe(url, ab_test=tid, session_id=session))
    r = httpx.get(url + "/dashboard")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page
    assert "src=" not in page and "url(" not in page and '<link rel="icon" href="data:,">' in page
    assert 'href="http' not in page and "@import" not in page
    assert page.count("<svg") >= 6 and 'data-chart="model-usage"' in page
    assert "presets &lt;s&gt; vs &lt;l&gt;" in page  # the A/B results, escaped
    assert 'id="no-data"' not in page


def test_new_routes_need_the_key(models: Path, db: Path, config: Path) -> None:
    with serve(create_app(_settings(models, db, config, api_key="k3y"))) as url:
        for path in ("/ab-tests", "/selection-metrics", "/cost-report", "/dashboard"):
            expect_error(httpx.get(url + path), 401, "AuthenticationError")
        auth = {"Authorization": "Bearer k3y"}
        assert httpx.get(url + "/dashboard", headers=auth).status_code == 200
        assert httpx.post(url + "/ab-tests", json={}, headers=auth).status_code == 400
        challenge = httpx.get(url + "/dashboard").headers.get_list("www-authenticate")
        assert challenge == ["Bearer", 'Basic realm="whisper-cascade"']
        assert httpx.get(url + "/cost-report").headers.get_list("www-authenticate") == ["Bearer"]
        assert httpx.get(url + "/dashboard", auth=("anyone", "k3y")).status_code == 200
        for wrong in (("anyone", "nope"), ("k3y", "")):
            assert httpx.get(url + "/dashboard", auth=wrong).status_code == 401
        garbled = {"Authorization": "Basic %%%"}
        expect_error(httpx.get(url + "/dashboard", headers=garbled), 401, "AuthenticationError")
        expect_error(
            httpx.get(url + "/cost-report", headers={"Authorization": "k3y"}),
            401,
            "AuthenticationError",
        )


@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium not installed")
def test_dashboard_behind_a_key_opens_in_chromium_with_basic_auth(
    models: Path, db: Path, config: Path
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    with serve(create_app(_settings(models, db, config, api_key="k3y"))) as url:
        statuses = {}
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                for password in ("k3y", "wrong"):
                    creds = {"username": "me", "password": password}
                    ctx = browser.new_context(http_credentials=creds)
                    tab = ctx.new_page()
                    response = tab.goto(url + "/dashboard", wait_until="load")
                    assert response is not None
                    statuses[password] = (response.status, tab.locator("h1").count())
                    ctx.close()
            finally:
                browser.close()
    assert statuses["k3y"] == (200, 1) and statuses["wrong"][0] == 401


def test_broken_config_is_a_server_error(models: Path, db: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[prices]\ncpu_hour = 1\n", encoding="utf-8")
    with serve(create_app(_settings(models, db, bad))) as url:
        bad.write_text("[prices]\ncpu_hour = -1\n", encoding="utf-8")  # broken after start
        expect_error(httpx.get(url + "/cost-report"), 500, "ConfigError")


@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium not installed")
def test_live_dashboard_in_chromium(url: str) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    tid = _create(url)["test_id"]
    _ok(httpx.post(f"{url}/ab-tests/{tid}/start"))
    for session in _sessions(tid).values():
        _ok(_transcribe(url, ab_test=tid, session_id=session))
    _ok(_transcribe(url, preset="escalate"))
    shot = ARTIFACTS / "service-dashboard.png"
    shot.unlink(missing_ok=True)
    errors: list[str] = []
    requests: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            ctx = browser.new_context(viewport={"width": 1400, "height": 900})
            tab = ctx.new_page()
            tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            tab.on("pageerror", lambda e: errors.append(str(e)))
            tab.on("request", lambda r: requests.append(r.url))
            response = tab.goto(url + "/dashboard?period=24h", wait_until="load")
            assert response is not None and response.status == 200
            charts = tab.evaluate(
                """() => Object.fromEntries([...document.querySelectorAll('svg.chart')].map(
                    s => [s.dataset.chart, {
                      marks: s.querySelectorAll('.bar, .point, .box').length,
                      empty: s.querySelectorAll('.empty').length,
                      width: s.getBoundingClientRect().width}]))"""
            )
            ab_text = tab.locator("#ab").inner_text()
            ab_heads = tab.locator("#ab table.ab-comparisons th").all_inner_texts()
            shot.parent.mkdir(parents=True, exist_ok=True)
            tab.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert errors == []
    assert requests == [url + "/dashboard?period=24h"]  # self-contained: nothing else fetched
    # every model ran (escalate climbs s → m → l): one usage bar and one latency box each
    assert charts["model-usage"]["marks"] == 3 and charts["latency"]["marks"] == 3
    assert charts["escalation"]["marks"] == 1  # only micro-s ever starts
    assert charts["scores"]["marks"] == 10 and charts["cost-models"]["marks"] == 3
    assert all(c["width"] > 100 for c in charts.values())
    assert sum(c["empty"] == 0 for c in charts.values()) >= 4
    assert "s vs l" in ab_text and tid in ab_text
    assert ab_heads == [
        "metric", "arm A", "A value", "arm B", "B value", "difference", "confidence interval",
        "p-value", "always-valid p", "significant", "winner",
    ]  # fmt: skip
    assert "{" not in ab_text and "}" not in ab_text  # readable tables, no raw JSON
    assert shot.stat().st_size > 20_000
