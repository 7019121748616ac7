"""The user's TOML config reaches the cascade: config-registered models, ladders and presets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from whisper_cascade import cli
from whisper_cascade.audio import sample_path
from whisper_cascade.errors import ConfigError
from whisper_cascade.ggml_writer import random_whisper_model
from whisper_cascade.settings import load_settings

CONFIG = """
[models.first]
path = "one.bin"
relative_cost = 1.0
[models.second]
path = "two.bin"
relative_cost = 4.0

[ladders]
mine = ["first", "second"]

[presets.climb]
base = "balanced"
ladder = "mine"
default_threshold = 1.0
"""


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cfg")
    random_whisper_model(folder / "one.bin", seed=7)
    random_whisper_model(folder / "two.bin", seed=8)
    path = folder / "config.toml"
    path.write_text(CONFIG)
    return path


def test_settings_resolve_config_models(config_file: Path) -> None:
    settings = load_settings(config_file)
    ladder = settings.ladders["mine"]
    assert ladder.names == ("first", "second")
    assert ladder.models[0].path == config_file.parent / "one.bin"
    assert ladder.models[1].relative_cost == 4.0
    assert settings.presets["climb"].default_threshold == 1.0


def test_cli_uses_config_ladder_and_preset(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["transcribe", str(sample_path()), "--config", str(config_file), "--json"]
    assert cli.main([*args, "--ladder", "mine", "--preset", "climb", "--threads", "1"]) == 0
    result = json.loads(capsys.readouterr().out)
    history = [attempt["model"] for attempt in result["model_selection"]["decision_history"]]
    assert history[0] == "first" and result["model_selection"]["final_model"] == "second"


def test_env_config_and_errors(
    config_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WHISPER_CASCADE_CONFIG", str(config_file))
    assert "mine" in load_settings().ladders
    bad = tmp_path / "bad.toml"
    bad.write_text("[presets.x]\ndefault_threshold = 2\n")
    with pytest.raises(ConfigError, match="default_threshold"):
        load_settings(bad)
    assert cli.main(["analyze", str(sample_path()), "--config", str(bad)]) == 1
