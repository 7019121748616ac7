"""Exception hierarchy of whisper-cascade.

Every error the package raises on purpose derives from :class:`WhisperCascadeError`, and
errors about bad input also derive from :class:`ValueError` so generic handlers still work.
The Rust core raises these same classes.
"""

from __future__ import annotations


class WhisperCascadeError(Exception):
    """Base class of every error raised by whisper-cascade."""


class InvalidArgumentError(WhisperCascadeError, ValueError):
    """A parameter is outside what the function accepts."""


class AudioError(WhisperCascadeError, ValueError):
    """Audio could not be read, decoded or accepted (empty, non-finite, corrupt...)."""


class FileAccessError(WhisperCascadeError, OSError):
    """A file could not be opened, read or written."""


class StateError(WhisperCascadeError, ValueError):
    """Serialised state (bandit posteriors, ...) is corrupt or of another kind."""


class ConfigError(WhisperCascadeError, ValueError):
    """The user's TOML configuration is unreadable or invalid; the message names file and key."""


class ManifestError(WhisperCascadeError, ValueError):
    """A manifest (JSON Lines of utterances) is malformed; the message names file and line."""


class ModelError(WhisperCascadeError):
    """Base class of errors about models."""


class ModelNotFoundError(ModelError, FileNotFoundError):
    """A model name or path did not resolve to a file."""


class ModelValidationError(ModelError, ValueError):
    """A model file failed validation; ``code`` is a stable machine-readable reason."""

    def __init__(self, message: str, code: str = "invalid") -> None:
        super().__init__(message)
        self.code = code


class ModelLoadError(ModelError):
    """whisper.cpp refused to load a model file that passed validation."""


class BackendError(WhisperCascadeError):
    """The inference backend failed while transcribing."""


__all__ = [
    "AudioError",
    "BackendError",
    "ConfigError",
    "FileAccessError",
    "InvalidArgumentError",
    "ManifestError",
    "ModelError",
    "ModelLoadError",
    "ModelNotFoundError",
    "ModelValidationError",
    "StateError",
    "WhisperCascadeError",
]
