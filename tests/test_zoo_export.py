"""Zoo checkpoint (.npz) → ggml export through the CLI, checked by the validator and whisper.cpp."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from whisper_cascade import cli
from whisper_cascade.audio import load_audio, sample_path
from whisper_cascade.errors import InvalidArgumentError
from whisper_cascade.ggml_writer import TINY_RANDOM_DIMS, random_state_dict
from whisper_cascade.modelfile import validate_model
from whisper_cascade.transcriber import Transcriber
from whisper_cascade.zoo.export import export_ggml, load_npz, save_npz


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "best.npz"
    save_npz(path, dataclasses.asdict(TINY_RANDOM_DIMS), random_state_dict(TINY_RANDOM_DIMS, 3))
    return path


def test_npz_round_trip(checkpoint: Path) -> None:
    dims, state = load_npz(checkpoint)
    assert dims == dataclasses.asdict(TINY_RANDOM_DIMS)
    expected = random_state_dict(TINY_RANDOM_DIMS, 3)
    assert set(state) == set(expected)
    name = "decoder.token_embedding.weight"
    assert np.array_equal(state[name], expected[name])


def test_export_writes_valid_loadable_files(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ggml-micro-t.bin"
    assert cli.main(["zoo", "export", str(checkpoint), str(out), "--quantize", "q8_0"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and "sha256" in lines[0]
    quantized = tmp_path / "ggml-micro-t-q8_0.bin"
    assert validate_model(out).ftype == "f16"
    assert validate_model(quantized).ftype == "q8_0"
    result = Transcriber().transcribe(quantized, load_audio(sample_path()))
    assert result.duration_s > 1.0 and result.time_s > 0


def test_export_refuses_foreign_npz(tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros(3))
    with pytest.raises(InvalidArgumentError, match="not a zoo checkpoint"):
        export_ggml(bad, tmp_path / "out.bin")
    assert not (tmp_path / "out.bin").exists()


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")
def test_zoo_corpus_command(tmp_path: Path) -> None:
    out = tmp_path / "corpus"
    assert cli.main(["zoo", "corpus", str(out), "--n", "2", "--seed", "5"]) == 0
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all((out / r["audio"]).is_file() for r in rows)
