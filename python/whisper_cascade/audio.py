"""Loading, validating and normalising audio before any model sees it.

Every input ends up as :class:`Audio`: float32, mono, 16 kHz, finite, C-contiguous, non-empty.
WAV/FLAC/OGG are decoded with soundfile; other containers (mp3, m4a, webm, ...) with an
``ffmpeg`` subprocess. Anything that cannot be read raises :class:`AudioError` with a one-line
reason naming the source.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import soundfile as sf
import soxr

from whisper_cascade.errors import AudioError

__all__ = [
    "MAX_SAMPLE_RATE",
    "MIN_SAMPLES",
    "MIN_SAMPLE_RATE",
    "SAMPLE_RATE",
    "Audio",
    "is_silent",
    "load_audio",
    "pad_short",
    "sample_path",
]

SAMPLE_RATE = 16000
"""The rate every model runs at."""

MIN_SAMPLES = SAMPLE_RATE
"""Clips shorter than this (1 s) are padded with trailing zeros before decoding.

whisper.cpp reads past the caller's buffer under ~200 samples and returns no segment at all
under 100 ms; one second clears both with margin. Zeros go at the end so every timestamp of
the padded clip still matches the original."""

MIN_SAMPLE_RATE = 1000
MAX_SAMPLE_RATE = 768_000

MAX_CHANNELS = 64
"""More channels than this is treated as a mistake (e.g. a transposed array), not audio."""

_CHANNELS_FIRST_MAX = 16
"""A 2-D array whose first axis is at most this long and shorter than its second axis is read
as (channels, frames); every other 2-D array is read as (frames, channels)."""

FFMPEG = "ffmpeg"
"""Executable used for containers soundfile cannot read (looked up on PATH)."""

FFMPEG_TIMEOUT_S = 300.0

_SOUNDFILE_KINDS = frozenset({"wav", "flac", "ogg", "aiff"})


@dataclass(frozen=True, eq=False)
class Audio:
    """Normalised audio: float32 mono samples at 16 kHz, finite and non-empty.

    Compared by identity (the samples are a numpy array); ``samples`` is read-only.
    """

    samples: npt.NDArray[np.float32]
    source: str
    original_sample_rate: int
    """Rate of the input before resampling (0 when the container did not say)."""
    original_channels: int
    """Channel count of the input before the downmix (0 when the container did not say)."""
    sample_rate: int = SAMPLE_RATE
    duration_s: float = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "duration_s", self.samples.shape[0] / self.sample_rate)


def sample_path() -> Path:
    """Path of the bundled sample (espeak-ng, "turn on the kitchen lights", 16 kHz PCM16)."""
    return Path(str(resources.files("whisper_cascade") / "data" / "sample.wav"))


def load_audio(
    source: str | os.PathLike[str] | bytes | bytearray | memoryview | npt.NDArray[Any],
    *,
    sample_rate: int | None = None,
) -> Audio:
    """Decode, validate and normalise ``source`` into :class:`Audio`.

    ``source`` is a file path, the bytes of a file (format sniffed from its content), or a
    numpy array of samples. Arrays may be float (used as is) or integer (scaled by the range of
    their dtype); 1-D is mono; 2-D is (frames, channels) like soundfile, except that an array
    whose first axis has at most 16 entries and is shorter than the second is read as
    (channels, frames) like librosa/torchaudio. ``sample_rate`` is the rate of an array
    (default 16000, i.e. already at the model rate); for files and bytes it must be omitted
    or match nothing (the file header decides) and is ignored.

    Raises AudioError for anything that cannot be turned into usable audio.
    """
    if isinstance(source, np.ndarray):
        rate = SAMPLE_RATE if sample_rate is None else sample_rate
        return _from_array(source, rate, "<array>")
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        return _decode(data, None, "<bytes>")
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        label = str(path)
        try:
            if not path.exists():
                raise AudioError(f"{label}: no such file")
            if not path.is_file():
                raise AudioError(f"{label}: not a regular file")
            with path.open("rb") as fh:
                head = fh.read(64)
        except OSError as exc:
            raise AudioError(f"{label}: cannot read file ({exc.strerror or exc})") from exc
        return _decode(head, path, label)
    raise AudioError(f"unsupported audio source type {type(source).__name__}")


def is_silent(samples: npt.NDArray[np.float32], threshold_dbfs: float = -60.0) -> bool:
    """True when no 100 ms frame rises above ``threshold_dbfs`` (RMS around the frame mean).

    Subtracting each frame's mean ignores a DC offset; looking at the loudest frame keeps a
    short utterance in a long quiet file from counting as silence.
    """
    x = np.asarray(samples)
    if x.size == 0:
        return True
    frame = SAMPLE_RATE // 10
    limit = 10.0 ** (threshold_dbfs / 10.0)  # threshold on the variance (power)
    step = frame * 4096  # bounded temporaries for hour-long arrays
    for start in range(0, x.shape[0], step):
        block = x[start : start + step].astype(np.float64, copy=False)
        n_full = block.shape[0] // frame
        parts = []
        if n_full:
            parts.append(block[: n_full * frame].reshape(n_full, frame).var(axis=1).max())
        if block.shape[0] % frame:
            parts.append(block[n_full * frame :].var())
        if max(parts) > limit:
            return False
    return True


def pad_short(
    samples: npt.NDArray[np.float32], min_samples: int = MIN_SAMPLES
) -> npt.NDArray[np.float32]:
    """``samples`` padded with trailing zeros to ``min_samples`` (unchanged if long enough)."""
    if samples.shape[0] >= min_samples:
        return samples
    out = np.zeros(min_samples, dtype=np.float32)
    out[: samples.shape[0]] = samples
    return out


def _sniff(head: bytes) -> str:
    if len(head) >= 12 and head[:4] in (b"RIFF", b"RIFX", b"RF64") and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if len(head) >= 12 and head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    return "other"


def _decode(head_or_data: bytes, path: Path | None, label: str) -> Audio:
    """Decode a file (``path`` given, ``head_or_data`` its first bytes) or in-memory bytes."""
    if path is None and not head_or_data:
        raise AudioError(f"{label}: empty input (0 bytes)")
    if path is not None and not head_or_data:
        raise AudioError(f"{label}: empty file (0 bytes)")
    kind = _sniff(head_or_data)
    if kind in _SOUNDFILE_KINDS:
        return _decode_soundfile(head_or_data, path, label, kind)
    if path is None and head_or_data[4:8] == b"ftyp":
        # MP4/M4A may keep its index at the end, which ffmpeg cannot seek to on a pipe.
        with tempfile.TemporaryDirectory(prefix="whisper-cascade-") as tmp:
            tmp_path = Path(tmp) / "input.mp4"
            tmp_path.write_bytes(head_or_data)
            return _decode_ffmpeg(b"", tmp_path, label)
    return _decode_ffmpeg(head_or_data, path, label)


def _decode_soundfile(data: bytes, path: Path | None, label: str, kind: str) -> Audio:
    target: Any = str(path) if path is not None else io.BytesIO(data)
    try:
        with sf.SoundFile(target) as f:
            rate, channels = int(f.samplerate), int(f.channels)
            _check_rate(rate, label)
            frames = f.read(dtype="float32", always_2d=True)
    except AudioError:
        raise
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError, OSError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise AudioError(f"{label}: corrupt or unreadable {kind} data ({reason})") from exc
    return _finish(frames, rate, channels, label)


_STREAM_RE = re.compile(r"Audio: [^,]+, (\d+) Hz, ([^,]+)")
_LAYOUTS = {"mono": 1, "stereo": 2, "2.1": 3, "quad": 4, "4.0": 4, "5.0": 5, "5.1": 6, "7.1": 8}


def _ffmpeg_stream_info(stderr: str) -> tuple[int, int]:
    m = _STREAM_RE.search(stderr)
    if m is None:
        return 0, 0
    layout = m.group(2).strip()
    layout_name = layout.split("(")[0].strip()
    channels = _LAYOUTS.get(layout_name, 0)
    n = re.match(r"(\d+) channels", layout)
    if n is not None:
        channels = int(n.group(1))
    return int(m.group(1)), channels


def _decode_ffmpeg(data: bytes, path: Path | None, label: str) -> Audio:
    exe = shutil.which(FFMPEG)
    if exe is None:
        raise AudioError(
            f"{label}: not WAV/FLAC/OGG and ffmpeg (needed for other formats) is missing"
        )
    # "file:" keeps a crafted name from selecting another ffmpeg protocol (http:, concat:, ...).
    src = f"file:{path.resolve()}" if path is not None else "pipe:0"
    cmd = [exe, "-nostdin", "-hide_banner", "-loglevel", "info", "-i", src]
    cmd += ["-vn", "-f", "f32le", "-ac", "1", "-ar", str(SAMPLE_RATE), "pipe:1"]
    try:
        proc = subprocess.run(
            cmd,
            input=data if path is None else None,
            stdin=None if path is None else subprocess.DEVNULL,
            capture_output=True,
            timeout=FFMPEG_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise AudioError(f"{label}: ffmpeg timed out after {FFMPEG_TIMEOUT_S:.0f} s") from exc
    except OSError as exc:
        raise AudioError(f"{label}: cannot run ffmpeg ({exc})") from exc
    stderr = proc.stderr.decode("utf-8", errors="replace")
    if proc.returncode != 0:
        lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
        reason = lines[-1] if lines else f"exit status {proc.returncode}"
        raise AudioError(f"{label}: not decodable audio (ffmpeg: {reason})")
    rate, channels = _ffmpeg_stream_info(stderr)
    samples = np.frombuffer(proc.stdout[: len(proc.stdout) // 4 * 4], dtype="<f4")
    out = _finish(samples.reshape(-1, 1), SAMPLE_RATE, 1, label)
    return Audio(out.samples, label, rate, channels)


def _check_rate(rate: object, label: str) -> int:
    if isinstance(rate, bool) or not isinstance(rate, int | np.integer):
        raise AudioError(f"{label}: sample rate must be an integer, got {rate!r}")
    if not MIN_SAMPLE_RATE <= int(rate) <= MAX_SAMPLE_RATE:
        raise AudioError(
            f"{label}: sample rate {int(rate)} Hz outside {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE}"
        )
    return int(rate)


def _to_float(arr: npt.NDArray[Any], label: str) -> npt.NDArray[np.floating[Any]]:
    kind = arr.dtype.kind
    if kind == "f":
        return arr
    if kind == "i":
        return arr.astype(np.float64) / float(2 ** (arr.dtype.itemsize * 8 - 1))
    if kind == "u":
        half = float(2 ** (arr.dtype.itemsize * 8 - 1))
        return (arr.astype(np.float64) - half) / half
    raise AudioError(f"{label}: unsupported sample dtype {arr.dtype} (use float or integer)")


def _from_array(arr: npt.NDArray[Any], rate: int, label: str) -> Audio:
    rate = _check_rate(rate, label)
    if arr.ndim == 1:
        frames = arr.reshape(-1, 1)
    elif arr.ndim == 2:
        rows, cols = arr.shape
        channels_first = rows <= _CHANNELS_FIRST_MAX and rows < cols
        frames = arr.T if channels_first else arr
    else:
        raise AudioError(f"{label}: expected a 1-D or 2-D array, got {arr.ndim}-D {arr.shape}")
    return _finish(_to_float(frames, label), rate, frames.shape[1], label)


def _finish(frames: npt.NDArray[np.floating[Any]], rate: int, channels: int, label: str) -> Audio:
    """Validate (frames, channels) float samples, downmix, resample; build the Audio."""
    if frames.shape[0] == 0 or frames.shape[1] == 0:
        raise AudioError(f"{label}: no audio samples (empty after decoding)")
    if frames.shape[1] > MAX_CHANNELS:
        raise AudioError(f"{label}: {frames.shape[1]} channels is more than {MAX_CHANNELS}")
    # A float64 sum of finite samples cannot overflow, so one reduction detects NaN/Inf.
    with np.errstate(invalid="ignore", over="ignore"):
        total = frames.sum(dtype=np.float64)
    if not np.isfinite(total):
        bad = int(frames.size - np.count_nonzero(np.isfinite(frames)))
        raise AudioError(f"{label}: {bad} non-finite samples (NaN or Inf) of {frames.size}")
    mono = frames[:, 0] if frames.shape[1] == 1 else frames.mean(axis=1)
    mono = mono.astype(np.float32, copy=False)
    if rate != SAMPLE_RATE:
        mono = soxr.resample(mono, rate, SAMPLE_RATE, quality="HQ").astype(np.float32, copy=False)
        if mono.shape[0] == 0:
            raise AudioError(f"{label}: too short to resample from {rate} Hz")
    # Own, contiguous, read-only: the Audio never aliases the caller's array.
    mono = np.require(mono, np.float32, ["C_CONTIGUOUS", "OWNDATA"])
    mono.flags.writeable = False
    return Audio(mono, label, rate, channels)
