"""Reading model files back into checkpoints, and widening a model without changing it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from whisper_cascade import cli
from whisper_cascade.audio import load_audio, sample_path
from whisper_cascade.errors import InvalidArgumentError
from whisper_cascade.ggml_writer import (
    TINY_RANDOM_DIMS,
    WhisperDims,
    expected_tensor_shapes,
    random_state_dict,
    write_ggml_model,
)
from whisper_cascade.modelfile import quantize_model, validate_model
from whisper_cascade.models import bundled_models
from whisper_cascade.transcriber import DecodeOptions, Transcriber
from whisper_cascade.zoo.export import export_ggml, load_npz
from whisper_cascade.zoo.grow import load_any, read_ggml_state, widen

DIMS = dataclasses.asdict(TINY_RANDOM_DIMS)


def test_a_model_file_reads_back_as_its_state_dict(tmp_path: Path) -> None:
    state = random_state_dict(TINY_RANDOM_DIMS, 5)
    path = tmp_path / "m.bin"
    write_ggml_model(path, TINY_RANDOM_DIMS, state)
    dims, back = read_ggml_state(path)
    assert dims == DIMS
    assert set(back) == set(state)
    for name, value in state.items():
        assert back[name].shape == value.shape, name
        assert back[name].dtype == np.float32
        assert np.array_equal(back[name], value.astype(np.float16).astype(np.float32)) or (
            np.array_equal(back[name], value)  # tensors stored as f32
        ), name


def test_a_quantized_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.bin"
    write_ggml_model(path, TINY_RANDOM_DIMS, random_state_dict(TINY_RANDOM_DIMS, 1))
    quantize_model(path, tmp_path / "q.bin", "q8_0")
    with pytest.raises(InvalidArgumentError, match="only f16/f32"):
        read_ggml_state(tmp_path / "q.bin")


def test_widen_doubles_every_width_and_keeps_the_shapes_whisper_expects() -> None:
    state = random_state_dict(TINY_RANDOM_DIMS, 2)
    dims, wide = widen(DIMS, state, 2)
    assert dims["n_audio_state"] == dims["n_text_state"] == 128
    assert dims["n_audio_head"] == dims["n_text_head"] == 8
    assert dims["n_audio_layer"] == DIMS["n_audio_layer"]
    shapes = expected_tensor_shapes(WhisperDims(**dims))
    assert {k: v.shape for k, v in wide.items()} == shapes


def test_widen_splits_each_read_weight_among_the_copies() -> None:
    state = random_state_dict(TINY_RANDOM_DIMS, 2)
    _, wide = widen(DIMS, state, 3, seed=4)
    old = state["encoder.blocks.0.mlp.2.weight"]  # (64, 256): reads the MLP's hidden units
    new = wide["encoder.blocks.0.mlp.2.weight"]  # (192, 768)
    parts = [new[:64, i * 256 : (i + 1) * 256] for i in range(3)]
    assert np.allclose(sum(parts), old, atol=1e-6)
    assert not np.allclose(parts[0], parts[1])  # unequal splits: the copies can diverge
    for rows in (new[64:128], new[128:]):  # every output copy reads the same way
        assert np.array_equal(rows, new[:64])
    ln = wide["decoder.ln.weight"]
    assert np.allclose(ln[:64] * 3, state["decoder.ln.weight"])


@pytest.mark.parametrize(
    ("k", "spread", "message"), [(1, 0.5, "factor >= 2"), (2, 1.0, "spread must be")]
)
def test_widen_rejects_bad_arguments(k: int, spread: float, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        widen(DIMS, random_state_dict(TINY_RANDOM_DIMS, 0), k, spread=spread)


def _text(model: Path) -> tuple[str, list[float]]:
    result = Transcriber().transcribe(
        model, load_audio(sample_path()), DecodeOptions(no_timestamps=True)
    )
    assert result.tokens is not None
    return result.text, [float(p) for p in result.tokens.probs]


@pytest.mark.bundled
def test_a_widened_trained_model_transcribes_exactly_like_the_original(tmp_path: Path) -> None:
    """Real whisper.cpp inference: the shipped micro-xs (64 wide) read back, widened to 128,
    exported: same transcript, same token probabilities (up to f16 rounding)."""
    source = bundled_models()["micro-xs"].path
    assert source is not None
    out = tmp_path / "wide.npz"
    assert cli.main(["zoo", "grow", str(source), str(out), "--widen", "2", "--seed", "1"]) == 0
    dims, _ = load_npz(out)
    assert dims["n_audio_state"] == 128 and dims["n_audio_head"] == 2
    export_ggml(out, tmp_path / "ggml-wide.bin")
    assert validate_model(tmp_path / "ggml-wide.bin").hparams.n_audio_state == 128
    text, probs = _text(tmp_path / "ggml-wide.bin")
    want_text, want_probs = _text(source)
    assert want_text.strip()
    assert text == want_text
    assert np.allclose(probs, want_probs, atol=0.02)


def test_grow_cli_imports_without_widening_and_reports_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "m.bin"
    write_ggml_model(source, TINY_RANDOM_DIMS, random_state_dict(TINY_RANDOM_DIMS, 1))
    assert cli.main(["zoo", "grow", str(source), str(tmp_path / "m.npz")]) == 0
    assert load_any(tmp_path / "m.npz")[0] == DIMS
    assert "d_model 64" in capsys.readouterr().out
    (tmp_path / "junk.bin").write_bytes(b"not a model")
    assert cli.main(["zoo", "grow", str(tmp_path / "junk.bin"), str(tmp_path / "x.npz")]) != 0
    assert not (tmp_path / "x.npz").exists()
