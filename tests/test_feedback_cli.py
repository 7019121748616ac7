"""``whisper-cascade feedback`` and ``learn`` end to end (random-weight models: mechanics only)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from whisper_cascade.audio import sample_path
from whisper_cascade.cli import main
from whisper_cascade.feedback import collect_runs, learn
from whisper_cascade.learned import load_policy
from whisper_cascade.store import ENV_VAR, FeedbackRecord, SqliteStore

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("espeak-ng") is None:
        pytest.skip("needs espeak-ng")
    from whisper_cascade.zoo.corpus import generate_corpus

    return generate_corpus(tmp_path_factory.mktemp("corpus"), 3, 7, conditions=["clean", "white10"])


def test_add_and_list_round_trip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "store.db"
    monkeypatch.setenv(ENV_VAR, str(db))
    sample = str(sample_path())
    assert main(["feedback", "add", sample, "--reference", "hello there"]) == 0
    assert main(["feedback", "add", sample, "--reference", "hello there"]) == 0  # no-op
    assert main(["feedback", "add", sample, "--reference", "hello, there!"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith("; 2 in the store")
    assert main(["feedback", "list", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["reference"] for r in rows] == ["hello there", "hello, there!"]
    assert rows[0]["audio"] == str(Path(sample).absolute()) and len(rows[0]["audio_hash"]) == 64
    assert main(["feedback", "list"]) == 0
    assert "2 feedback item(s)" in capsys.readouterr().out
    with SqliteStore(db) as store:
        assert len(store.feedback()) == 2


@pytest.mark.parametrize(
    "argv, message",
    [
        (["feedback", "add", "missing.wav", "--reference", "x"], "missing.wav"),
        (["feedback", "add", "--manifest", "nope.jsonl"], "nope.jsonl"),
        (["feedback", "add"], "either AUDIO"),
        (["feedback", "add", "SAMPLE"], "needs --reference"),
        (["feedback", "add", "--manifest", "m.jsonl", "--reference", "x"], "not with --manifest"),
        (["learn"], "no feedback"),
        (["learn", "--max-wer-increase", "-1"], "max_wer_increase"),
        (["learn", "--min-class-items", "0"], "min_class_items"),
        (["learn", "--ladder", "nonesuch"], "unknown ladder"),
    ],
)
def test_bad_inputs_fail_cleanly(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [str(sample_path()) if a == "SAMPLE" else a for a in argv]
    if argv[0] == "learn" and message != "no feedback":
        with SqliteStore(tmp_path / "s.db") as store:
            store.add_feedback(FeedbackRecord("h", "/x", "y"))
    assert main([*argv, "--db", str(tmp_path / "s.db")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_bad_manifest_line_stores_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "m.jsonl"
    shutil.copy(sample_path(), tmp_path / "a.wav")
    manifest.write_text('{"audio": "a.wav", "text": "ok"}\n{"audio": "a.wav"}\n', encoding="utf-8")
    assert (
        main(["feedback", "add", "--manifest", str(manifest), "--db", str(tmp_path / "s.db")]) == 1
    )
    assert "m.jsonl:2" in capsys.readouterr().err
    with SqliteStore(tmp_path / "s.db") as store:
        assert store.feedback() == []


@needs_espeak
def test_manifest_then_learn(
    corpus: Path, models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "s.db")
    assert main(["feedback", "add", "--manifest", str(corpus), "--db", db]) == 0
    assert "added 3 feedback item(s)" in capsys.readouterr().out
    common = ["--models-dir", str(models), "--db", db, "--threads", "1", "--min-class-items", "2"]
    assert main(["learn", "--json", "--dry-run", *common]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["saved"] is False and doc["ladder"] == "micro" and doc["n_items"] == 3
    assert set(doc["thresholds"]) == {"micro-s", "micro-m"}
    rep = doc["report"]
    assert rep["learned"]["wer"] <= rep["base"]["wer"] + 1e-9
    assert rep["learned"]["cost"] <= rep["base"]["cost"] + 1e-9
    assert rep["always_largest"]["escalation_rate"] == 0.0
    assert sum(rep["n_per_class"].values()) == 3 and rep["skipped"] == []
    with SqliteStore(db) as store:
        assert load_policy(store, "micro") is None
    assert main(["learn", *common]) == 0
    out = capsys.readouterr().out
    assert "saved as preset 'learned'" in out and "always_largest" in out
    with SqliteStore(db) as store:
        policy = load_policy(store, "micro")
    assert policy is not None and policy.n_items == 3


@needs_espeak
def test_changed_files_are_skipped_and_missing_models_raise(
    corpus: Path, models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wav = tmp_path / "a.wav"
    shutil.copy(sample_path(), wav)
    db = str(tmp_path / "s.db")
    assert main(["feedback", "add", str(wav), "--reference", "hello", "--db", db]) == 0
    first = sorted(corpus.parent.glob("audio/*.wav"))[0]
    shutil.copy(first, wav)  # the file changes after its feedback was added
    with SqliteStore(db) as store:
        table, skipped = collect_runs(store.feedback(), "micro", models_dir=models, n_threads=1)
        assert table.items == () and "changed" in skipped[0].error
        with pytest.raises(Exception, match="no feedback item could be transcribed"):
            learn(store, models_dir=models, n_threads=1)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["learn", "--models-dir", str(empty), "--db", db]) == 1
    assert "micro-s" in capsys.readouterr().err
