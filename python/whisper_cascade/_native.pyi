"""Type stub of the Rust extension module ``whisper_cascade._native``."""

from typing import Any, final

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

CONFIDENCE_FLAG_SPECIAL: int
CONFIDENCE_FLAG_TIMESTAMP: int

def aggregate_confidence(
    token_ids: npt.NDArray[np.int32],
    probs: npt.NDArray[np.float32],
    logprobs: npt.NDArray[np.float32],
    t0: npt.NDArray[np.int64],
    t1: npt.NDArray[np.int64],
    segment_index: npt.NDArray[np.int32],
    flags: npt.NDArray[np.uint8],
    token_bytes: list[bytes],
    segment_t0: npt.NDArray[np.int64],
    segment_t1: npt.NDArray[np.int64],
    segment_texts: list[str],
    speech_segments: list[tuple[float, float]] | None = None,
    low_threshold: float = 0.7,
) -> dict[str, object]:
    """Per-segment/overall confidence metrics and words of one whisper.cpp result.

    Returns {"overall": metrics, "segments": [metrics], "words": [word]}; numeric inputs
    must be 1-D C-contiguous arrays of exactly the annotated dtypes (read without copying).
    """

def aggregate_confidence_columns(
    token_ids: npt.NDArray[np.int32],
    probs: npt.NDArray[np.float32],
    logprobs: npt.NDArray[np.float32],
    t0: npt.NDArray[np.int64],
    t1: npt.NDArray[np.int64],
    segment_index: npt.NDArray[np.int32],
    flags: npt.NDArray[np.uint8],
    token_bytes: list[bytes],
    segment_t0: npt.NDArray[np.int64],
    segment_t1: npt.NDArray[np.int64],
    segment_texts: list[str],
    speech_segments: list[tuple[float, float]] | None = None,
    low_threshold: float = 0.7,
) -> dict[str, Any]:
    """:func:`aggregate_confidence` as columns, without one object per word.

    Keys: ``metric_names`` (12 names), ``overall`` (float64 ``(12,)``), ``segments``
    (float64 ``(n_segments, 12)``), ``word_text`` (all words joined), ``word_offsets``
    (int64 code-point offsets, n_words + 1), ``word_start``/``word_end`` (float64 seconds,
    NaN when unknown), ``word_probability`` (float64), ``word_segment`` (int64).
    """

# --- bandit (rust/py/bandit.rs) ---

@final
class Bandit:
    """Seeded contextual multi-armed bandit over named arms; thread-safe."""

    def __new__(
        cls,
        policy: str,
        arms: list[str],
        *,
        seed: int | None = None,
        discount: float = 1.0,
        prior_alpha: float = 1.0,
        prior_beta: float = 1.0,
        ucb_c: float = 1.0,
        epsilon: float = 0.1,
        epsilon_decay: float = 0.999,
        epsilon_min: float = 0.01,
    ) -> Bandit: ...
    @property
    def policy(self) -> str:
        """The policy name."""
    @property
    def arms(self) -> list[str]:
        """The arm names, in order."""
    def select(self, context: str = "") -> str:
        """Choose an arm for ``context``."""
    def select_many(self, contexts: list[str]) -> list[str]:
        """Choose an arm for each context (GIL released)."""
    def update(self, context: str, arm: str, reward: float) -> None:
        """Record ``reward`` for ``arm`` played in ``context``."""
    def update_many(self, contexts: list[str], arms: list[str], rewards: list[float]) -> None:
        """Record many updates; nothing is recorded unless all are valid."""
    def arm_stats(self, context: str = "") -> dict[str, dict[str, Any]]:
        """Per-arm ``pulls``, ``mean_reward``, ``mean`` and policy-specific values."""
    def best_arm(self, context: str = "") -> str:
        """The arm with the highest estimated mean in ``context``."""
    def contexts(self) -> list[str]:
        """Contexts that have received at least one update, sorted."""
    def to_json(self) -> str:
        """The full state as versioned JSON."""
    def to_bytes(self) -> bytes:
        """The full state in a compact, checksummed binary form."""
    @staticmethod
    def from_json(state: str) -> Bandit:
        """Restore from :meth:`to_json` output (``StateError`` if invalid)."""
    @staticmethod
    def from_bytes(state: bytes) -> Bandit:
        """Restore from :meth:`to_bytes` output (``StateError`` if invalid)."""

# --- ggml (rust/py/ggml.rs) ---
def validate_model(path: str, compute_sha256: bool = True) -> dict[str, object]:
    """Validate a whisper.cpp model file; its description (ModelValidationError if bad)."""

def quantize_model(src: str, dst: str, qtype: str) -> dict[str, object]:
    """Quantize an f16 model file to ``qtype`` (written atomically); the report."""

def quantize_array(values: npt.NDArray[np.float32], qtype: str) -> bytes:
    """Encode a 1-D float32 array as ggml ``qtype`` bytes (len % 32 == 0 for quantized)."""

def dequantize_array(data: bytes, qtype: str, n: int) -> npt.NDArray[np.float32]:
    """Decode ``n`` values of ggml ``qtype`` from ``data``."""

def sha256_file(path: str) -> str:
    """SHA-256 of a file as lowercase hex."""
