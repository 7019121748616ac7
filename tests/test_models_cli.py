"""The `models` commands and model-name resolution, end to end on real files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from whisper_cascade import cli, models
from whisper_cascade.errors import ModelNotFoundError
from whisper_cascade.ggml_writer import (
    TINY_RANDOM_DIMS,
    random_state_dict,
    random_whisper_model,
    write_ggml_model,
)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return random_whisper_model(tmp_path_factory.mktemp("models") / "ggml-tiny-random.bin")


def test_validate_valid_model_exits_zero(
    tiny_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["models", "validate", str(tiny_model)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("valid:") and "sha256" in out


def test_validate_json_reports_hparams(
    tiny_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["models", "validate", str(tiny_model), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["hparams"]["n_vocab"] == 51864
    assert len(info["sha256"]) == 64
    assert "tensors" not in info


def test_validate_corrupt_file_one_line_reason(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.bin"
    bad.write_bytes(tiny_model.read_bytes()[:-100])
    assert cli.main(["models", "validate", str(bad)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "[truncated]" in err


def test_validate_sha256_mismatch(tiny_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["models", "validate", str(tiny_model), "--sha256", "0" * 64]) == 1
    assert "sha256_mismatch" in capsys.readouterr().err


def test_validate_flags_all_f32_file_the_backend_cannot_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f32 = tmp_path / "ggml-f32.bin"
    write_ggml_model(f32, TINY_RANDOM_DIMS, random_state_dict(TINY_RANDOM_DIMS), use_f16=False)
    assert cli.main(["models", "validate", str(f32), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["ftype"] == "f32" and "all-f32" in out["problems"][0]


def test_validate_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["models", "validate", str(tmp_path / "nope.bin")]) == 1
    assert "not found" in capsys.readouterr().err


def test_quantize_then_validate(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ggml-tiny-q8_0.bin"
    assert cli.main(["models", "quantize", str(tiny_model), str(out), "--type", "q8_0"]) == 0
    assert "q8_0" in capsys.readouterr().out
    assert cli.main(["models", "validate", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ftype"] == "q8_0"
    again = tmp_path / "again.bin"
    assert cli.main(["models", "quantize", str(out), str(again), "--type", "q4_0", "--json"]) == 1
    assert not again.exists()


def test_quantize_json_report(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "q5.bin"
    assert (
        cli.main(["models", "quantize", str(tiny_model), str(out), "--type", "q5_1", "--json"]) == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["bytes_out"] < report["bytes_in"]


def test_models_list_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["models", "list", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert set(listing) == {"models", "ladders"}
    for ladder in listing["ladders"].values():
        assert all(name in {m["name"] for m in listing["models"]} for name in ladder)


def test_models_list_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["models", "list"]) == 0
    assert capsys.readouterr().out.strip()


def test_console_script_runs_in_a_fresh_process(tiny_model: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "whisper_cascade.cli", "models", "validate", str(tiny_model)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_resolve_path_and_name(tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert models.resolve_model(str(tiny_model)).path == tiny_model
    monkeypatch.setenv(models.MODELS_ENV, str(tiny_model.parent))
    spec = models.resolve_model("tiny-random")
    assert spec.path == tiny_model and spec.to_dict()["present"]


def test_resolve_models_dir_wins(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "ggml-tiny-random.bin"
    other.write_bytes(b"x")
    monkeypatch.setenv(models.MODELS_ENV, str(tiny_model.parent))
    assert models.resolve_model("tiny-random", models_dir=tmp_path).path == other


def test_missing_openai_model_names_places_and_how(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv(models.MODELS_ENV, raising=False)
    with pytest.raises(ModelNotFoundError) as info:
        models.resolve_model("small.en-q8_0", models_dir=tmp_path)
    message = str(info.value)
    assert "ggml-small.en-q8_0.bin" in message
    assert str(tmp_path / "cache" / "whisper-cascade") in message
    assert "huggingface.co" in message


def test_missing_custom_name_and_path(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="pass --models-dir"):
        models.resolve_model("my-model", models_dir=tmp_path)
    with pytest.raises(ModelNotFoundError):
        models.resolve_model(str(tmp_path / "x.bin"))


def test_openai_specs() -> None:
    spec = models.openai_spec("large-v3-q5_0")
    assert spec is not None and spec.relative_cost > 30 and spec.window_s == 30.0
    assert models.openai_spec("base.en") is not None
    assert models.openai_spec("micro-s") is None
