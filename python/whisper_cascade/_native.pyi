"""Type stub of the Rust extension module ``whisper_cascade._native``."""

import numpy as np
import numpy.typing as npt

__version__: str

# --- features (rust/py/features.rs) ---

# --- confidence (rust/py/confidence.rs) ---

# --- bandit (rust/py/bandit.rs) ---

# --- ggml (rust/py/ggml.rs) ---
