"""A user's TOML config turned into what the cascade takes: presets, ladders and model specs."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from whisper_cascade.config import Config, ModelDef, load_config
from whisper_cascade.ladders import Ladder, builtin_ladders, spec_for
from whisper_cascade.models import ModelSpec, file_name_for
from whisper_cascade.presets import Preset, builtin_presets


@dataclass(frozen=True)
class Settings:
    """User presets and ladders (built-ins not repeated), from one config file."""

    presets: dict[str, Preset] = field(default_factory=dict)
    ladders: dict[str, Ladder] = field(default_factory=dict)
    config: Config = field(default_factory=Config)


def _spec(model: ModelDef) -> ModelSpec:
    return ModelSpec(
        name=model.name,
        file_name=model.path.name if model.path else file_name_for(model.name),
        window_s=model.window_s,
        audio_ctx=model.audio_ctx,
        relative_cost=model.relative_cost,
        sha256=model.sha256,
        family="config",
        path=model.path if model.path and model.path.is_file() else None,
    )


def settings_from_config(config: Config) -> Settings:
    """Presets built on their bases, ladders whose members may be config-registered models."""
    specs = {name: _spec(model) for name, model in config.models.items()}
    ladders = {
        name: Ladder(name, tuple(specs.get(m) or spec_for(m) for m in members))
        for name, members in config.ladders.items()
    }
    presets: dict[str, Preset] = {}
    known = builtin_presets()
    for name, raw in config.presets.items():
        presets[name] = Preset.from_def(raw, {**known, **presets})
    return Settings(presets=presets, ladders=ladders, config=config)


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Load the config (explicit path, ``$WHISPER_CASCADE_CONFIG``, or the user default)."""
    config = load_config(Path(path) if path else None, known_ladders=builtin_ladders())
    return settings_from_config(config)
