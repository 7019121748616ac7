"""Validate and quantize whisper.cpp model files (legacy ggml) before the backend sees them.

whisper.cpp crashes the whole process on many malformed files, so every file is checked here
first: header ranges, every tensor record against the exact expected layout, sizes, trailing
bytes and, optionally, a known SHA-256.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from whisper_cascade import _native
from whisper_cascade.errors import ModelNotFoundError, ModelValidationError

#: Quantized types :func:`quantize_model` can produce.
QUANT_TYPES: tuple[str, ...] = ("q8_0", "q5_1", "q5_0", "q4_1", "q4_0")


@dataclass(frozen=True)
class HParams:
    """The eleven header fields of a model file."""

    n_vocab: int
    n_audio_ctx: int
    n_audio_state: int
    n_audio_head: int
    n_audio_layer: int
    n_text_ctx: int
    n_text_state: int
    n_text_head: int
    n_text_layer: int
    n_mels: int
    ftype: int


@dataclass(frozen=True)
class TensorInfo:
    """One tensor record: shape in PyTorch order, type name, data offset and size."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    offset: int
    nbytes: int


@dataclass(frozen=True)
class ModelInfo:
    """What validation learned about a model file."""

    path: str
    file_size: int
    sha256: str | None
    hparams: HParams
    ftype: str
    model_type: str
    multilingual: bool
    n_vocab_stored: int
    n_tensors: int
    n_parameters: int
    tensors_offset: int
    tensors: tuple[TensorInfo, ...]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelInfo:
        """Build from the dict returned by the native validator."""
        tensors = tuple(
            TensorInfo(
                name=t["name"],
                shape=tuple(t["shape"]),
                dtype=t["dtype"],
                offset=t["offset"],
                nbytes=t["nbytes"],
            )
            for t in d["tensors"]
        )
        return cls(
            path=d["path"],
            file_size=d["file_size"],
            sha256=d["sha256"],
            hparams=HParams(**d["hparams"]),
            ftype=d["ftype"],
            model_type=d["model_type"],
            multilingual=d["multilingual"],
            n_vocab_stored=d["n_vocab_stored"],
            n_tensors=d["n_tensors"],
            n_parameters=d["n_parameters"],
            tensors_offset=d["tensors_offset"],
            tensors=tensors,
        )

    def to_dict(self, *, with_tensors: bool = False) -> dict[str, Any]:
        """JSON-friendly form; the tensor list only when asked for (it is long)."""
        d = asdict(self)
        if not with_tensors:
            del d["tensors"]
        return d

    def tensor(self, name: str) -> TensorInfo:
        """The tensor called ``name`` (KeyError if absent)."""
        for t in self.tensors:
            if t.name == name:
                return t
        raise KeyError(name)


def _existing_file(path: str | Path) -> Path:
    p = Path(path)
    if not p.is_file():
        raise ModelNotFoundError(f"model file not found: {p}")
    return p


def validate_model(path: str | Path, *, sha256: str | None = None) -> ModelInfo:
    """Validate the model file at ``path``; with ``sha256``, also check its integrity.

    Raises ModelNotFoundError for a missing file and ModelValidationError (with a stable
    ``code``) for any defect, ``"sha256_mismatch"`` included.
    """
    p = _existing_file(path)
    info = ModelInfo.from_dict(_native.validate_model(str(p), True))
    if sha256 is not None and info.sha256 != sha256.strip().lower():
        raise ModelValidationError(
            f"{p}: sha256 is {info.sha256}, expected {sha256.strip().lower()}",
            "sha256_mismatch",
        )
    return info


def quantize_model(src: str | Path, dst: str | Path, qtype: str) -> dict[str, Any]:
    """Quantize the f16 model ``src`` to ``qtype`` (one of :data:`QUANT_TYPES`) into ``dst``.

    The output is written atomically and validated; returns the native report (tensor
    counts, bytes in/out, seconds, MB/s).
    """
    p = _existing_file(src)
    return _native.quantize_model(str(p), str(dst), qtype)


__all__ = [
    "QUANT_TYPES",
    "HParams",
    "ModelInfo",
    "TensorInfo",
    "quantize_model",
    "validate_model",
]
