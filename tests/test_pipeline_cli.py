"""`transcribe --model` and `demo` end to end with real whisper.cpp on tiny random models."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from whisper_cascade import cli
from whisper_cascade.audio import sample_path
from whisper_cascade.errors import AudioError, ModelNotFoundError
from whisper_cascade.ggml_writer import random_whisper_model
from whisper_cascade.pipeline import DEFAULT_LADDER_MODELS, transcribe_files


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ladder")
    first = random_whisper_model(folder / f"ggml-{DEFAULT_LADDER_MODELS[0]}.bin", seed=1)
    for name in DEFAULT_LADDER_MODELS[1:]:
        shutil.copy(first, folder / f"ggml-{name}.bin")
    return folder


def test_transcribe_json_lines(model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = str(model_dir / "ggml-micro-s.bin")
    sample = str(sample_path())
    assert (
        cli.main(["transcribe", sample, sample, "--model", model, "--json", "--threads", "1"]) == 0
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    for line in lines:
        obj = json.loads(line)
        assert set(obj) == {"audio", "text", "segments", "confidence", "model", "time_s"}
        assert obj["audio"] == sample
        assert obj["time_s"] > 0
        assert {"mean", "min", "consistency", "compression_ratio"} <= set(obj["confidence"])
        for seg in obj["segments"]:
            assert 0.0 <= seg["start"] <= seg["end"]
            for word in seg["words"]:
                assert set(word) == {"word", "start", "end", "probability"}


def test_transcribe_by_name_with_models_dir(
    model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["transcribe", str(sample_path()), "--model", "micro-m", "--models-dir", str(model_dir)]
    assert cli.main([*args, "--no-gpu", "--no-flash-attn"]) == 0
    assert capsys.readouterr().err == ""


def test_bad_file_reported_others_continue(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "noise.wav"
    bad.write_bytes(b"RIFF\x00\x00")
    silent = tmp_path / "silence.wav"
    sf.write(silent, np.zeros(16000, dtype=np.float32), 16000)
    model = str(model_dir / "ggml-micro-s.bin")
    assert cli.main(["transcribe", str(bad), str(silent), "--model", model, "--json"]) == 1
    captured = capsys.readouterr()
    assert "error:" in captured.err and "noise.wav" in captured.err
    result = json.loads(captured.out)
    assert result["text"] == "" and result["segments"] == []


def test_transcribe_files_yields_errors_not_raises(model_dir: Path, tmp_path: Path) -> None:
    results = list(
        transcribe_files([str(tmp_path / "missing.wav")], model=str(model_dir / "ggml-micro-s.bin"))
    )
    assert len(results) == 1 and isinstance(results[0], AudioError)


def test_missing_model_is_an_error_before_audio(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ModelNotFoundError):
        next(transcribe_files([str(sample_path())], model="nope", models_dir=tmp_path))
    assert (
        cli.main(
            ["transcribe", str(sample_path()), "--model", "nope", "--models-dir", str(tmp_path)]
        )
        == 1
    )
    assert "not found" in capsys.readouterr().err


def test_corrupt_model_refused(
    tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "ggml-bad.bin"
    bad.write_bytes((model_dir / "ggml-micro-s.bin").read_bytes()[:5000])
    assert cli.main(["transcribe", str(sample_path()), "--model", str(bad)]) == 1
    assert "truncated" in capsys.readouterr().err


def test_demo_without_models_explains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    monkeypatch.delenv("WHISPER_CASCADE_MODELS", raising=False)
    missing = ("micro-s", "micro-not-shipped")
    monkeypatch.setattr("whisper_cascade.pipeline.default_ladder", lambda: missing)
    assert cli.main(["demo", "--models-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "ggml-micro-not-shipped.bin" in out
    assert str(tmp_path) in out


@pytest.mark.bundled
def test_demo_runs_on_the_bundled_models(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "final model micro-" in out
    text = next(line for line in out.splitlines() if line.startswith("text: "))
    assert len(text.split()) >= 4  # the bundled model hears words in the bundled sample


def test_demo_with_models(model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["demo", "--models-dir", str(model_dir)]) == 0
    out = capsys.readouterr().out
    assert "final model" in out and "text:" in out and "the largest model alone" in out
    assert DEFAULT_LADDER_MODELS[0] in out


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_audio_progress_draws_one_bar_per_long_file() -> None:
    from whisper_cascade.cli import AudioProgress

    stream = _Tty()
    progress = AudioProgress(stream, min_total_s=60.0)
    for done in (30.0, 60.0, 90.0):
        progress(done, 90.0)
    assert progress._bar is not None and progress._bar.n == pytest.approx(90.0)
    progress(20.0, 90.0)  # position went back: a new bar (next rung)
    assert progress._bar.n == pytest.approx(20.0)
    progress.close()
    assert progress._bar is None
    assert "90" in stream.getvalue()
    quiet = _Tty()
    AudioProgress(quiet)(10.0, 10.0)  # short file: nothing drawn
    not_tty = io.StringIO()
    AudioProgress(not_tty)(100.0, 100.0)
    assert quiet.getvalue() == not_tty.getvalue() == ""
