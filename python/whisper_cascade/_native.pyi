"""Type stub of the Rust extension module ``whisper_cascade._native``."""

import numpy as np
import numpy.typing as npt

__version__: str

# --- features (rust/py/features.rs) ---

def analyze_audio(signal: npt.NDArray[np.float32], sample_rate: int = 16000) -> dict[str, object]:
    """Features of a 1-D C-contiguous float32 16 kHz signal (keys of ``AudioFeatures``)."""

def analyze_audio_with_mel(
    signal: npt.NDArray[np.float32], n_mels: int = 80, sample_rate: int = 16000
) -> tuple[dict[str, object], npt.NDArray[np.float32]]:
    """Features and the Whisper log-mel ``(n_mels, n_frames)`` from one shared STFT."""

def analyze_audio_batch(
    signals: list[npt.NDArray[np.float32]], sample_rate: int = 16000
) -> list[dict[str, object]]:
    """``analyze_audio`` over many signals in parallel; the first bad signal raises."""

def log_mel_spectrogram(
    signal: npt.NDArray[np.float32], n_mels: int = 80
) -> npt.NDArray[np.float32]:
    """whisper.cpp's log-mel ``(n_mels, n_frames)`` over the frames covering the audio."""

def mel_filters(n_mels: int = 80) -> npt.NDArray[np.float32]:
    """Slaney mel filterbank ``(n_mels, 201)`` (Whisper's ``mel_filters.npz``)."""

# --- confidence (rust/py/confidence.rs) ---

# --- bandit (rust/py/bandit.rs) ---

# --- ggml (rust/py/ggml.rs) ---
