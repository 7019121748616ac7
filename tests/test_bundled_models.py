"""The models shipped inside the package: registry, integrity, ladder, user override."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from whisper_cascade.ggml_writer import random_whisper_model
from whisper_cascade.ladders import get_ladder
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
