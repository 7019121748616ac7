"""Type stub of the Rust extension module ``whisper_cascade._native``."""


__version__: str

# --- features (rust/py/features.rs) ---

# --- confidence (rust/py/confidence.rs) ---

# --- bandit (rust/py/bandit.rs) ---

# --- ggml (rust/py/ggml.rs) ---
