"""Ladders: ordered models, cheapest first, built in or from a list of names and paths.

Built in: ``micro`` (the micro zoo: micro-s, micro-m, micro-l), ``openai`` (tiny, base, small,
medium, large-v3) and ``openai.en`` (tiny.en, base.en, small.en, medium.en). A custom ladder is
a comma-separated string or a sequence of model names (``small-q8_0``) and ggml paths.
Until the micro zoo ships, its relative costs are placeholders (1, 2.5, 6).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from whisper_cascade.errors import InvalidArgumentError
from whisper_cascade.models import (
    ModelSpec,
    bundled_ladders,
    bundled_models,
    explicit_dirs,
    file_name_for,
    openai_spec,
    read_registry,
)

__all__ = [
    "DEFAULT_LADDER",
    "Ladder",
    "builtin_ladders",
    "folder_ladders",
    "get_ladder",
    "spec_for",
]

DEFAULT_LADDER = "micro"
_MICRO_PLACEHOLDER_COSTS = {"micro-s": 1.0, "micro-m": 2.5, "micro-l": 6.0}
_OPENAI_LADDERS = {
    "openai": ("tiny", "base", "small", "medium", "large-v3"),
    "openai.en": ("tiny.en", "base.en", "small.en", "medium.en"),
}


def spec_for(name_or_path: str) -> ModelSpec:
    """The spec of a model name or ggml path, without looking for the file of a name."""
    if os.sep in name_or_path or name_or_path.endswith(".bin"):
        path = Path(name_or_path).expanduser()
        return ModelSpec(name=path.stem.removeprefix("ggml-"), file_name=path.name, path=path)
    bundled = bundled_models().get(name_or_path)
    if bundled is not None:
        return bundled
    spec = openai_spec(name_or_path)
    if spec is not None:
        return spec
    cost = _MICRO_PLACEHOLDER_COSTS.get(name_or_path, 1.0)
    family = "micro" if name_or_path in _MICRO_PLACEHOLDER_COSTS else "custom"
    return ModelSpec(
        name=name_or_path, file_name=file_name_for(name_or_path), relative_cost=cost, family=family
    )


@dataclass(frozen=True)
class Ladder:
    """A name and its models, cheapest first (by position; costs are not re-sorted)."""

    name: str
    models: tuple[ModelSpec, ...]

    def __post_init__(self) -> None:
        if not self.models:
            raise InvalidArgumentError(f"ladder {self.name!r} has no models")
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise InvalidArgumentError(f"ladder {self.name!r} repeats a model: {names}")

    @classmethod
    def from_names(cls, name: str, models: Sequence[str]) -> Ladder:
        """A ladder of model names or paths (see :func:`spec_for`)."""
        cleaned = [m.strip() for m in models if m.strip()]
        return cls(name, tuple(spec_for(m) for m in cleaned))

    @property
    def names(self) -> tuple[str, ...]:
        """The model names, cheapest first."""
        return tuple(m.name for m in self.models)

    def __len__(self) -> int:
        return len(self.models)


def builtin_ladders() -> dict[str, Ladder]:
    """The built-in ladders (bundled registry ladders override the defaults)."""
    ladders = {DEFAULT_LADDER: ("micro-s", "micro-m", "micro-l"), **_OPENAI_LADDERS}
    ladders.update(bundled_ladders())
    return {name: Ladder.from_names(name, members) for name, members in ladders.items()}


def folder_ladders(models_dir: str | os.PathLike[str] | None) -> dict[str, Ladder]:
    """The ladders declared by a ``registry.json`` (what ``zoo.ship`` writes) in ``models_dir``
    or a ``$WHISPER_CASCADE_MODELS`` folder, with that registry's files, costs and windows; the
    first folder declaring a ladder name wins. Empty without such folders or registries."""
    found: dict[str, Ladder] = {}
    for folder in reversed(explicit_dirs(models_dir)):
        specs, ladders = read_registry(folder)
        local = {name: replace(spec, bundled=False) for name, spec in specs.items()}
        for name, members in ladders.items():
            found[name] = Ladder(name, tuple(local.get(m) or spec_for(m) for m in members))
    return found


def get_ladder(
    ladder: str | Sequence[str] | Ladder | None, extra: Mapping[str, Ladder] | None = None
) -> Ladder:
    """A ladder by name (user ladders in ``extra`` first), a comma list, a list, or as given."""
    if isinstance(ladder, Ladder):
        return ladder
    if ladder is None:
        ladder = DEFAULT_LADDER
    if isinstance(ladder, str):
        if extra and ladder in extra:
            return extra[ladder]
        known = builtin_ladders()
        if ladder in known:
            return known[ladder]
        if "," in ladder or os.sep in ladder or ladder.endswith(".bin"):
            return Ladder.from_names("custom", ladder.split(","))
        names = sorted({*known, *(extra or {})})
        raise InvalidArgumentError(
            f"unknown ladder {ladder!r} (known: {', '.join(names)}; or give a comma-separated "
            "list of model names or paths)"
        )
    return Ladder.from_names("custom", list(ladder))
