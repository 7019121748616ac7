"""whisper-cascade: transcribe speech with the cheapest Whisper model that is good enough."""

from __future__ import annotations

from whisper_cascade import errors
from whisper_cascade._native import __version__

__all__ = ["__version__", "errors"]
