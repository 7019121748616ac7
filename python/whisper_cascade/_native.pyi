"""Type stub of the Rust extension module ``whisper_cascade._native``."""

import numpy as np
import numpy.typing as npt

__version__: str

# --- features (rust/py/features.rs) ---

# --- confidence (rust/py/confidence.rs) ---

# --- bandit (rust/py/bandit.rs) ---

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
