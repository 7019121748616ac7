"""Vectorised numpy reference of the native audio features, used by tests and bench.

Written from the definitions in ``rust/features`` (not from the Rust code): one STFT with
Whisper's framing (n_fft 400, hop 160, periodic Hann, 200 mirrored samples before the signal,
zeros after it), per-frame statistics, energy-based speech activity, SNR and syllable nuclei.
``whisper_cpp_log_mel`` transliterates whisper.cpp's ``log_mel_spectrogram`` (float32 FFT,
double mel sums, 30 s of zero padding) to check the native log-mel against.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

SR = 16_000
N_FFT = 400
HOP = 160
PAD = N_FFT // 2
FREQS = np.arange(N_FFT // 2 + 1) * (SR / N_FFT)
HANN = 0.5 * (1.0 - np.cos(2.0 * np.pi * np.arange(N_FFT) / N_FFT))
MEL_NPZ = (
    Path(__file__).resolve().parents[1]
    / "python/whisper_cascade/data/openai_whisper/mel_filters.npz"
)

SNR_MIN_DB, SNR_MAX_DB = -10.0, 60.0


def whisper_filters(n_mels: int = 80) -> np.ndarray:
    with np.load(MEL_NPZ) as npz:
        return np.asarray(npz[f"mel_{n_mels}"])


def n_frames(n: int) -> int:
    return 1 + max(n - PAD, 0) // HOP


def padded_signal(x: np.ndarray) -> np.ndarray:
    """The signal mirrored over 200 samples before it and zero-padded after it, float64;
    framing it with n_fft 400, hop 160 and no centring gives every frame that holds audio."""
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    n_all = (n + PAD) // HOP + 1
    out = np.zeros((n_all - 1) * HOP + N_FFT)
    m = min(n - 1, PAD)
    out[PAD - m : PAD] = x[1 : m + 1][::-1]
    out[PAD : PAD + n] = x
    return out


def padded_frames(x: np.ndarray) -> np.ndarray:
    """Frames ``(n_with_audio, 400)`` of :func:`padded_signal`."""
    return sliding_window_view(padded_signal(x), N_FFT)[::HOP]


def frame_stats(x: np.ndarray) -> dict[str, np.ndarray]:
    """Per-frame quantities over every frame that holds audio."""
    frames = padded_frames(x)
    power = np.abs(np.fft.rfft(frames * HANN, axis=1)) ** 2
    mag = np.sqrt(power)
    mag_sum = mag.sum(axis=1)
    ok = mag_sum > np.finfo(np.float64).tiny
    norm = np.where(ok[:, None], mag / np.where(ok, mag_sum, 1.0)[:, None], 0.0)
    centroid = norm @ FREQS
    spread = np.sqrt((norm * (FREQS[None, :] - centroid[:, None]) ** 2).sum(axis=1))
    floored = np.maximum(power, 1e-10)
    negative = frames < -1e-10
    return {
        "mean_square": (frames**2).mean(axis=1),
        "zcr": (negative[:, 1:] != negative[:, :-1]).sum(axis=1) / N_FFT,
        "centroid": centroid,
        "spread": spread,
        "flatness": np.exp(np.log(floored).mean(axis=1)) / floored.mean(axis=1),
        "band_energy": power[:, 8:76].sum(axis=1),
        "power": power,
    }


def speech_runs(mean_square: np.ndarray) -> list[tuple[int, int]]:
    db = np.maximum(10.0 * np.log10(np.maximum(mean_square, 1e-10)), -100.0)
    floor, loud = np.percentile(db, [10.0, 95.0])
    threshold = max(floor + max(6.0, 0.2 * (loud - floor)), -60.0)
    active = np.concatenate([[False], db > threshold, [False]])
    edges = np.flatnonzero(np.diff(active.astype(np.int8)))
    merged: list[list[int]] = []
    for start, end in zip(edges[::2], edges[1::2], strict=True):
        if merged and start - merged[-1][1] < 20:
            merged[-1][1] = int(end)
        else:
            merged.append([int(start), int(end)])
    return [(s, e) for s, e in merged if e - s >= 10]


def snr_db(mean_square: np.ndarray, runs: list[tuple[int, int]]) -> float:
    mask = np.zeros(len(mean_square), dtype=bool)
    for s, e in runs:
        mask[s:e] = True
    if not mask.any():
        return SNR_MIN_DB
    if mask.all():
        return SNR_MAX_DB
    speech, noise = mean_square[mask].mean(), mean_square[~mask].mean()
    ratio = max(speech - noise, 1e-20) / max(noise, 1e-20)
    return float(np.clip(10.0 * np.log10(ratio), SNR_MIN_DB, SNR_MAX_DB))


def count_nuclei(band_energy: np.ndarray, runs: list[tuple[int, int]]) -> int:
    n = len(band_energy)
    if n < 3 or not runs:
        return 0
    db = 10.0 * np.log10(np.maximum(band_energy, 1e-10))
    win = sliding_window_view(np.concatenate([[0.0, 0.0], db, [0.0, 0.0]]), 5)
    total = win[:, 0] + win[:, 1]
    for k in (2, 3, 4):
        total = total + win[:, k]
    idx = np.arange(n)
    counts = np.minimum(idx + 3, n) - np.maximum(idx - 2, 0)
    smooth = total / counts
    threshold = max(np.percentile(smooth, 50.0), np.percentile(smooth, 99.0) - 25.0)
    is_peak = np.zeros(n, dtype=bool)
    is_peak[1:-1] = (
        (smooth[1:-1] > smooth[:-2]) & (smooth[1:-1] >= smooth[2:]) & (smooth[1:-1] > threshold)
    )
    accepted: list[int] = []
    for s, e in runs:
        for i in np.flatnonzero(is_peak[s:e]) + s:
            if not accepted:
                accepted.append(int(i))
                continue
            last = accepted[-1]
            dip = smooth[last : i + 1].min()
            if min(smooth[last], smooth[i]) - dip >= 2.0:
                accepted.append(int(i))
            elif smooth[i] > smooth[last]:
                accepted[-1] = int(i)
    return len(accepted)


def complexity(snr: float, rate: float, flatness: float, speech_s: float) -> float:
    noise = np.clip((30.0 - snr) / 40.0, 0.0, 1.0)
    fast = np.clip(rate / 8.0, 0.0, 1.0)
    flat = np.clip(flatness / 0.56, 0.0, 1.0)
    brevity = np.exp(-speech_s / 2.0)
    return float(np.clip(0.35 * noise + 0.25 * fast + 0.2 * flat + 0.2 * brevity, 0.0, 1.0))


def features(x: np.ndarray) -> dict[str, Any]:
    """The feature dict of ``whisper_cascade.features.analyze`` for a 16 kHz signal."""
    x = np.asarray(x, dtype=np.float32)
    n = n_frames(len(x))
    st = {k: v[:n] for k, v in frame_stats(x).items()}
    runs = speech_runs(st["mean_square"])
    duration = len(x) / SR
    segments = tuple((max((s - 0.5) * 0.01, 0.0), min((e - 0.5) * 0.01, duration)) for s, e in runs)
    speech_s = float(sum(e - s for s, e in segments))
    rate = count_nuclei(st["band_energy"], runs) / speech_s if speech_s > 0 else 0.0
    snr = snr_db(st["mean_square"], runs)
    rms = np.sqrt(st["mean_square"])
    out: dict[str, Any] = {"duration_s": duration}
    for name, values in [
        ("rms", rms),
        ("zcr", st["zcr"]),
        ("spectral_centroid", st["centroid"]),
        ("spectral_spread", st["spread"]),
        ("spectral_flatness", st["flatness"]),
    ]:
        out[f"{name}_mean"] = float(values.mean())
        out[f"{name}_std"] = float(values.std())
    out.update(
        peak=float(np.abs(x).max()),
        speech_segments=segments,
        speech_ratio=speech_s / duration,
        snr_db=snr,
        speech_rate=rate,
        complexity=complexity(snr, rate, out["spectral_flatness_mean"], speech_s),
    )
    return out


def features_and_mel(x: np.ndarray, filters: np.ndarray) -> tuple[dict[str, Any], np.ndarray]:
    """Features plus the Whisper log-mel from the same STFT (what the bench times)."""
    x = np.asarray(x, dtype=np.float32)
    n = n_frames(len(x))
    power = frame_stats(x)["power"]
    log = np.log10(np.maximum(power @ filters.T.astype(np.float64), 1e-10))
    log = np.maximum(log, max(log.max(), -10.0) - 8.0)
    return features(x), ((log[:n].T + 4.0) / 4.0).astype(np.float32)


def whisper_cpp_log_mel(samples: np.ndarray, filters: np.ndarray) -> np.ndarray:
    """Transliteration of whisper.cpp's ``log_mel_spectrogram`` returning its n_len_org frames."""
    x = np.asarray(samples, dtype=np.float32)
    n = len(x)
    stage_1_pad, stage_2_pad = SR * 30, N_FFT // 2
    padded = np.zeros(n + stage_1_pad + 2 * stage_2_pad, dtype=np.float32)
    padded[stage_2_pad : stage_2_pad + n] = x
    padded[:stage_2_pad] = x[1 : 1 + stage_2_pad][::-1]  # needs n > 200, as whisper.cpp
    n_len = (len(padded) - N_FFT) // HOP
    n_len_org = 1 + int((n + stage_2_pad - N_FFT) / HOP)  # C division truncates toward 0
    n_computed = min((n + stage_2_pad) // HOP + 1, n_len)
    hann = (0.5 * (1.0 - np.cos(2.0 * np.pi * np.arange(N_FFT) / N_FFT))).astype(np.float32)
    frames = sliding_window_view(padded, N_FFT)[::HOP][:n_computed]
    spectrum = np.fft.rfft(frames * hann, axis=1).astype(np.complex64)
    power = (spectrum.real * spectrum.real + spectrum.imag * spectrum.imag).astype(np.float32)
    mel = np.full((filters.shape[0], n_len), np.log10(1e-10), dtype=np.float32)
    sums = power.astype(np.float64) @ filters.astype(np.float64).T
    mel[:, :n_computed] = np.log10(np.maximum(sums, 1e-10)).T
    mmax = float(mel.max()) - 8.0
    mel = (np.maximum(mel.astype(np.float64), mmax) + 4.0) / 4.0
    return mel[:, :n_len_org].astype(np.float32)
