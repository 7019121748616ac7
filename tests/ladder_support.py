"""The test ladder: random-weight micro-s/m/l models (garbage transcripts) and two presets
that make the cascade's decisions deterministic on them. The presets score with the generic
weights: the weights calibrated for the real micro models (which change whenever the zoo is
retrained) mean nothing for random ones."""

from __future__ import annotations

from pathlib import Path

from whisper_cascade.ggml_writer import random_whisper_model
from whisper_cascade.presets import get_preset

NAMES = ("micro-s", "micro-m", "micro-l")
ACCEPT_ALL = get_preset("balanced").with_overrides(
    name="accept-all",
    thresholds={},
    default_threshold=0.0,
    hallucination_check=False,
    model_weights={},
)
ESCALATE = get_preset("balanced").with_overrides(
    name="escalate", thresholds={}, default_threshold=1.1, keep_best=False, model_weights={}
)
PRESETS = {"accept-all": ACCEPT_ALL, "escalate": ESCALATE}


def write_ladder(folder: Path) -> Path:
    """Write ``ggml-<name>.bin`` for every name of :data:`NAMES` (seeds 1, 2, 3) into ``folder``."""
    for seed, name in enumerate(NAMES, start=1):
        random_whisper_model(folder / f"ggml-{name}.bin", seed=seed)
    return folder
