"""Responses of the OpenAI-compatible endpoint: json, text, srt, vtt and verbose_json."""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from whisper_cascade.confidence import FLAG_SPECIAL
from whisper_cascade.formats import render
from whisper_cascade.results import CascadeResult

RESPONSE_FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
GRANULARITIES = ("segment", "word")


def jsonable(value: Any) -> Any:
    """A copy JSON can encode strictly: NaN/inf become None, numpy values plain, tuples lists."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return jsonable(tolist())
    return str(value)


def compression_ratio(text: str) -> float:
    """Bytes of ``text`` over bytes of its zlib compression (openai-whisper's definition)."""
    raw = text.encode("utf-8")
    if not raw:
        return 0.0
    return len(raw) / len(zlib.compress(raw))


def _segment_tokens(result: CascadeResult) -> list[tuple[list[int], float]]:
    """Per segment: token ids and the mean log-probability of its non-special tokens."""
    tr = result.transcription
    tokens = None if tr is None else tr.tokens
    out: list[tuple[list[int], float]] = []
    for i in range(len(result.segments)):
        if tokens is None or i >= len(tokens.segment_texts):
            out.append(([], 0.0))
            continue
        mask = tokens.segment_index == i
        ids = [int(t) for t in tokens.token_ids[mask].tolist()]
        text_mask = mask & ((tokens.flags & FLAG_SPECIAL) == 0)
        logprobs = tokens.logprobs[text_mask]
        avg = float(np.mean(logprobs)) if logprobs.size else 0.0
        out.append((ids, avg))
    return out


def verbose_json(result: CascadeResult, words: bool) -> dict[str, Any]:
    """OpenAI's verbose transcription object plus the ``model_selection`` block."""
    no_speech = float(result.info.get("no_speech_estimate") or 0.0)
    segments = []
    for i, (seg, (ids, avg)) in enumerate(
        zip(result.segments, _segment_tokens(result), strict=True)
    ):
        segments.append(
            {
                "id": i,
                "seek": round(seg.start * 100),
                "start": seg.start,
                "end": seg.end,
                "text": seg.text,
                "tokens": ids,
                "temperature": 0.0,
                "avg_logprob": avg,
                "compression_ratio": compression_ratio(seg.text),
                "no_speech_prob": no_speech,
            }
        )
    body: dict[str, Any] = {
        "task": "transcribe",
        "language": str(result.info.get("language", "en")),
        "duration": float(result.info.get("duration", 0.0)),
        "text": result.text,
        "segments": segments,
        "model_selection": result.model_selection,
    }
    if words:
        body["words"] = [
            {"word": w.word.strip(), "start": w.start, "end": w.end}
            for seg in result.segments
            for w in seg.words
            if w.word.strip()
        ]
    return jsonable(body)  # type: ignore[no-any-return]


def render_text(result: CascadeResult, fmt: str) -> str:
    """``text``, ``srt`` or ``vtt`` output of ``result``."""
    doc = {"text": result.text, "segments": [s.to_dict() for s in result.segments]}
    if fmt == "text":
        return result.text.strip() + "\n" if result.text.strip() else ""
    return render(doc, fmt)
