"""The user's TOML configuration: extra models, ladders, presets and prices.

Looked for, in order: an explicit path (``--config FILE``), ``$WHISPER_CASCADE_CONFIG``, then
``$XDG_CONFIG_HOME/whisper-cascade/config.toml`` (``~/.config`` when unset). When none of these
exists the configuration is empty. Validation is strict: any unknown key, wrong type or value out
of range raises :class:`ConfigError` naming the file, the key path and the problem. The schema
with a full example is in ``docs/config.md``.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from whisper_cascade.errors import ConfigError, InvalidArgumentError

CONFIG_ENV = "WHISPER_CASCADE_CONFIG"
BUILTIN_PRESETS = ("fast", "balanced", "accurate")
WEIGHT_NAMES = (
    "confidence",
    "consistency",
    "coverage",
    "low_confidence_penalty",
    "repetition_penalty",
    "compression_penalty",
    "logprob_penalty",
    "no_speech_penalty",
)
_MODEL_KEYS = ("path", "window_s", "audio_ctx", "relative_cost", "sha256")
_PRESET_KEYS = (
    "base",
    "ladder",
    "default_threshold",
    "keep_best",
    "preselect",
    "never_skip",
    "weights",
    "model_weights",
    "thresholds",
)
_PRICE_KEYS = ("cpu_hour", "currency", "per_model")
_TOP_KEYS = ("models", "ladders", "presets", "prices")


@dataclass(frozen=True)
class ModelDef:
    """A model registered by the config; ``path`` None means ``ggml-<name>.bin`` is searched."""

    name: str
    path: Path | None = None
    window_s: float = 30.0
    audio_ctx: int | None = None
    relative_cost: float = 1.0
    sha256: str | None = None


@dataclass(frozen=True)
class PresetDef:
    """A user preset: weights and thresholds over a ladder, optionally on top of a built-in."""

    name: str
    base: str | None = None
    ladder: str | None = None
    weights: dict[str, float] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)
    default_threshold: float | None = None
    model_weights: dict[str, dict[str, float]] = field(default_factory=dict)
    keep_best: bool | None = None
    preselect: bool | None = None
    never_skip: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Prices:
    """What compute costs: ``cpu_hour`` per CPU-hour plus an optional fee per job per model."""

    cpu_hour: float = 0.0
    currency: str = "USD"
    per_model: dict[str, float] = field(default_factory=dict)

    def cost(self, cpu_seconds: float, models_used: Iterable[str] = ()) -> float:
        """Cost of one job: CPU time at ``cpu_hour`` plus ``per_model`` for each model run.

        A model listed twice in ``models_used`` (run twice in the job) is charged twice.
        """
        if not isinstance(cpu_seconds, int | float) or isinstance(cpu_seconds, bool):
            raise InvalidArgumentError(f"cpu_seconds must be a number, got {cpu_seconds!r}")
        if not math.isfinite(cpu_seconds) or cpu_seconds < 0:
            raise InvalidArgumentError(f"cpu_seconds must be finite and >= 0, got {cpu_seconds}")
        fees = sum(self.per_model.get(name, 0.0) for name in models_used)
        return cpu_seconds / 3600.0 * self.cpu_hour + fees


@dataclass(frozen=True)
class Config:
    """A validated configuration; ``source`` is the file it came from (None when empty)."""

    models: dict[str, ModelDef] = field(default_factory=dict)
    ladders: dict[str, tuple[str, ...]] = field(default_factory=dict)
    presets: dict[str, PresetDef] = field(default_factory=dict)
    prices: Prices = field(default_factory=Prices)
    source: Path | None = None


def default_config_path() -> Path:
    """``$XDG_CONFIG_HOME/whisper-cascade/config.toml`` (``~/.config`` when unset)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "whisper-cascade" / "config.toml"


def find_config(path: str | os.PathLike[str] | None = None) -> Path | None:
    """The config file to read, following the search order; None when there is none.

    An explicit path or ``$WHISPER_CASCADE_CONFIG`` must exist; the default location may not.
    """
    if path is not None:
        return _must_exist(Path(path).expanduser(), "--config")
    env = os.environ.get(CONFIG_ENV)
    if env:
        return _must_exist(Path(env).expanduser(), f"${CONFIG_ENV}")
    default = default_config_path()
    return default if default.is_file() else None


def _must_exist(path: Path, origin: str) -> Path:
    if not path.is_file():
        raise ConfigError(f"{path}: config file given by {origin} not found")
    return path


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    known_ladders: Iterable[str] | None = None,
) -> Config:
    """Find, read and validate the configuration (an empty one when no file exists).

    ``known_ladders`` are the built-in ladder names a preset may refer to besides the config's own
    ladders; by default the ladders of the bundled registry.
    """
    found = find_config(path)
    if found is None:
        return Config()
    try:
        text = found.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"{found}: cannot read config file: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{found}: config file is not UTF-8 ({exc.reason})") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{found}: invalid TOML: {exc}") from exc
    if known_ladders is None:
        from whisper_cascade.models import bundled_ladders

        known_ladders = bundled_ladders()
    return parse_config(data, source=found, known_ladders=known_ladders)


def parse_config(
    data: Mapping[str, Any],
    *,
    source: Path | None = None,
    known_ladders: Iterable[str] = (),
) -> Config:
    """Validate parsed TOML data; relative model paths resolve against ``source``'s folder."""
    v = _Validator(source)
    v.keys(data, _TOP_KEYS, "")
    models = {
        name: v.model(name, body)
        for name, body in v.table(data.get("models", {}), "models").items()
    }
    ladders = {
        name: v.ladder(name, body)
        for name, body in v.table(data.get("ladders", {}), "ladders").items()
    }
    ladder_names = set(ladders) | set(known_ladders)
    presets = {
        name: v.preset(name, body, ladder_names)
        for name, body in v.table(data.get("presets", {}), "presets").items()
    }
    prices = v.prices(data.get("prices", {}))
    return Config(models=models, ladders=ladders, presets=presets, prices=prices, source=source)


class _Validator:
    def __init__(self, source: Path | None) -> None:
        self.source = source

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.source or '<config>'}: {key}: {problem}")

    def table(self, value: Any, key: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, f"must be a table, got {_kind(value)}")
        return value

    def keys(self, table: Mapping[str, Any], allowed: tuple[str, ...], prefix: str) -> None:
        for key in table:
            if key not in allowed:
                where = f"{prefix}.{_q(key)}" if prefix else _q(key)
                raise self.fail(where, f"unknown key (allowed: {', '.join(allowed)})")

    def name(self, name: str, key: str) -> None:
        if not name.strip() or "/" in name or "\\" in name:
            raise self.fail(key, "a name must be non-empty and contain no path separator")

    def number(self, value: Any, key: str, *, low: float = 0.0, high: float | None = None) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key, f"must be a number, got {_kind(value)}")
        number = float(value)
        if not math.isfinite(number):
            raise self.fail(key, f"must be finite, got {number}")
        if number < low or (high is not None and number > high):
            bounds = f"in [{low:g}, {high:g}]" if high is not None else f">= {low:g}"
            raise self.fail(key, f"must be {bounds}, got {number:g}")
        return number

    def string(self, value: Any, key: str) -> str:
        if not isinstance(value, str):
            raise self.fail(key, f"must be a string, got {_kind(value)}")
        if not value.strip():
            raise self.fail(key, "must not be empty")
        return value

    def model(self, name: str, body: Any) -> ModelDef:
        key = f"models.{_q(name)}"
        self.name(name, key)
        body = self.table(body, key)
        self.keys(body, _MODEL_KEYS, key)
        path: Path | None = None
        if "path" in body:
            path = Path(self.string(body["path"], f"{key}.path")).expanduser()
            if not path.is_absolute() and self.source is not None:
                path = self.source.parent / path
        window_s = self.number(body.get("window_s", 30.0), f"{key}.window_s")
        if window_s == 0:
            raise self.fail(f"{key}.window_s", "must be > 0")
        audio_ctx: int | None = None
        if "audio_ctx" in body:
            raw = body["audio_ctx"]
            if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
                raise self.fail(f"{key}.audio_ctx", f"must be an integer >= 0, got {raw!r}")
            audio_ctx = raw
        cost = self.number(body.get("relative_cost", 1.0), f"{key}.relative_cost")
        if cost == 0:
            raise self.fail(f"{key}.relative_cost", "must be > 0")
        sha256: str | None = None
        if "sha256" in body:
            sha256 = self.string(body["sha256"], f"{key}.sha256").lower()
            if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
                raise self.fail(f"{key}.sha256", "must be 64 hexadecimal digits")
        return ModelDef(name, path, window_s, audio_ctx, cost, sha256)

    def ladder(self, name: str, body: Any) -> tuple[str, ...]:
        key = f"ladders.{_q(name)}"
        self.name(name, key)
        if not isinstance(body, list) or not body:
            raise self.fail(key, f"must be a non-empty array of model names, got {_kind(body)}")
        members = tuple(self.string(m, f"{key}[{i}]") for i, m in enumerate(body))
        for i, member in enumerate(members):
            self.name(member, f"{key}[{i}]")
            if member in members[:i]:
                raise self.fail(f"{key}[{i}]", f"model {member!r} appears twice")
        return members

    def preset(self, name: str, body: Any, ladders: set[str]) -> PresetDef:
        key = f"presets.{_q(name)}"
        self.name(name, key)
        body = self.table(body, key)
        self.keys(body, _PRESET_KEYS, key)
        base = None
        if "base" in body:
            base = self.string(body["base"], f"{key}.base")
            if base not in BUILTIN_PRESETS:
                raise self.fail(
                    f"{key}.base",
                    f"unknown built-in preset {base!r} (one of {', '.join(BUILTIN_PRESETS)})",
                )
        ladder = None
        if "ladder" in body:
            ladder = self.string(body["ladder"], f"{key}.ladder")
            if ladder not in ladders:
                known = ", ".join(sorted(ladders)) or "none"
                raise self.fail(f"{key}.ladder", f"unknown ladder {ladder!r} (known: {known})")
        weights_key = f"{key}.weights"
        weights = self.weights(body.get("weights", {}), weights_key)
        per_model_key = f"{key}.model_weights"
        per_model = {
            m: self.weights(w, f"{per_model_key}.{_q(m)}")
            for m, w in self.table(body.get("model_weights", {}), per_model_key).items()
        }
        thresholds_key = f"{key}.thresholds"
        thresholds = self.table(body.get("thresholds", {}), thresholds_key)
        default = body.get("default_threshold")
        flags = {}
        for flag in ("keep_best", "preselect"):
            value = body.get(flag)
            if value is not None and not isinstance(value, bool):
                raise self.fail(f"{key}.{flag}", f"must be true or false, got {value!r}")
            flags[flag] = value
        never_skip = body.get("never_skip")
        if never_skip is not None and (
            not isinstance(never_skip, list) or not all(isinstance(m, str) for m in never_skip)
        ):
            raise self.fail(
                f"{key}.never_skip", f"must be a list of model names, got {never_skip!r}"
            )
        return PresetDef(
            name=name,
            base=base,
            ladder=ladder,
            weights=weights,
            model_weights=per_model,
            thresholds={
                m: self.number(x, f"{thresholds_key}.{_q(m)}", high=1.0)
                for m, x in thresholds.items()
            },
            default_threshold=(
                None
                if default is None
                else self.number(default, f"{key}.default_threshold", high=1.0)
            ),
            keep_best=flags["keep_best"],
            preselect=flags["preselect"],
            never_skip=None if never_skip is None else tuple(never_skip),
        )

    def weights(self, body: Any, key: str) -> dict[str, float]:
        table = self.table(body, key)
        self.keys(table, WEIGHT_NAMES, key)
        return {w: self.number(x, f"{key}.{w}") for w, x in table.items()}

    def prices(self, body: Any) -> Prices:
        body = self.table(body, "prices")
        self.keys(body, _PRICE_KEYS, "prices")
        per_model = self.table(body.get("per_model", {}), "prices.per_model")
        return Prices(
            cpu_hour=self.number(body.get("cpu_hour", 0.0), "prices.cpu_hour"),
            currency=self.string(body.get("currency", "USD"), "prices.currency"),
            per_model={
                m: self.number(x, f"prices.per_model.{_q(m)}") for m, x in per_model.items()
            },
        )


def _q(key: str) -> str:
    """A TOML key as written in a dotted path: bare when possible, else quoted."""
    bare = key and all(c.isascii() and (c.isalnum() or c in "-_") for c in key)
    return key if bare else '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _kind(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a float", str: "a string"}
    names |= {list: "an array", dict: "a table"}
    return names.get(type(value), f"a {type(value).__name__}")
