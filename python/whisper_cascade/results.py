"""The cascade's result: segments, text, info and the ``model_selection`` audit block.

``model_selection`` keys: ``initial_model`` (the pre-selected rung), ``final_model`` (the model
whose transcript was kept; with segment-level escalation some spans come from earlier models),
``escalation_count`` (rungs tried after the first), ``escalation_reason``, ``accepted`` (did the
final transcript pass its threshold), ``decision_metrics`` (the final confidence metrics plus
``score``, ``threshold``, ``flags``, ``components``), ``decision_history`` (one entry per attempt:
``model``, ``scope`` ``"file"|"segments"``, ``score``, ``threshold``, ``time_s``, ``cost``,
``reason``, ``spans``, ``error``), ``processing_time_s``, ``processing_time_saved_s`` and
``largest_model_estimate_s``.

``escalation_reason`` is ``accepted`` when the first transcript was accepted,
``budget_exhausted`` when a cost or latency budget stopped the climb, otherwise the reason of the
last attempt that was not accepted: ``score_below_threshold``, ``hallucination_suspected``,
``model_failed`` (load or call failed; fallback to the next model) or ``circuit_open`` (the
model's breaker refused the call).

``processing_time_saved_s`` = ``largest_model_estimate_s`` − ``processing_time_s``, where the
estimate is the observed time of the last successful attempt scaled by the ratio of relative
costs (largest model's / that model's, per share of the audio it ran on). It is negative when
the cascade cost more than running the largest model would have.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from whisper_cascade.transcriber import Segment, Transcription

__all__ = ["ESCALATION_REASONS", "Attempt", "CascadeResult"]

ESCALATION_REASONS = (
    "accepted",
    "score_below_threshold",
    "hallucination_suspected",
    "model_failed",
    "circuit_open",
    "budget_exhausted",
)


@dataclass(frozen=True)
class Attempt:
    """One step of the cascade: a model run on the file or on spans, or a skipped rung."""

    model: str
    scope: str
    reason: str
    score: float | None = None
    threshold: float | None = None
    time_s: float = 0.0
    cost: float = 0.0
    spans: tuple[tuple[float, float], ...] | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        out = asdict(self)
        out["spans"] = None if self.spans is None else [list(s) for s in self.spans]
        return out


@dataclass(frozen=True)
class CascadeResult:
    """Segments (start, end, text, words with probabilities), text, info, confidence and the
    ``model_selection`` block (see the module docstring)."""

    audio: str
    text: str
    segments: tuple[Segment, ...]
    info: dict[str, Any]
    confidence: dict[str, Any]
    model_selection: dict[str, Any]
    transcription: Transcription | None = field(default=None, repr=False, compare=False)

    @property
    def model(self) -> str:
        """The final model."""
        return str(self.model_selection["final_model"])

    @property
    def time_s(self) -> float:
        """Total processing time in seconds."""
        return float(self.model_selection["processing_time_s"])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: audio, text, segments, confidence, model, time_s, info,
        model_selection."""
        return {
            "audio": self.audio,
            "text": self.text,
            "segments": [s.to_dict() for s in self.segments],
            "confidence": dict(self.confidence),
            "model": self.model,
            "time_s": self.time_s,
            "info": dict(self.info),
            "model_selection": dict(self.model_selection),
        }
