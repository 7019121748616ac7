"""Quantization checked byte for byte against ggml itself (the libggml-base.so that
pywhispercpp ships), and quantized files checked by validation and real whisper.cpp."""

from __future__ import annotations

import ctypes
from pathlib import Path

import _pywhispercpp
import numpy as np
import numpy.typing as npt
import pytest

from ggml_support import run_in_whispercpp
from whisper_cascade import _native
from whisper_cascade.errors import (
    InvalidArgumentError,
    ModelNotFoundError,
    ModelValidationError,
)
from whisper_cascade.ggml_writer import (
    TINY_RANDOM_DIMS,
    random_state_dict,
    random_whisper_model,
    write_ggml_model,
)
from whisper_cascade.modelfile import QUANT_TYPES, quantize_model, validate_model

BLOCK_BYTES = {"q8_0": 34, "q4_0": 18, "q4_1": 20, "q5_0": 22, "q5_1": 24}


@pytest.fixture(scope="module")
def ggml() -> ctypes.CDLL:
    lib = ctypes.CDLL(str(Path(_pywhispercpp.__file__).parent / "libggml-base.so"))
    for q in QUANT_TYPES:
        for fn in (f"quantize_row_{q}_ref", f"dequantize_row_{q}"):
            getattr(lib, fn).argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
            getattr(lib, fn).restype = None
    lib.ggml_fp16_to_fp32_row.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    return lib


def ggml_quantize(lib: ctypes.CDLL, x: npt.NDArray[np.float32], q: str) -> bytes:
    x = np.ascontiguousarray(x, dtype=np.float32)
    out = ctypes.create_string_buffer(x.size // 32 * BLOCK_BYTES[q])
    getattr(lib, f"quantize_row_{q}_ref")(x.ctypes.data, out, x.size)
    return out.raw


def ggml_dequantize(lib: ctypes.CDLL, data: bytes, q: str, n: int) -> npt.NDArray[np.float32]:
    y = np.empty(n, dtype=np.float32)
    getattr(lib, f"dequantize_row_{q}")(data, y.ctypes.data, n)
    return y


def edge_cases() -> list[npt.NDArray[np.float32]]:
    rng = np.random.default_rng(123)
    blocks = [
        np.zeros(32),
        -np.zeros(32),
        np.full(32, 1e-30),
        np.full(32, -1e-38),
        np.full(32, 7.0),
        np.arange(32) - 16.0,
        (np.arange(32) - 16.0) / 2,  # halves
        (np.arange(32) + 0.5) * 127 / 32.5,
        np.where(np.arange(32) % 2 == 0, 8.0, -8.0),  # tie between signs
        np.where(np.arange(32) % 2 == 0, -8.0, 8.0),
        rng.standard_normal(32) * 6e4,  # near the f16 limit
        rng.standard_normal(32) * 1e30,  # beyond f16: d overflows to inf
        rng.uniform(-1, 1, 32) * 1e-6,
        np.concatenate([np.zeros(31), [1e-3]]),
        np.concatenate([[-2.5], rng.uniform(-2.5, 2.5, 31)]),
        rng.integers(-4, 5, 32).astype(np.float64) * 0.25,
    ]
    return [b.astype(np.float32) for b in blocks]


@pytest.mark.parametrize("q", QUANT_TYPES)
def test_quantize_matches_ggml_on_random_data(ggml: ctypes.CDLL, q: str) -> None:
    rng = np.random.default_rng(5)
    for scale in (1e-3, 1.0, 300.0):
        x = (rng.standard_normal(32 * 1000) * scale).astype(np.float32)
        assert _native.quantize_array(x, q) == ggml_quantize(ggml, x, q)


@pytest.mark.parametrize("q", QUANT_TYPES)
def test_quantize_matches_ggml_on_edge_cases(ggml: ctypes.CDLL, q: str) -> None:
    for i, block in enumerate(edge_cases()):
        assert _native.quantize_array(block, q) == ggml_quantize(ggml, block, q), f"case {i}"
    x = np.concatenate(edge_cases())
    assert _native.quantize_array(x, q) == ggml_quantize(ggml, x, q)


@pytest.mark.parametrize("q", QUANT_TYPES)
def test_dequantize_matches_ggml(ggml: ctypes.CDLL, q: str) -> None:
    rng = np.random.default_rng(9)
    x = np.concatenate([rng.standard_normal(32 * 300).astype(np.float32), *edge_cases()[:11]])
    data = ggml_quantize(ggml, x, q)
    ours = _native.dequantize_array(data, q, x.size)
    np.testing.assert_array_equal(ours, ggml_dequantize(ggml, data, q, x.size))
    np.testing.assert_array_equal(ours, formula(data, q, x.size))


def formula(data: bytes, q: str, n: int) -> npt.NDArray[np.float32]:
    """ggml's dequantization written out in numpy from the block layout."""
    nb = n // 32
    blk = np.frombuffer(data, np.uint8).reshape(nb, BLOCK_BYTES[q])
    d = blk[:, 0:2].copy().view("<f2").astype(np.float32)
    if q == "q8_0":
        return (blk[:, 2:].view(np.int8).astype(np.float32) * d).ravel()
    has_m = q in ("q4_1", "q5_1")
    m = blk[:, 2:4].copy().view("<f2").astype(np.float32) if has_m else None
    off = 4 if has_m else 2
    if q.startswith("q5"):
        qh = blk[:, off : off + 4].copy().view("<u4").astype(np.uint32)
        off += 4
        hi_bits = ((qh >> np.arange(32, dtype=np.uint32)) & 1).astype(np.int32) << 4
    else:
        hi_bits = np.zeros((nb, 32), np.int32)
    qs = blk[:, off : off + 16].astype(np.int32)
    vals = np.concatenate([qs & 0x0F, qs >> 4], axis=1) | hi_bits
    if not has_m:
        vals = vals - (8 if q == "q4_0" else 16)
    y = vals.astype(np.float32) * d
    if m is not None:
        y = y + m
    return y.ravel().astype(np.float32)


def test_f16_and_f32_rows(ggml: ctypes.CDLL) -> None:
    x = np.random.default_rng(3).standard_normal(100).astype(np.float32)
    assert _native.quantize_array(x, "f32") == x.tobytes()
    h = _native.quantize_array(x, "f16")
    assert h == x.astype("<f2").tobytes()  # numpy also rounds to nearest even
    back = np.empty(100, np.float32)
    ggml.ggml_fp16_to_fp32_row(h, back.ctypes.data, 100)
    np.testing.assert_array_equal(_native.dequantize_array(h, "f16", 100), back)
    np.testing.assert_array_equal(_native.dequantize_array(x.tobytes(), "f32", 100), x)


def test_round_trip_error_bounds() -> None:
    x = np.random.default_rng(4).uniform(-1, 1, 32 * 512).astype(np.float32)
    for q, levels in (("q8_0", 254), ("q5_1", 31), ("q5_0", 32), ("q4_1", 15), ("q4_0", 16)):
        y = _native.dequantize_array(_native.quantize_array(x, q), q, x.size)
        assert np.max(np.abs(y - x)) <= 2.0 / levels * 1.01, q


def test_array_argument_errors() -> None:
    x = np.zeros(64, np.float32)
    with pytest.raises(InvalidArgumentError):
        _native.quantize_array(x[:31], "q8_0")
    with pytest.raises(InvalidArgumentError):
        _native.quantize_array(x.astype(np.float64), "q8_0")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        _native.quantize_array(x[::2], "q8_0")
    with pytest.raises(InvalidArgumentError):
        _native.quantize_array(np.full(32, np.nan, np.float32), "q8_0")
    with pytest.raises(InvalidArgumentError):
        _native.quantize_array(x, "q3_k")
    with pytest.raises(InvalidArgumentError):
        _native.dequantize_array(b"\0" * 33, "q8_0", 32)
    with pytest.raises(InvalidArgumentError):
        _native.dequantize_array(b"\0" * 34, "q8_0", 30)


@pytest.fixture(scope="module")
def f16_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return random_whisper_model(tmp_path_factory.mktemp("q") / "f16.bin", seed=2)


@pytest.mark.parametrize("q", QUANT_TYPES)
def test_quantized_file(f16_model: Path, tmp_path: Path, q: str) -> None:
    dst = tmp_path / f"model-{q}.bin"
    rep = quantize_model(f16_model, dst, q)
    assert rep["qtype"] == q and rep["tensors_quantized"] == 1 + 6 + 10
    assert rep["tensors_quantized"] + rep["tensors_copied"] == 50
    assert rep["bytes_out"] == dst.stat().st_size < rep["bytes_in"]
    assert rep["seconds"] > 0 and rep["mb_per_s"] > 0
    assert [p.name for p in tmp_path.iterdir()] == [dst.name]  # no temporary left behind
    src_info, info = validate_model(f16_model), validate_model(dst)
    assert (
        info.ftype == q
        and info.hparams.ftype == 2000 + {"q4_0": 2, "q4_1": 3, "q8_0": 7, "q5_0": 8, "q5_1": 9}[q]
    )
    src_raw, raw = f16_model.read_bytes(), dst.read_bytes()
    for t in info.tensors:
        s = src_info.tensor(t.name)
        src_data = src_raw[s.offset : s.offset + s.nbytes]
        data = raw[t.offset : t.offset + t.nbytes]
        if len(t.shape) == 2 and t.name.endswith("weight") and "conv" not in t.name:
            assert t.dtype == q
            vals = np.frombuffer(src_data, "<f2").astype(np.float32)
            assert data == _native.quantize_array(vals, q), t.name
        else:
            assert (t.dtype, data) == (s.dtype, src_data), t.name
    assert run_in_whispercpp(dst)[0] == 0


def test_quantize_refusals(f16_model: Path, tmp_path: Path) -> None:
    f32 = tmp_path / "f32.bin"
    write_ggml_model(f32, TINY_RANDOM_DIMS, random_state_dict(TINY_RANDOM_DIMS), use_f16=False)
    assert validate_model(f32).ftype == "f32"
    dst = tmp_path / "out.bin"
    with pytest.raises(InvalidArgumentError, match="f16"):
        quantize_model(f32, dst, "q8_0")
    with pytest.raises(InvalidArgumentError):
        quantize_model(f16_model, dst, "f16")
    with pytest.raises(InvalidArgumentError):
        quantize_model(f16_model, dst, "q2_k")
    with pytest.raises(InvalidArgumentError):
        quantize_model(f16_model, f16_model, "q8_0")
    with pytest.raises(ModelNotFoundError):
        quantize_model(tmp_path / "absent.bin", dst, "q8_0")
    broken = tmp_path / "broken.bin"
    broken.write_bytes(f16_model.read_bytes()[:-10])
    with pytest.raises(ModelValidationError) as err:
        quantize_model(broken, dst, "q8_0")
    assert err.value.code == "truncated"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.bin", "f32.bin"]
