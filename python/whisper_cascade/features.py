"""Audio features of a 16 kHz mono signal, computed by the Rust core from one shared STFT.

:func:`analyze` converts any floating-point array to contiguous float32 before calling the
native code (which only borrows such arrays, zero-copy); :func:`log_mel` gives the same
log-mel spectrogram as whisper.cpp's front end.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from whisper_cascade import _native
from whisper_cascade.errors import InvalidArgumentError

SAMPLE_RATE = 16_000

Segment = tuple[float, float]


@dataclass(frozen=True)
class AudioFeatures:
    """Summary features of one signal (means/stds over Whisper's 10 ms frames).

    ``snr_db`` lies in [-10, 60]: -10 when no speech is found, 60 when there is no pause to
    measure the noise on. ``complexity`` in [0, 1] estimates how hard the clip is to
    transcribe (see ``rust/features/mod.rs::complexity`` for the formula).
    """

    duration_s: float
    rms_mean: float
    rms_std: float
    zcr_mean: float
    zcr_std: float
    spectral_centroid_mean: float
    spectral_centroid_std: float
    spectral_spread_mean: float
    spectral_spread_std: float
    spectral_flatness_mean: float
    spectral_flatness_std: float
    peak: float
    speech_segments: tuple[Segment, ...]
    speech_ratio: float
    snr_db: float
    speech_rate: float
    complexity: float

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict; segments become lists ``[start, end]``."""
        out = asdict(self)
        out["speech_segments"] = [list(seg) for seg in self.speech_segments]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> AudioFeatures:
        """Build from :meth:`to_dict` output or the native dict; missing or bad keys raise."""
        values: dict[str, Any] = {}
        for field in fields(cls):
            if field.name not in data:
                raise InvalidArgumentError(f"audio features lack {field.name!r}")
            raw = data[field.name]
            if field.name == "speech_segments":
                values[field.name] = _segments(raw)
            else:
                values[field.name] = _number(field.name, raw)
        return cls(**values)


def _number(name: str, raw: object) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise InvalidArgumentError(f"{name} must be a number, got {raw!r}")
    return float(raw)


def _segments(raw: object) -> tuple[Segment, ...]:
    if not isinstance(raw, Sequence) or isinstance(raw, str | bytes):
        raise InvalidArgumentError(f"speech_segments must be a sequence, got {raw!r}")
    out: list[Segment] = []
    for seg in raw:
        if not isinstance(seg, Sequence) or len(seg) != 2:
            raise InvalidArgumentError(f"a speech segment must be (start, end), got {seg!r}")
        out.append((_number("segment start", seg[0]), _number("segment end", seg[1])))
    return tuple(out)


def _as_signal(samples: npt.ArrayLike) -> npt.NDArray[np.float32]:
    array = np.asarray(samples)
    if array.ndim != 1:
        raise InvalidArgumentError(f"expected a 1-D mono signal, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.floating):
        raise InvalidArgumentError(
            f"expected floating-point samples in [-1, 1], got dtype {array.dtype}"
        )
    with np.errstate(over="ignore"):  # values beyond float32 become inf: the core refuses them
        return np.ascontiguousarray(array, dtype=np.float32)


def analyze(samples: npt.ArrayLike, sample_rate: int = SAMPLE_RATE) -> AudioFeatures:
    """Features of a 16 kHz mono signal given as any 1-D floating-point array."""
    return AudioFeatures.from_dict(_native.analyze_audio(_as_signal(samples), sample_rate))


def analyze_many(
    signals: Sequence[npt.ArrayLike], sample_rate: int = SAMPLE_RATE
) -> list[AudioFeatures]:
    """:func:`analyze` over many signals, in parallel in the native core."""
    arrays = [_as_signal(s) for s in signals]
    return [AudioFeatures.from_dict(d) for d in _native.analyze_audio_batch(arrays, sample_rate)]


def analyze_with_mel(
    samples: npt.ArrayLike, n_mels: int = 80, sample_rate: int = SAMPLE_RATE
) -> tuple[AudioFeatures, npt.NDArray[np.float32]]:
    """Features and the log-mel of :func:`log_mel`, sharing one STFT."""
    raw, mel = _native.analyze_audio_with_mel(_as_signal(samples), n_mels, sample_rate)
    return AudioFeatures.from_dict(raw), mel


def log_mel(samples: npt.ArrayLike, n_mels: int = 80) -> npt.NDArray[np.float32]:
    """whisper.cpp's log-mel spectrogram ``(n_mels, n_frames)`` of a 16 kHz signal.

    ``n_frames`` is whisper.cpp's ``n_len_org = 1 + (len - 200) // 160`` (at least 1): the
    frames covering the audio, without the 30 s of padding whisper.cpp appends.
    """
    return _native.log_mel_spectrogram(_as_signal(samples), n_mels)


def mel_filters(n_mels: int = 80) -> npt.NDArray[np.float32]:
    """Slaney mel filterbank ``(n_mels, 201)`` computed natively (Whisper's filters)."""
    return _native.mel_filters(n_mels)


__all__ = [
    "SAMPLE_RATE",
    "AudioFeatures",
    "analyze",
    "analyze_many",
    "analyze_with_mel",
    "log_mel",
    "mel_filters",
]
