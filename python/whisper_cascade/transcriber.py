"""Guarded transcription of a whole :class:`~whisper_cascade.audio.Audio` with one model.

Guards before whisper.cpp runs: silence gives an empty result without inference; short clips
are padded; audio longer than the model's window is cut by us at pauses (speech activity from
:func:`whisper_cascade.features.analyze`), or at the quietest 20 ms near the window end when
there is no pause, into chunks that cover the whole signal with no gap. Confidence is
aggregated natively over all chunks.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from whisper_cascade.audio import MIN_SAMPLES, SAMPLE_RATE, Audio, is_silent
from whisper_cascade.backend import (
    SECONDS_PER_AUDIO_CTX,
    ContextOptions,
    DecodeOptions,
    LoadedModel,
)
from whisper_cascade.backend_pool import ModelPool
from whisper_cascade.confidence import ConfidenceReport, TokenArrays, aggregate
from whisper_cascade.errors import InvalidArgumentError
from whisper_cascade.features import AudioFeatures, analyze

__all__ = [
    "ProgressCallback",
    "Segment",
    "Transcriber",
    "Transcription",
    "Word",
    "build_segments",
    "plan_chunks",
    "transcribe_with_model",
]

ProgressCallback = Callable[[float, float], None]
"""``progress(done_s, total_s)``: seconds of audio transcribed so far, of the total."""

_FRAME = SAMPLE_RATE // 50  # 20 ms
_MIN_PAUSE_S = 0.1


@dataclass(frozen=True)
class Word:
    """A word with its times (seconds) and probability."""

    word: str
    start: float
    end: float
    probability: float


@dataclass(frozen=True)
class Segment:
    """A stretch of transcribed text with its times (seconds) and words."""

    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: start, end, text, words (word, start, end, probability)."""
        return {
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "words": [asdict(w) for w in self.words],
        }


@dataclass(frozen=True)
class Transcription:
    """Result of one model on one audio.

    ``no_speech_estimate`` is 1 − the fraction of the audio our own speech-activity detector
    marks as speech (1.0 for silence); it does not come from the model, so a hallucinating
    model cannot lower it.
    """

    audio: str
    text: str
    segments: tuple[Segment, ...]
    confidence: dict[str, Any]
    no_speech_estimate: float
    model: str
    duration_s: float
    time_s: float
    chunks: tuple[tuple[float, float], ...] = ()
    report: ConfidenceReport | None = field(default=None, repr=False, compare=False)
    tokens: TokenArrays | None = field(default=None, repr=False, compare=False)
    """The token data the report was aggregated from (for re-aggregation after stitching)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: audio, text, segments (with words), confidence, model, time_s."""
        return {
            "audio": self.audio,
            "text": self.text,
            "segments": [s.to_dict() for s in self.segments],
            "confidence": dict(self.confidence),
            "model": self.model,
            "time_s": self.time_s,
        }


def plan_chunks(
    samples: npt.NDArray[np.float32],
    window_s: float,
    speech_segments: tuple[tuple[float, float], ...] | list[tuple[float, float]] = (),
) -> list[tuple[int, int]]:
    """Cut ``samples`` into contiguous (start, end) sample ranges of at most ``window_s``.

    Each cut goes into the middle of the latest pause (a gap between speech segments of at
    least 100 ms) in the second half of the window; without one, at the quietest 20 ms frame
    of the last quarter of the window. The ranges cover every sample exactly once.
    """
    n = samples.shape[0]
    window = int(window_s * SAMPLE_RATE)
    if window < 2 * MIN_SAMPLES:
        raise InvalidArgumentError(f"window of {window_s} s is too short to chunk")
    gaps = _pauses(speech_segments, n / SAMPLE_RATE)
    chunks = []
    start = 0
    while n - start > window:
        lo, hi = start + window // 2, start + window
        cut = _cut_in_pause(gaps, lo, hi)
        if cut is None:
            cut = _quietest(samples, start + window * 3 // 4, hi)
        chunks.append((start, cut))
        start = cut
    chunks.append((start, n))
    return chunks


def _pauses(
    speech: tuple[tuple[float, float], ...] | list[tuple[float, float]], duration_s: float
) -> list[tuple[int, int]]:
    """Non-speech gaps in samples, including before the first and after the last segment."""
    spans = sorted((max(0.0, float(a)), min(duration_s, float(b))) for a, b in speech)
    gaps = []
    prev_end = 0.0
    for a, b in spans:
        if a - prev_end >= _MIN_PAUSE_S:
            gaps.append((round(prev_end * SAMPLE_RATE), round(a * SAMPLE_RATE)))
        prev_end = max(prev_end, b)
    if duration_s - prev_end >= _MIN_PAUSE_S:
        gaps.append((round(prev_end * SAMPLE_RATE), round(duration_s * SAMPLE_RATE)))
    return gaps


def _cut_in_pause(gaps: list[tuple[int, int]], lo: int, hi: int) -> int | None:
    best = None
    for a, b in gaps:
        a, b = max(a, lo), min(b, hi)
        if b > a:
            best = (a + b) // 2  # gaps are sorted: the last overlap is the latest pause
    return best


def _quietest(samples: npt.NDArray[np.float32], lo: int, hi: int) -> int:
    region = samples[lo:hi].astype(np.float64)
    n_frames = region.shape[0] // _FRAME
    if n_frames == 0:
        return hi
    energy = (region[: n_frames * _FRAME].reshape(n_frames, _FRAME) ** 2).mean(axis=1)
    return lo + int(np.argmin(energy)) * _FRAME + _FRAME // 2


def _concat_tokens(parts: list[TokenArrays]) -> TokenArrays:
    builder = TokenArrays.builder()
    for part in parts:
        for s, text in enumerate(part.segment_texts):
            builder.add_segment(int(part.segment_t0[s]), int(part.segment_t1[s]), text)
            for i in np.flatnonzero(part.segment_index == s):
                builder.add_token(
                    int(part.token_ids[i]),
                    part.token_bytes[i],
                    float(part.probs[i]),
                    float(part.logprobs[i]),
                    int(part.t0[i]),
                    int(part.t1[i]),
                    int(part.flags[i]),
                )
    return builder.build()


def transcribe_with_model(
    model: LoadedModel,
    audio: Audio,
    options: DecodeOptions | None = None,
    *,
    features: AudioFeatures | None = None,
    progress: ProgressCallback | None = None,
) -> Transcription:
    """Transcribe all of ``audio`` with ``model`` behind every guard (see the module doc).

    ``features`` are this audio's native analysis when the caller already has it (the cascade
    analyses once per file); otherwise they are computed here. ``progress(done_s, total_s)`` is
    called after each chunk with the seconds of audio transcribed so far.
    """
    options = options or DecodeOptions()
    started = time.perf_counter()
    samples = audio.samples
    if is_silent(samples):
        report = aggregate(TokenArrays.builder().build(), speech_segments=[])
        return Transcription(
            audio=audio.source,
            text="",
            segments=(),
            confidence=asdict(report.overall),
            no_speech_estimate=1.0,
            model=model.name,
            duration_s=audio.duration_s,
            time_s=time.perf_counter() - started,
            chunks=(),
            report=report,
            tokens=TokenArrays.builder().build(),
        )
    feats = features if features is not None else analyze(samples, SAMPLE_RATE)
    speech = [(float(a), float(b)) for a, b in feats.speech_segments]
    window_s = model.effective_audio_ctx(options) * SECONDS_PER_AUDIO_CTX
    chunks = plan_chunks(samples, window_s, speech) if audio.duration_s > window_s else None
    if chunks is None:
        chunks = [(0, samples.shape[0])]
    parts: list[TokenArrays] = []
    for lo, hi in chunks:
        raw = model.transcribe(samples[lo:hi], options, offset_s=lo / SAMPLE_RATE)
        parts.append(raw.tokens)
        if progress is not None:
            progress(hi / SAMPLE_RATE, audio.duration_s)
    tokens = _concat_tokens(parts)
    report = aggregate(tokens, speech_segments=speech)
    segments = build_segments(tokens, report)
    text = " ".join(s.text for s in segments if s.text)
    return Transcription(
        audio=audio.source,
        text=text,
        segments=segments,
        confidence=asdict(report.overall),
        no_speech_estimate=float(min(1.0, max(0.0, 1.0 - float(feats.speech_ratio)))),
        model=model.name,
        duration_s=audio.duration_s,
        time_s=time.perf_counter() - started,
        chunks=tuple((lo / SAMPLE_RATE, hi / SAMPLE_RATE) for lo, hi in chunks),
        report=report,
        tokens=tokens,
    )


def build_segments(tokens: TokenArrays, report: ConfidenceReport) -> tuple[Segment, ...]:
    """Segments with their words from token data and its aggregated report."""
    words_by_segment: dict[int, list[Word]] = {}
    out = []
    starts = [t / 100.0 for t in tokens.segment_t0.tolist()]
    ends = [t / 100.0 for t in tokens.segment_t1.tolist()]
    for w in report.words:
        s = int(w.segment)
        start = starts[s] if w.start is None else float(w.start)
        end = ends[s] if w.end is None else float(w.end)
        words_by_segment.setdefault(s, []).append(Word(w.word, start, end, float(w.probability)))
    for s, text in enumerate(tokens.segment_texts):
        out.append(Segment(starts[s], ends[s], text.strip(), tuple(words_by_segment.get(s, []))))
    return tuple(out)


class Transcriber:
    """Transcribes with pooled models: ``Transcriber(pool).transcribe(path, audio, options)``."""

    def __init__(
        self, pool: ModelPool | None = None, *, context: ContextOptions | None = None
    ) -> None:
        self.pool = pool if pool is not None else ModelPool()
        self.context = context

    def transcribe(
        self,
        model_path: str | os.PathLike[str],
        audio: Audio,
        options: DecodeOptions | None = None,
        *,
        name: str | None = None,
        sha256: str | None = None,
        audio_ctx: int = 0,
        features: AudioFeatures | None = None,
        progress: ProgressCallback | None = None,
    ) -> Transcription:
        """Load (or reuse) the model and run :func:`transcribe_with_model`."""
        with self.pool.use(
            model_path, name=name, sha256=sha256, context=self.context, audio_ctx=audio_ctx
        ) as model:
            return transcribe_with_model(
                model, audio, options, features=features, progress=progress
            )
