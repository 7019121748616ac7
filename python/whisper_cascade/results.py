"""The cascade's result: segments, text, info and the ``model_selection`` audit block.

``model_selection`` keys: ``initial_model`` (the pre-selected rung), ``final_model`` (the model
whose transcript was kept; with segment-level escalation some spans come from earlier models),
``escalation_count`` (rungs tried after the first), ``escalation_reason``, ``accepted`` (did the
final transcript pass its threshold), ``decision_metrics`` (the final confidence metrics plus
``score``, ``threshold``, ``flags``, ``components``), ``decision_history`` (one entry per attempt:
``model``, ``scope`` ``"file"|"segments"``, ``score``, ``threshold``, ``time_s``, ``cost``,
``reason``, ``spans``, ``error``), ``processing_time_s``, ``processing_time_saved_s``,
``largest_model_estimate_s`` and ``largest_model`` (the ladder's most expensive rung), plus
``job_id`` (the store's job id), ``start_selection`` (``"rules"`` or ``"bandit"``),
``content_class`` (also in ``info``) and ``wer`` (the final transcript's word error rate against
the reference given to ``transcribe``, a fraction that can exceed 1; None without one).

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

import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from whisper_cascade.errors import BackendError, ModelNotFoundError
from whisper_cascade.transcriber import Segment, Transcription

if TYPE_CHECKING:
    from whisper_cascade.audio import Audio
    from whisper_cascade.features import AudioFeatures
    from whisper_cascade.ladders import Ladder
    from whisper_cascade.models import ModelSpec
    from whisper_cascade.policy import Decision, Score
    from whisper_cascade.presets import Preset

__all__ = [
    "ESCALATION_REASONS",
    "Attempt",
    "CascadeResult",
    "KeptRun",
    "all_failed",
    "build_result",
]

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


@dataclass
class KeptRun:
    """The transcript the cascade keeps so far and where it came from."""

    transcription: Transcription
    model: ModelSpec
    score: Score
    decision: Decision
    rate_s: float  # observed seconds per (relative cost × share of the audio)
    attempt: int = -1  # index of the attempt in the decision history

    def outranks(self, other: KeptRun) -> bool:
        """True when this (later) run's transcript should be returned rather than ``other``'s:
        a higher score wins, the later (larger) rung wins ties, and a suspected hallucination
        never beats a transcript without that flag."""
        mine = self.decision.reason == "hallucination_suspected"
        theirs = other.decision.reason == "hallucination_suspected"
        if mine != theirs:
            return theirs
        return self.score.value >= other.score.value


def build_result(
    audio: Audio,
    preset: Preset,
    ladder: Ladder,
    best: KeptRun,
    history: list[Attempt],
    *,
    kept: KeptRun | None = None,
    start: int,
    started: float,
    feats: AudioFeatures | None,
    analysis_error: str | None,
    pre_reason: str,
    budget_hit: bool,
    job_id: str,
    start_selection: str,
    content_class: str,
    wer: float | None = None,
) -> CascadeResult:
    """Assemble the :class:`CascadeResult` of a finished climb (``started``: perf_counter).

    ``best`` is the last run; ``kept``, when given, the run whose transcript is returned
    (the best-scoring one)."""
    total = time.perf_counter() - started
    largest = max(ladder.models, key=lambda m: m.relative_cost)
    estimate = best.rate_s * largest.relative_cost  # from the last run
    tried = [h for h in history if h.reason != "budget_exhausted"]
    if budget_hit:
        reason = "budget_exhausted"
    elif len(tried) == 1 and best.decision.accept:
        reason = "accepted"
    else:
        reason = next(h.reason for h in reversed(tried) if h.reason != "accepted")
    last, best = best, kept or best
    tr = best.transcription
    metrics: dict[str, Any] = dict(tr.confidence)
    metrics.update(
        score=best.score.value,
        threshold=best.decision.threshold,
        flags=list(best.score.flags),
        components=dict(best.score.components),
    )
    selection = {
        "initial_model": ladder.models[start].name,
        "final_model": best.model.name,
        "escalation_count": max(0, len(tried) - 1),
        "escalation_reason": reason,
        "accepted": best.decision.accept,
        "kept_attempt": best.attempt if best.attempt >= 0 else len(history) - 1,
        "kept_best_score": best is not last,
        "decision_metrics": metrics,
        "decision_history": [h.to_dict() for h in history],
        "processing_time_s": total,
        "processing_time_saved_s": estimate - total,
        "largest_model_estimate_s": estimate,
        "largest_model": largest.name,
        "job_id": job_id,
        "start_selection": start_selection,
        "content_class": content_class,
        "wer": wer,
    }
    info = {
        "duration": audio.duration_s,
        "language": "en",
        "preset": preset.name,
        "ladder": ladder.name,
        "ladder_models": list(ladder.names),
        "preselect_reason": pre_reason,
        "content_class": content_class,
        "analysis": None if feats is None else feats.to_dict(),
        "analysis_error": analysis_error,
        "no_speech_estimate": tr.no_speech_estimate,
    }
    return CascadeResult(
        audio=audio.source,
        text=tr.text,
        segments=tr.segments,
        info=info,
        confidence=dict(tr.confidence),
        model_selection=selection,
        transcription=tr,
    )


def all_failed(ladder: Ladder, history: list[Attempt], errors: list[BaseException]) -> Exception:
    """The error to raise when no rung of ``ladder`` produced a transcript."""
    detail = "; ".join(f"{h.model}: {h.error}" for h in history if h.error)
    message = f"no model of ladder {ladder.name!r} produced a transcript ({detail})"
    if errors and all(isinstance(e, ModelNotFoundError) for e in errors):
        return ModelNotFoundError(message)
    return BackendError(message)
