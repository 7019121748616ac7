"""Native audio features against the numpy reference, whisper.cpp's log-mel and librosa."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import reference_features as ref
from whisper_cascade import _native
from whisper_cascade.errors import AudioError, InvalidArgumentError
from whisper_cascade.features import (
    AudioFeatures,
    analyze,
    analyze_many,
    analyze_with_mel,
    log_mel,
    mel_filters,
)

SR = 16_000
RNG = np.random.default_rng(1234)


def _sine(freq: float, seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _speechy(seconds: float = 4.0, snr_db: float = 25.0, seed: int = 0) -> np.ndarray:
    """Harmonic 'syllables' (random pitch, 4-6 Hz envelope) in phrases, plus white noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f0 = 110 + 40 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = np.clip(np.sin(2 * np.pi * rng.uniform(4, 6) * t), 0, None) ** 2
    phrases = (np.sin(2 * np.pi * 0.3 * t) > -0.3).astype(float)
    clean = 0.3 * voiced * envelope * phrases
    sigma = np.sqrt(np.mean(clean**2) / 10 ** (snr_db / 10))
    return (clean + rng.normal(0, sigma, len(t))).astype(np.float32)


def _espeak(text: str) -> np.ndarray | None:
    exe = shutil.which("espeak-ng")
    if exe is None:
        return None
    out = subprocess.run([exe, "--stdout", text], capture_output=True, check=False)
    if out.returncode != 0 or len(out.stdout) < 100:
        return None
    import io

    import soundfile as sf
    import soxr

    data, rate = sf.read(io.BytesIO(out.stdout), dtype="float32")
    return np.ascontiguousarray(soxr.resample(data, rate, SR), dtype=np.float32)


SIGNALS: dict[str, Callable[[], np.ndarray]] = {
    "sine": lambda: _sine(440.0, 1.5),
    "noise": lambda: RNG.normal(0, 0.1, 24_000).astype(np.float32),
    "silence": lambda: np.zeros(20_000, dtype=np.float32),
    "speechy": lambda: _speechy(),
    "speechy_noisy": lambda: _speechy(6.0, snr_db=5.0, seed=3),
    "bursts": lambda: np.concatenate(
        [np.zeros(8000, np.float32), _sine(300.0, 0.5), np.zeros(8000, np.float32)]
    ),
    "short_250": lambda: RNG.normal(0, 0.2, 250).astype(np.float32),
    "tiny_30": lambda: RNG.normal(0, 0.2, 30).astype(np.float32),
    "odd_length": lambda: _speechy(1.2345, seed=5),
}


def _signal(name: str) -> np.ndarray:
    if name == "espeak":
        speech = _espeak("The quick brown fox jumps over the lazy dog. Then it rests.")
        if speech is None:
            pytest.skip("espeak-ng not available")
        return speech
    return SIGNALS[name]()


ALL_SIGNALS = [*SIGNALS, "espeak"]


def _assert_features_equal(got: AudioFeatures, want: dict[str, object]) -> None:
    for key, value in got.to_dict().items():
        expected = want[key]
        if key == "speech_segments":
            assert len(value) == len(expected), (value, expected)  # type: ignore[arg-type]
            np.testing.assert_allclose(
                np.asarray(value, dtype=float).reshape(-1, 2),
                np.asarray(expected, dtype=float).reshape(-1, 2),
                atol=1e-9,
            )
        else:
            assert value == pytest.approx(expected, rel=1e-7, abs=1e-9), key


@pytest.mark.parametrize("name", ALL_SIGNALS)
def test_every_feature_matches_the_numpy_reference(name: str) -> None:
    x = _signal(name)
    _assert_features_equal(analyze(x), ref.features(x))


@pytest.mark.parametrize("n_mels", [80, 128])
@pytest.mark.parametrize("name", ["sine", "noise", "speechy", "short_250", "espeak", "silence"])
def test_log_mel_matches_whisper_cpp(name: str, n_mels: int) -> None:
    x = _signal(name)
    want = ref.whisper_cpp_log_mel(x, ref.whisper_filters(n_mels))
    got = log_mel(x, n_mels)
    assert got.dtype == np.float32
    assert got.shape == want.shape == (n_mels, ref.n_frames(len(x)))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)


@pytest.mark.parametrize("n_mels", [80, 128])
def test_mel_filters_match_whisper_assets(n_mels: int) -> None:
    got = mel_filters(n_mels)
    want = ref.whisper_filters(n_mels)
    assert got.shape == want.shape == (n_mels, 201)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-12)


def test_analyze_with_mel_shares_one_stft() -> None:
    x = _speechy(2.0)
    features, mel = analyze_with_mel(x, 128)
    assert features == analyze(x)
    np.testing.assert_array_equal(mel, log_mel(x, 128))
    want_features, want_mel = ref.features_and_mel(x, ref.whisper_filters(128))
    _assert_features_equal(features, want_features)
    np.testing.assert_allclose(mel, want_mel, atol=1e-5)


def test_batch_equals_single_calls() -> None:
    signals = [_signal(n) for n in ("sine", "noise", "speechy", "tiny_30")]
    assert analyze_many(signals) == [analyze(s) for s in signals]
    raw = _native.analyze_audio_batch(signals)
    assert raw == [_native.analyze_audio(s) for s in signals]
    assert analyze_many([]) == []


def test_batch_errors_name_the_signal() -> None:
    good = _sine(200.0, 0.3)
    with pytest.raises(AudioError, match=r"signals\[1\]"):
        analyze_many([good, np.array([], dtype=np.float32)])
    with pytest.raises(InvalidArgumentError, match=r"signals\[0\]"):
        _native.analyze_audio_batch([good.astype(np.float64)])  # type: ignore[list-item]
    with pytest.raises(InvalidArgumentError):
        _native.analyze_audio_batch([good], sample_rate=8000)


def test_known_values_of_simple_signals() -> None:
    sine = analyze(_sine(1000.0, 2.0))
    assert sine.spectral_centroid_mean == pytest.approx(1000.0, rel=0.02)
    assert sine.spectral_flatness_mean < 0.01
    noise = analyze(RNG.normal(0, 0.1, 32_000))
    assert noise.spectral_flatness_mean == pytest.approx(np.exp(-np.euler_gamma), abs=0.05)
    silence = analyze(np.zeros(16_000))
    assert silence.speech_segments == ()
    assert silence.snr_db == -10.0
    speech = analyze(_speechy(6.0, snr_db=20.0, seed=1))
    assert speech.speech_segments and 0.3 < speech.speech_ratio < 1.0
    assert 0.0 <= speech.complexity <= 1.0


@pytest.mark.parametrize("name", ["speechy", "noise", "sine", "espeak"])
def test_spectral_features_match_librosa(name: str) -> None:
    lr = pytest.importorskip("librosa")
    x = _signal(name)
    y = ref.padded_signal(x)  # same frames as ours with center=False
    n = ref.n_frames(len(x))
    kw = {"n_fft": 400, "hop_length": 160, "center": False, "window": "hann"}
    per_frame = {
        "spectral_centroid": lr.feature.spectral_centroid(y=y, sr=SR, **kw)[0, :n],
        "spectral_spread": lr.feature.spectral_bandwidth(y=y, sr=SR, **kw)[0, :n],
        "spectral_flatness": lr.feature.spectral_flatness(y=y, **kw)[0, :n],
        "rms": lr.feature.rms(y=y, frame_length=400, hop_length=160, center=False)[0, :n],
        "zcr": lr.feature.zero_crossing_rate(y, frame_length=400, hop_length=160, center=False)[
            0, :n
        ],
    }
    got = analyze(x)
    for key, values in per_frame.items():
        assert getattr(got, f"{key}_mean") == pytest.approx(values.mean(), rel=1e-6, abs=1e-9)
        assert getattr(got, f"{key}_std") == pytest.approx(values.std(), rel=1e-5, abs=1e-6)
    mel = lr.feature.melspectrogram(y=y, sr=SR, n_mels=80, power=2.0, **kw)
    log = np.log10(np.maximum(mel, 1e-10))
    log = (np.maximum(log, max(log.max(), -10.0) - 8.0) + 4.0) / 4.0
    np.testing.assert_allclose(log_mel(x)[:, :n], log[:, :n], atol=1e-4)


def test_binding_is_strict_about_arrays() -> None:
    x = _sine(440.0, 0.5)
    with pytest.raises(InvalidArgumentError, match="float32"):
        _native.analyze_audio(x.astype(np.float64))  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="contiguous"):
        _native.analyze_audio(np.repeat(x, 2)[::2])
    with pytest.raises(InvalidArgumentError, match="1-D"):
        _native.log_mel_spectrogram(np.zeros((2, 400), np.float32))
    with pytest.raises(InvalidArgumentError):
        _native.analyze_audio([0.0, 1.0])  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="sample_rate"):
        _native.analyze_audio(x, sample_rate=-1)


@pytest.mark.parametrize(
    "bad", [np.array([], np.float32), np.array([0.0, np.nan], np.float32), [np.inf, 0.0]]
)
def test_bad_samples_raise_audio_error(bad: object) -> None:
    with pytest.raises(AudioError):
        analyze(bad)  # type: ignore[arg-type]
    with pytest.raises(AudioError):
        log_mel(bad)  # type: ignore[arg-type]


def test_wrapper_converts_but_refuses_nonsense() -> None:
    x = _speechy(1.0)
    assert analyze(x.astype(np.float64)[::1]) == analyze(x)
    assert analyze(np.repeat(x, 2)[::2]) == analyze(x)
    with pytest.raises(InvalidArgumentError, match="1-D"):
        analyze(np.zeros((2, 100)))
    with pytest.raises(InvalidArgumentError, match="floating"):
        analyze(np.zeros(100, dtype=np.int16))
    with pytest.raises(InvalidArgumentError, match="16000"):
        analyze(x, sample_rate=44_100)
    with pytest.raises(InvalidArgumentError, match="n_mels"):
        log_mel(x, n_mels=64)
    with pytest.raises(InvalidArgumentError, match="n_mels"):
        mel_filters(0)
    with pytest.raises(InvalidArgumentError, match="n_mels"):
        analyze_with_mel(x, n_mels=-3)
    with pytest.raises(AudioError):
        analyze(np.array([1e300, 0.0]))  # overflows float32 to inf


def test_features_round_trip_through_dicts() -> None:
    f = analyze(_speechy(3.0))
    d = f.to_dict()
    assert isinstance(d["speech_segments"], list)
    assert AudioFeatures.from_dict(d) == f
    import json

    assert AudioFeatures.from_dict(json.loads(json.dumps(d))) == f


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("rms_mean", "loud", "number"),
        ("peak", True, "number"),
        ("speech_segments", "0-1", "sequence"),
        ("speech_segments", [[0.0, 1.0, 2.0]], "start, end"),
        ("speech_segments", [["a", 1.0]], "number"),
    ],
)
def test_from_dict_rejects_bad_values(key: str, value: object, match: str) -> None:
    d = analyze(_sine(300.0, 0.5)).to_dict()
    d[key] = value
    with pytest.raises(InvalidArgumentError, match=match):
        AudioFeatures.from_dict(d)
    del d[key]
    with pytest.raises(InvalidArgumentError, match="lack"):
        AudioFeatures.from_dict(d)


def test_native_dict_keys_match_the_dataclass() -> None:
    raw = _native.analyze_audio(_sine(440.0, 0.3))
    assert set(raw) == set(AudioFeatures.__dataclass_fields__)
    assert Path(ref.MEL_NPZ).is_file()
