"""Benchmark: native audio features vs the numpy reference and librosa, on 60 s of audio.

Run: ``.venv/bin/python bench/bench_features.py [--seconds 60] [--repeats 15]`` (build the
extension with ``maturin develop --release`` first). Prints a markdown table of median times.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import reference_features as ref  # noqa: E402
from whisper_cascade import features  # noqa: E402

SR = 16_000


def test_audio(seconds: float, seed: int = 0) -> np.ndarray:
    """Speech-like audio: harmonic syllables at ~5 Hz in phrases, with noise at ~20 dB SNR."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    voiced = sum(np.sin(k * phase) / k for k in range(1, 15))
    envelope = np.clip(np.sin(2 * np.pi * 5 * t), 0, None) ** 2
    phrases = (np.sin(2 * np.pi * 0.2 * t) > -0.4).astype(float)
    clean = 0.3 * voiced * envelope * phrases
    noise = rng.normal(0, np.sqrt(np.mean(clean**2) / 100), len(t))
    return (clean + noise).astype(np.float32)


def median_times(tasks: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
    """Median wall time of each task, each timed in its own block after a warm-up run.

    (Interleaving the tasks would put the native code right after numpy's BLAS calls, whose
    worker threads keep spinning for a while and steal the cores rayon wants.)
    """
    out = {}
    for name, fn in tasks.items():
        fn()  # warm-up (FFT plans, caches, numba compilation in librosa)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        out[name] = statistics.median(times)
    return out


def librosa_features(x: np.ndarray, mel: bool = True) -> dict[str, np.ndarray]:
    """The same features from librosa's functions, each called on the signal as a user would,
    framed like ours (the padded signal, center=False); ``mel=False`` leaves out the mel."""
    import librosa

    y = ref.padded_signal(x)
    kw: dict[str, Any] = {"n_fft": 400, "hop_length": 160, "center": False, "window": "hann"}
    out = {
        "rms": librosa.feature.rms(y=y, frame_length=400, hop_length=160, center=False)[0],
        "zcr": librosa.feature.zero_crossing_rate(
            y, frame_length=400, hop_length=160, center=False
        )[0],
        "spectral_centroid": librosa.feature.spectral_centroid(y=y, sr=SR, **kw)[0],
        "spectral_spread": librosa.feature.spectral_bandwidth(y=y, sr=SR, **kw)[0],
        "spectral_flatness": librosa.feature.spectral_flatness(y=y, **kw)[0],
    }
    if mel:
        out["mel"] = librosa.feature.melspectrogram(y=y, sr=SR, n_mels=80, power=2.0, **kw)
    return out


def check_agreement(x: np.ndarray) -> list[str]:
    """Assert the three implementations agree; return notes for the report."""
    ours, mel = features.analyze_with_mel(x, 80)
    want, want_mel = ref.features_and_mel(x, ref.whisper_filters(80))
    for key, value in ours.to_dict().items():
        if key != "speech_segments":
            assert np.isclose(value, want[key], rtol=1e-7, atol=1e-9), key
    assert len(ours.speech_segments) == len(want["speech_segments"])
    assert np.abs(mel - want_mel).max() < 1e-4
    notes = [f"reference: all {len(want)} features agree (rtol 1e-7), log-mel within 1e-4"]
    try:
        lib = librosa_features(x)
    except ImportError:
        return [*notes, "librosa not installed"]
    n = mel.shape[1]
    for key in ("rms", "zcr", "spectral_centroid", "spectral_spread", "spectral_flatness"):
        assert np.isclose(getattr(ours, f"{key}_mean"), lib[key][:n].mean(), rtol=1e-6), key
    log = np.log10(np.maximum(lib["mel"], 1e-10))
    log = (np.maximum(log, log.max() - 8.0) + 4.0) / 4.0
    assert np.abs(mel - log[:, :n]).max() < 1e-4
    return [*notes, "librosa: 5 feature means agree (rtol 1e-6), log of its mel within 1e-4"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    x = test_audio(args.seconds)
    notes = check_agreement(x)
    filters = ref.whisper_filters(80)
    tasks: dict[str, Callable[[], Any]] = {
        "native_all": lambda: features.analyze_with_mel(x, 80),
        "native_feat": lambda: features.analyze(x),
        "native_mel": lambda: features.log_mel(x, 80),
        "numpy_all": lambda: ref.features_and_mel(x, filters),
        "numpy_feat": lambda: ref.features(x),
    }
    if importlib.util.find_spec("librosa") is not None:
        tasks["librosa_all"] = lambda: librosa_features(x)
        tasks["librosa_feat"] = lambda: librosa_features(x, mel=False)
    t = median_times(tasks, args.repeats)
    rows = [
        ("features + 80-band log-mel", t["native_all"], t["numpy_all"], t.get("librosa_all")),
        ("features only", t["native_feat"], t["numpy_feat"], t.get("librosa_feat")),
        ("log-mel only (whisper.cpp-exact)", t["native_mel"], None, None),
    ]
    print(f"Audio: {args.seconds:g} s at 16 kHz; median of {args.repeats} runs each.\n")
    print("| task | native (ms) | numpy reference (ms) | vs numpy | librosa (ms) | vs librosa |")
    print("|---|---:|---:|---:|---:|---:|")
    for task, ours, numpy_t, lib in rows:
        np_cell = f"{numpy_t * 1e3:.1f} | {numpy_t / ours:.1f}x" if numpy_t else "- | -"
        lib_cell = f"{lib * 1e3:.1f} | {lib / ours:.1f}x" if lib else "- | -"
        print(f"| {task} | {ours * 1e3:.2f} | {np_cell} | {lib_cell} |")
    print()
    for note in notes:
        print(f"- {note}")


if __name__ == "__main__":
    main()
