"""Quantizer and validator throughput on a ~100 MB synthetic f16 whisper model.

    .venv/bin/python bench/bench_quantize.py [--repeat 3] [--dir /tmp]

Prints a markdown table: MB/s of f16 input per quantized type (whole job: validation of
source and output, quantization, atomic write), and validation MB/s with and without SHA-256.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from whisper_cascade import _native
from whisper_cascade.ggml_writer import WhisperDims, random_whisper_model
from whisper_cascade.modelfile import QUANT_TYPES, quantize_model

# d_model 512, 3 + 3 layers: about 100 MB in f16 (the token embedding alone is 53 MB).
BENCH_DIMS = WhisperDims(
    n_mels=80,
    n_audio_ctx=1500,
    n_audio_state=512,
    n_audio_head=8,
    n_audio_layer=3,
    n_vocab=51864,
    n_text_ctx=448,
    n_text_state=512,
    n_text_head=8,
    n_text_layer=3,
)


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", default=None, help="scratch folder (default: a temp dir)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        src = random_whisper_model(Path(tmp) / "bench-f16.bin", BENCH_DIMS, seed=0)
        size = src.stat().st_size
        mb = size / 1e6
        print(f"model: {mb:.1f} MB f16, d_model 512, 3+3 layers; cores: {os.cpu_count()}")
        print()
        print(f"| operation | seconds (best of {args.repeat}) | MB/s of f16 input |")
        print("|---|---|---|")
        for q in QUANT_TYPES:
            dst = Path(tmp) / f"bench-{q}.bin"
            secs = best_of(args.repeat, lambda q=q, dst=dst: quantize_model(src, dst, q))
            out_mb = dst.stat().st_size / 1e6
            print(f"| quantize {q} (→ {out_mb:.1f} MB) | {secs:.3f} | {mb / secs:.0f} |")
        for sha in (False, True):
            secs = best_of(args.repeat, lambda sha=sha: _native.validate_model(str(src), sha))
            label = "validate + sha256" if sha else "validate (no hash)"
            print(f"| {label} | {secs:.3f} | {mb / secs:.0f} |")


if __name__ == "__main__":
    main()
