"""Running one rung of a ladder: breaker check, model resolution, retries, span re-runs.

:class:`RungRunner` is what :class:`~whisper_cascade.cascade.Cascade` calls for each rung. A
model that cannot be found, validated or loaded, or whose call fails, raises
:class:`ModelFailed` (the cascade skips to the next rung); only
:class:`~whisper_cascade.errors.BackendError` (transient) is retried, with exponential backoff.
:func:`resource_usage` measures CPU time and peak memory around a run for the store.
"""

from __future__ import annotations

import os
import resource
import threading
import time
from dataclasses import asdict, replace

from whisper_cascade.audio import SAMPLE_RATE, Audio
from whisper_cascade.backend import DecodeOptions
from whisper_cascade.breaker import BreakerBoard
from whisper_cascade.confidence import aggregate
from whisper_cascade.errors import BackendError, ModelError, ModelNotFoundError
from whisper_cascade.features import AudioFeatures
from whisper_cascade.models import ModelSpec, resolve_model
from whisper_cascade.stitch import shift_tokens, stitch_tokens
from whisper_cascade.transcriber import Transcriber, Transcription, build_segments

__all__ = ["ModelFailed", "RungRunner", "resource_usage"]


class ModelFailed(Exception):
    """A rung produced no transcript; ``reason`` is ``model_failed`` or ``circuit_open``."""

    def __init__(self, reason: str, error: str) -> None:
        super().__init__(error)
        self.reason = reason
        self.error = error


def resource_usage() -> tuple[float, int]:
    """Process-wide CPU seconds (user + system) so far and peak resident memory in bytes.

    Process-wide: with several threads transcribing at once, a delta around one run also
    counts the others' CPU time.
    """
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime, int(usage.ru_maxrss) * 1024


class RungRunner:
    """Runs models for a cascade; thread-safe (resolved paths are cached under a lock)."""

    def __init__(
        self,
        transcriber: Transcriber,
        breakers: BreakerBoard,
        *,
        models_dir: str | os.PathLike[str] | None = None,
        options: DecodeOptions | None = None,
        retries: int = 1,
        backoff_s: float = 0.05,
    ) -> None:
        self.transcriber = transcriber
        self.breakers = breakers
        self.models_dir = models_dir
        self.options = options or DecodeOptions()
        self.retries = retries
        self.backoff_s = backoff_s
        self._resolved: dict[tuple[str, str | None], ModelSpec] = {}
        self._lock = threading.Lock()

    def resolve(self, spec: ModelSpec) -> ModelSpec:
        """``spec`` with a file path (found in ``models_dir`` or the default folders)."""
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

    def run(
        self, spec: ModelSpec, audio: Audio, features: AudioFeatures | None = None
    ) -> Transcription:
        """Transcribe ``audio`` with ``spec``; raises :class:`ModelFailed`."""
        breaker = self.breakers.get(spec.name)
        if not breaker.allow():
            raise ModelFailed("circuit_open", f"circuit breaker of {spec.name} is open")
        try:
            resolved = self.resolve(spec)
        except ModelNotFoundError as exc:
            breaker.record_failure()
            raise ModelFailed("model_failed", str(exc)) from exc
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
                raise ModelFailed("model_failed", f"{type(exc).__name__}: {exc}") from exc
            except ModelError as exc:  # not found / invalid / not loadable: never retried
                breaker.record_failure()
                raise ModelFailed("model_failed", f"{type(exc).__name__}: {exc}") from exc
            breaker.record_success()
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    def run_spans(
        self,
        spec: ModelSpec,
        audio: Audio,
        base: Transcription,
        spans: list[tuple[float, float]],
        speech: list[tuple[float, float]],
    ) -> Transcription:
        """Re-transcribe ``spans`` of ``audio`` with ``spec`` and stitch them into ``base``."""
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
            run = self.run(spec, part)
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
