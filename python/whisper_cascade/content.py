"""Content classes: coarse buckets of duration × noise × complexity from the native features.

A class name reads ``"<duration>/<noise>/<complexity>"``, e.g. ``"short/clean/simple"``; audio
whose analysis failed is :data:`UNKNOWN_CLASS`. Learning (bandits, learned thresholds) keeps one
state per class, so the buckets are few on purpose: 3 × 3 × 2 = 18 classes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from whisper_cascade.features import AudioFeatures

__all__ = ["ALL_CLASSES", "UNKNOWN_CLASS", "content_class"]

UNKNOWN_CLASS = "unknown"
SHORT_MAX_S = 5.0
MEDIUM_MAX_S = 30.0
CLEAN_MIN_SNR_DB = 25.0
MODERATE_MIN_SNR_DB = 12.0
COMPLEX_MIN = 0.5

_DURATIONS = ("short", "medium", "long")
_NOISE = ("clean", "moderate", "noisy")
_COMPLEXITY = ("simple", "complex")

ALL_CLASSES: tuple[str, ...] = tuple(
    f"{d}/{n}/{c}" for d in _DURATIONS for n in _NOISE for c in _COMPLEXITY
) + (UNKNOWN_CLASS,)
"""Every class :func:`content_class` can return."""


def content_class(features: AudioFeatures | None) -> str:
    """The content class of audio with these features (:data:`UNKNOWN_CLASS` for None)."""
    if features is None:
        return UNKNOWN_CLASS
    if features.duration_s <= SHORT_MAX_S:
        duration = "short"
    elif features.duration_s <= MEDIUM_MAX_S:
        duration = "medium"
    else:
        duration = "long"
    if features.snr_db >= CLEAN_MIN_SNR_DB:
        noise = "clean"
    elif features.snr_db >= MODERATE_MIN_SNR_DB:
        noise = "moderate"
    else:
        noise = "noisy"
    complexity = "complex" if features.complexity >= COMPLEX_MIN else "simple"
    return f"{duration}/{noise}/{complexity}"
