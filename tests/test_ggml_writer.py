"""The numpy ggml writer: layout and types as whisper.cpp's converter writes them."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from whisper_cascade.errors import InvalidArgumentError
from whisper_cascade.ggml_writer import (
    TINY_RANDOM_DIMS,
    WhisperDims,
    expected_tensor_shapes,
    load_gpt2_vocab,
    load_mel_filters,
    random_state_dict,
    random_whisper_model,
    write_ggml_model,
)
from whisper_cascade.modelfile import validate_model


def test_expected_names_match_the_validator(tmp_path: Path) -> None:
    dims = dataclasses.replace(TINY_RANDOM_DIMS, n_audio_layer=2, n_text_layer=3)
    shapes = expected_tensor_shapes(dims)
    assert len(shapes) == 11 + 15 * 2 + 24 * 3
    assert list(shapes)[:2] == ["encoder.positional_embedding", "encoder.conv1.weight"]
    path = tmp_path / "m.bin"
    write_ggml_model(path, dims, random_state_dict(dims, seed=3))
    info = validate_model(path)
    assert [t.name for t in info.tensors] == list(shapes)  # state_dict order kept
    for t in info.tensors:
        want = (
            (shapes[t.name][0], 1)
            if t.name.endswith("conv1.bias") or t.name.endswith("conv2.bias")
            else shapes[t.name]
        )
        assert t.shape == want


def test_types_and_values(tmp_path: Path) -> None:
    sd = random_state_dict(TINY_RANDOM_DIMS, seed=4)
    path = random_whisper_model(tmp_path / "m.bin", seed=4)
    info = validate_model(path)
    raw = path.read_bytes()
    for t in info.tensors:
        f32 = (
            len(t.shape) == 1
            or "positional" in t.name
            or t.name.endswith("conv1.bias")
            or (t.name.endswith("conv2.bias"))
        )
        assert t.dtype == ("f32" if f32 else "f16"), t.name
        data = np.frombuffer(raw[t.offset : t.offset + t.nbytes], "<f4" if f32 else "<f2")
        np.testing.assert_array_equal(data, sd[t.name].astype(data.dtype).ravel())


def test_all_f32_file(tmp_path: Path) -> None:
    path = tmp_path / "f32.bin"
    write_ggml_model(path, TINY_RANDOM_DIMS, random_state_dict(TINY_RANDOM_DIMS), use_f16=False)
    info = validate_model(path)
    assert info.ftype == "f32" and {t.dtype for t in info.tensors} == {"f32"}


def test_float64_input_is_cast(tmp_path: Path) -> None:
    sd = {k: v.astype(np.float64) for k, v in random_state_dict(TINY_RANDOM_DIMS).items()}
    path = tmp_path / "m.bin"
    write_ggml_model(path, TINY_RANDOM_DIMS, sd)
    assert validate_model(path).ftype == "f16"


def test_assets() -> None:
    vocab = load_gpt2_vocab()
    assert len(vocab) == 50256
    assert (vocab[0], vocab[220], vocab[50255]) == (b"!", b" ", b" gazed")
    assert len(set(vocab)) == len(vocab)
    assert load_mel_filters(80).shape == (80, 201)
    assert load_mel_filters(128).shape == (128, 201)
    assert load_mel_filters(80).dtype == np.float32
    with pytest.raises(InvalidArgumentError):
        load_mel_filters(64)


def test_custom_vocab_and_filters(tmp_path: Path) -> None:
    path = tmp_path / "m.bin"
    filters = np.full((80, 201), 0.25, np.float32)
    write_ggml_model(
        path,
        TINY_RANDOM_DIMS,
        random_state_dict(TINY_RANDOM_DIMS),
        vocab=[b"a", b"bc"],
        mel_filters=filters,
    )
    info = validate_model(path)
    assert info.n_vocab_stored == 2
    raw = path.read_bytes()
    assert np.all(np.frombuffer(raw[56 : 56 + 80 * 201 * 4], "<f4") == 0.25)


def test_bad_inputs(tmp_path: Path) -> None:
    dims = TINY_RANDOM_DIMS
    sd = random_state_dict(dims)
    path = tmp_path / "m.bin"
    cases: list[dict[str, object]] = [
        {"state_dict": {k: v for k, v in sd.items() if k != "decoder.ln.bias"}},
        {"state_dict": {**sd, "extra.weight": np.zeros(3, np.float32)}},
        {"state_dict": {**sd, "decoder.ln.bias": np.zeros(65, np.float32)}},
        {"state_dict": {**sd, "decoder.ln.bias": np.zeros(64, np.int32)}},
        {"mel_filters": np.zeros((80, 200), np.float32)},
        {"vocab": []},
        {"vocab": [b"x"] * (dims.n_vocab + 1)},
    ]
    for extra in cases:
        kwargs = {"state_dict": sd, **extra}
        with pytest.raises(InvalidArgumentError):
            write_ggml_model(path, dims, **kwargs)  # type: ignore[arg-type]
        assert list(tmp_path.iterdir()) == []
    with pytest.raises(InvalidArgumentError):
        expected_tensor_shapes(dataclasses.replace(dims, n_text_state=128))


def test_multilingual_dims_write_a_valid_file(tmp_path: Path) -> None:
    dims = WhisperDims(128, 64, 32, 2, 1, 51866, 32, 32, 2, 1)
    info = validate_model(random_whisper_model(tmp_path / "ml.bin", dims, seed=9))
    assert info.multilingual and info.hparams.n_mels == 128
