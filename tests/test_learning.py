"""Learning wiring with real whisper.cpp on random-weight models and real store files:
content classes, store records, the analysis cache in the store, bandit start selection that
survives restarts, the learned preset and the CLI flags."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ladder_support import ACCEPT_ALL, ESCALATE, NAMES
from pg_support import PgServer
from whisper_cascade import cli
from whisper_cascade.audio import Audio, load_audio, sample_path
from whisper_cascade.cascade import Cascade
from whisper_cascade.content import content_class
from whisper_cascade.errors import InvalidArgumentError
from whisper_cascade.features import analyze
from whisper_cascade.learned import LearnedPolicy, save_policy
from whisper_cascade.start_selector import StartSelector, start_key, start_reward
from whisper_cascade.store import SpoolingStore, SqliteStore, Store, open_store


@pytest.fixture(scope="module")
def sample() -> Audio:
    return load_audio(sample_path())


def _counting_analyzer(calls: list[int]):  # type: ignore[no-untyped-def]
    def run(audio: Audio):  # type: ignore[no-untyped-def]
        calls.append(1)
        return analyze(audio.samples)

    return run


def test_content_class_reaches_result_and_thresholds(models: Path, sample: Audio) -> None:
    cls = content_class(analyze(sample.samples))
    # the class's own threshold (0) applies to this audio; other audio would get 1.1
    preset = ESCALATE.with_overrides(
        hallucination_check=False, class_thresholds={cls: {n: 0.0 for n in NAMES}}
    )
    r = Cascade("micro", preset, models_dir=models, n_threads=1).transcribe(sample)
    ms = r.model_selection
    assert r.info["content_class"] == ms["content_class"] == cls
    assert ms["start_selection"] == "rules" and len(ms["job_id"]) == 32
    assert ms["accepted"] and ms["decision_history"][0]["threshold"] == 0.0
    r2 = Cascade("micro", ESCALATE, models_dir=models, segment_escalation=False).transcribe(sample)
    assert r2.model_selection["decision_history"][0]["threshold"] == 1.1
    assert r2.model_selection["job_id"] != ms["job_id"]


def _check_records(store: Store, ms: dict, cls: str, duration: float) -> None:  # type: ignore[type-arg]
    jobs = store.jobs_since(0)
    assert [j.model for j in jobs] == list(NAMES)
    assert {j.job_id for j in jobs} == {ms["job_id"]}
    for job, step in zip(jobs, ms["decision_history"], strict=True):
        assert job.score == step["score"] and job.content_class == cls
        assert job.processing_time_s == step["time_s"] and job.audio_duration_s == duration
        assert job.cpu_seconds >= 0 and job.peak_memory_bytes > 10_000_000
    assert sum(j.cpu_seconds for j in jobs) > 0
    (decision,) = store.decisions_since(0)
    assert decision.job_id == ms["job_id"] and decision.final_model == "micro-l"
    recorded = json.loads(json.dumps(dict(ms["decision_metrics"], largest_model="micro-l")))
    assert json.loads(decision.metrics_json) == recorded
    assert decision.time_saved_s == ms["processing_time_saved_s"]
    (quality,) = store.quality_since(0)
    assert quality.score == ms["decision_metrics"]["score"] and quality.wer is None


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_store_records_and_analysis_cache(
    kind: str, models: Path, sample: Audio, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if kind == "sqlite":
        location = str(tmp_path / "store.db")
    else:
        server: PgServer = request.getfixturevalue("pg_server")
        location = server.new_database()
    calls: list[int] = []
    with open_store(location, spool_dir=tmp_path) as store:
        c = Cascade(
            "micro",
            ESCALATE,
            models_dir=models,
            segment_escalation=False,
            store=store,
            analyzer=_counting_analyzer(calls),
        )
        r = c.transcribe(sample)
        _check_records(store, r.model_selection, r.info["content_class"], sample.duration_s)
    assert calls == [1]
    with open_store(location, spool_dir=tmp_path) as store:  # a restart: memory cache is empty
        c2 = Cascade("micro", ACCEPT_ALL, models_dir=models, store=store)
        c2._analyzer = _counting_analyzer(calls)
        r2 = c2.transcribe(sample)
        assert calls == [1] and r2.info["analysis"] == r.info["analysis"]
        assert c2.health()["analysis_cache"]["misses"] == 1
        assert len(store.jobs_since(0)) == 4


def test_reports_read_the_recorded_largest_model_and_score(
    models: Path, sample: Audio, tmp_path: Path
) -> None:
    from whisper_cascade.config import Prices
    from whisper_cascade.report import cost_report, performance_report

    with SqliteStore(tmp_path / "store.db") as store:
        # only micro-s runs: without the recorded name the report would guess micro-s
        c = Cascade("micro", ACCEPT_ALL, models_dir=models, store=store)
        ms = c.transcribe(sample).model_selection
        (decision,) = store.decisions_since(0)
        metrics = json.loads(decision.metrics_json)
        assert metrics["largest_model"] == ms["largest_model"] == "micro-l"
        assert metrics["score"] == ms["decision_metrics"]["score"]
        cost = cost_report(store, Prices(cpu_hour=1.0, per_model={"micro-l": 0.5}))
        perf = performance_report(store)
    assert cost["largest_model"] == "micro-l"
    (job,) = cost["jobs"]
    assert job["models"] == ["micro-s"] and job["largest_only_cost"] >= 0.5
    assert perf["averages"]["final_score"] == metrics["score"]
    assert perf["totals"]["time_saved_s"] == ms["processing_time_saved_s"]


def _reward_of(c: Cascade, cls: str, model: str) -> float:
    stats = c.learning.selector(c.ladder).stats(cls)[model]
    assert stats["pulls"] == 1
    return float(stats["mean_reward"])


def test_reference_wer_reaches_result_store_and_bandit(
    models: Path, sample: Audio, tmp_path: Path
) -> None:
    from whisper_cascade.evaluation import word_error_rate

    hypothesis = Cascade("micro", ESCALATE, models_dir=models, segment_escalation=False)
    truth = hypothesis.transcribe(sample).text  # deterministic decoding: the same text again
    for name, reference in (("exact", truth), ("wrong", "turn off the garden sprinklers now")):
        with SqliteStore(tmp_path / f"{name}.db") as store:
            c = Cascade(
                "micro", ESCALATE, models_dir=models, segment_escalation=False, store=store,
                start_selection="bandit",
            )  # fmt: skip
            r = c.transcribe(sample, reference=reference)
            ms = r.model_selection
            wer = word_error_rate(reference, r.text)
            assert ms["wer"] == wer and (wer == 0.0) == (name == "exact")
            (quality,) = store.quality_since(0)
            assert quality.has_reference and quality.wer == wer
            jobs = store.jobs_since(0)
            assert [j.wer for j in jobs[:-1]] == [None] * (len(jobs) - 1) and jobs[-1].wer == wer
            spent = sum(h["cost"] for h in ms["decision_history"])
            fraction = spent / max(m.relative_cost for m in c.ladder.models)
            expected = start_reward(min(1.0, max(0.0, 1.0 - wer)), fraction)
            got = _reward_of(c, ms["content_class"], ms["initial_model"])
            assert got == pytest.approx(expected)
            if name == "exact":  # the score would have given less than a perfect transcript
                assert got > start_reward(ms["decision_metrics"]["score"], fraction)
    plain = Cascade("micro", ACCEPT_ALL, models_dir=models).transcribe(sample)
    assert plain.model_selection["wer"] is None
    with pytest.raises(InvalidArgumentError, match="reference"):
        Cascade("micro", ACCEPT_ALL, models_dir=models).transcribe(sample, reference=b"x")  # type: ignore[arg-type]


def test_run_eval_gives_the_cascade_each_reference(models: Path, tmp_path: Path) -> None:
    from whisper_cascade.evaluation import run_eval
    from whisper_cascade.manifest import ManifestItem

    items = [
        ManifestItem(audio="s.wav", path=sample_path(), text=text, condition=None)
        for text in ("turn on the kitchen lights", "")
    ]
    with SqliteStore(tmp_path / "eval.db") as store:
        c = Cascade("micro", ACCEPT_ALL, models_dir=models, store=store)
        report = run_eval(items, c)
        quality = store.quality_since(0)
    assert [q.has_reference for q in quality] == [True, True]
    assert [q.wer for q in quality] == [i.wer for i in report.items]


def test_store_failures_never_fail_a_transcription(
    models: Path, sample: Audio, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "db").write_text("a file where the DB folder should be")
    (tmp_path / "spool").write_text("a file where the spool folder should be")
    store = SpoolingStore(
        lambda: SqliteStore(tmp_path / "db" / "s.db"), tmp_path / "spool" / "s.jsonl"
    )
    with caplog.at_level(logging.WARNING):
        c = Cascade("micro", ACCEPT_ALL, models_dir=models, store=store, start_selection="bandit")
        r = c.transcribe(sample)
    assert r.text is not None and r.model_selection["start_selection"] == "bandit"
    messages = " ".join(rec.getMessage() for rec in caplog.records)
    assert "job record" in messages and "decision record" in messages
    assert "state not saved" in messages and "analysis" in messages
    # a garbage cached analysis is recomputed
    with SqliteStore(tmp_path / "ok.db") as ok:
        from whisper_cascade.breaker import audio_hash

        ok.put_analysis(audio_hash(sample.samples), "[1, 2]")
        c3 = Cascade("micro", ACCEPT_ALL, models_dir=models, store=ok)
        assert c3.analyze(sample)[0] is not None
        assert "recomputing" in caplog.text


def test_start_selector_reward_persistence_and_bad_state(tmp_path: Path) -> None:
    assert start_reward(0.9, 0.5, 0.5) == pytest.approx(0.65)
    assert start_reward(0.2, 2.0) == 0.0 and start_reward(1.5, 0.0) == 1.0
    with pytest.raises(InvalidArgumentError):
        start_reward(float("nan"), 0.0)
    for bad in ({"model_names": []}, {"policy": "nope"}, {"cost_weight": -1.0}):
        kw = {"model_names": ["a", "b"], **bad}
        with pytest.raises(InvalidArgumentError):
            StartSelector("x", **kw)  # type: ignore[arg-type]
    with SqliteStore(tmp_path / "s.db") as store:
        sel = StartSelector("lad", ["a", "b"], store=store, seed=3)
        for _ in range(40):
            sel.update("c", "a", 0.9, 0.1)
            sel.update("c", "b", 0.3, 1.0)
        again = StartSelector("lad", ["a", "b"], store=store)
        assert again.stats("c")["a"]["pulls"] == sel.stats("c")["a"]["pulls"] > 0
        assert again.bandit.to_bytes() == sel.bandit.to_bytes()
        assert sel.bandit.best_arm("c") == "a" and sel.choose("c") in {"a", "b"}
        assert StartSelector("lad", ["a", "b", "c"], store=store).bandit.contexts() == []
        store.save_bandit_state(start_key("lad"), b"garbage")
        assert StartSelector("lad", ["a", "b"], store=store).bandit.contexts() == []
        ucb = StartSelector("u", ["a"], policy="ucb1")
        assert ucb.update("c", "a", 1.0, 0.0) == 1.0  # no store: learns in memory only


def test_bandit_start_survives_restart(models: Path, sample: Audio, tmp_path: Path) -> None:
    db = tmp_path / "bandit.db"
    cls = content_class(analyze(sample.samples))
    with SqliteStore(db) as store:
        c = Cascade("micro", ACCEPT_ALL, models_dir=models, store=store, start_selection="bandit")
        starts = [c.transcribe(sample).model_selection["initial_model"] for _ in range(4)]
        r = c.transcribe(sample)
        assert r.model_selection["start_selection"] == "bandit"
        assert r.info["preselect_reason"] == "bandit"
        state = c.learning.selector(c.ladder).bandit.to_bytes()
        assert set(starts) <= set(NAMES)
    with SqliteStore(db) as store:  # a new process, the same file
        c2 = Cascade("micro", ACCEPT_ALL, models_dir=models, store=store, start_selection="bandit")
        sel = c2.learning.selector(c2.ladder)
        assert sel.bandit.to_bytes() == state
        assert sum(s["pulls"] for s in sel.stats(cls).values()) == 5
        c2.transcribe(sample)
        assert sum(s["pulls"] for s in sel.stats(cls).values()) == 6
        assert store.load_bandit_state(start_key("micro")) == sel.bandit.to_bytes()
        silence = Audio(np.zeros(32000, dtype=np.float32), "silence", 16000, 1)
        r = c2.transcribe(silence)  # no speech: the first rung, and no bandit update
        assert r.model_selection["initial_model"] == "micro-s"
        assert r.info["preselect_reason"] == "no_speech"
        assert r.model_selection["start_selection"] == "bandit"
        assert sum(s["pulls"] for s in sel.stats(cls).values()) == 6
        rec = c2.recommend(sample)
        assert rec["start_selection"] == "bandit" and rec["start_model"] in NAMES
    with pytest.raises(InvalidArgumentError, match="start_selection"):
        Cascade("micro", start_selection="random")


def test_learned_preset(models: Path, sample: Audio, tmp_path: Path) -> None:
    cls = content_class(analyze(sample.samples))
    with pytest.raises(InvalidArgumentError, match="store"):
        Cascade("micro", "learned", models_dir=models)
    with SqliteStore(tmp_path / "p.db") as store:
        with pytest.raises(InvalidArgumentError, match="learn"):
            Cascade("micro", "learned", models_dir=models, store=store)
        save_policy(store, LearnedPolicy("micro", {n: 1.2 for n in NAMES}))
        c = Cascade("micro", "learned", models_dir=models, store=store, segment_escalation=False)
        assert c.preset.name == "learned" and c.preset.thresholds["micro-s"] == 1.2
        r = c.transcribe(sample)
        assert r.info["preset"] == "learned" and r.model_selection["start_selection"] == "bandit"
        assert {h["threshold"] for h in r.model_selection["decision_history"]} == {1.2}
        policy = LearnedPolicy("micro", {}, class_thresholds={cls: {n: 0.25 for n in NAMES}})
        save_policy(store, policy)
        assert c.transcribe(sample).model_selection["decision_history"][0]["threshold"] == 1.2
        c.reload_policy()  # now the per-class threshold of this audio's class applies
        r = c.transcribe(sample)
        assert r.model_selection["decision_history"][0]["threshold"] == 0.25
        # per call, on a cascade built with another preset; a user preset named learned wins
        plain = Cascade("micro", ACCEPT_ALL, models_dir=models, store=store)
        assert plain.transcribe(sample, preset="learned").info["preset"] == "learned"
        mine = ACCEPT_ALL.with_overrides(name="learned")
        own = Cascade("micro", "learned", models_dir=models, presets={"learned": mine})
        assert own.transcribe(sample).model_selection["start_selection"] == "rules"


def _cli_json(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict:  # type: ignore[type-arg]
    assert cli.main(args) == 0
    out: dict = json.loads(capsys.readouterr().out.strip().splitlines()[-1])  # type: ignore[type-arg]
    return out


def test_cli_store_flags_and_budgets(
    models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s = str(sample_path())
    db = tmp_path / "cli.db"
    base = ["transcribe", s, "--models-dir", str(models), "--json"]
    r = _cli_json([*base, "--db", str(db)], capsys)
    with SqliteStore(db) as store:
        assert {j.job_id for j in store.jobs_since(0)} == {r["model_selection"]["job_id"]}
    r = _cli_json([*base, "--no-store", "--start-selection", "bandit"], capsys)
    assert r["model_selection"]["start_selection"] == "bandit"
    assert not (tmp_path / "default-store.db").exists()
    _cli_json(base, capsys)  # default: $WHISPER_CASCADE_DB (set per test by conftest)
    with SqliteStore(tmp_path / "default-store.db") as store:
        assert len(store.decisions_since(0)) == 1
    r = _cli_json([*base, "--no-store", "--min-score", "1.2", "--max-cost", "1.01"], capsys)
    ms = r["model_selection"]
    assert ms["escalation_reason"] == "budget_exhausted" and ms["final_model"] == "micro-s"
    assert ms["decision_history"][0]["threshold"] == 1.2
    r = _cli_json([*base, "--no-store", "--min-score", "1.2", "--max-latency", "1e-6"], capsys)
    assert r["model_selection"]["escalation_reason"] == "budget_exhausted"
    with pytest.raises(SystemExit):
        cli.main([*base, "--max-cost", "0"])
    with pytest.raises(SystemExit):
        cli.main([*base, "--min-score", "x"])
    capsys.readouterr()
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"audio": s, "text": "turn on the kitchen lights"}) + "\n")
    evaldb = tmp_path / "eval.db"
    args = ["eval", str(manifest), "--models-dir", str(models), "--json", "--db", str(evaldb)]
    assert cli.main(args) == 0
    with SqliteStore(evaldb) as store:
        assert len(store.decisions_since(0)) == 1
        (quality,) = store.quality_since(0)
        assert quality.has_reference and quality.wer is not None


def test_cli_flagsed_preset_end_to_end(
    models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s = str(sample_path())
    db = tmp_path / "learned.db"
    base = ["transcribe", s, "--models-dir", str(models), "--json", "--preset", "learned"]
    assert cli.main([*base, "--db", str(db)]) == 1
    assert "learn" in capsys.readouterr().err
    with SqliteStore(db) as store:
        save_policy(store, LearnedPolicy("micro", {n: 0.0 for n in NAMES}))
    r = _cli_json([*base, "--db", str(db)], capsys)
    assert r["info"]["preset"] == "learned" and r["model_selection"]["start_selection"] == "bandit"
    assert r["model_selection"]["decision_history"][0]["threshold"] == 0.0
    with SqliteStore(db) as store:
        assert store.load_bandit_state(start_key("micro")) is not None
    assert cli.main([*base, "--no-store"]) == 1
    assert "store" in capsys.readouterr().err


def test_example_llm_arms_converges_and_persists(tmp_path: Path) -> None:
    script = Path(__file__).resolve().parents[1] / "examples" / "choose_llm_arms.py"
    db = str(tmp_path / "arms.db")
    reports = []
    for rounds in (150, 150):
        cmd = [sys.executable, str(script), "--db", db, "--rounds", str(rounds)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)
        reports.append(json.loads(done.stdout))
    first, second = reports
    assert first["total_rounds"] == 150 and second["total_rounds"] == 300  # state was kept
    assert second["best_arm"] == "mid-llm"
    assert (
        second["pulls"]["mid-llm"] > 150 and second["pulls"]["mid-llm"] > first["pulls"]["mid-llm"]
    )
    assert second["mean_reward"]["mid-llm"] == pytest.approx(0.75, abs=0.05)
