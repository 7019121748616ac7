"""The HTTP service over real HTTP on loopback: uvicorn in a thread, real whisper.cpp on tiny
random models, a real SQLite store; the official openai client against the OpenAI route."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest
import soundfile as sf
from prometheus_client.parser import text_string_to_metric_families

from ladder_support import NAMES
from service_support import SAMPLE, expect_error, service_settings
from whisper_cascade.cli import build_parser
from whisper_cascade.errors import InvalidArgumentError
from whisper_cascade.service import ServiceSettings, create_app
from whisper_cascade.service.background import free_port
from whisper_cascade.service.background import serve_in_thread as serve
from whisper_cascade.store import SqliteStore, open_store

KEY = "s3cret-key"


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("db") / "store.db"


@pytest.fixture(scope="module")
def url(models: Path, db: Path) -> Iterator[str]:
    with serve(create_app(service_settings(models, db))) as base:
        yield base


def _post(url: str, path: str, data: bytes = SAMPLE, **fields: str) -> httpx.Response:
    return httpx.post(url + path, files={"file": ("clip.wav", data)}, data=fields, timeout=120)


def test_transcribe_success(url: str) -> None:
    r = _post(url, "/transcribe", session_id="sess-1")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True and body["session_id"] == "sess-1"
    ms = body["model_selection"]
    assert ms["initial_model"] == ms["final_model"] == "micro-s"
    assert ms["escalation_reason"] == "accepted" and ms["escalation_count"] == 0
    tr = body["transcription_result"]
    assert set(tr) == {"text", "segments", "info"}
    assert tr["info"]["duration"] == pytest.approx(len(sf.read(io.BytesIO(SAMPLE))[0]) / 16000)
    assert all({"start", "end", "text", "words"} <= set(s) for s in tr["segments"])


def test_transcribe_with_preset_and_ladder(url: str) -> None:
    body = _post(url, "/transcribe", preset="escalate").json()
    assert body["model_selection"]["final_model"] == "micro-l"
    assert body["model_selection"]["escalation_count"] == 2
    body = _post(url, "/transcribe", ladder="micro", preset="accept-all").json()
    assert body["transcription_result"]["info"]["ladder"] == "micro"


def test_transcribe_errors(url: str) -> None:
    assert "AudioError" not in expect_error(
        _post(url, "/transcribe", b"hello, not audio"), 415, "AudioError"
    )
    assert "0 bytes" in expect_error(_post(url, "/transcribe", b""), 400, "AudioError")
    assert "nope" in expect_error(
        _post(url, "/transcribe", preset="nope"), 400, "InvalidArgumentError"
    )
    for ladder in ("/tmp/ggml-x.bin", "micro-s,micro-l", "../models"):
        expect_error(_post(url, "/transcribe", ladder=ladder), 400, "InvalidArgumentError")
    r = httpx.post(url + "/transcribe", data={"preset": "fast"}, timeout=30)
    assert "file" in expect_error(r, 400, "InvalidRequestError")
    expect_error(httpx.get(url + "/no-such-route"), 404, "NotFound")
    expect_error(httpx.get(url + "/transcribe"), 405, "HTTPError")


def test_intelligent_select(url: str) -> None:
    r = _post(url, "/intelligent-select", ladder="micro")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True and body["start_model"] in NAMES
    assert body["ladder_models"] == list(NAMES) and body["reason"]
    assert body["features"]["duration_s"] > 0
    expect_error(_post(url, "/intelligent-select", b"RIFF\x00\x00"), 415, "AudioError")


def test_models_lists_names_not_paths(url: str) -> None:
    body = httpx.get(url + "/models").json()
    assert body["default_preset"] == "accept-all" and body["default_ladder"] == "micro"
    by_name = {m["name"]: m for m in body["models"]}
    assert all(by_name[n]["present"] for n in NAMES)
    assert "path" not in by_name["micro-s"]
    assert body["ladders"]["micro"] == list(NAMES)
    assert {"accept-all", "escalate", "balanced"} <= set(body["presets"])


def test_openai_client_formats(url: str) -> None:
    client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
    audio = ("clip.wav", SAMPLE)
    plain = client.audio.transcriptions.create(model="whisper-1", file=audio)
    assert isinstance(plain.text, str)
    text = client.audio.transcriptions.create(model="whisper-1", file=audio, response_format="text")
    assert isinstance(text, str) and text.strip() == plain.text.strip()
    srt = client.audio.transcriptions.create(model="whisper-1", file=audio, response_format="srt")
    vtt = client.audio.transcriptions.create(model="whisper-1", file=audio, response_format="vtt")
    assert vtt.startswith("WEBVTT")
    if plain.text.strip():
        assert "-->" in srt and srt.startswith("1\n") and "," in srt.split("\n")[1]
    verbose = client.audio.transcriptions.create(
        model="whisper-1",
        file=audio,
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
        language="en",
        temperature=0.0,
        prompt="kitchen",
    )
    assert verbose.language == "en" and verbose.duration > 1.0
    assert verbose.text == plain.text
    extra = verbose.model_dump()
    assert extra["model_selection"]["final_model"] == "micro-s"
    for i, seg in enumerate(verbose.segments or []):
        assert seg.id == i and seg.end >= seg.start and seg.temperature == 0.0
        assert all(isinstance(t, int) for t in seg.tokens) and seg.avg_logprob <= 0.0
        assert seg.compression_ratio >= 0.0 and 0.0 <= seg.no_speech_prob <= 1.0
    assert verbose.words is not None
    assert all(w.end >= w.start for w in verbose.words)


def test_openai_model_names(url: str) -> None:
    client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
    audio = ("clip.wav", SAMPLE)
    one = client.audio.transcriptions.create(
        model="micro-m", file=audio, response_format="verbose_json"
    )
    assert one.model_dump()["model_selection"]["final_model"] == "micro-m"
    esc = client.audio.transcriptions.create(
        model="escalate", file=audio, response_format="verbose_json"
    )
    assert esc.model_dump()["model_selection"]["final_model"] == "micro-l"
    with pytest.raises(openai.BadRequestError) as info:
        client.audio.transcriptions.create(model="/etc/passwd", file=audio)
    assert "unknown model" in str(info.value)
    for bad in (
        {"response_format": "xml"},
        {"language": "fr"},
        {"temperature": 3.0},
        {"timestamp_granularities": ["word"]},  # words need verbose_json
    ):
        with pytest.raises(openai.BadRequestError):
            client.audio.transcriptions.create(model="whisper-1", file=audio, **bad)  # type: ignore[call-overload]
    with pytest.raises(openai.APIStatusError) as status:
        client.audio.transcriptions.create(model="whisper-1", file=("x.wav", b"garbage bytes"))
    assert status.value.status_code == 415


def test_jobs_lifecycle(url: str, db: Path) -> None:
    r = _post(url, "/jobs", preset="escalate", session_id="s9")
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    bad = _post(url, "/jobs", b"definitely not audio").json()["id"]
    seen = set()
    deadline = time.monotonic() + 120
    while True:
        body = httpx.get(f"{url}/jobs/{job_id}").json()
        seen.add(body["status"])
        if body["status"] in ("done", "failed") or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert body["status"] == "done", body
    assert seen <= {"queued", "running", "done"}
    assert body["request"]["preset"] == "escalate"
    assert body["result"]["success"] is True and body["result"]["session_id"] == "s9"
    assert body["result"]["model_selection"]["final_model"] == "micro-l"
    while (failed := httpx.get(f"{url}/jobs/{bad}").json())["status"] != "failed":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert failed["error"]["type"] == "AudioError" and failed["result"] is None
    with SqliteStore(db) as store:  # persisted
        rec = store.get_service_job(job_id)
        assert rec is not None and rec.status == "done" and rec.result_json
        rec = store.get_service_job(bad)
        assert rec is not None and rec.status == "failed"
    expect_error(httpx.get(f"{url}/jobs/unknown-id"), 404, "NotFound")


def test_health_and_metrics(url: str) -> None:
    _post(url, "/transcribe", preset="escalate")
    health = httpx.get(url + "/health").json()
    assert health["status"] == "ok" and health["store"]["reachable"] is True
    assert health["queue"]["queue_size"] == 256 and health["queue"]["workers"] == 2
    assert set(health["breakers"]) >= set(NAMES)
    text = httpx.get(url + "/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert all(name.startswith("whisper_cascade_") for name in families)
    requests = {
        (s.labels["endpoint"], s.labels["status"]): s.value
        for s in families["whisper_cascade_requests"].samples
        if s.name.endswith("_total")
    }
    assert requests[("/transcribe", "200")] >= 1
    escalations = families["whisper_cascade_escalations"].samples
    assert sum(s.value for s in escalations if s.name.endswith("_total")) >= 2
    latency = families["whisper_cascade_transcription_latency_seconds"].samples
    assert {s.labels.get("model") for s in latency} >= {"micro-s", "micro-l"}
    for name in ("whisper_cascade_time_saved_seconds", "whisper_cascade_errors",
                 "whisper_cascade_queue_depth", "whisper_cascade_breaker_open"):  # fmt: skip
        assert name in families


def test_auth(models: Path, tmp_path: Path) -> None:
    with serve(create_app(service_settings(models, tmp_path / "a.db", api_key=KEY))) as url:
        expect_error(_post(url, "/transcribe"), 401, "AuthenticationError")
        r = httpx.post(
            url + "/transcribe",
            files={"file": ("a.wav", SAMPLE)},
            headers={"Authorization": "Bearer wrong"},
        )
        expect_error(r, 401, "AuthenticationError")
        assert r.headers["www-authenticate"] == "Bearer"
        expect_error(httpx.get(url + "/metrics"), 401, "AuthenticationError")
        assert httpx.get(url + "/health").status_code == 200  # open for load balancers
        ok = httpx.get(url + "/models", headers={"Authorization": f"Bearer {KEY}"})
        assert ok.status_code == 200
        good = openai.OpenAI(base_url=url + "/v1", api_key=KEY, max_retries=0)
        assert isinstance(
            good.audio.transcriptions.create(model="whisper-1", file=("a.wav", SAMPLE)).text, str
        )
        bad = openai.OpenAI(base_url=url + "/v1", api_key="nope", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            bad.audio.transcriptions.create(model="whisper-1", file=("a.wav", SAMPLE))


def test_upload_limit(models: Path, tmp_path: Path) -> None:
    limit = len(SAMPLE) - 1000  # within the multipart slack: the upload reader refuses it
    with serve(
        create_app(service_settings(models, tmp_path / "l.db", max_upload_bytes=limit))
    ) as url:
        expect_error(_post(url, "/transcribe"), 413, "PayloadTooLarge")
        big = SAMPLE + b"\0" * (200 * 1024)  # over limit + slack: refused before parsing
        expect_error(_post(url, "/transcribe", big), 413, "PayloadTooLarge")
        r = _post(url, "/v1/audio/transcriptions", big, model="whisper-1")
        assert r.status_code == 413 and r.json()["error"]["type"] == "PayloadTooLarge"
        r = _post(url, "/v1/audio/transcriptions", model="whisper-1")
        assert r.status_code == 413 and r.json()["error"]["code"] == 413
        small = SAMPLE[: limit - 10]  # a truncated wav still decodes
        assert _post(url, "/transcribe", small).status_code in (200, 415)


def _long_wav(seconds: float) -> bytes:
    samples, rate = sf.read(io.BytesIO(SAMPLE), dtype="float32")
    reps = int(np.ceil(seconds * rate / len(samples)))
    buf = io.BytesIO()
    sf.write(buf, np.tile(samples, reps), rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def test_queue_full_answers_429(models: Path, tmp_path: Path) -> None:
    settings = service_settings(models, tmp_path / "q.db", queue_size=1, workers=1)
    slow = _long_wav(8.0)
    with serve(create_app(settings)) as url:
        with ThreadPoolExecutor(8) as pool:
            statuses = list(
                pool.map(lambda _: _post(url, "/transcribe", slow, preset="escalate"), range(8))
            )
        codes = [r.status_code for r in statuses]
        assert codes.count(429) >= 1 and codes.count(200) >= 2, codes
        assert codes.count(429) + codes.count(200) == 8
        rejected = next(r for r in statuses if r.status_code == 429)
        assert "capacity 2" in expect_error(rejected, 429, "QueueFullError")
        text = httpx.get(url + "/metrics").text
        fam = {f.name: f for f in text_string_to_metric_families(text)}
        total = sum(s.value for s in fam["whisper_cascade_queue_rejections"].samples
                    if s.name.endswith("_total"))  # fmt: skip
        assert total == codes.count(429)
        assert httpx.get(url + "/health").json()["queue"]["depth"] == 0


def test_failing_model_trips_breaker_and_falls_back(models: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in NAMES:
        shutil.copy(models / f"ggml-{name}.bin", broken / f"ggml-{name}.bin")
    (broken / "ggml-micro-s.bin").write_bytes(b"lmgg" + b"\0" * 64)
    settings = service_settings(
        broken, tmp_path / "b.db", breaker_threshold=1, breaker_cooldown_s=600
    )
    with serve(create_app(settings)) as url:
        for expected in ("model_failed", "circuit_open"):
            body = _post(url, "/transcribe").json()
            ms = body["model_selection"]
            assert ms["final_model"] == "micro-m"
            assert ms["decision_history"][0]["reason"] == expected
        health = httpx.get(url + "/health").json()
        assert health["status"] == "degraded"
        assert health["breakers"]["micro-s"]["state"] == "open"
        fam = {f.name: f for f in text_string_to_metric_families(httpx.get(url + "/metrics").text)}
        opened = {s.labels["model"]: s.value for s in fam["whisper_cascade_breaker_open"].samples}
        assert opened["micro-s"] == 1.0 and opened["micro-m"] == 0.0
        failures = {
            s.labels["reason"]: s.value
            for s in fam["whisper_cascade_model_failures"].samples
            if s.name.endswith("_total")
        }
        assert failures == {"model_failed": 1.0, "circuit_open": 1.0}


def test_all_models_missing_is_503(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with serve(create_app(service_settings(empty, tmp_path / "e.db"))) as url:
        expect_error(_post(url, "/transcribe"), 503, "ModelNotFoundError")
        models = httpx.get(url + "/models").json()["models"]
        assert not any(m["present"] for m in models if m["name"] in NAMES)


def test_settings_validation() -> None:
    for bad in ({"workers": 0}, {"queue_size": -1}, {"max_upload_bytes": 0}, {"api_key": " "}):
        with pytest.raises(InvalidArgumentError):
            ServiceSettings(**bad)  # type: ignore[arg-type]


def test_serve_cli(models: Path, tmp_path: Path) -> None:
    args = build_parser().parse_args(["serve", "--queue-size", "3", "--max-upload-mb", "1"])
    assert args.queue_size == 3 and args.max_upload_mb == 1.0 and args.host == "127.0.0.1"
    port = free_port()
    env = {**os.environ, "WHISPER_CASCADE_API_KEY": KEY}
    cmd = [sys.executable, "-m", "whisper_cascade.cli", "serve", "--port", str(port),
           "--models-dir", str(models), "--db", str(tmp_path / "cli.db"), "--workers", "1",
           "--log-level", "warning"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
        assert health.json()["queue"]["queue_size"] == 256
        r = httpx.get(f"http://127.0.0.1:{port}/models")
        assert r.status_code == 401  # key from the environment
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_streamed_upload_over_limit(models: Path, tmp_path: Path) -> None:
    settings = service_settings(models, tmp_path / "c.db", max_upload_bytes=1000)

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while it streams
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
        for _ in range(40):
            yield b"\0" * 4096
        yield b"\r\n--b--\r\n"

    with serve(create_app(settings)) as url:
        r = httpx.post(
            url + "/transcribe",
            content=chunks(),
            headers={"Content-Type": "multipart/form-data; boundary=b"},
        )
        expect_error(r, 413, "PayloadTooLarge")
        assert httpx.get(url + "/health").status_code == 200


def test_active_registry_model_by_name(models: Path, tmp_path: Path) -> None:
    store = open_store(tmp_path / "r.db")
    path = models / "ggml-micro-m.bin"
    store.register_model("custom-x", str(path), "", "micro", "1")
    store.set_deployment("custom-x", "1", "active")
    store.register_model("custom-y", str(path), "", "micro", "1")  # registered, not active
    with serve(create_app(service_settings(models, tmp_path / "unused.db"), store=store)) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
        r = client.audio.transcriptions.create(
            model="custom-x", file=("a.wav", SAMPLE), response_format="verbose_json"
        )
        assert r.model_dump()["model_selection"]["final_model"] == "custom-x"
        with pytest.raises(openai.BadRequestError):
            client.audio.transcriptions.create(model="custom-y", file=("a.wav", SAMPLE))
        names = {m["name"] for m in httpx.get(url + "/models").json()["models"]}
        assert "custom-x" in names and "custom-y" not in names
