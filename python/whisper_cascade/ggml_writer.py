"""Write openai-whisper state_dicts as whisper.cpp model files (legacy ggml), in numpy.

The layout and per-tensor types are those of whisper.cpp's ``convert-pt-to-ggml.py``: 2-D
weights, the token embedding and the conv weights in f16; 1-D tensors, the conv biases
(reshaped to ``[n, 1]``) and both positional embeddings in f32. Unlike that script, values
are cast to the declared type, so an f16 header never sits on f32 data.
"""

from __future__ import annotations

import base64
import io
import os
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import numpy.typing as npt

from whisper_cascade.errors import InvalidArgumentError

GGML_MAGIC = 0x67676D6C
N_FFT_BINS = 201
_F32_NAMES = frozenset(
    {
        "encoder.conv1.bias",
        "encoder.conv2.bias",
        "encoder.positional_embedding",
        "decoder.positional_embedding",
    }
)
_CONV_BIASES = ("encoder.conv1.bias", "encoder.conv2.bias")


@dataclass(frozen=True)
class WhisperDims:
    """Model dimensions, named and ordered as openai-whisper's ``ModelDimensions``."""

    n_mels: int
    n_audio_ctx: int
    n_audio_state: int
    n_audio_head: int
    n_audio_layer: int
    n_vocab: int
    n_text_ctx: int
    n_text_state: int
    n_text_head: int
    n_text_layer: int


#: Small dimensions whisper.cpp loads in milliseconds (one layer each side; not two decoder
#: layers, which whisper.cpp would take for a distilled model).
TINY_RANDOM_DIMS = WhisperDims(
    n_mels=80,
    n_audio_ctx=1500,
    n_audio_state=64,
    n_audio_head=4,
    n_audio_layer=1,
    n_vocab=51864,
    n_text_ctx=448,
    n_text_state=64,
    n_text_head=4,
    n_text_layer=1,
)

_DATA = ("data", "openai_whisper")


def _asset_bytes(name: str) -> bytes:
    return resources.files("whisper_cascade").joinpath(*_DATA, name).read_bytes()


def load_gpt2_vocab() -> list[bytes]:
    """The GPT-2 byte-level BPE tokens (ids 0..50255) of openai-whisper's ``gpt2.tiktoken``.

    whisper.cpp's converter writes exactly these 50256 entries for English-only models
    (it drops ``<|endoftext|>``; the loader names id 50256 and the special ids itself).
    """
    tokens: list[bytes] = []
    for line in _asset_bytes("gpt2.tiktoken").splitlines():
        if not line:
            continue
        token, rank = line.split()
        if int(rank) != len(tokens):
            raise InvalidArgumentError(f"gpt2.tiktoken: rank {int(rank)} out of order")
        tokens.append(base64.b64decode(token))
    return tokens


def load_mel_filters(n_mels: int) -> npt.NDArray[np.float32]:
    """openai-whisper's mel filter bank, shape ``(n_mels, 201)``, for 80 or 128 mels."""
    if n_mels not in (80, 128):
        raise InvalidArgumentError(f"n_mels must be 80 or 128, got {n_mels}")
    with np.load(io.BytesIO(_asset_bytes("mel_filters.npz"))) as f:
        return np.asarray(f[f"mel_{n_mels}"], dtype=np.float32)


def expected_tensor_shapes(dims: WhisperDims) -> dict[str, tuple[int, ...]]:
    """Every state_dict entry of openai-whisper's ``Whisper`` with its shape, in state_dict
    order (conv biases as ``(n,)``; the file stores them as ``(n, 1)``)."""
    if dims.n_audio_state != dims.n_text_state:
        raise InvalidArgumentError("n_audio_state and n_text_state must be equal")
    n = dims.n_audio_state
    s: dict[str, tuple[int, ...]] = {
        "encoder.positional_embedding": (dims.n_audio_ctx, n),
        "encoder.conv1.weight": (n, dims.n_mels, 3),
        "encoder.conv1.bias": (n,),
        "encoder.conv2.weight": (n, n, 3),
        "encoder.conv2.bias": (n,),
    }

    def block(prefix: str, cross: bool) -> None:
        attns = [("attn", "attn_ln")] + ([("cross_attn", "cross_attn_ln")] if cross else [])
        for attn, ln in attns:
            for proj in ("query", "key", "value", "out"):
                s[f"{prefix}.{attn}.{proj}.weight"] = (n, n)
                if proj != "key":
                    s[f"{prefix}.{attn}.{proj}.bias"] = (n,)
            s[f"{prefix}.{ln}.weight"] = (n,)
            s[f"{prefix}.{ln}.bias"] = (n,)
        s[f"{prefix}.mlp.0.weight"] = (4 * n, n)
        s[f"{prefix}.mlp.0.bias"] = (4 * n,)
        s[f"{prefix}.mlp.2.weight"] = (n, 4 * n)
        s[f"{prefix}.mlp.2.bias"] = (n,)
        s[f"{prefix}.mlp_ln.weight"] = (n,)
        s[f"{prefix}.mlp_ln.bias"] = (n,)

    for i in range(dims.n_audio_layer):
        block(f"encoder.blocks.{i}", cross=False)
    s["encoder.ln_post.weight"] = (n,)
    s["encoder.ln_post.bias"] = (n,)
    s["decoder.positional_embedding"] = (dims.n_text_ctx, n)
    s["decoder.token_embedding.weight"] = (dims.n_vocab, n)
    for i in range(dims.n_text_layer):
        block(f"decoder.blocks.{i}", cross=True)
    s["decoder.ln.weight"] = (n,)
    s["decoder.ln.bias"] = (n,)
    return s


def _stored(name: str, shape: tuple[int, ...], use_f16: bool) -> tuple[tuple[int, ...], str]:
    """Shape as written and numpy dtype (little-endian) for one tensor."""
    if name in _CONV_BIASES:
        shape = (shape[0], 1)
    f32 = not use_f16 or len(shape) < 2 or name in _F32_NAMES
    return shape, ("<f4" if f32 else "<f2")


def write_ggml_model(
    path: str | os.PathLike[str],
    dims: WhisperDims,
    state_dict: Mapping[str, npt.ArrayLike],
    *,
    use_f16: bool = True,
    vocab: Sequence[bytes] | None = None,
    mel_filters: npt.ArrayLike | None = None,
) -> None:
    """Write ``state_dict`` (openai-whisper names and shapes) as a whisper.cpp model file.

    The file appears atomically at ``path``. ``vocab`` defaults to the GPT-2 vocabulary,
    ``mel_filters`` to openai-whisper's bank for ``dims.n_mels``.
    """
    shapes = expected_tensor_shapes(dims)
    missing = sorted(set(shapes) - set(state_dict))
    extra = sorted(set(state_dict) - set(shapes))
    if missing or extra:
        raise InvalidArgumentError(f"state_dict mismatch: missing {missing[:3]}, extra {extra[:3]}")
    filters = load_mel_filters(dims.n_mels) if mel_filters is None else np.asarray(mel_filters)
    if filters.shape != (dims.n_mels, N_FFT_BINS):
        raise InvalidArgumentError(
            f"mel_filters must have shape ({dims.n_mels}, {N_FFT_BINS}), got {filters.shape}"
        )
    tokens = load_gpt2_vocab() if vocab is None else list(vocab)
    if not 0 < len(tokens) <= dims.n_vocab:
        raise InvalidArgumentError(f"vocab needs 1..{dims.n_vocab} tokens, got {len(tokens)}")

    arrays: list[tuple[str, tuple[int, ...], str, npt.NDArray[np.generic]]] = []
    for name, shape in shapes.items():
        arr = np.asarray(state_dict[name])
        if arr.shape != shape:
            raise InvalidArgumentError(f"{name}: shape {arr.shape}, expected {shape}")
        if not np.issubdtype(arr.dtype, np.floating):
            raise InvalidArgumentError(f"{name}: dtype {arr.dtype} is not floating point")
        stored_shape, dtype = _stored(name, shape, use_f16)
        arrays.append((name, stored_shape, dtype, arr))

    target = Path(path)
    tmp = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            header = (
                dims.n_vocab,
                dims.n_audio_ctx,
                dims.n_audio_state,
                dims.n_audio_head,
                dims.n_audio_layer,
                dims.n_text_ctx,
                dims.n_text_state,
                dims.n_text_head,
                dims.n_text_layer,
                dims.n_mels,
                1 if use_f16 else 0,
            )
            f.write(struct.pack("<I11i", GGML_MAGIC, *header))
            f.write(struct.pack("<2i", *filters.shape))
            f.write(np.ascontiguousarray(filters, dtype="<f4").tobytes())
            f.write(struct.pack("<i", len(tokens)))
            for tok in tokens:
                f.write(struct.pack("<i", len(tok)))
                f.write(tok)
            for name, shape, dtype, arr in arrays:
                raw = name.encode()
                f.write(struct.pack("<3i", len(shape), len(raw), 0 if dtype == "<f4" else 1))
                f.write(struct.pack(f"<{len(shape)}i", *reversed(shape)))
                f.write(raw)
                f.write(np.ascontiguousarray(arr.reshape(shape), dtype=dtype).tobytes())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def random_state_dict(dims: WhisperDims, seed: int = 0) -> dict[str, npt.NDArray[np.float32]]:
    """A random (untrained) state_dict with openai-whisper's names and shapes."""
    rng = np.random.default_rng(seed)
    out: dict[str, npt.NDArray[np.float32]] = {}
    for name, shape in expected_tensor_shapes(dims).items():
        if name.endswith("ln.weight") or ".ln_post.weight" in name or "_ln.weight" in name:
            arr = 1.0 + 0.1 * rng.standard_normal(shape, dtype=np.float32)
        else:
            arr = 0.05 * rng.standard_normal(shape, dtype=np.float32)
        out[name] = arr
    return out


def random_whisper_model(
    path: str | os.PathLike[str], dims: WhisperDims | None = None, seed: int = 0
) -> Path:
    """Write a small valid model with random weights (default :data:`TINY_RANDOM_DIMS`)."""
    dims = TINY_RANDOM_DIMS if dims is None else dims
    write_ggml_model(path, dims, random_state_dict(dims, seed))
    return Path(path)


__all__ = [
    "TINY_RANDOM_DIMS",
    "WhisperDims",
    "expected_tensor_shapes",
    "load_gpt2_vocab",
    "load_mel_filters",
    "random_state_dict",
    "random_whisper_model",
    "write_ggml_model",
]
