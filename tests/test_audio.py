"""Audio loading: a corpus of bad and odd inputs, each a clear AudioError or a correct result."""

from __future__ import annotations

import shutil
import struct
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from whisper_cascade import audio as audio_mod
from whisper_cascade.audio import (
    MIN_SAMPLES,
    SAMPLE_RATE,
    Audio,
    is_silent,
    load_audio,
    pad_short,
    sample_path,
)
from whisper_cascade.errors import AudioError

HAVE_FFMPEG = shutil.which("ffmpeg") is not None
needs_ffmpeg = pytest.mark.skipif(not HAVE_FFMPEG, reason="ffmpeg not installed")


def tone(rate: int, seconds: float = 1.0, freq: float = 440.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float64)


def write(tmp: Path, name: str, data: np.ndarray, rate: int, subtype: str, **kw: Any) -> Path:
    path = tmp / name
    sf.write(str(path), data, rate, subtype=subtype, **kw)
    return path


def ffmpeg_encode(tmp: Path, name: str, *args: str) -> Path:
    wav = write(tmp, "src.wav", tone(44100, 1.0), 44100, "PCM_16")
    out = tmp / name
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(wav), *args, str(out)],
        check=True,
        timeout=60,
    )
    return out


def wav_header(rate: int, channels: int, bits: int, data_len: int) -> bytes:
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * block, block, bits)
    riff = 4 + 8 + len(fmt) + 8 + data_len
    return (
        b"RIFF"
        + struct.pack("<I", riff)
        + b"WAVEfmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + (b"data" + struct.pack("<I", data_len))
    )


def check_tone(
    seconds: float = 1.0, channels: int = 1, rate: int = 44100, tol: float = 0.01
) -> Callable[[Audio], None]:
    def check(a: Audio) -> None:
        assert a.samples.dtype == np.float32 and a.samples.ndim == 1
        assert a.samples.flags["C_CONTIGUOUS"]
        assert a.sample_rate == SAMPLE_RATE
        assert a.duration_s == pytest.approx(seconds, abs=tol)
        assert a.original_channels == channels
        assert a.original_sample_rate == rate
        rms = float(np.sqrt(np.mean(a.samples.astype(np.float64) ** 2)))
        assert 0.2 < rms < 0.45  # a 0.5-amplitude sine has RMS 0.354
        assert np.isfinite(a.samples).all()

    return check


Case = tuple[Callable[[Path], Any], dict[str, Any], "str | Callable[[Audio], None]"]

CASES: dict[str, Case] = {
    "empty_file": (lambda t: (t / "e.wav").write_bytes(b"") and None or t / "e.wav", {}, "empty"),
    "one_sample_wav": (
        lambda t: write(t, "one.wav", np.array([0.25]), 16000, "PCM_16"),
        {},
        lambda a: (a.samples.shape == (1,)) or pytest.fail("one sample expected"),
    ),
    "nan_array": (lambda t: np.array([0.0, np.nan, 0.1, np.nan]), {}, "2 non-finite"),
    "inf_float_wav": (
        lambda t: write(t, "inf.wav", np.array([0.1, np.inf, -np.inf, 0.0]), 16000, "FLOAT"),
        {},
        "2 non-finite",
    ),
    "wav_u8": (lambda t: write(t, "u8.wav", tone(44100), 44100, "PCM_U8"), {}, check_tone()),
    "wav_16": (lambda t: write(t, "s16.wav", tone(44100), 44100, "PCM_16"), {}, check_tone()),
    "wav_24": (lambda t: write(t, "s24.wav", tone(44100), 44100, "PCM_24"), {}, check_tone()),
    "wav_32": (lambda t: write(t, "s32.wav", tone(44100), 44100, "PCM_32"), {}, check_tone()),
    "wav_f64": (lambda t: write(t, "f64.wav", tone(44100), 44100, "DOUBLE"), {}, check_tone()),
    "wav_5ch": (
        lambda t: write(t, "5ch.wav", np.tile(tone(48000)[:, None], (1, 5)), 48000, "PCM_16"),
        {},
        check_tone(channels=5, rate=48000),
    ),
    "wav_8k": (
        lambda t: write(t, "8k.wav", tone(8000, 2.0, 300.0), 8000, "PCM_16"),
        {},
        check_tone(2.0, rate=8000),
    ),
    "wav_96k": (
        lambda t: write(t, "96k.wav", tone(96000), 96000, "PCM_24"),
        {},
        check_tone(rate=96000),
    ),
    "truncated_header": (
        lambda t: (t / "th.wav").write_bytes(wav_header(16000, 1, 16, 3200)[:20]) and t / "th.wav",
        {},
        "corrupt",
    ),
    "random_bytes_file": (
        lambda t: (t / "r.bin").write_bytes(np.random.default_rng(0).bytes(4096)) and t / "r.bin",
        {},
        "not decodable" if HAVE_FFMPEG else "ffmpeg",
    ),
    "zero_length_data_chunk": (
        lambda t: (t / "z.wav").write_bytes(wav_header(16000, 1, 16, 0)) and t / "z.wav",
        {},
        "no audio samples",
    ),
    "header_rate_1hz": (
        lambda t: (
            (t / "r1.wav").write_bytes(wav_header(1, 1, 16, 200) + bytes(200)) and t / "r1.wav"
        ),
        {},
        "sample rate",
    ),
    "truncated_data": (
        lambda t: (
            (t / "td.wav").write_bytes(wav_header(16000, 1, 16, 32000) + bytes(8000))
            and t / "td.wav"
        ),
        {},
        lambda a: (a.samples.shape[0] <= 16000) or pytest.fail("more samples than present"),
    ),
    "flac": (
        lambda t: write(t, "a.flac", tone(22050), 22050, "PCM_16"),
        {},
        check_tone(rate=22050),
    ),
    "ogg_vorbis": (
        lambda t: write(t, "a.ogg", tone(44100), 44100, "VORBIS"),
        {},
        check_tone(),
    ),
    "text_renamed_wav": (
        lambda t: (t / "txt.wav").write_text("hello, this is not audio\n" * 20) and t / "txt.wav",
        {},
        "not decodable" if HAVE_FFMPEG else "ffmpeg",
    ),
    "directory": (lambda t: t, {}, "not a regular file"),
    "missing_path": (lambda t: t / "nope.wav", {}, "no such file"),
    "missing_str_path": (lambda t: str(t / "nope.flac"), {}, "no such file"),
    "wav_as_bytes": (
        lambda t: write(t, "b.wav", tone(44100), 44100, "PCM_16").read_bytes(),
        {},
        check_tone(),
    ),
    "empty_bytes": (lambda t: b"", {}, "empty input"),
    "random_bytes": (
        lambda t: np.random.default_rng(1).bytes(1000),
        {},
        "not decodable" if HAVE_FFMPEG else "ffmpeg",
    ),
    "empty_array": (lambda t: np.zeros(0, np.float32), {}, "no audio samples"),
    "array_3d": (lambda t: np.zeros((2, 2, 2), np.float32), {}, "1-D or 2-D"),
    "array_complex": (lambda t: np.zeros(100, np.complex64), {}, "unsupported sample dtype"),
    "array_bool": (lambda t: np.ones(100, bool), {}, "unsupported sample dtype"),
    "array_rate_zero": (lambda t: np.zeros(100, np.float32), {"sample_rate": 0}, "sample rate"),
    "array_rate_huge": (lambda t: np.zeros(100, np.float32), {"sample_rate": 10**9}, "sample rate"),
    "array_rate_float": (lambda t: np.zeros(100, np.float32), {"sample_rate": 16000.5}, "integer"),
    "array_too_many_channels": (lambda t: np.zeros((100, 200), np.float32), {}, "channels"),
    "int16_array": (
        lambda t: (tone(16000) * 32767).astype(np.int16),
        {},
        check_tone(rate=16000),
    ),
    "uint8_array": (
        lambda t: (tone(16000) * 127 + 128).astype(np.uint8),
        {},
        check_tone(rate=16000),
    ),
    "int32_array_8k": (
        lambda t: (tone(8000) * 2**31).clip(-(2**31), 2**31 - 1).astype(np.int32),
        {"sample_rate": 8000},
        check_tone(rate=8000),
    ),
    "float16_array": (lambda t: tone(16000).astype(np.float16), {}, check_tone(rate=16000)),
    "frames_x_channels": (
        lambda t: np.stack([tone(16000), tone(16000)], axis=1),
        {},
        check_tone(channels=2, rate=16000),
    ),
    "channels_x_frames": (
        lambda t: np.stack([tone(16000), tone(16000), tone(16000)], axis=0),
        {},
        check_tone(channels=3, rate=16000),
    ),
    "clip_10ms": (
        lambda t: tone(16000, 0.01),
        {},
        lambda a: (a.samples.shape == (160,)) or pytest.fail("160 samples expected"),
    ),
    "wrong_type": (lambda t: 12345, {}, "unsupported audio source type"),
}

FFMPEG_CASES: dict[str, Case] = {
    "mp3_file": (lambda t: ffmpeg_encode(t, "a.mp3", "-b:a", "64k"), {}, check_tone(tol=0.06)),
    "m4a_file": (lambda t: ffmpeg_encode(t, "a.m4a", "-c:a", "aac"), {}, check_tone(tol=0.06)),
    "opus_webm_file": (
        lambda t: ffmpeg_encode(t, "a.webm", "-c:a", "libopus"),
        {},
        check_tone(rate=48000, tol=0.06),
    ),
    "mp3_bytes": (lambda t: ffmpeg_encode(t, "b.mp3").read_bytes(), {}, check_tone(tol=0.06)),
    "m4a_bytes_index_at_end": (
        lambda t: ffmpeg_encode(t, "b.m4a", "-c:a", "aac").read_bytes(),
        {},
        check_tone(tol=0.06),
    ),
    "m4a_bytes_faststart": (
        lambda t: ffmpeg_encode(t, "c.m4a", "-c:a", "aac", "-movflags", "+faststart").read_bytes(),
        {},
        check_tone(tol=0.06),
    ),
}


def _run_case(tmp_path: Path, case: Case) -> None:
    build, kwargs, expect = case
    source = build(tmp_path)
    if isinstance(expect, str):
        with pytest.raises(AudioError, match=expect) as info:
            load_audio(source, **kwargs)
        message = str(info.value)
        assert "\n" not in message
        if isinstance(source, Path | str):
            assert str(source) in message  # the reason names the source
    else:
        expect(load_audio(source, **kwargs))


@pytest.mark.parametrize("name", sorted(CASES))
def test_corpus(tmp_path: Path, name: str) -> None:
    _run_case(tmp_path, CASES[name])


@needs_ffmpeg
@pytest.mark.parametrize("name", sorted(FFMPEG_CASES))
def test_ffmpeg_corpus(tmp_path: Path, name: str) -> None:
    _run_case(tmp_path, FFMPEG_CASES[name])


def test_corpus_is_large_enough() -> None:
    assert len(CASES) + len(FFMPEG_CASES) >= 30


def test_ffmpeg_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audio_mod, "FFMPEG", "ffmpeg-that-does-not-exist-here")
    path = tmp_path / "x.mp3"
    path.write_bytes(b"ID3" + bytes(100))
    with pytest.raises(AudioError, match="ffmpeg .* is missing"):
        load_audio(path)


@needs_ffmpeg
def test_ffmpeg_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audio_mod, "FFMPEG_TIMEOUT_S", 1e-4)
    with pytest.raises(AudioError, match="timed out"):
        load_audio(ffmpeg_encode(tmp_path, "a.mp3"))


def test_hour_of_silence_is_fast() -> None:
    started = time.perf_counter()
    a = load_audio(np.zeros(3600 * SAMPLE_RATE, np.float32))
    assert is_silent(a.samples)
    assert a.duration_s == 3600.0
    assert time.perf_counter() - started < 10.0


def test_dc_offset_is_silent_but_kept() -> None:
    a = load_audio(np.full(SAMPLE_RATE, 0.3, np.float32))
    assert is_silent(a.samples)
    assert float(a.samples.mean()) == pytest.approx(0.3)
    b = load_audio(0.3 + tone(SAMPLE_RATE).astype(np.float32))
    assert not is_silent(b.samples)


def test_clipping_is_kept_as_is() -> None:
    clipped = np.clip(tone(SAMPLE_RATE, amp=3.0), -1.0, 1.0).astype(np.float32)
    a = load_audio(clipped)
    assert float(a.samples.max()) == 1.0 and float(a.samples.min()) == -1.0
    assert not is_silent(a.samples)


def test_short_burst_in_long_quiet_file_is_not_silent() -> None:
    x = np.zeros(60 * SAMPLE_RATE, np.float32)
    x[30 * SAMPLE_RATE : 30 * SAMPLE_RATE + 1600] = 0.05
    x[30 * SAMPLE_RATE : 30 * SAMPLE_RATE + 1600 : 2] = -0.05
    assert not is_silent(x)
    assert is_silent(x * 1e-4)
    assert is_silent(np.zeros(0, np.float32))
    assert is_silent(np.zeros(123, np.float32))


def test_audio_is_a_private_read_only_copy() -> None:
    x = tone(SAMPLE_RATE).astype(np.float32)
    a = load_audio(x)
    x[:] = 0
    assert not is_silent(a.samples)
    with pytest.raises(ValueError):
        a.samples[0] = 1.0
    with pytest.raises(AttributeError):
        a.source = "other"  # type: ignore[misc]


def test_resampling_keeps_the_tone() -> None:
    a = load_audio(tone(44100, 1.0, 1000.0), sample_rate=44100)
    spectrum = np.abs(np.fft.rfft(a.samples))
    peak_hz = np.argmax(spectrum) * SAMPLE_RATE / a.samples.shape[0]
    assert peak_hz == pytest.approx(1000.0, abs=2.0)


def test_pad_short() -> None:
    x = np.ones(100, np.float32)
    padded = pad_short(x)
    assert padded.shape == (MIN_SAMPLES,) and padded.dtype == np.float32
    assert padded[:100].sum() == 100 and padded[100:].sum() == 0
    long = np.ones(MIN_SAMPLES + 1, np.float32)
    assert pad_short(long) is long
    assert pad_short(x, 50) is x


def test_bundled_sample() -> None:
    path = sample_path()
    assert path.is_file()
    info = sf.info(str(path))
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    a = load_audio(path)
    assert 1.0 < a.duration_s < 3.0
    assert not is_silent(a.samples)
    assert a.source == str(path)
