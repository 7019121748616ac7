"""The decision matrix: confidence metrics → one quality score, accept or escalate, pre-selection.

:func:`score` combines a transcript's confidence metrics (see
:mod:`whisper_cascade.confidence`) into a value in [0, 1]::

    base  = weighted mean of (mean token probability, consistency, speech coverage,
                              sequence confidence)
    value = base × Π (1 − weight_i × penalty_i)

with penalties in [0, 1] for the low-confidence token share, back-to-back word repetition,
compression ratio above 2.0 (1 at 3.0; openai-whisper's limit 2.4 gives 0.4), average
log-probability below −0.5 (1 at −1.5; openai-whisper's limit −1.0 gives 0.5) and text over
little speech (1 − the share of the transcript's time that OUR speech detector marks as speech,
or, given the audio features, 1 − the file's speech ratio when that is under 5 %; text over such
a silent file is also multiplied by that ratio, so it scores near 0 whatever the weights). The value
rises with each positive metric and falls with each penalty. Confident hallucinations — loops,
text over silence — are also flagged (``hallucination_suspected``) so that :func:`decide`
escalates them whatever their score.

An empty transcript of audio without speech is right (value 1.0); an empty transcript of audio
with speech is wrong (value 0.0).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from whisper_cascade.errors import InvalidArgumentError

if TYPE_CHECKING:
    from whisper_cascade.features import AudioFeatures
    from whisper_cascade.presets import Preset


class SpeechShare(Protocol):
    """What :func:`score` reads from the audio features (:class:`AudioFeatures` has it)."""

    @property
    def speech_ratio(self) -> float: ...


__all__ = [
    "NO_SPEECH_RATIO",
    "Decision",
    "Score",
    "SpeechShare",
    "Weights",
    "decide",
    "preselect",
    "rule_rung",
    "score",
]

NO_SPEECH_RATIO = 0.05
"""Below this share of detected speech a file counts as having no speech."""
REPETITION_FLAG = 0.5
COMPRESSION_FLAG = 2.4  # openai-whisper's fallback limit
TEXT_OVER_SILENCE_FLAG = 0.3  # speech_in_segments below this: text where we hear no speech
NOISY_SNR_DB = 10.0
VERY_NOISY_SNR_DB = 3.0
COMPLEX = 0.6
VERY_COMPLEX = 0.85
SHORT_S = 30.0
CLEAN_SNR_DB = 20.0


@dataclass(frozen=True)
class Weights:
    """Weights of the decision matrix; positive metrics are averaged, penalties multiply.

    The defaults of consistency, coverage and the low-confidence and no-speech penalties were
    fitted on the micro zoo's calibration corpus and checked on held-out sets
    (``bench/bench_weights.py``, table in bench/README.md "Decision weights").
    """

    confidence: float = 0.6
    consistency: float = 0.4
    coverage: float = 0.1
    sequence: float = 0.0
    low_confidence_penalty: float = 0.9
    repetition_penalty: float = 0.8
    compression_penalty: float = 0.6
    logprob_penalty: float = 0.3
    no_speech_penalty: float = 0.2

    def __post_init__(self) -> None:
        for name, value in self.__dict__.items():
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise InvalidArgumentError(f"weight {name} must be a finite number >= 0")
            if name.endswith("_penalty") and value > 1:
                raise InvalidArgumentError(f"weight {name} must be in [0, 1], got {value}")
        if self.confidence + self.consistency + self.coverage + self.sequence <= 0:
            raise InvalidArgumentError(
                "confidence, consistency, coverage and sequence weights sum to 0"
            )

    def updated(self, values: Mapping[str, float]) -> Weights:
        """A copy with some weights replaced; unknown names raise InvalidArgumentError."""
        unknown = set(values) - set(self.__dict__)
        if unknown:
            raise InvalidArgumentError(f"unknown weights: {', '.join(sorted(unknown))}")
        return Weights(**{**self.__dict__, **{k: float(v) for k, v in values.items()}})


@dataclass(frozen=True)
class Score:
    """A quality score in [0, 1], its components and hallucination flags."""

    value: float
    components: dict[str, float] = field(default_factory=dict)
    flags: tuple[str, ...] = ()

    @property
    def hallucination_suspected(self) -> bool:
        """True when the transcript looks like a loop or like text over silence."""
        return bool(self.flags)


@dataclass(frozen=True)
class Decision:
    """Outcome of :func:`decide`: accept, or escalate with a reason."""

    accept: bool
    reason: str
    threshold: float


def _metric(metrics: Mapping[str, float], name: str, default: float) -> float:
    value = metrics.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgumentError(f"metric {name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise InvalidArgumentError(f"metric {name} must be finite, got {value}")
    return value


def _clamp(x: float) -> float:
    return min(1.0, max(0.0, x))


def _ramp(x: float, zero_at: float, one_at: float) -> float:
    return _clamp((x - zero_at) / (one_at - zero_at))


def score(
    metrics: Mapping[str, float],
    features: SpeechShare | None = None,
    weights: Weights | None = None,
) -> Score:
    """The quality score of one transcript (or one segment) from its confidence metrics.

    ``features`` (the audio's, optional) lets the no-speech penalty use the file's speech ratio.
    Missing metrics take neutral values; non-finite or non-numeric ones raise.
    """
    w = weights or Weights()
    n_tokens = _metric(metrics, "n_tokens", 1.0)
    speech_ratio = None if features is None else float(features.speech_ratio)
    if n_tokens <= 0:
        no_speech = speech_ratio is not None and speech_ratio < NO_SPEECH_RATIO
        if speech_ratio is None:
            no_speech = _metric(metrics, "speech_coverage", 0.0) >= 1.0
        value = 1.0 if no_speech else 0.0
        flag = "empty_on_silence" if no_speech else "empty_transcript"
        return Score(value, {"base": value, flag: 1.0}, ())
    conf = _clamp(_metric(metrics, "mean", 0.0))
    consistency = _clamp(_metric(metrics, "consistency", conf))
    coverage = _clamp(_metric(metrics, "speech_coverage", 1.0))
    # Metrics stored before sequence_confidence existed: the same value from its two parts.
    geometric = _clamp(_metric(metrics, "geometric_mean", conf))
    sequence = _clamp(_metric(metrics, "sequence_confidence", geometric**n_tokens))
    total = w.confidence + w.consistency + w.coverage + w.sequence
    base = (
        w.confidence * conf
        + w.consistency * consistency
        + w.coverage * coverage
        + w.sequence * sequence
    ) / total
    in_speech = _clamp(_metric(metrics, "speech_in_segments", 1.0))
    no_speech_pen = 1.0 - in_speech
    silent_file = speech_ratio is not None and speech_ratio < NO_SPEECH_RATIO
    if speech_ratio is not None and silent_file:
        no_speech_pen = max(no_speech_pen, 1.0 - speech_ratio)
    compression = _metric(metrics, "compression_ratio", 1.0)
    repetition = _clamp(_metric(metrics, "repetition_score", 0.0))
    penalties = {
        "low_confidence_penalty": _clamp(_metric(metrics, "low_confidence_ratio", 0.0)),
        "repetition_penalty": repetition,
        "compression_penalty": _ramp(compression, 2.0, 3.0),
        "logprob_penalty": _ramp(-_metric(metrics, "avg_logprob", 0.0), 0.5, 1.5),
        "no_speech_penalty": no_speech_pen,
    }
    value = base
    for name, penalty in penalties.items():
        value *= 1.0 - getattr(w, name) * penalty
    if silent_file:
        # Text over a file we hear no speech in is a hallucination whatever the weights.
        value *= 1.0 - no_speech_pen
    flags = []
    if repetition >= REPETITION_FLAG:
        flags.append("repetition")
    if compression > COMPRESSION_FLAG:
        flags.append("compression")
    if in_speech < TEXT_OVER_SILENCE_FLAG or silent_file:
        flags.append("text_over_silence")
    components = {
        "confidence": conf,
        "consistency": consistency,
        "coverage": coverage,
        "sequence": sequence,
        "base": base,
        **penalties,
    }
    return Score(_clamp(value), components, tuple(flags))


def decide(
    result: Score,
    model: str,
    preset: Preset,
    *,
    min_score: float | None = None,
    content_class: str | None = None,
) -> Decision:
    """Accept ``result`` from ``model`` or escalate, under ``preset``'s threshold for it.

    The threshold is the preset's for ``model`` and the audio's ``content_class``;
    ``min_score`` overrides it. A suspected hallucination escalates whatever the score, unless
    the preset turns ``hallucination_check`` off.
    """
    if min_score is None:
        threshold = preset.threshold_for(model, content_class)
    else:
        threshold = float(min_score)
    if preset.hallucination_check and result.hallucination_suspected:
        return Decision(False, "hallucination_suspected", threshold)
    if result.value >= threshold:
        return Decision(True, "accepted", threshold)
    return Decision(False, "score_below_threshold", threshold)


def rule_rung(features: AudioFeatures, n_rungs: int) -> tuple[int | None, str]:
    """What the pre-selection rules alone say for audio with these features: a rung (None:
    the preset's default) and why. See :func:`preselect`."""
    if features.speech_ratio < NO_SPEECH_RATIO:
        return 0, "no_speech"
    snr, complexity = features.snr_db, features.complexity
    if snr < VERY_NOISY_SNR_DB or complexity >= VERY_COMPLEX:
        return min(2, n_rungs - 1), "very_noisy_or_complex"
    if snr < NOISY_SNR_DB or complexity >= COMPLEX:
        return min(1, n_rungs - 1), "noisy_or_complex"
    if features.duration_s <= SHORT_S and snr >= CLEAN_SNR_DB:
        return 0, "short_clean"
    return None, "default"


def preselect(
    features: AudioFeatures | None, ladder: Sequence[object], preset: Preset
) -> tuple[int, str]:
    """The rung to start from for audio with these features, and why.

    Rules: no analysis or pre-selection off → the preset's default rung; no speech or short and
    clean → the smallest; very noisy or very complex → skip two rungs; noisy or complex → skip
    the smallest. Never past the last rung, and never past a model the preset must not skip
    (:meth:`~whisper_cascade.presets.Preset.may_skip`; reason ``"no_skip"``).
    """
    n = len(ladder)
    if n == 0:
        raise InvalidArgumentError("the ladder is empty")
    default = min(preset.default_index(ladder), n - 1)
    if features is None:
        return default, "no_analysis"
    if not preset.preselect:
        return default, "preselect_off"
    index, reason = rule_rung(features, n)
    if index is None:
        return default, reason
    for i in range(index):
        if not preset.may_skip(str(getattr(ladder[i], "name", ladder[i]))):
            return i, "no_skip"
    return index, reason
