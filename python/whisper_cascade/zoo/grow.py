"""Start a zoo size from trained weights instead of from scratch (numpy only, no torch).

* :func:`read_ggml_state` reads a whisper.cpp f16/f32 file back into an openai-whisper state
  dict: the shipped models are the checkpoints of record, so a later training leg can start
  from them even when the training folder is gone.
* :func:`widen` makes a model ``k`` times wider (``d_model`` and heads) that computes exactly
  the same function (Net2Net-style): each channel is copied ``k`` times, every weight that
  reads a copied channel splits its old weight among the copies at random (the splits sum to
  the old weight, so the result is unchanged, and unequal splits let the copies learn
  different things), and the decoder's last layer norm is scaled by ``1/k`` because the tied
  token embedding reads all ``k`` copies. Heads keep their size (64 for the zoo), so copy
  ``c`` of head ``h`` is head ``h + c * n_head``.

    whisper-cascade zoo grow ggml-micro-s.bin micro-s.npz            # import
    whisper-cascade zoo grow micro-s.npz micro-m-init.npz --widen 2  # grow
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import numpy.typing as npt

from whisper_cascade.errors import InvalidArgumentError
from whisper_cascade.zoo.export import DIM_NAMES, load_npz

Array = npt.NDArray[np.float32]
_CONV_BIASES = ("encoder.conv1.bias", "encoder.conv2.bias")
_FLOAT_TYPES = {"f16": "<f2", "f32": "<f4"}


def read_ggml_state(path: str | Path) -> tuple[dict[str, int], dict[str, Array]]:
    """``(dims, state_dict)`` of a validated whisper.cpp f16/f32 model file, float32 arrays
    with openai-whisper names and shapes. Quantized files are refused (their weights are
    not the trained ones)."""
    from whisper_cascade.modelfile import validate_model

    info = validate_model(path)
    hp = info.hparams
    dims = {name: int(getattr(hp, name)) for name in DIM_NAMES}
    state: dict[str, Array] = {}
    with open(path, "rb") as fh:
        for t in info.tensors:
            dtype = _FLOAT_TYPES.get(t.dtype)
            if dtype is None:
                raise InvalidArgumentError(
                    f"{path}: tensor {t.name} is {t.dtype}; only f16/f32 files can be read back"
                )
            fh.seek(t.offset)
            raw = np.frombuffer(fh.read(t.nbytes), dtype=dtype)
            arr = raw.astype(np.float32).reshape(t.shape)
            state[t.name] = arr.reshape(-1) if t.name in _CONV_BIASES else arr
    return dims, state


def _splits(n: int, k: int, rng: np.random.Generator, spread: float) -> Array:
    """``(k * n,)`` factors, for copy ``c`` of channel ``i`` at ``c * n + i``; the ``k``
    factors of each channel sum to exactly 1."""
    noise = rng.uniform(-spread, spread, size=(k, n))
    noise -= noise.mean(axis=0, keepdims=True)
    factors = (1.0 + noise) / k
    factors[-1] = 1.0 - factors[:-1].sum(axis=0)
    return factors.reshape(-1).astype(np.float32)


def _copy_rows(w: Array, k: int) -> Array:
    return np.concatenate([w] * k, axis=0)


def _read_split(w: Array, k: int, rng: np.random.Generator, spread: float) -> Array:
    """Widen axis 1 (the input side) of ``w``: the copies share the old weight."""
    factors = _splits(w.shape[1], k, rng, spread)
    shape = (1, -1) + (1,) * (w.ndim - 2)
    return np.concatenate([w] * k, axis=1) * factors.reshape(shape)


def widen(
    dims: Mapping[str, int],
    state: Mapping[str, Array],
    k: int,
    *,
    seed: int = 0,
    spread: float = 0.5,
) -> tuple[dict[str, int], dict[str, Array]]:
    """A model ``k`` times wider than ``(dims, state)`` with the same outputs (up to float
    rounding); ``spread`` sets how unequal the random splits are (0 = equal halves, which
    would keep the copies identical forever)."""
    if k < 2:
        raise InvalidArgumentError(f"widen needs a factor >= 2, got {k}")
    if not 0.0 <= spread < 1.0:
        raise InvalidArgumentError(f"spread must be in [0, 1), got {spread}")
    if dims["n_audio_state"] != dims["n_text_state"]:
        raise InvalidArgumentError("n_audio_state and n_text_state must be equal")
    rng = np.random.default_rng(seed)
    out: dict[str, Array] = {}
    for name, value in state.items():
        w = np.asarray(value, dtype=np.float32)
        if name == "decoder.token_embedding.weight" or name.endswith("positional_embedding"):
            out[name] = np.concatenate([w] * k, axis=1)  # written into the residual stream
        elif name == "decoder.ln.weight" or name == "decoder.ln.bias":
            out[name] = _copy_rows(w, k) / np.float32(k)  # the tied embedding reads all k
        elif w.ndim == 1:
            out[name] = _copy_rows(w, k)
        elif name == "encoder.conv1.weight":
            out[name] = _copy_rows(w, k)  # reads the mel bins, which stay as they are
        else:
            out[name] = _read_split(_copy_rows(w, k), k, rng, spread)
    wide = dict(dims)
    for key in ("n_audio_state", "n_audio_head", "n_text_state", "n_text_head"):
        wide[key] = dims[key] * k
    return wide, out


def load_any(path: str | Path) -> tuple[dict[str, int], dict[str, Array]]:
    """A checkpoint from a zoo ``.npz`` or a whisper.cpp f16/f32 ``.bin`` file."""
    return load_npz(path) if str(path).endswith(".npz") else read_ggml_state(path)
