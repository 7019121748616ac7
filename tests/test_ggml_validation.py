"""A corpus of crafted and corrupt model files: each is refused with the expected code by
our validator, and none of them is ever handed to whisper.cpp (which would crash on them)."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from ggml_support import Parts, Record, parse, run_in_whispercpp
from whisper_cascade import _native
from whisper_cascade.errors import ModelNotFoundError, ModelValidationError
from whisper_cascade.ggml_writer import random_whisper_model
from whisper_cascade.modelfile import ModelInfo, validate_model

# Index of each header field in Parts.hparams.
VOCAB, ACTX, ASTATE, AHEAD, ALAYER, TCTX, TSTATE, THEAD, TLAYER, MELS, FTYPE = range(11)


@pytest.fixture(scope="module")
def valid_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return random_whisper_model(tmp_path_factory.mktemp("ggml") / "random-f16.bin", seed=1)


def _hp(i: int, v: int) -> Callable[[Parts], None]:
    def edit(p: Parts) -> None:
        p.hparams[i] = v

    return edit


def _set(attr: str, v: object) -> Callable[[Parts], None]:
    return lambda p: setattr(p, attr, v)


def _rec(name: str, attr: str, v: object) -> Callable[[Parts], None]:
    return lambda p: setattr(p.rec(name), attr, v)


def _nan_filter(p: Parts) -> None:
    f = bytearray(p.filters)
    f[40:44] = struct.pack("<f", float("nan"))
    p.filters = bytes(f)


def _dup(p: Parts) -> None:
    # rename a same-shaped tensor onto one that came earlier
    p.rec("encoder.blocks.0.attn.key.weight").name = b"encoder.blocks.0.attn.query.weight"


def _transpose(p: Parts) -> None:
    r = p.rec("encoder.blocks.0.mlp.0.weight")
    r.ne = r.ne[::-1]


def _extra_dim(p: Parts) -> None:
    r = p.rec("decoder.ln.bias")
    r.n_dims, r.ne = 2, [*r.ne, 1]


def _flat_conv_bias(p: Parts) -> None:
    r = p.rec("encoder.conv1.bias")
    r.n_dims, r.ne = 1, [r.ne[1]]


def _weight_as_f32(p: Parts) -> None:
    r = p.rec("encoder.blocks.0.attn.out.weight")
    r.ttype = 0
    r.data = np.frombuffer(r.data, "<f2").astype("<f4").tobytes()


def _appended_duplicate(p: Parts) -> None:
    p.records.append(p.records[-1])


# (id, edit of the parsed valid model, expected code)
EDITS: list[tuple[str, Callable[[Parts], None], str]] = [
    ("wrong_magic", _set("magic", 0x46554747), "bad_magic"),
    ("magic_byteswapped", _set("magic", 0x6C6D6767), "bad_magic"),
    ("n_vocab_50300", _hp(VOCAB, 50300), "bad_hparams"),
    ("n_vocab_50258", _hp(VOCAB, 50258), "bad_hparams"),
    ("n_vocab_51867", _hp(VOCAB, 51867), "bad_hparams"),
    ("n_vocab_negative", _hp(VOCAB, -1), "bad_hparams"),
    ("ftype_5", _hp(FTYPE, 5), "bad_ftype"),
    ("ftype_4", _hp(FTYPE, 4), "bad_ftype"),
    ("ftype_1001", _hp(FTYPE, 1001), "bad_ftype"),
    ("ftype_negative", _hp(FTYPE, -7), "bad_ftype"),
    ("n_mels_81", _hp(MELS, 81), "bad_hparams"),
    ("audio_heads_not_dividing", _hp(AHEAD, 3), "bad_hparams"),
    ("text_heads_not_dividing", _hp(THEAD, 5), "bad_hparams"),
    ("text_state_ne_audio_state", _hp(TSTATE, 128), "bad_hparams"),
    ("absurd_audio_layers", _hp(ALAYER, 100_000), "bad_hparams"),
    ("zero_text_layers", _hp(TLAYER, 0), "bad_hparams"),
    ("absurd_audio_ctx", _hp(ACTX, 1 << 20), "bad_hparams"),
    ("negative_text_ctx", _hp(TCTX, -5), "bad_hparams"),
    ("huge_state", _hp(ASTATE, 1 << 30), "bad_hparams"),
    ("filters_n_fft_200", _set("filters_head", [80, 200]), "bad_mel_filters"),
    ("filters_128_for_80", _set("filters_head", [128, 201]), "bad_mel_filters"),
    ("filters_nan", _nan_filter, "bad_mel_filters"),
    ("huge_vocab_count", _set("vocab_count", 2**31 - 1), "bad_vocab"),
    ("zero_vocab_count", _set("vocab_count", 0), "bad_vocab"),
    ("negative_vocab_count", _set("vocab_count", -3), "bad_vocab"),
    ("huge_token_length", lambda p: p.vocab.__setitem__(5, b"x" * 70_000), "bad_vocab"),
    ("n_dims_0", _rec("decoder.ln.bias", "n_dims", 0), "bad_tensor_dims"),
    ("n_dims_5", _rec("decoder.ln.bias", "n_dims", 5), "bad_tensor_dims"),
    ("n_dims_6", _rec("decoder.ln.bias", "n_dims", 6), "bad_tensor_dims"),
    ("n_dims_negative", _rec("decoder.ln.bias", "n_dims", -2), "bad_tensor_dims"),
    ("name_too_long", _rec("decoder.ln.bias", "name", b"decoder." * 40), "bad_tensor_name"),
    ("name_empty", _rec("decoder.ln.bias", "name", b""), "bad_tensor_name"),
    ("name_not_utf8", _rec("decoder.ln.bias", "name", b"decoder.ln.\xff\xfe"), "bad_tensor_name"),
    ("unknown_name", _rec("decoder.ln.bias", "name", b"decoder.ln.gamma"), "unknown_tensor"),
    (
        "block_out_of_range",
        _rec("decoder.ln.bias", "name", b"decoder.blocks.7.mlp_ln.bias"),
        "unknown_tensor",
    ),
    ("duplicate_tensor", _dup, "duplicate_tensor"),
    ("missing_tensor", lambda p: p.records.pop(3), "missing_tensor"),
    ("no_tensors", _set("records", []), "missing_tensor"),
    ("dim_2_pow_30", _rec("decoder.ln.bias", "ne", [1 << 30]), "bad_tensor_shape"),
    ("negative_dim", _rec("decoder.ln.bias", "ne", [-64]), "bad_tensor_shape"),
    ("zero_dim", _rec("decoder.ln.bias", "ne", [0]), "bad_tensor_shape"),
    ("transposed_shape", _transpose, "bad_tensor_shape"),
    ("extra_unit_dim", _extra_dim, "bad_tensor_shape"),
    ("conv_bias_not_reshaped", _flat_conv_bias, "bad_tensor_shape"),
    ("bias_as_f16", _rec("decoder.ln.bias", "ttype", 1), "bad_tensor_type"),
    ("weight_as_f32", _weight_as_f32, "bad_tensor_type"),
    ("unknown_ttype", _rec("decoder.ln.bias", "ttype", 99), "bad_tensor_type"),
    ("f16_data_under_q8_0_header", _hp(FTYPE, 2007), "bad_tensor_type"),
    ("trailing_byte", _set("tail", b"\0"), "trailing_bytes"),
    ("trailing_record", _appended_duplicate, "trailing_bytes"),
]

# (id, cut of the valid file's bytes, expected code)
CUTS: list[tuple[str, Callable[[bytes], bytes], str]] = [
    ("empty_file", lambda b: b"", "truncated"),
    ("three_bytes", lambda b: b[:3], "truncated"),
    ("truncated_header", lambda b: b[:30], "truncated"),
    ("truncated_filters", lambda b: b[: 56 + 1000], "truncated"),
    ("truncated_vocab", lambda b: b[: 56 + 80 * 201 * 4 + 5000], "truncated"),
    ("truncated_mid_tensor", lambda b: b[: len(b) - 1000], "truncated"),
    ("truncated_last_byte", lambda b: b[:-1], "truncated"),
    ("random_bytes", lambda b: np.random.default_rng(7).bytes(4096), "bad_magic"),
    ("zeros", lambda b: bytes(len(b)), "bad_magic"),
]


def test_corpus_is_large_enough() -> None:
    assert len(EDITS) + len(CUTS) >= 40


@pytest.mark.parametrize(("case", "edit", "code"), EDITS, ids=[e[0] for e in EDITS])
def test_crafted_file_rejected(
    valid_model: Path, tmp_path: Path, case: str, edit: Callable[[Parts], None], code: str
) -> None:
    parts = parse(valid_model.read_bytes())
    edit(parts)
    bad = tmp_path / f"{case}.bin"
    bad.write_bytes(parts.encode())
    with pytest.raises(ModelValidationError) as err:
        validate_model(bad)
    assert err.value.code == code, str(err.value)
    assert str(err.value)  # one-line human reason
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("case", "cut", "code"), CUTS, ids=[c[0] for c in CUTS])
def test_corrupt_file_rejected(
    valid_model: Path, tmp_path: Path, case: str, cut: Callable[[bytes], bytes], code: str
) -> None:
    bad = tmp_path / f"{case}.bin"
    bad.write_bytes(cut(valid_model.read_bytes()))
    with pytest.raises(ModelValidationError) as err:
        validate_model(bad)
    assert err.value.code == code, str(err.value)
    # also without hashing (the data is skipped by seeking then)
    with pytest.raises(ModelValidationError):
        _native.validate_model(str(bad), False)


def test_reason_names_the_tensor(valid_model: Path, tmp_path: Path) -> None:
    parts = parse(valid_model.read_bytes())
    parts.rec("decoder.ln.bias").ttype = 1
    bad = tmp_path / "bad.bin"
    bad.write_bytes(parts.encode())
    with pytest.raises(ModelValidationError, match=r"decoder\.ln\.bias"):
        validate_model(bad)


def test_parse_round_trip_is_identity(valid_model: Path) -> None:
    raw = valid_model.read_bytes()
    assert parse(raw).encode() == raw
    assert isinstance(parse(raw).records[0], Record)


def test_valid_model_info(valid_model: Path) -> None:
    info = validate_model(valid_model)
    assert isinstance(info, ModelInfo)
    assert info.file_size == valid_model.stat().st_size
    assert info.sha256 == _native.sha256_file(str(valid_model))
    assert (info.ftype, info.model_type, info.multilingual) == ("f16", "unknown", False)
    assert info.hparams.n_vocab == 51864 and info.hparams.ftype == 1
    assert info.n_tensors == 11 + 15 + 24 == len(info.tensors)
    assert info.n_vocab_stored == 50256
    emb = info.tensor("decoder.token_embedding.weight")
    assert emb.shape == (51864, 64) and emb.dtype == "f16" and emb.nbytes == 51864 * 64 * 2
    assert info.tensor("encoder.conv1.bias").shape == (64, 1)
    assert info.tensor("encoder.positional_embedding").dtype == "f32"
    assert info.n_parameters == sum(int(np.prod(t.shape)) for t in info.tensors)
    with pytest.raises(KeyError):
        info.tensor("nope")
    raw = valid_model.read_bytes()
    last = info.tensors[-1]
    assert last.offset + last.nbytes == len(raw)


def test_sha256_integrity(valid_model: Path) -> None:
    good = _native.sha256_file(str(valid_model))
    assert validate_model(valid_model, sha256=good.upper()).sha256 == good
    with pytest.raises(ModelValidationError) as err:
        validate_model(valid_model, sha256="0" * 64)
    assert err.value.code == "sha256_mismatch"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError):
        validate_model(tmp_path / "absent.bin")
    with pytest.raises(ModelNotFoundError):
        validate_model(tmp_path)


def test_valid_random_model_runs_in_whispercpp(valid_model: Path) -> None:
    validate_model(valid_model)  # the guard: only validated files reach whisper.cpp
    rc, _ = run_in_whispercpp(valid_model)
    assert rc == 0
