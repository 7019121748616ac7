"""The cascade end to end with real whisper.cpp on tiny random models (garbage transcripts,
decisions made deterministic by thresholds, corrupt files and budgets)."""

from __future__ import annotations

import json
import shutil
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import whisper_cascade
from ladder_support import ACCEPT_ALL, ESCALATE, NAMES
from whisper_cascade import cli
from whisper_cascade.audio import Audio, load_audio, sample_path
from whisper_cascade.cascade import Cascade
from whisper_cascade.errors import AudioError, InvalidArgumentError, ModelNotFoundError
from whisper_cascade.ladders import Ladder, spec_for
from whisper_cascade.results import ESCALATION_REASONS
from whisper_cascade.stitch import segment_scores


@pytest.fixture(scope="module")
def broken(models: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("broken")
    for name in NAMES:
        shutil.copy(models / f"ggml-{name}.bin", folder / f"ggml-{name}.bin")
    (folder / "ggml-micro-m.bin").write_bytes(b"lmgg" + b"\0" * 64)
    return folder


@pytest.fixture(scope="module")
def sample() -> Audio:
    return load_audio(sample_path())


@pytest.fixture(scope="module")
def cascade(models: Path) -> Cascade:
    return Cascade("micro", ACCEPT_ALL, models_dir=models, n_threads=1)


def test_accept_all_stops_at_first_with_full_block(cascade: Cascade, sample: Audio) -> None:
    r = cascade.transcribe(sample)
    ms = r.model_selection
    assert ms["initial_model"] == ms["final_model"] == "micro-s" == r.model
    assert ms["escalation_count"] == 0 and ms["escalation_reason"] == "accepted"
    assert ms["accepted"] is True and len(ms["decision_history"]) == 1
    assert isinstance(ms["processing_time_s"], float) and ms["processing_time_s"] > 0
    assert isinstance(ms["processing_time_saved_s"], float)
    # largest model estimate: observed time × cost ratio (6 / 1 for the placeholder costs)
    step = ms["decision_history"][0]
    assert ms["largest_model_estimate_s"] == pytest.approx(step["time_s"] * 6.0, rel=1e-6)
    assert set(step) == {"model", "scope", "reason", "score", "threshold", "time_s", "cost"} | {
        "spans",
        "error",
    }
    assert {"score", "mean", "compression_ratio", "flags"} <= set(ms["decision_metrics"])
    assert 0.0 <= ms["decision_metrics"]["score"] <= 1.0
    d = r.to_dict()
    json.dumps(d)
    assert {"audio", "text", "segments", "confidence", "model", "time_s", "info"} <= set(d)
    assert d["info"]["language"] == "en" and d["info"]["duration"] == sample.duration_s
    again = cascade.transcribe(sample)
    assert again.text == r.text and cascade.health()["analysis_cache"]["hits"] >= 1


def test_always_escalate_walks_the_whole_ladder(models: Path, sample: Audio) -> None:
    with Cascade("micro", ESCALATE, models_dir=models, segment_escalation=False) as c:
        r = c.transcribe(str(sample_path()))
    ms = r.model_selection
    assert [h["model"] for h in ms["decision_history"]] == list(NAMES)
    assert all(h["scope"] == "file" for h in ms["decision_history"])
    assert ms["final_model"] == "micro-l" and ms["escalation_count"] == 2
    assert ms["accepted"] is False and ms["kept_attempt"] == 2 and not ms["kept_best_score"]
    assert ms["escalation_reason"] in {"score_below_threshold", "hallucination_suspected"}


def test_keep_best_returns_the_best_scoring_run(models: Path, sample: Audio) -> None:
    keep = replace(ESCALATE, name="keep", keep_best=True)
    with Cascade("micro", keep, models_dir=models, segment_escalation=False) as c:
        ms = c.transcribe(str(sample_path())).model_selection
        last = c.transcribe(str(sample_path()), preset=ESCALATE).model_selection
    hist = ms["decision_history"]
    assert [h["model"] for h in hist] == list(NAMES)
    # The best-scoring run wins (later rung on ties, hallucination suspects last).
    plain = [i for i, h in enumerate(hist) if h["reason"] != "hallucination_suspected"]
    pool = plain or list(range(len(hist)))
    top = max(hist[i]["score"] for i in pool)
    kept = max(i for i in pool if hist[i]["score"] == top)
    assert ms["kept_attempt"] == kept and ms["final_model"] == hist[kept]["model"]
    assert ms["kept_best_score"] is (kept != len(hist) - 1)
    assert last["final_model"] == "micro-l" and last["kept_attempt"] == 2


def test_corrupt_middle_model_falls_back_and_breaker_opens(broken: Path, sample: Audio) -> None:
    now = [0.0]
    c = Cascade(
        "micro",
        ESCALATE,
        models_dir=broken,
        segment_escalation=False,
        breaker_threshold=2,
        breaker_cooldown_s=60.0,
        clock=lambda: now[0],
    )
    reasons = []
    for _ in range(3):
        hist = c.transcribe(sample).model_selection["decision_history"]
        assert [h["model"] for h in hist] == list(NAMES)
        reasons.append(hist[1]["reason"])
        assert hist[1]["error"]
    assert reasons == ["model_failed", "model_failed", "circuit_open"]
    assert c.health()["breakers"]["micro-m"]["state"] == "open"
    now[0] = 61.0
    assert c.health()["breakers"]["micro-m"]["state"] == "half_open"
    hist = c.transcribe(sample).model_selection["decision_history"]
    assert hist[1]["reason"] == "model_failed"  # the trial call ran and failed again
    assert c.health()["breakers"]["micro-m"]["state"] == "open"
    r = Cascade("micro-m,micro-l", ACCEPT_ALL, models_dir=broken).transcribe(sample)
    assert r.model_selection["escalation_reason"] == "model_failed"
    assert r.model_selection["final_model"] == "micro-l"


def test_budget_exhausted(models: Path, sample: Audio) -> None:
    c = Cascade("micro", ESCALATE, models_dir=models, max_cost=3.0, segment_escalation=False)
    ms = c.transcribe(sample).model_selection
    assert ms["escalation_reason"] == "budget_exhausted" and ms["final_model"] == "micro-s"
    assert ms["decision_history"][-1]["reason"] == "budget_exhausted"
    c2 = Cascade("micro", ESCALATE, models_dir=models, max_latency_s=1e-6)
    assert c2.transcribe(sample).model_selection["escalation_reason"] == "budget_exhausted"
    with pytest.raises(InvalidArgumentError):
        Cascade(max_cost=0)


def test_missing_models_and_bad_audio(tmp_path: Path, models: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="micro-s"):
        Cascade("micro", models_dir=tmp_path).transcribe(sample_path())
    with pytest.raises(AudioError):
        Cascade("micro", models_dir=models).transcribe(tmp_path / "missing.wav")


def test_analysis_failure_starts_from_the_default_model(models: Path, sample: Audio) -> None:
    def fail(audio: Audio) -> object:
        raise InvalidArgumentError("analysis broke")

    preset = ACCEPT_ALL.with_overrides(default_model="micro-m")
    c = Cascade("micro", preset, models_dir=models, analyzer=fail)  # type: ignore[arg-type]
    r = c.transcribe(sample)
    assert r.model_selection["initial_model"] == "micro-m"
    assert r.info["analysis"] is None and "analysis broke" in r.info["analysis_error"]
    assert r.info["preselect_reason"] == "no_analysis"
    rec = c.recommend(sample)
    assert rec["start_model"] == "micro-m" and rec["features"] is None


def test_segment_level_escalation_reruns_only_weak_spans(models: Path, sample: Audio) -> None:
    gap = np.zeros(8000, dtype=np.float32)
    samples = np.concatenate([sample.samples, gap] * 4)
    long = Audio(samples, "long", 16000, 1)
    rungs = Ladder(
        "short-window",
        tuple(
            replace(spec_for(str(models / f"ggml-{n}.bin")), audio_ctx=150, relative_cost=c)
            for n, c in (("micro-s", 1.0), ("micro-m", 3.0))
        ),
    )
    first = Cascade(rungs, ACCEPT_ALL).transcribe(long)
    tr = first.transcription
    assert tr is not None and len(tr.segments) >= 2
    scores = segment_scores(tr, ACCEPT_ALL.weights_for("micro-s"))
    cut = max(s.value for s in scores)
    assert first.model_selection["decision_metrics"]["score"] < cut
    c = Cascade(rungs, ACCEPT_ALL, min_score=cut, segment_max_share=1.0)
    r = c.transcribe(long)
    hist = r.model_selection["decision_history"]
    assert [h["scope"] for h in hist] == ["file", "segments"]
    spans = hist[1]["spans"]
    assert spans and sum(b - a for a, b in spans) < long.duration_s
    assert hist[1]["cost"] < 3.0
    kept = [
        seg.text
        for seg, s in zip(tr.segments, scores, strict=True)
        if s.value >= cut
        and not s.hallucination_suspected
        and not any(a <= (seg.start + seg.end) / 2 < b for a, b in spans)
    ]
    texts = [seg.text for seg in r.segments]
    assert kept and all(t in texts for t in kept)
    for a, b in zip(r.segments, r.segments[1:], strict=False):
        assert a.start <= a.end <= b.start <= b.end
    assert r.text == " ".join(t for t in texts if t)


def test_threads_share_one_cascade(cascade: Cascade, sample: Audio) -> None:
    expected = cascade.transcribe(sample).text
    out: list[str] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(2):
                out.append(cascade.transcribe(sample).text)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and out == [expected] * 8


def test_module_level_transcribe(models: Path, sample: Audio) -> None:
    r = whisper_cascade.transcribe(sample, preset=ACCEPT_ALL, models_dir=str(models))
    assert isinstance(r, whisper_cascade.CascadeResult)
    assert r.model_selection["escalation_reason"] in ESCALATION_REASONS
    with pytest.raises(InvalidArgumentError):
        whisper_cascade.transcribe(sample, ladders=[1])


def test_cli_transcribe_analyze_models_list(
    models: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s = str(sample_path())
    args = ["transcribe", s, s, "--models-dir", str(models), "--json", "--preset", "fast"]
    assert cli.main(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    for line in lines:
        obj = json.loads(line)
        assert {"audio", "text", "segments", "confidence", "model", "time_s"} <= set(obj)
        assert obj["model_selection"]["initial_model"] in NAMES
    assert cli.main(["transcribe", s, "--models-dir", str(models), "--ladder", "micro"]) == 0
    assert cli.main(["transcribe", "/nonexistent.wav", "--models-dir", str(models)]) == 1
    capsys.readouterr()
    assert cli.main(["analyze", s, "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["start_model"] in NAMES and rec["features"]["duration_s"] > 0
    assert cli.main(["analyze", s]) == 0
    assert "start with" in capsys.readouterr().out
    assert cli.main(["models", "list", "--json", "--models-dir", str(models)]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["ladders"]["openai"] == ["tiny", "base", "small", "medium", "large-v3"]
    by_name = {m["name"]: m for m in listing["models"]}
    assert by_name["micro-s"]["present"] is True and by_name["micro-s"]["size_bytes"] > 0
    assert "large-v3" in by_name and "size_bytes" in by_name["tiny"]
    assert cli.main(["models", "list"]) == 0
    assert "ladder openai" in capsys.readouterr().out


def test_cli_output_formats_and_eval(
    models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s = str(sample_path())
    out = tmp_path / "out"
    base = ["transcribe", s, "--models-dir", str(models)]
    assert cli.main([*base, "--output-format", "all", "--output-dir", str(out)]) == 0
    assert {p.suffix for p in out.iterdir()} == {".txt", ".vtt", ".srt", ".tsv", ".json"}
    model = str(models / "ggml-micro-s.bin")
    assert (
        cli.main(
            ["transcribe", s, "--model", model, "--output-format", "srt", "--output-dir", str(out)]
        )
        == 0
    )
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"audio": s, "text": "turn on the kitchen lights"}) + "\n")
    capsys.readouterr()
    assert cli.main(["eval", str(manifest), "--models-dir", str(models), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 1 and report["items"][0]["final_model"] in NAMES
    assert cli.main(["eval", str(manifest), "--model", model]) == 0
    assert capsys.readouterr().out


def test_learned_preset_of_a_custom_ladder_runs_on_that_ladder(models: Path, sample: Audio) -> None:
    from whisper_cascade.learned import LearnedPolicy, learned_preset

    names = [str(models / "ggml-micro-s.bin"), str(models / "ggml-micro-m.bin")]
    custom = Cascade(names, ACCEPT_ALL, models_dir=models, n_threads=1)
    policy = LearnedPolicy(ladder=custom.ladder.name, thresholds={"micro-s": 0.0})
    result = custom.transcribe(sample, preset=learned_preset(policy))
    assert result.model_selection["final_model"] == "micro-s"


def test_models_dir_registry_declares_ladders(models: Path, sample: Audio, tmp_path: Path) -> None:
    import json

    from whisper_cascade.ladders import folder_ladders

    for name in ("micro-s", "micro-l"):
        (tmp_path / f"ggml-{name}.bin").symlink_to(models / f"ggml-{name}.bin")
    entries = [
        {"name": n, "file": f"ggml-{n}.bin", "window_s": 10.0, "audio_ctx": 500, "relative_cost": c}
        for n, c in (("micro-s", 1.0), ("micro-l", 4.5))
    ]
    registry = {"models": entries, "ladders": {"mine": ["micro-s", "micro-l"]}}
    (tmp_path / "registry.json").write_text(json.dumps(registry), encoding="utf-8")
    found = folder_ladders(tmp_path)["mine"]
    assert found.names == ("micro-s", "micro-l") and found.models[1].relative_cost == 4.5
    assert not any(m.bundled for m in found.models) and found.models[0].path is not None
    assert folder_ladders(None) == {} and folder_ladders(models) == {}
    mine = Cascade("mine", ACCEPT_ALL, models_dir=tmp_path, n_threads=1)
    result = mine.transcribe(sample, preset=ACCEPT_ALL.with_overrides(thresholds={"micro-s": 2.0}))
    history = result.model_selection["decision_history"]
    assert [h["model"] for h in history] == ["micro-s", "micro-l"]


def test_each_model_is_scored_with_its_own_weights(models: Path, sample: Audio) -> None:
    from whisper_cascade.features import analyze
    from whisper_cascade.policy import Weights, score

    own = Weights(consistency=0.0, coverage=0.0, low_confidence_penalty=0.0, logprob_penalty=0.0)
    preset = ACCEPT_ALL.with_overrides(model_weights={"micro-s": own})
    with Cascade("micro", preset, models_dir=models, n_threads=1) as c:
        r = c.transcribe(sample)
    feats = analyze(sample.samples)
    got = r.model_selection["decision_metrics"]["score"]
    assert r.model == "micro-s"
    assert got == pytest.approx(score(r.confidence, feats, own).value)
    assert got != pytest.approx(score(r.confidence, feats, ACCEPT_ALL.weights).value)
