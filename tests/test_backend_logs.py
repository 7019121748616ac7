"""whisper.cpp's loading log lines: hidden on the command line, shown on request."""

from __future__ import annotations

from pathlib import Path

import pytest

from whisper_cascade import cli
from whisper_cascade.audio import load_audio, sample_path
from whisper_cascade.backend_logs import LOGS_ENV, set_quiet_loading
from whisper_cascade.ggml_writer import random_whisper_model
from whisper_cascade.transcriber import Transcriber


@pytest.fixture(autouse=True)
def _restore() -> object:
    yield
    set_quiet_loading(False)


def _load_fresh(tmp_path: Path, seed: int) -> None:
    model = random_whisper_model(tmp_path / f"ggml-r{seed}.bin", seed=seed)
    Transcriber().transcribe(model, load_audio(sample_path()))


def test_quiet_loading_hides_whisper_cpp_lines(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(LOGS_ENV, raising=False)
    set_quiet_loading(False)
    _load_fresh(tmp_path, 1)
    assert "whisper_model_load" in capfd.readouterr().err
    set_quiet_loading(True)
    _load_fresh(tmp_path, 2)
    assert "whisper_model_load" not in capfd.readouterr().err
    monkeypatch.setenv(LOGS_ENV, "1")
    set_quiet_loading(True)  # the variable wins
    _load_fresh(tmp_path, 3)
    assert "whisper_model_load" in capfd.readouterr().err


def test_cli_transcribe_prints_no_backend_noise(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(LOGS_ENV, raising=False)
    model = random_whisper_model(tmp_path / "ggml-r9.bin", seed=9)
    argv = ["transcribe", str(sample_path()), "--model", str(model), "--no-store"]
    assert cli.main(argv) == 0
    err = capfd.readouterr().err
    assert "whisper_model_load" not in err and "whisper_init" not in err
