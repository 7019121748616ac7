"""The escalation loop: analyse, pre-select, run, score, escalate (whole file or weak spans).

:class:`Cascade` is reusable and thread-safe: models stay warm in its
:class:`~whisper_cascade.backend_pool.ModelPool`, analyses are cached by audio hash, and each
model has a circuit breaker. A model that cannot be found, validated or loaded, or whose call
fails, is skipped for the next rung (``model_failed``); only :class:`BackendError` (transient)
is retried, with exponential backoff (see :mod:`whisper_cascade.rung_runner`); bad audio raises
at once. Budgets (``max_cost`` in relative-cost units, ``max_latency_s``) are checked before each
escalation; the first rung always runs. The transcript returned is the last run's, or with a
preset's ``keep_best`` the best-scoring run's (``model_selection["kept_attempt"]``): ties go to
the later, larger rung and a hallucination suspect loses to any other run.
See :mod:`whisper_cascade.results` for the ``model_selection`` block.

Learning (docs/learning.md): every result carries its content class; with a ``store`` each
transcription is recorded (:mod:`whisper_cascade.recording`) and analyses are cached there;
``start_selection="bandit"`` (and the ``learned`` preset) starts at the rung a
:class:`~whisper_cascade.start_selector.StartSelector` picks for the content class.

References: ``transcribe(..., reference=text)`` scores the final transcript against ``text``
(WER, see :func:`whisper_cascade.evaluation.word_error_rate`): the result's
``model_selection["wer"]`` (None without a reference), the store's quality record and final job
record, and the bandit, which then learns from ``1 - WER`` instead of the score.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from whisper_cascade.audio import SAMPLE_RATE, Audio, load_audio
from whisper_cascade.backend import ContextOptions, DecodeOptions
from whisper_cascade.backend_pool import ModelPool
from whisper_cascade.breaker import AnalysisCache, BreakerBoard, audio_hash
from whisper_cascade.content import content_class
from whisper_cascade.errors import (
    InvalidArgumentError,
    WhisperCascadeError,
)
from whisper_cascade.features import AudioFeatures, analyze
from whisper_cascade.ladders import Ladder, folder_ladders, get_ladder
from whisper_cascade.learning import LearningState
from whisper_cascade.models import ModelSpec
from whisper_cascade.policy import decide, score
from whisper_cascade.presets import Preset, get_preset
from whisper_cascade.recording import cached_analysis, record_result
from whisper_cascade.results import Attempt, CascadeResult, KeptRun, all_failed, build_result
from whisper_cascade.rung_runner import ModelFailed, RungRunner, resource_usage
from whisper_cascade.stitch import segment_scores, weak_spans
from whisper_cascade.store import JobRecord, Store
from whisper_cascade.transcriber import Transcriber

__all__ = ["START_SELECTIONS", "Cascade", "CascadeResult", "transcribe"]

START_SELECTIONS = ("rules", "bandit")

AudioSource = str | os.PathLike[str] | bytes | np.ndarray | Audio


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
        store: Store | None = None,
        start_selection: str = "rules",
    ) -> None:
        for name, value in (("max_cost", max_cost), ("max_latency_s", max_latency_s)):
            if value is not None and not value > 0:
                raise InvalidArgumentError(f"{name} must be > 0, got {value}")
        if retries < 0 or backoff_s < 0:
            raise InvalidArgumentError("retries and backoff_s must be >= 0")
        if start_selection not in START_SELECTIONS:
            raise InvalidArgumentError(
                f"start_selection must be one of {START_SELECTIONS}, got {start_selection!r}"
            )
        self.presets = dict(presets or {})
        self.ladders = {**folder_ladders(models_dir), **(ladders or {})}
        self.store = store
        self.start_selection = start_selection
        self.learning = LearningState(store, self.presets)
        self._preset_learned = self.learning.is_learned(preset)
        if self._preset_learned:
            self.ladder = get_ladder(ladder, self.ladders)
            self.preset = self.learning.preset(self.ladder.name)
        else:
            self.preset = get_preset(preset, self.presets)
            self.ladder = get_ladder(ladder or self.preset.ladder, self.ladders)
        if start_selection == "bandit" or self._preset_learned:
            self.learning.selector(self.ladder)  # load the saved state now
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
        self.runner = RungRunner(
            self.transcriber,
            self.breakers,
            models_dir=models_dir,
            options=self.options,
            retries=retries,
            backoff_s=backoff_s,
        )

    # --- public -----------------------------------------------------------------------------

    def analyze(self, audio: Audio) -> tuple[AudioFeatures | None, str | None]:
        """Features of ``audio`` (cached by hash, in memory then in the store), or None and the
        error when analysis fails."""
        key = audio_hash(audio.samples)
        store = self.store

        def compute() -> AudioFeatures:
            if store is None:
                return self._analyzer(audio)
            return cached_analysis(store, key, lambda: self._analyzer(audio))

        try:
            feats = self.analysis_cache.get_or_compute(key, compute)
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
        chosen, rungs, use_bandit = self._setup(preset, ladder)
        feats, error = self.analyze(audio)
        index, reason = self.learning.start(feats, rungs, chosen, use_bandit)
        return {
            "audio": audio.source,
            "features": None if feats is None else feats.to_dict(),
            "analysis_error": error,
            "preset": chosen.name,
            "ladder": rungs.name,
            "ladder_models": list(rungs.names),
            "start_model": rungs.models[index].name,
            "reason": reason,
            "content_class": content_class(feats),
            "start_selection": "bandit" if use_bandit else "rules",
        }

    def health(self) -> dict[str, Any]:
        """Breaker states per model, resident models and analysis-cache counters."""
        cache = self.analysis_cache
        return {
            "breakers": self.breakers.snapshot(),
            "resident_models": [m.name for m in self.transcriber.pool.resident()],
            "analysis_cache": {"size": len(cache), "hits": cache.hits, "misses": cache.misses},
        }

    def reload_policy(self) -> None:
        """Forget the cached learned policies; the next ``learned`` use reads the store again."""
        self.learning.reload_policy()
        if self._preset_learned:
            self.preset = self.learning.preset(self.ladder.name)

    def close(self) -> None:
        """Free the resident models (the store stays open: its owner closes it)."""
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
        reference: str | None = None,
    ) -> CascadeResult:
        """Transcribe ``audio`` (a path, bytes, samples or :class:`Audio`) through the ladder;
        ``reference``, the true transcript when known, is scored against (see the module doc).

        Raises AudioError for bad audio, and the model error (ModelNotFoundError when every
        model is missing, else BackendError) when no rung produced a transcript.
        """
        if reference is not None and not isinstance(reference, str):
            raise InvalidArgumentError(f"reference must be a str, got {type(reference).__name__}")
        started = time.perf_counter()
        audio = audio if isinstance(audio, Audio) else load_audio(audio)
        chosen, rungs, use_bandit = self._setup(preset, ladder)
        feats, analysis_error = self.analyze(audio)
        start, pre_reason = self.learning.start(feats, rungs, chosen, use_bandit)
        cls = content_class(feats)
        job_id = uuid.uuid4().hex
        runs: list[JobRecord] = []
        speech = [] if feats is None else [(float(a), float(b)) for a, b in feats.speech_segments]
        history: list[Attempt] = []
        errors: list[BaseException] = []
        best: KeptRun | None = None  # the last run: spans and budgets build on it
        kept: KeptRun | None = None  # the run whose transcript is returned
        run_slot: dict[int, int] = {}  # attempt index -> index of its record in ``runs``
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
            cpu0, _ = resource_usage()
            try:
                if best is None or spans is None:
                    result = self.runner.run(spec, audio, feats)
                else:
                    result = self.runner.run_spans(spec, audio, best.transcription, spans, speech)
            except ModelFailed as exc:
                history.append(Attempt(spec.name, _scope(spans), exc.reason, error=exc.error))
                errors.append(exc.__cause__ or exc)
                continue
            elapsed = time.perf_counter() - t0
            cpu1, peak = resource_usage()
            cost = spec.relative_cost * share
            spent += cost
            quality = score(result.confidence, feats, chosen.weights_for(spec.name))
            decision = decide(
                quality, spec.name, chosen, min_score=self.min_score, content_class=cls
            )
            if self.store is not None:
                runs.append(
                    JobRecord(
                        job_id=job_id,
                        model=spec.name,
                        audio_duration_s=audio.duration_s * share,  # the audio this run heard
                        processing_time_s=elapsed,
                        score=quality.value,
                        content_class=cls,
                        cpu_seconds=max(0.0, cpu1 - cpu0),  # process-wide, see resource_usage
                        peak_memory_bytes=peak,
                    )
                )
            best = KeptRun(result, spec, quality, decision, elapsed / max(cost, 1e-9), len(history))
            if kept is None or not chosen.keep_best or best.outranks(kept):
                kept = best
            run_slot[len(history)] = len(runs) - 1
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
        if best is None or kept is None:
            raise all_failed(rungs, history, errors)
        wer = None
        if reference is not None:
            from whisper_cascade.evaluation import word_error_rate  # jiwer: load only when used

            wer = word_error_rate(reference, kept.transcription.text)
            slot = run_slot[kept.attempt]
            if slot >= 0:  # the record of the run whose transcript was kept
                runs[slot] = replace(runs[slot], wer=wer)
        out = build_result(
            audio,
            chosen,
            rungs,
            best,
            history,
            kept=kept,
            start=start,
            started=started,
            feats=feats,
            analysis_error=analysis_error,
            pre_reason=pre_reason,
            budget_hit=budget_hit,
            job_id=job_id,
            start_selection="bandit" if use_bandit else "rules",
            content_class=cls,
            wer=wer,
        )
        if pre_reason == "bandit":
            self.learning.reward(rungs, cls, start, kept.score.value, wer, spent)
        if self.store is not None:
            record_result(self.store, out, runs)
        return out

    # --- steps ------------------------------------------------------------------------------

    def _setup(
        self, preset: str | Preset | None, ladder: str | Sequence[str] | Ladder | None
    ) -> tuple[Preset, Ladder, bool]:
        """The preset, the ladder and whether the start is chosen by the bandit."""
        learned = self._preset_learned if preset is None else self.learning.is_learned(preset)
        bandit = learned or self.start_selection == "bandit"
        if learned:
            rungs = self.ladder if ladder is None else get_ladder(ladder, self.ladders)
            return self.learning.preset(rungs.name), rungs, bandit
        chosen = self.preset if preset is None else get_preset(preset, self.presets)
        if ladder is not None:
            return chosen, get_ladder(ladder, self.ladders), bandit
        if preset is not None and chosen.ladder not in (None, self.ladder.name):
            return chosen, get_ladder(chosen.ladder, self.ladders), bandit
        return chosen, self.ladder, bandit

    def _over_budget(
        self, spent: float, spec: ModelSpec, share: float, best: KeptRun, started: float
    ) -> bool:
        cost = spec.relative_cost * share
        if self.max_cost is not None and spent + cost > self.max_cost:
            return True
        if self.max_latency_s is not None:
            elapsed = time.perf_counter() - started
            return elapsed + best.rate_s * cost > self.max_latency_s
        return False

    def _plan_spans(
        self, run: KeptRun, preset: Preset, speech: list[tuple[float, float]]
    ) -> list[tuple[float, float]] | None:
        if not self.segment_escalation:
            return None
        scores = segment_scores(run.transcription, preset.weights_for(run.model.name))
        return weak_spans(
            run.transcription,
            scores,
            run.decision.threshold,
            speech=speech,
            margin_s=self.segment_margin_s,
            max_share=self.segment_max_share,
        )


def _scope(spans: list[tuple[float, float]] | None) -> str:
    return "file" if spans is None else "segments"


_DEFAULT: dict[tuple[Any, ...], Cascade] = {}
_DEFAULT_LOCK = threading.Lock()


def transcribe(
    audio: AudioSource,
    preset: str | Preset = "balanced",
    ladder: str | Sequence[str] | Ladder | None = None,
    reference: str | None = None,
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
    return cascade.transcribe(audio, preset=preset, ladder=ladder, reference=reference)
