"""Pure-Python reference of the native confidence aggregation (slow, for tests and benchmarks).

Written independently from the definitions in ``rust/confidence/mod.rs``: plain loops,
two-pass statistics, Python's own ``zlib``, ``str.strip``/``str.lower`` and bytes decoding.
"""

from __future__ import annotations

import math
import string
import zlib
from collections.abc import Sequence
from typing import Any

FLAG_SPECIAL = 1
FLAG_TIMESTAMP = 2
MAX_REPEAT_PERIOD = 8
_PUNCT = set(string.punctuation)
_PUNCT_BYTES = set(string.punctuation.encode())
_OPENERS = set(b"([{\"'")


def compression_ratio(text: str) -> float:
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data))


def normalized_words(text: str) -> list[str]:
    out = []
    for w in text.lower().split():
        w = w.strip(string.punctuation)
        if w:
            out.append(w)
    return out


def repetition_score(words: Sequence[str]) -> float:
    n = len(words)
    if n < 3:
        return 0.0
    covered = [False] * n
    for p in range(1, min(MAX_REPEAT_PERIOD, n - 1) + 1):
        need = max(p, 2)
        i = p
        while i < n:
            if words[i] != words[i - p]:
                i += 1
                continue
            j = i
            while j < n and words[j] == words[j - p]:
                j += 1
            if j - i >= need:
                for k in range(i, j):
                    covered[k] = True
            i = j
    return sum(covered) / n


def _token_metrics(probs: list[float], logprobs: list[float], low: float) -> dict[str, Any]:
    n = len(probs)
    if n == 0:
        zero = dict.fromkeys(
            (
                "mean",
                "geometric_mean",
                "min",
                "std",
                "consistency",
                "low_confidence_ratio",
                "avg_logprob",
                "sequence_confidence",
            ),
            0.0,
        )
        return {"n_tokens": 0, **zero}
    mean = sum(probs) / n
    var = sum((p - mean) ** 2 for p in probs) / n
    geo = 0.0 if min(probs) == 0.0 else math.exp(sum(math.log(p) for p in probs) / n)
    return {
        "n_tokens": n,
        "mean": mean,
        "geometric_mean": geo,
        "min": min(probs),
        "std": math.sqrt(var),
        "consistency": 1.0 - (max(probs) - min(probs)),
        "low_confidence_ratio": sum(1 for p in probs if p < low) / n,
        "avg_logprob": sum(logprobs) / n,
        "sequence_confidence": 0.0
        if min(probs) == 0.0
        else math.exp(sum(math.log(p) for p in probs)),
    }


def _merge(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for a, b in sorted(s for s in spans if s[1] > s[0]):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _overlap(xs: list[tuple[float, float]], ys: list[tuple[float, float]]) -> float:
    return sum(max(0.0, min(b, d) - max(a, c)) for a, b in xs for c, d in ys)


def _starts_word(piece: bytes) -> bool:
    if not piece.startswith(b" "):
        return False
    content = piece.strip(b" \t\n\r\x0c")  # u8::is_ascii_whitespace
    punct_only = bool(content) and all(c in _PUNCT_BYTES for c in content)
    return not punct_only or all(c in _OPENERS for c in content)


def aggregate(
    token_ids: Sequence[int],
    probs: Sequence[float],
    logprobs: Sequence[float],
    t0: Sequence[int],
    t1: Sequence[int],
    segment_index: Sequence[int],
    flags: Sequence[int],
    token_bytes: Sequence[bytes],
    segment_t0: Sequence[int],
    segment_t1: Sequence[int],
    segment_texts: Sequence[str],
    speech_segments: Sequence[tuple[float, float]] | None = None,
    low_threshold: float = 0.7,
) -> dict[str, Any]:
    """Same result as ``_native.aggregate_confidence`` (without input validation)."""
    n_seg = len(segment_texts)
    seg_probs: list[list[float]] = [[] for _ in range(n_seg)]
    seg_logprobs: list[list[float]] = [[] for _ in range(n_seg)]
    text_idx = [i for i in range(len(token_ids)) if not int(flags[i]) & 3]
    for i in text_idx:
        seg_probs[int(segment_index[i])].append(float(probs[i]))
        seg_logprobs[int(segment_index[i])].append(float(logprobs[i]))

    def sec(cs: int) -> float | None:
        return int(cs) / 100.0 if cs >= 0 else None

    # Words: group text tokens, then decode each group.
    groups: list[list[int]] = []
    for i in text_idx:
        same_segment = groups and int(segment_index[groups[-1][-1]]) == int(segment_index[i])
        if same_segment and not _starts_word(token_bytes[i]):
            groups[-1].append(i)
        else:
            groups.append([i])
    words = []
    for g in groups:
        text = b"".join(token_bytes[i] for i in g).decode("utf-8", errors="replace").strip()
        if text:
            words.append(
                {
                    "word": text,
                    "start": sec(t0[g[0]]),
                    "end": sec(t1[g[-1]]),
                    "probability": sum(float(probs[i]) for i in g) / len(g),
                    "segment": int(segment_index[g[0]]),
                }
            )

    segments = []
    all_words: list[str] = []
    for s in range(n_seg):
        m = _token_metrics(seg_probs[s], seg_logprobs[s], low_threshold)
        m["compression_ratio"] = compression_ratio(segment_texts[s].strip())
        seg_words = normalized_words(segment_texts[s])
        m["repetition_score"] = repetition_score(seg_words)
        all_words += seg_words
        segments.append(m)
    overall = _token_metrics(
        [p for ps in seg_probs for p in ps],
        [lp for lps in seg_logprobs for lp in lps],
        low_threshold,
    )
    overall["compression_ratio"] = compression_ratio("".join(segment_texts).strip())
    overall["repetition_score"] = repetition_score(all_words)

    spans = []
    for s in range(n_seg):
        a, b = sec(segment_t0[s]), sec(segment_t1[s])
        spans.append((a, b) if a is not None and b is not None and b > a else None)
    for m in [*segments, overall]:
        m["speech_coverage"] = m["speech_in_segments"] = 1.0
    if speech_segments is not None:
        detected = _merge(list(speech_segments))
        speech_len = sum(b - a for a, b in detected)
        for m, span in zip(segments, spans, strict=True):
            if span is None:
                m["speech_coverage"] = 0.0 if speech_len > 0 else 1.0
                continue
            inside = _overlap([span], detected)
            m["speech_in_segments"] = inside / (span[1] - span[0])
            if speech_len > 0:
                m["speech_coverage"] = inside / speech_len
        union = _merge([s for s in spans if s is not None])
        union_len = sum(b - a for a, b in union)
        inside = _overlap(union, detected)
        if speech_len > 0:
            overall["speech_coverage"] = inside / speech_len
        if union_len > 0:
            overall["speech_in_segments"] = inside / union_len
    return {"overall": overall, "segments": segments, "words": words}
