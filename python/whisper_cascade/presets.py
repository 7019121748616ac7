"""Presets: named weights and escalation thresholds per model, built in or from a config.

Built in: ``fast``, ``balanced`` (the default) and ``accurate``.

* Thresholds for the micro zoo (``micro-xs``, ``micro-s``, ...) come from the calibration
  file shipped with the models (``data/models/calibration.json``, written by
  ``python -m whisper_cascade.zoo.calibrate`` on a held-out calibration corpus): for ``fast``
  the cheapest thresholds whose WER stays within 3 points of always running the largest model,
  for ``balanced`` and ``accurate`` the most accurate ones whose cost stays within 0.75× and 1×
  that of running only the largest model; with each, whether the preset keeps the
  best-scoring transcript (``keep_best``) and whether pre-selection may skip the ladder's
  cheaper models (``preselect``; when not, they go to ``never_skip``). The same file holds
  decision weights fitted for each of its models (``model_weights``: a model's transcripts are
  scored with its own, see :meth:`Preset.weights_for`). Without that file they are
  placeholders and ``calibrated`` is False.
* Thresholds for OpenAI's models derive from openai-whisper's published fallback criteria
  (average log-probability < −1.0, compression ratio > 2.4, no-speech probability > 0.6):
  ``balanced`` uses the score of a transcript sitting exactly on those limits
  (:data:`OPENAI_LIMIT_METRICS`: mean token probability e^−1, log-probability −1.0, compression
  2.4, and 40 % of its time over detected speech, i.e. a no-speech share of 0.6); ``fast``
  accepts 15 % below it and ``accurate`` asks 15 % above it. Uncalibrated here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from types import MappingProxyType
from typing import Any, Protocol

from whisper_cascade.errors import InvalidArgumentError
from whisper_cascade.models import BUNDLED_MODELS_PACKAGE
from whisper_cascade.policy import Weights, score

__all__ = [
    "DEFAULT_PRESET",
    "OPENAI_LIMIT_METRICS",
    "Preset",
    "PresetDefLike",
    "apply_calibration",
    "builtin_presets",
    "get_preset",
]

DEFAULT_PRESET = "balanced"
MICRO_MODELS = ("micro-s", "micro-m", "micro-l")
OPENAI_MODELS = (
    "tiny",
    "base",
    "small",
    "medium",
    "large-v1",
    "large-v2",
    "large-v3",
    "large-v3-turbo",
)

OPENAI_LIMIT_METRICS: Mapping[str, float] = MappingProxyType(
    {
        "n_tokens": 20.0,
        "mean": math.exp(-1.0),
        "consistency": 0.5,
        "speech_coverage": 0.9,
        "low_confidence_ratio": 0.5,
        "avg_logprob": -1.0,
        "compression_ratio": 2.4,
        "repetition_score": 0.0,
        "speech_in_segments": 0.4,
    }
)
"""A transcript on openai-whisper's fallback limits (the other metrics at typical values)."""


class PresetDefLike(Protocol):
    """What :meth:`Preset.from_def` reads (the config module's ``PresetDef``)."""

    @property
    def name(self) -> str: ...
    @property
    def base(self) -> str | None: ...
    @property
    def ladder(self) -> str | None: ...
    @property
    def weights(self) -> Mapping[str, float]: ...
    @property
    def model_weights(self) -> Mapping[str, Mapping[str, float]]: ...
    @property
    def thresholds(self) -> Mapping[str, float]: ...
    @property
    def default_threshold(self) -> float | None: ...
    @property
    def keep_best(self) -> bool | None: ...
    @property
    def preselect(self) -> bool | None: ...
    @property
    def never_skip(self) -> tuple[str, ...] | None: ...


def _check_threshold(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidArgumentError(f"threshold {name} must be a finite number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Preset:
    """Weights and escalation thresholds (by model name) of one way of running the cascade.

    A threshold above 1 always escalates; 0 accepts every score (hallucination checks aside).
    ``default_model`` is where the cascade starts without analysis (None: the cheapest rung).
    ``model_weights`` are weights fitted for one model (by name), used for its transcripts
    instead of ``weights``. ``keep_best``: return the best-scoring transcript of the rungs that
    ran instead of the last one (pays when rungs are close in accuracy but err differently).
    ``never_skip``: models (by name; quantized names fall back to their base model's) that the
    pre-selection rules must not skip on noisy or complex audio (calibrated: skipping them did
    not pay on the calibration corpus).
    """

    name: str
    weights: Weights = field(default_factory=Weights)
    thresholds: Mapping[str, float] = field(default_factory=dict)
    default_threshold: float = 0.6
    ladder: str | None = None
    preselect: bool = True
    hallucination_check: bool = True
    default_model: str | None = None
    calibrated: bool = False
    note: str = ""
    class_thresholds: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    model_weights: Mapping[str, Weights] = field(default_factory=dict)
    keep_best: bool = False
    never_skip: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not self.name:
            raise InvalidArgumentError("a preset needs a name")
        object.__setattr__(self, "never_skip", frozenset(str(m) for m in self.never_skip))
        _check_threshold("default_threshold", self.default_threshold)
        checked = {str(k): _check_threshold(str(k), v) for k, v in self.thresholds.items()}
        object.__setattr__(self, "thresholds", MappingProxyType(checked))
        per_class = {
            str(c): MappingProxyType({str(k): _check_threshold(str(k), v) for k, v in t.items()})
            for c, t in self.class_thresholds.items()
        }
        object.__setattr__(self, "class_thresholds", MappingProxyType(per_class))
        for model, weights in self.model_weights.items():
            if not isinstance(weights, Weights):
                raise InvalidArgumentError(f"model_weights[{model!r}] must be Weights")
        object.__setattr__(self, "model_weights", MappingProxyType(dict(self.model_weights)))

    def weights_for(self, model: str) -> Weights:
        """The weights that score ``model``'s transcripts: its own when the preset has them
        (quantized and ``.en`` names fall back to their base model's), else ``weights``."""
        for candidate in _name_variants(model):
            if candidate in self.model_weights:
                return self.model_weights[candidate]
        return self.weights

    def may_skip(self, model: str) -> bool:
        """Whether pre-selection may start past ``model`` (see ``never_skip``)."""
        return not any(candidate in self.never_skip for candidate in _name_variants(model))

    def threshold_for(self, model: str, content_class: str | None = None) -> float:
        """The score a transcript by ``model`` needs to be accepted.

        A threshold for the audio's ``content_class`` (see :mod:`whisper_cascade.content`)
        comes first. Quantized names (``small-q8_0``) and English-only names (``base.en``)
        fall back to their base model's threshold.
        """
        tables = [self.thresholds]
        if content_class is not None and content_class in self.class_thresholds:
            tables.insert(0, self.class_thresholds[content_class])
        for table in tables:
            for candidate in _name_variants(model):
                if candidate in table:
                    return table[candidate]
        return self.default_threshold

    def default_index(self, ladder: Sequence[object]) -> int:
        """Index of ``default_model`` in ``ladder`` (models or names), else 0."""
        if self.default_model is None:
            return 0
        for i, rung in enumerate(ladder):
            if getattr(rung, "name", rung) == self.default_model:
                return i
        return 0

    def with_overrides(self, **changes: object) -> Preset:
        """A copy with some fields replaced."""
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_def(cls, raw: PresetDefLike, presets: Mapping[str, Preset] | None = None) -> Preset:
        """Build a preset from a config definition, on top of its ``base`` (default: balanced).

        ``presets`` are the presets a base may name (default: the built-in ones).
        """
        known = builtin_presets() if presets is None else presets
        base_name = raw.base or DEFAULT_PRESET
        if base_name not in known:
            raise InvalidArgumentError(
                f"preset {raw.name!r}: unknown base preset {base_name!r} "
                f"(known: {', '.join(sorted(known))})"
            )
        base = known[base_name]
        thresholds = {**base.thresholds, **dict(raw.thresholds)}
        # The user's weights win over fitted per-model ones too, then per-model user weights.
        model_weights = {m: w.updated(raw.weights) for m, w in base.model_weights.items()}
        weights = base.weights.updated(raw.weights)
        for model, values in raw.model_weights.items():
            model_weights[model] = model_weights.get(model, weights).updated(values)
        default = base.default_threshold
        if raw.default_threshold is not None:
            default = _check_threshold("default_threshold", raw.default_threshold)
        return replace(
            base,
            name=raw.name,
            weights=weights,
            model_weights=model_weights,
            thresholds=thresholds,
            default_threshold=default,
            keep_best=base.keep_best if raw.keep_best is None else raw.keep_best,
            preselect=base.preselect if raw.preselect is None else raw.preselect,
            never_skip=base.never_skip if raw.never_skip is None else frozenset(raw.never_skip),
            ladder=raw.ladder if raw.ladder is not None else base.ladder,
            calibrated=False,
            note=f"user preset on {base_name}",
        )


def _name_variants(model: str) -> list[str]:
    out = [model]
    for suffix in ("-q4_0", "-q4_1", "-q5_0", "-q5_1", "-q8_0"):
        if model.endswith(suffix):
            out.append(model.removesuffix(suffix))
    out += [m.removesuffix(".en") for m in list(out) if m.endswith(".en")]
    return out


def _builtin(name: str, micro: Sequence[float], factor: float, default: float) -> Preset:
    weights = Weights()
    openai_limit = round(score(OPENAI_LIMIT_METRICS, None, weights).value * factor, 3)
    thresholds = dict(zip(MICRO_MODELS, micro, strict=True))
    thresholds.update(dict.fromkeys(OPENAI_MODELS, openai_limit))
    return Preset(
        name=name,
        weights=weights,
        thresholds=thresholds,
        default_threshold=default,
        calibrated=False,
        note=(
            "micro thresholds: to be calibrated on the micro zoo; OpenAI thresholds: derived "
            "from openai-whisper's fallback criteria, uncalibrated here"
        ),
    )


CALIBRATION_FILE = "calibration.json"
_PLACEHOLDERS: dict[str, Preset] = {
    "fast": _builtin("fast", (0.45, 0.4, 0.35), 0.85, 0.45),
    "balanced": _builtin("balanced", (0.6, 0.55, 0.5), 1.0, 0.6),
    "accurate": _builtin("accurate", (0.75, 0.7, 0.65), 1.15, 0.75),
}


def apply_calibration(
    presets: Mapping[str, Preset], calibration: Mapping[str, Any]
) -> dict[str, Preset]:
    """``presets`` with the micro thresholds (and per-model weights, when the file has them)
    of a calibration file (see the module doc).

    A model name in the file loses its quantization suffix (thresholds and weights are per
    model, whatever its file type); presets the file does not name are returned unchanged.
    """
    out = dict(presets)
    fitted = calibration.get("presets")
    if not isinstance(fitted, Mapping):
        raise InvalidArgumentError("a calibration needs a 'presets' object")
    model_weights = _calibrated_weights(calibration.get("weights", {}))
    n = calibration.get("n_items", "?")
    for name, entry in fitted.items():
        if name not in out:
            continue
        if not isinstance(entry, Mapping) or not isinstance(entry.get("thresholds"), Mapping):
            raise InvalidArgumentError(f"calibration of preset {name!r} needs 'thresholds'")
        micro = {_name_variants(str(m))[-1]: v for m, v in entry["thresholds"].items()}
        base = out[name]
        never_skip = base.never_skip
        if entry.get("preselect", True) is False:
            skippable = calibration.get("ladder_models", [])[:-1]
            never_skip = never_skip | {_name_variants(str(m))[-1] for m in skippable}
        if "max_cost_share" in entry:
            target = (
                f"lowest WER at most {entry['max_cost_share']}× the cost of running only the "
                "largest model"
            )
        else:
            target = f"WER at most {entry.get('max_wer_increase', '?')} above always-largest"
        out[name] = replace(
            base,
            thresholds={**base.thresholds, **micro},
            model_weights={**base.model_weights, **model_weights},
            keep_best=bool(entry.get("keep_best", base.keep_best)),
            never_skip=never_skip,
            calibrated=True,
            note=(
                f"micro thresholds calibrated on {n} held-out utterances ({target}); "
                "OpenAI thresholds: derived from "
                "openai-whisper's fallback criteria, uncalibrated here"
            ),
        )
    return out


def _calibrated_weights(raw: object) -> dict[str, Weights]:
    if not isinstance(raw, Mapping):
        raise InvalidArgumentError("a calibration's 'weights' must map model names to weights")
    out = {}
    for model, values in raw.items():
        if not isinstance(values, Mapping):
            raise InvalidArgumentError(f"calibration weights of {model!r} must be an object")
        out[_name_variants(str(model))[-1]] = Weights().updated(values)
    return out


def _shipped_calibration() -> Mapping[str, Any] | None:
    path = resources.files(BUNDLED_MODELS_PACKAGE) / CALIBRATION_FILE
    if not path.is_file():
        return None
    data: Mapping[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


_CALIBRATION = _shipped_calibration()
_BUILTIN: dict[str, Preset] = (
    apply_calibration(_PLACEHOLDERS, _CALIBRATION) if _CALIBRATION else dict(_PLACEHOLDERS)
)


def builtin_presets() -> dict[str, Preset]:
    """The built-in presets by name."""
    return dict(_BUILTIN)


def get_preset(preset: str | Preset | None, extra: Mapping[str, Preset] | None = None) -> Preset:
    """A preset by name (user presets in ``extra`` first, then built-ins), or as given."""
    if isinstance(preset, Preset):
        return preset
    name = preset or DEFAULT_PRESET
    if extra and name in extra:
        return extra[name]
    if name in _BUILTIN:
        return _BUILTIN[name]
    known = sorted({*_BUILTIN, *(extra or {})})
    raise InvalidArgumentError(f"unknown preset {name!r} (known: {', '.join(known)})")
