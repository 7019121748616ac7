"""whisper-cascade: transcribe speech with the cheapest Whisper model that is good enough.

The public surface so far: audio loading, native audio analysis, model validation, and
single-model transcription through the guarded whisper.cpp backend. Names are imported lazily,
so ``import whisper_cascade`` stays cheap and does not load whisper.cpp.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from whisper_cascade import errors

if TYPE_CHECKING:
    from whisper_cascade.audio import Audio, load_audio
    from whisper_cascade.cascade import Cascade, transcribe
    from whisper_cascade.features import AudioFeatures, analyze
    from whisper_cascade.modelfile import ModelInfo, validate_model
    from whisper_cascade.results import CascadeResult
    from whisper_cascade.transcriber import Segment, Transcriber, Transcription, Word

_LAZY = {
    "__version__": "whisper_cascade._native",
    "Audio": "whisper_cascade.audio",
    "load_audio": "whisper_cascade.audio",
    "Cascade": "whisper_cascade.cascade",
    "CascadeResult": "whisper_cascade.results",
    "transcribe": "whisper_cascade.cascade",
    "AudioFeatures": "whisper_cascade.features",
    "analyze": "whisper_cascade.features",
    "ModelInfo": "whisper_cascade.modelfile",
    "validate_model": "whisper_cascade.modelfile",
    "Segment": "whisper_cascade.transcriber",
    "Transcriber": "whisper_cascade.transcriber",
    "Transcription": "whisper_cascade.transcriber",
    "Word": "whisper_cascade.transcriber",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'whisper_cascade' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "Audio",
    "AudioFeatures",
    "Cascade",
    "CascadeResult",
    "ModelInfo",
    "Segment",
    "Transcriber",
    "Transcription",
    "Word",
    "__version__",
    "analyze",
    "errors",
    "load_audio",
    "transcribe",
    "validate_model",
]
