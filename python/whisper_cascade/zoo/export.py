"""Zoo checkpoints as plain numpy (``.npz``): what the ggml writer reads, no torch needed."""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from whisper_cascade.errors import FileAccessError, InvalidArgumentError
from whisper_cascade.ggml_writer import WhisperDims, write_ggml_model
from whisper_cascade.modelfile import ModelInfo, quantize_model, validate_model

DIMS_KEY = "__dims__"
DIM_NAMES = (
    "n_mels",
    "n_audio_ctx",
    "n_audio_state",
    "n_audio_head",
    "n_audio_layer",
    "n_vocab",
    "n_text_ctx",
    "n_text_state",
    "n_text_head",
    "n_text_layer",
)


def save_npz(
    path: str | Path, dims: dict[str, int], state: dict[str, npt.NDArray[np.float32]]
) -> None:
    """Write ``dims`` (openai-whisper ``ModelDimensions`` fields) and the state dict
    (openai-whisper parameter names) atomically to ``path``."""
    missing = [k for k in DIM_NAMES if k not in dims]
    if missing or DIMS_KEY in state:
        raise InvalidArgumentError(f"bad checkpoint: missing dims {missing}")
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        arrays: dict[str, Any] = {DIMS_KEY: np.array(json.dumps(dims)), **state}
        with tmp.open("wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
    except OSError as exc:
        raise FileAccessError(f"cannot write {path}: {exc}") from exc


def load_npz(path: str | Path) -> tuple[dict[str, int], dict[str, npt.NDArray[np.float32]]]:
    """``(dims, state_dict)`` of a checkpoint written by :func:`save_npz`."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if DIMS_KEY not in data.files:
                raise InvalidArgumentError(f"{path}: not a zoo checkpoint (no {DIMS_KEY})")
            dims = {k: int(v) for k, v in json.loads(str(data[DIMS_KEY])).items()}
            state = {k: data[k] for k in data.files if k != DIMS_KEY}
    except OSError as exc:
        raise FileAccessError(f"cannot read {path}: {exc}") from exc
    except (ValueError, zipfile.BadZipFile) as exc:
        if isinstance(exc, InvalidArgumentError):
            raise
        raise InvalidArgumentError(f"{path}: corrupt checkpoint: {exc}") from exc
    missing = [k for k in DIM_NAMES if k not in dims]
    if missing:
        raise InvalidArgumentError(f"{path}: dims lack {missing}")
    return dims, state


def export_ggml(
    checkpoint: str | Path, out: str | Path, *, quantize: Sequence[str] = ()
) -> list[ModelInfo]:
    """Convert a zoo checkpoint (``.npz``) to a whisper.cpp f16 file, plus quantized variants.

    The f16 file is written by our own converter (:mod:`whisper_cascade.ggml_writer`); each
    quantized file (``<out stem>-<type>.bin``) by the Rust quantizer. Every file written is
    validated; the returned infos carry the SHA-256 for the registry.
    """
    dims, state = load_npz(checkpoint)
    out = Path(out)
    write_ggml_model(out, WhisperDims(**dims), state)
    infos = [validate_model(out)]
    for qtype in quantize:
        target = out.with_name(f"{out.stem}-{qtype}{out.suffix}")
        quantize_model(out, target, qtype)
        infos.append(validate_model(target))
    return infos
