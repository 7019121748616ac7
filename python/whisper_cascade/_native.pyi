"""Type stub of the Rust extension module ``whisper_cascade._native``."""

__version__: str

# --- features (rust/py/features.rs) ---

# --- confidence (rust/py/confidence.rs) ---

import numpy as np
import numpy.typing as npt

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

# --- bandit (rust/py/bandit.rs) ---

# --- ggml (rust/py/ggml.rs) ---
