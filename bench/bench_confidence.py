"""Benchmark: native confidence aggregation vs the pure-Python reference.

Run: ``.venv/bin/python bench/bench_confidence.py`` (prints a markdown table). Results are
synthetic but shaped like whisper.cpp output: per segment sot + timestamp tokens around
sub-word text tokens, ~20% of words split into two pieces, speech-detector spans.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import reference_confidence as ref  # noqa: E402
from whisper_cascade import _native  # noqa: E402
from whisper_cascade.confidence import (  # noqa: E402
    FLAG_SPECIAL,
    FLAG_TIMESTAMP,
    TokenArrays,
    aggregate,
)

VOCAB = [
    *("turn", "on", "the", "kitchen", "lights", "remind", "me", "to", "water", "plants"),
    *("tomorrow", "morning", "set", "a", "timer", "for", "ten", "minutes", "what", "is"),
    *("weather", "like", "today", "please", "play", "some", "music", "in", "living", "room"),
]


def make_result(
    n_segments: int, text_tokens: int, seed: int = 0
) -> tuple[TokenArrays, list[tuple[float, float]]]:
    rng = random.Random(seed)
    b = TokenArrays.builder()
    speech = []
    for s in range(n_segments):
        t0 = s * 600
        words: list[str] = []
        pieces: list[str] = []
        while len(pieces) < text_tokens:
            word = rng.choice(VOCAB)
            words.append(word)
            if rng.random() < 0.2 and len(word) > 3:
                pieces += [" " + word[:2], word[2:]]
            else:
                pieces.append(" " + word)
        pieces = pieces[:text_tokens]
        b.add_segment(t0, t0 + 580, "".join(pieces))
        speech.append((t0 / 100 + 0.2, t0 / 100 + 5.5))
        b.add_token(50258, b"[_SOT_]", 0.99, -0.01, flags=FLAG_SPECIAL)
        b.add_token(50364, b"[_BEG_]", 0.9, -0.1, t0, t0, FLAG_TIMESTAMP)
        step = 580 // max(text_tokens, 1)
        for k, piece in enumerate(pieces):
            p = min(1.0, max(0.0, rng.betavariate(8, 1.5)))
            b.add_token(
                rng.randrange(50000), piece.encode(), p, -0.3, t0 + k * step, t0 + (k + 1) * step
            )
        b.add_token(50364, b"[_TT_580]", 0.9, -0.1, t0 + 580, t0 + 580, FLAG_TIMESTAMP)
    return b.build(), speech


def time_it(fn: Callable[[], Any], min_total: float = 0.5) -> float:
    """Median seconds per call over enough repetitions to last ``min_total`` seconds."""
    fn()
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-7)
    reps = max(3, min(2000, int(min_total / once)))
    samples = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="shorter timing runs")
    args = parser.parse_args()
    cases = [
        ("30 segments x 30 tokens", 30, 30),
        ("1-hour transcript (600 segments x 22 tokens)", 600, 22),
    ]
    header = ["result", "tokens", "words", "pure Python", "native (dicts)", "speed-up"]
    header += ["native (columns)", "speed-up", "wrapper `aggregate`", "speed-up"]
    header += ["wrapper + every word object", "speed-up"]
    print("| " + " | ".join(header) + " |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    budget = 0.2 if args.quick else 1.0
    for label, n_seg, n_tok in cases:
        tokens, speech = make_result(n_seg, n_tok)
        names = list(TokenArrays.__dataclass_fields__)
        fields = [getattr(tokens, k) for k in names]
        lists = [f.tolist() if isinstance(f, np.ndarray) else f for f in fields]
        t_ref = time_it(partial(ref.aggregate, *lists, speech), budget)
        t_raw = time_it(partial(_native.aggregate_confidence, *fields, speech), budget)
        t_col = time_it(partial(_native.aggregate_confidence_columns, *fields, speech), budget)
        t_wrap = time_it(partial(aggregate, tokens, speech), budget)
        t_words = time_it(lambda: aggregate(tokens, speech).words, budget)  # noqa: B023
        report = aggregate(tokens, speech)
        assert report.to_dict() == _native.aggregate_confidence(*fields, speech)
        n_words = len(report.words)
        cells = [label, str(tokens.n_tokens), str(n_words), f"{t_ref * 1e3:.2f} ms"]
        for t in (t_raw, t_col, t_wrap, t_words):
            cells += [f"{t * 1e3:.3f} ms", f"{t_ref / t:.0f}x"]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
