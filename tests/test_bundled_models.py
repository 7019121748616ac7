"""The models shipped inside the package: registry, integrity, ladder, user override."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from whisper_cascade.errors import ConfigError
from whisper_cascade.ggml_writer import random_whisper_model
from whisper_cascade.ladders import folder_ladders, get_ladder
from whisper_cascade.modelfile import validate_model
from whisper_cascade.models import bundled_ladders, bundled_models, resolve_model

pytestmark = pytest.mark.bundled


def test_every_bundled_model_is_present_and_intact() -> None:
    models = bundled_models()
    assert "micro-s" in models
    for spec in models.values():
        assert spec.path is not None and spec.path.is_file(), spec.name
        info = validate_model(spec.path, sha256=spec.sha256)
        assert info.sha256 == spec.sha256


def test_bundled_ladder_is_cheapest_first_and_resolvable() -> None:
    names = bundled_ladders()["micro"]
    ladder = get_ladder("micro")
    assert ladder.names == names
    costs = [m.relative_cost for m in ladder.models]
    assert costs == sorted(costs)
    assert all(resolve_model(n).path is not None for n in names)


def test_models_dir_overrides_a_bundled_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WHISPER_CASCADE_MODELS", raising=False)
    mine = random_whisper_model(tmp_path / "ggml-micro-s.bin", seed=3)
    assert resolve_model("micro-s", tmp_path).path == mine
    env_dir = tmp_path / "env"
    env_dir.mkdir()
    shutil.copy(mine, env_dir / "ggml-micro-s.bin")
    monkeypatch.setenv("WHISPER_CASCADE_MODELS", str(env_dir))
    assert resolve_model("micro-s").path == env_dir / "ggml-micro-s.bin"
    monkeypatch.delenv("WHISPER_CASCADE_MODELS")
    assert resolve_model("micro-s").path == bundled_models()["micro-s"].path


def _write_registry(folder: Path, ladders: dict[str, list[str]], cost: float) -> None:
    entries = [
        {"name": n, "file": f"ggml-{n}.bin", "window_s": 10.0, "relative_cost": cost}
        for n in {m for members in ladders.values() for m in members}
    ]
    text = json.dumps({"models": entries, "ladders": ladders})
    (folder / "registry.json").write_text(text, encoding="utf-8")


def test_env_folders_declare_ladders_and_models_dir_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_dir, own_dir = tmp_path / "env", tmp_path / "own"
    env_dir.mkdir()
    own_dir.mkdir()
    _write_registry(env_dir, {"shared": ["a", "b"], "envonly": ["a"]}, cost=2.0)
    _write_registry(own_dir, {"shared": ["b"]}, cost=3.0)
    monkeypatch.setenv("WHISPER_CASCADE_MODELS", str(env_dir))
    from_env = folder_ladders(None)
    assert set(from_env) == {"shared", "envonly"} and from_env["shared"].names == ("a", "b")
    assert from_env["envonly"].models[0].relative_cost == 2.0
    both = folder_ladders(own_dir)
    assert both["shared"].names == ("b",) and both["shared"].models[0].relative_cost == 3.0
    assert both["envonly"].names == ("a",)
    monkeypatch.delenv("WHISPER_CASCADE_MODELS")
    assert set(folder_ladders(own_dir)) == {"shared"}


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        '{"models": [{"name": "x"}]}',
        '{"models": [{"name": "x", "file": "../ggml-x.bin", "window_s": 1, "relative_cost": 1}]}',
        '{"ladders": {"l": "micro-s"}}',
        "[]",
    ],
)
def test_a_broken_registry_is_a_config_error(tmp_path: Path, text: str) -> None:
    (tmp_path / "registry.json").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="not a valid model registry"):
        folder_ladders(tmp_path)
