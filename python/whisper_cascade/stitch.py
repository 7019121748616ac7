"""Segment-level escalation: find the weak spans of a transcript and stitch re-runs into it.

A span is a weak segment widened by a margin, with each edge moved to the middle of a nearby
pause (from our speech detector) when one lies within a second, so re-runs start and end in
silence. Overlapping spans merge. Stitching keeps every segment of the old transcript whose
midpoint lies outside all spans, inserts the re-run's segments (clamped to their span) and
orders everything by time, so times stay monotone and no stretch of audio loses its text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, replace

import numpy as np

from whisper_cascade.confidence import TokenArrays
from whisper_cascade.policy import Score, Weights, score
from whisper_cascade.transcriber import Transcription

__all__ = ["segment_scores", "shift_tokens", "stitch_tokens", "weak_spans"]

Span = tuple[float, float]
MAX_SNAP_S = 1.0


def segment_scores(transcription: Transcription, weights: Weights) -> list[Score]:
    """The score of each segment of ``transcription`` from its per-segment metrics."""
    if transcription.report is None:
        return []
    return [score(asdict(m), None, weights) for m in transcription.report.segments]


def _pause_midpoints(speech: Sequence[Span], duration_s: float) -> list[float]:
    mids = []
    prev = 0.0
    for a, b in sorted(speech):
        if a > prev:
            mids.append((prev + a) / 2)
        prev = max(prev, b)
    if duration_s > prev:
        mids.append((prev + duration_s) / 2)
    return mids


def weak_spans(
    transcription: Transcription,
    scores: Sequence[Score],
    threshold: float,
    *,
    speech: Sequence[Span] = (),
    margin_s: float = 0.25,
    max_share: float = 0.6,
) -> list[Span] | None:
    """Spans to re-run, or None when segment-level escalation does not fit.

    None when no segment or every segment is weak (re-run the whole file instead), when the
    spans would cover more than ``max_share`` of the audio, or when scores do not match the
    segments. A segment is weak when its score is below ``threshold`` or it looks hallucinated.
    """
    segments = transcription.segments
    if len(scores) != len(segments) or not segments:
        return None
    weak = [i for i, s in enumerate(scores) if s.value < threshold or s.hallucination_suspected]
    if not weak or len(weak) == len(segments):
        return None
    duration = transcription.duration_s
    mids = _pause_midpoints(speech, duration)
    spans: list[Span] = []
    for i in weak:
        seg = segments[i]
        lo = max(0.0, seg.start - margin_s)
        hi = min(duration, max(seg.end, seg.start) + margin_s)
        before = [m for m in mids if lo - MAX_SNAP_S <= m <= lo]
        after = [m for m in mids if hi <= m <= hi + MAX_SNAP_S]
        lo = max(before) if before else lo
        hi = min(after) if after else hi
        if spans and lo <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], hi))
        else:
            spans.append((lo, hi))
    if sum(b - a for a, b in spans) > max_share * duration:
        return None
    return spans


def shift_tokens(tokens: TokenArrays, offset_s: float) -> TokenArrays:
    """``tokens`` with every known time (>= 0) moved by ``offset_s`` seconds."""
    cs = round(offset_s * 100)

    def move(times: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.where(times >= 0, times + cs, times), dtype=np.int64)

    return replace(
        tokens,
        t0=move(tokens.t0),
        t1=move(tokens.t1),
        segment_t0=move(tokens.segment_t0),
        segment_t1=move(tokens.segment_t1),
    )


def _inside(t_cs: float, spans_cs: Sequence[tuple[int, int]]) -> bool:
    return any(a <= t_cs < b for a, b in spans_cs)


def stitch_tokens(
    base: TokenArrays, spans: Sequence[Span], replacements: Sequence[TokenArrays]
) -> TokenArrays:
    """``base`` with the segments inside ``spans`` replaced by ``replacements`` (one per span,
    times already absolute); the result's segment times never go backwards."""
    spans_cs = [(round(a * 100), round(b * 100)) for a, b in spans]
    pieces: list[tuple[int, int, int]] = []  # (start, source: -1 = base, else span, segment)
    for s in range(len(base.segment_texts)):
        t0, t1 = int(base.segment_t0[s]), int(base.segment_t1[s])
        if not _inside((t0 + t1) / 2, spans_cs):
            pieces.append((t0, -1, s))
    for k, tokens in enumerate(replacements):
        for s in range(len(tokens.segment_texts)):
            pieces.append((max(int(tokens.segment_t0[s]), spans_cs[k][0]), k, s))
    pieces.sort()
    builder = TokenArrays.builder()
    prev_end = 0
    for start, k, s in pieces:
        source = base if k < 0 else replacements[k]
        t0 = max(start, prev_end)
        t1 = max(int(source.segment_t1[s]), t0)
        if k >= 0:
            t1 = max(t0, min(t1, spans_cs[k][1]))
        builder.add_segment(t0, t1, source.segment_texts[s])
        for i in np.flatnonzero(source.segment_index == s):

            def clamp(t: int, lo: int = t0, hi: int = t1) -> int:
                return -1 if t < 0 else min(max(t, lo), hi)

            builder.add_token(
                int(source.token_ids[i]),
                source.token_bytes[i],
                float(source.probs[i]),
                float(source.logprobs[i]),
                clamp(int(source.t0[i])),
                clamp(int(source.t1[i])),
                int(source.flags[i]),
            )
        prev_end = t1
    return builder.build()
