"""The escalation loop: analyse, pre-select, run, score, escalate (whole file or weak spans).

:class:`Cascade` is reusable and thread-safe: models stay warm in its
:class:`~whisper_cascade.backend_pool.ModelPool`, analyses are cached by audio hash, and each
model has a circuit breaker. A model that cannot be found, validated or loaded, or whose call
fails, is skipped for the next rung (``model_failed``); only :class:`BackendError` (transient)
is retried, with exponential backoff; bad audio raises at once. Budgets (``max_cost`` in
relative-cost units, ``max_latency_s``) are checked before each escalation; the first rung
always runs. See :mod:`whisper_cascade.results` for the ``model_selection`` block.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from whisper_cascade.audio import SAMPLE_RATE, Audio, load_audio
from whisper_cascade.backend import ContextOptions, DecodeOptions
from whisper_cascade.backend_pool import ModelPool
from whisper_cascade.breaker import AnalysisCache, BreakerBoard, audio_hash
from whisper_cascade.confidence import aggregate
from whisper_cascade.errors import (
    BackendError,
    InvalidArgumentError,
    ModelError,
    ModelNotFoundError,
    WhisperCascadeError,
)
from whisper_cascade.features import AudioFeatures, analyze
from whisper_cascade.ladders import Ladder, get_ladder
from whisper_cascade.models import ModelSpec, resolve_model
from whisper_cascade.policy import Decision, Score, decide, preselect, score
from whisper_cascade.presets import Preset, get_preset
from whisper_cascade.results import Attempt, CascadeResult
from whisper_cascade.stitch import segment_scores, shift_tokens, stitch_tokens, weak_spans
from whisper_cascade.transcriber import Transcriber, Transcription, build_segments

__all__ = ["Cascade", "CascadeResult", "transcribe"]

AudioSource = str | os.PathLike[str] | bytes | np.ndarray | Audio


class _ModelFailed(Exception):
    def __init__(self, reason: str, error: str) -> None:
        super().__init__(error)
        self.reason = reason
        self.error = error


@dataclass
class _Run:
    """The transcript kept so far and where it came from."""

    transcription: Transcription
    model: ModelSpec
    score: Score
    decision: Decision
    rate_s: float  # observed seconds per (relative cost × share of the audio)


class Cascade:
    """Transcribe with the cheapest rung of a ladder whose transcript passes the preset."""

    def __init__(
        self,
        ladder: str | Sequence[str] | Ladder | None = "micro",
        preset: str | Preset = "balanced",
        *,
        models_dir: str | os.PathLike[str] | None = None,
        n_threads: int | None = None,
        context: ContextOptions | None = None,
        segment_escalation: bool = True,
        max_cost: float | None = None,
        max_latency_s: float | None = None,
        min_score: float | None = None,
        pool: ModelPool | None = None,
        retries: int = 1,
        backoff_s: float = 0.05,
        breaker_threshold: int = 3,
        breaker_cooldown_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        analyzer: Callable[[Audio], AudioFeatures] | None = None,
        presets: Mapping[str, Preset] | None = None,
        ladders: Mapping[str, Ladder] | None = None,
        segment_margin_s: float = 0.25,
        segment_max_share: float = 0.6,
    ) -> None:
        for name, value in (("max_cost", max_cost), ("max_latency_s", max_latency_s)):
            if value is not None and not value > 0:
                raise InvalidArgumentError(f"{name} must be > 0, got {value}")
        if retries < 0 or backoff_s < 0:
            raise InvalidArgumentError("retries and backoff_s must be >= 0")
        self.presets = dict(presets or {})
        self.ladders = dict(ladders or {})
        self.preset = get_preset(preset, self.presets)
        self.ladder = get_ladder(ladder or self.preset.ladder, self.ladders)
        self.models_dir = models_dir
        self.options = DecodeOptions(n_threads=n_threads or 0)
        self.segment_escalation = segment_escalation
        self.max_cost = max_cost
        self.max_latency_s = max_latency_s
        self.min_score = min_score
        self.retries = retries
        self.backoff_s = backoff_s
        self.segment_margin_s = segment_margin_s
        self.segment_max_share = segment_max_share
        self.transcriber = Transcriber(pool, context=context)
        self.breakers = BreakerBoard(breaker_threshold, breaker_cooldown_s, clock)
        self.analysis_cache = AnalysisCache()
        self._analyzer = analyzer or (lambda audio: analyze(audio.samples, SAMPLE_RATE))
        self._resolved: dict[tuple[str, str | None], ModelSpec] = {}
        self._lock = threading.Lock()

    # --- public -----------------------------------------------------------------------------

    def analyze(self, audio: Audio) -> tuple[AudioFeatures | None, str | None]:
        """Features of ``audio`` (cached by hash), or None and the error when analysis fails."""
        try:
            feats = self.analysis_cache.get_or_compute(
                audio_hash(audio.samples), lambda: self._analyzer(audio)
            )
        except (WhisperCascadeError, ValueError) as exc:
            return None, f"{type(exc).__name__}: {exc}"
        assert isinstance(feats, AudioFeatures)
        return feats, None

    def recommend(
        self,
        audio: AudioSource,
        *,
        preset: str | Preset | None = None,
        ladder: str | Sequence[str] | Ladder | None = None,
    ) -> dict[str, Any]:
        """Features and the recommended starting model, without transcribing."""
        audio = audio if isinstance(audio, Audio) else load_audio(audio)
        chosen, rungs = self._setup(preset, ladder)
        feats, error = self.analyze(audio)
        index, reason = preselect(feats, rungs.models, chosen)
        return {
            "audio": audio.source,
            "features": None if feats is None else feats.to_dict(),
            "analysis_error": error,
            "preset": chosen.name,
            "ladder": rungs.name,
            "ladder_models": list(rungs.names),
            "start_model": rungs.models[index].name,
            "reason": reason,
        }

    def health(self) -> dict[str, Any]:
        """Breaker states per model, resident models and analysis-cache counters."""
        cache = self.analysis_cache
        return {
            "breakers": self.breakers.snapshot(),
            "resident_models": [m.name for m in self.transcriber.pool.resident()],
            "analysis_cache": {"size": len(cache), "hits": cache.hits, "misses": cache.misses},
        }

    def close(self) -> None:
        """Free the resident models."""
        self.transcriber.pool.close()

    def __enter__(self) -> Cascade:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def transcribe(
        self,
        audio: AudioSource,
        *,
        preset: str | Preset | None = None,
        ladder: str | Sequence[str] | Ladder | None = None,
    ) -> CascadeResult:
        """Transcribe ``audio`` (a path, bytes, samples or :class:`Audio`) through the ladder.

        Raises AudioError for bad audio, and the model error (ModelNotFoundError when every
        model is missing, else BackendError) when no rung produced a transcript.
        """
        started = time.perf_counter()
        audio = audio if isinstance(audio, Audio) else load_audio(audio)
        chosen, rungs = self._setup(preset, ladder)
        feats, analysis_error = self.analyze(audio)
        start, pre_reason = preselect(feats, rungs.models, chosen)
        speech = [] if feats is None else [(float(a), float(b)) for a, b in feats.speech_segments]
        history: list[Attempt] = []
        errors: list[BaseException] = []
        best: _Run | None = None
        spans: list[tuple[float, float]] | None = None
        spent = 0.0
        budget_hit = False
        for i in range(start, len(rungs.models)):
            spec = rungs.models[i]
            share = 1.0 if spans is None else sum(b - a for a, b in spans) / audio.duration_s
            if best is not None and self._over_budget(spent, spec, share, best, started):
                history.append(Attempt(spec.name, _scope(spans), "budget_exhausted"))
                budget_hit = True
                break
            t0 = time.perf_counter()
            try:
                if best is None or spans is None:
                    result = self._run(spec, audio, feats)
                else:
                    result = self._run_spans(spec, audio, best.transcription, spans, speech)
            except _ModelFailed as exc:
                history.append(Attempt(spec.name, _scope(spans), exc.reason, error=exc.error))
                errors.append(exc.__cause__ or exc)
                continue
            elapsed = time.perf_counter() - t0
            cost = spec.relative_cost * share
            spent += cost
            quality = score(result.confidence, feats, chosen.weights)
            decision = decide(quality, spec.name, chosen, min_score=self.min_score)
            best = _Run(result, spec, quality, decision, elapsed / max(cost, 1e-9))
            history.append(
                Attempt(
                    spec.name,
                    _scope(spans),
                    decision.reason,
                    quality.value,
                    decision.threshold,
                    elapsed,
                    cost,
                    None if spans is None else tuple(spans),
                )
            )
            if decision.accept:
                break
            spans = self._plan_spans(best, chosen, speech) if i + 1 < len(rungs.models) else None
        if best is None:
            raise _all_failed(rungs, history, errors)
        return self._result(
            audio,
            chosen,
            rungs,
            best,
            history,
            start,
            started,
            feats,
            analysis_error,
            pre_reason,
            budget_hit,
        )

    # --- steps ------------------------------------------------------------------------------

    def _setup(
        self, preset: str | Preset | None, ladder: str | Sequence[str] | Ladder | None
    ) -> tuple[Preset, Ladder]:
        chosen = self.preset if preset is None else get_preset(preset, self.presets)
        if ladder is not None:
            return chosen, get_ladder(ladder, self.ladders)
        if preset is not None and chosen.ladder is not None:
            return chosen, get_ladder(chosen.ladder, self.ladders)
        return chosen, self.ladder

    def _over_budget(
        self, spent: float, spec: ModelSpec, share: float, best: _Run, started: float
    ) -> bool:
        cost = spec.relative_cost * share
        if self.max_cost is not None and spent + cost > self.max_cost:
            return True
        if self.max_latency_s is not None:
            elapsed = time.perf_counter() - started
            return elapsed + best.rate_s * cost > self.max_latency_s
        return False

    def _plan_spans(
        self, run: _Run, preset: Preset, speech: list[tuple[float, float]]
    ) -> list[tuple[float, float]] | None:
        if not self.segment_escalation:
            return None
        scores = segment_scores(run.transcription, preset.weights)
        return weak_spans(
            run.transcription,
            scores,
            run.decision.threshold,
            speech=speech,
            margin_s=self.segment_margin_s,
            max_share=self.segment_max_share,
        )

    def _resolve(self, spec: ModelSpec) -> ModelSpec:
        if spec.path is not None:
            return spec
        key = (spec.name, None if self.models_dir is None else str(self.models_dir))
        with self._lock:
            cached = self._resolved.get(key)
        if cached is not None and cached.path is not None and cached.path.is_file():
            return cached
        resolved = resolve_model(spec.name, self.models_dir)
        resolved = replace(resolved, relative_cost=spec.relative_cost)
        with self._lock:
            self._resolved[key] = resolved
        return resolved

    def _run(
        self, spec: ModelSpec, audio: Audio, features: AudioFeatures | None = None
    ) -> Transcription:
        breaker = self.breakers.get(spec.name)
        if not breaker.allow():
            raise _ModelFailed("circuit_open", f"circuit breaker of {spec.name} is open")
        try:
            resolved = self._resolve(spec)
        except ModelNotFoundError as exc:
            breaker.record_failure()
            raise _ModelFailed("model_failed", str(exc)) from exc
        assert resolved.path is not None
        for attempt in range(self.retries + 1):
            try:
                result = self.transcriber.transcribe(
                    resolved.path,
                    audio,
                    self.options,
                    name=resolved.name,
                    sha256=resolved.sha256,
                    audio_ctx=resolved.audio_ctx or 0,
                    features=features,
                )
            except BackendError as exc:
                if attempt < self.retries:
                    time.sleep(self.backoff_s * 2**attempt)
                    continue
                breaker.record_failure()
                raise _ModelFailed("model_failed", f"{type(exc).__name__}: {exc}") from exc
            except ModelError as exc:  # not found / invalid / not loadable: never retried
                breaker.record_failure()
                raise _ModelFailed("model_failed", f"{type(exc).__name__}: {exc}") from exc
            breaker.record_success()
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    def _run_spans(
        self,
        spec: ModelSpec,
        audio: Audio,
        base: Transcription,
        spans: list[tuple[float, float]],
        speech: list[tuple[float, float]],
    ) -> Transcription:
        assert base.tokens is not None
        started = time.perf_counter()
        pieces = []
        for a, b in spans:
            lo, hi = round(a * SAMPLE_RATE), round(b * SAMPLE_RATE)
            part = Audio(
                samples=audio.samples[lo:hi],
                source=f"{audio.source}[{a:.2f}-{b:.2f}]",
                original_sample_rate=SAMPLE_RATE,
                original_channels=1,
            )
            run = self._run(spec, part)
            assert run.tokens is not None
            pieces.append(shift_tokens(run.tokens, lo / SAMPLE_RATE))
        tokens = stitch_tokens(base.tokens, spans, pieces)
        report = aggregate(tokens, speech_segments=speech)
        segments = build_segments(tokens, report)
        return replace(
            base,
            text=" ".join(s.text for s in segments if s.text),
            segments=segments,
            confidence=asdict(report.overall),
            model=spec.name,
            time_s=time.perf_counter() - started,
            report=report,
            tokens=tokens,
        )

    def _result(
        self,
        audio: Audio,
        preset: Preset,
        ladder: Ladder,
        best: _Run,
        history: list[Attempt],
        start: int,
        started: float,
        feats: AudioFeatures | None,
        analysis_error: str | None,
        pre_reason: str,
        budget_hit: bool,
    ) -> CascadeResult:
        total = time.perf_counter() - started
        largest = max(ladder.models, key=lambda m: m.relative_cost)
        estimate = best.rate_s * largest.relative_cost
        tried = [h for h in history if h.reason != "budget_exhausted"]
        if budget_hit:
            reason = "budget_exhausted"
        elif len(tried) == 1 and best.decision.accept:
            reason = "accepted"
        else:
            reason = next(h.reason for h in reversed(tried) if h.reason != "accepted")
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
            "decision_metrics": metrics,
            "decision_history": [h.to_dict() for h in history],
            "processing_time_s": total,
            "processing_time_saved_s": estimate - total,
            "largest_model_estimate_s": estimate,
        }
        info = {
            "duration": audio.duration_s,
            "language": "en",
            "preset": preset.name,
            "ladder": ladder.name,
            "ladder_models": list(ladder.names),
            "preselect_reason": pre_reason,
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


def _scope(spans: list[tuple[float, float]] | None) -> str:
    return "file" if spans is None else "segments"


def _all_failed(ladder: Ladder, history: list[Attempt], errors: list[BaseException]) -> Exception:
    detail = "; ".join(f"{h.model}: {h.error}" for h in history if h.error)
    message = f"no model of ladder {ladder.name!r} produced a transcript ({detail})"
    if errors and all(isinstance(e, ModelNotFoundError) for e in errors):
        return ModelNotFoundError(message)
    return BackendError(message)


_DEFAULT: dict[tuple[Any, ...], Cascade] = {}
_DEFAULT_LOCK = threading.Lock()


def transcribe(
    audio: AudioSource,
    preset: str | Preset = "balanced",
    ladder: str | Sequence[str] | Ladder | None = None,
    **kw: Any,
) -> CascadeResult:
    """Transcribe with a shared :class:`Cascade` (one per distinct set of keyword options)."""
    try:
        key = tuple(sorted(kw.items()))
        hash(key)
    except TypeError as exc:
        raise InvalidArgumentError(f"cascade options must be hashable: {exc}") from exc
    with _DEFAULT_LOCK:
        cascade = _DEFAULT.get(key)
        if cascade is None:
            cascade = _DEFAULT[key] = Cascade(**kw)
    return cascade.transcribe(audio, preset=preset, ladder=ladder)
