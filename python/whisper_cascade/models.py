"""Model names, the bundled registry and where model files are looked for.

A model is named ``N`` and stored as ``ggml-N.bin`` (whisper.cpp's naming). Bundled models (the
micro zoo) live in the package; OpenAI's models are found, in order, in ``--models-dir``,
``$WHISPER_CASCADE_MODELS``, ``~/.cache/whisper-cascade``, ``~/.cache/whisper`` and
pywhispercpp's model folder. Nothing is ever downloaded implicitly.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from whisper_cascade.errors import ConfigError, ModelNotFoundError

MODELS_ENV = "WHISPER_CASCADE_MODELS"
BUNDLED_MODELS_PACKAGE = "whisper_cascade.data.models"
QUANT_SUFFIX = re.compile(r"-(q4_0|q4_1|q5_0|q5_1|q8_0)$")

# Relative compute cost of OpenAI's checkpoints, from their parameter counts (tiny = 1).
_OPENAI_COSTS = {
    "tiny": 1.0,
    "base": 1.9,
    "small": 6.3,
    "medium": 19.7,
    "large-v1": 39.7,
    "large-v2": 39.7,
    "large-v3": 39.7,
    "large-v3-turbo": 20.7,
}


@dataclass(frozen=True)
class ModelSpec:
    """What the project knows about one model: its file, window and relative cost."""

    name: str
    file_name: str
    window_s: float = 30.0
    audio_ctx: int | None = None
    relative_cost: float = 1.0
    sha256: str | None = None
    bundled: bool = False
    family: str = "custom"
    path: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly description (path as a string, or None when not present)."""
        return {
            "name": self.name,
            "file": self.file_name,
            "path": str(self.path) if self.path else None,
            "present": self.path is not None,
            "bundled": self.bundled,
            "family": self.family,
            "sha256": self.sha256,
            "window_s": self.window_s,
            "audio_ctx": self.audio_ctx,
            "relative_cost": self.relative_cost,
        }


def file_name_for(name: str) -> str:
    """whisper.cpp's file name for a model name: ``small-q8_0`` → ``ggml-small-q8_0.bin``."""
    return f"ggml-{name}.bin"


def openai_spec(name: str) -> ModelSpec | None:
    """The spec of an OpenAI checkpoint name (``base.en``, ``small-q8_0``...), else None."""
    base = QUANT_SUFFIX.sub("", name)
    family = base.removesuffix(".en")
    if family not in _OPENAI_COSTS:
        return None
    return ModelSpec(
        name=name,
        file_name=file_name_for(name),
        window_s=30.0,
        relative_cost=_OPENAI_COSTS[family],
        family="openai",
    )


def read_registry(
    folder: Path | Traversable,
) -> tuple[dict[str, ModelSpec], dict[str, tuple[str, ...]]]:
    """The models and ladders of ``folder/registry.json`` (empty when there is none); a
    model's ``path`` is set when its file is present in ``folder``."""
    registry_file = folder / "registry.json"
    if not registry_file.is_file():
        return {}, {}
    try:
        data = json.loads(registry_file.read_text(encoding="utf-8"))
        return _parse_registry(folder, data)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{registry_file}: not a valid model registry ({exc!r})") from exc


def _parse_registry(
    folder: Path | Traversable, data: Any
) -> tuple[dict[str, ModelSpec], dict[str, tuple[str, ...]]]:
    specs: dict[str, ModelSpec] = {}
    for entry in data.get("models", []):
        if Path(entry["file"]).name != entry["file"]:
            raise ValueError(f"model file {entry['file']!r} must be a plain file name")
        file_path = Path(str(folder / entry["file"]))
        specs[entry["name"]] = ModelSpec(
            name=entry["name"],
            file_name=entry["file"],
            window_s=float(entry["window_s"]),
            audio_ctx=entry.get("audio_ctx"),
            relative_cost=float(entry["relative_cost"]),
            sha256=entry.get("sha256"),
            bundled=True,
            family="micro",
            path=file_path if file_path.is_file() else None,
        )
    declared = data.get("ladders", {})
    for members in declared.values():
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            raise ValueError("each ladder must be a list of model names")
    ladders = {name: tuple(members) for name, members in declared.items()}
    return specs, ladders


@lru_cache(maxsize=1)
def _bundled_registry() -> tuple[dict[str, ModelSpec], dict[str, tuple[str, ...]]]:
    return read_registry(resources.files(BUNDLED_MODELS_PACKAGE))


def bundled_models() -> dict[str, ModelSpec]:
    """The models shipped inside the package, by name."""
    return dict(_bundled_registry()[0])


def bundled_ladders() -> dict[str, tuple[str, ...]]:
    """The ladders declared by the bundled registry, cheapest model first."""
    return dict(_bundled_registry()[1])


def search_dirs(models_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """The folders searched for ``ggml-N.bin``, in order."""
    dirs: list[Path] = []
    if models_dir:
        dirs.append(Path(models_dir).expanduser())
    env = os.environ.get(MODELS_ENV)
    if env:
        dirs.extend(Path(p).expanduser() for p in env.split(os.pathsep) if p)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    dirs += [cache / "whisper-cascade", cache / "whisper"]
    dirs.append(_pywhispercpp_models_dir())
    return dirs


def explicit_dirs(models_dir: str | os.PathLike[str] | None) -> list[Path]:
    """The user's own model folders, first wins: ``models_dir``, then ``$WHISPER_CASCADE_MODELS``
    (several, joined by the path separator)."""
    dirs = [Path(models_dir).expanduser()] if models_dir else []
    env = os.environ.get(MODELS_ENV)
    if env:
        dirs.extend(Path(p).expanduser() for p in env.split(os.pathsep) if p)
    return dirs


def _pywhispercpp_models_dir() -> Path:
    # platformdirs' user_data_dir("pywhispercpp") / "models", without importing pywhispercpp.
    data_home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return data_home / "pywhispercpp" / "models"


def _first_existing(file_name: str, dirs: Iterable[Path]) -> Path | None:
    for directory in dirs:
        candidate = directory / file_name
        if candidate.is_file():
            return candidate
    return None


def resolve_model(name_or_path: str, models_dir: str | os.PathLike[str] | None = None) -> ModelSpec:
    """Find the file of a model given by name or by path.

    A path (anything with a separator or ending in ``.bin`` that exists) is used as is.
    A name is looked up as ``ggml-NAME.bin`` in ``models_dir`` and ``$WHISPER_CASCADE_MODELS``
    first (a user's file overrides a bundled model of the same name), then among the bundled
    models, then in the rest of :func:`search_dirs`. Raises :class:`ModelNotFoundError` naming
    every place searched.
    """
    candidate = Path(name_or_path).expanduser()
    looks_like_path = os.sep in name_or_path or name_or_path.endswith(".bin")
    if looks_like_path:
        if candidate.is_file():
            return ModelSpec(
                name=candidate.stem.removeprefix("ggml-"), file_name=candidate.name, path=candidate
            )
        raise ModelNotFoundError(f"model file not found: {name_or_path}")
    bundled = bundled_models().get(name_or_path)
    dirs = search_dirs(models_dir)
    plain = openai_spec(name_or_path) or ModelSpec(
        name=name_or_path, file_name=file_name_for(name_or_path)
    )
    # The user's own folders (--models-dir, $WHISPER_CASCADE_MODELS) override a bundled model.
    override = _first_existing(plain.file_name, explicit_dirs(models_dir))
    if override is not None:
        return replace(plain, path=override)
    spec = bundled or plain
    if spec.path is not None:
        return spec
    found = _first_existing(spec.file_name, dirs)
    if found is not None:
        return replace(spec, path=found)
    raise ModelNotFoundError(_missing_message(spec, dirs))


def _missing_message(spec: ModelSpec, dirs: list[Path]) -> str:
    places = ", ".join(str(d) for d in dirs)
    if spec.bundled:
        how = "it should ship inside the package: reinstall whisper-cascade"
    elif spec.family == "openai":
        how = (
            "download it with whisper.cpp's models/download-ggml-model.sh "
            f"or from https://huggingface.co/ggerganov/whisper.cpp/resolve/main/{spec.file_name}, "
            f"then put it in one of those folders or pass --models-dir"
        )
    else:
        how = "put the file in one of those folders, pass --models-dir, or give a path"
    return f"model {spec.name!r} not found: looked for {spec.file_name} in {places}; {how}"
