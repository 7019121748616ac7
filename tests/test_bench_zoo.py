"""bench/bench_zoo.py end to end on tiny corpora with random-weight models (mechanics)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench_support import load_bench
from whisper_cascade.ggml_writer import random_whisper_model

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")


def test_several_held_out_sets_ladder_only_and_readme(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from whisper_cascade.zoo.corpus import generate_corpus

    bench = load_bench("bench_zoo")
    models = tmp_path / "models"
    models.mkdir()
    entries = []
    for i, name in enumerate(("a", "b", "c")):
        random_whisper_model(models / f"ggml-{name}.bin", seed=i)
        entries.append({"name": name, "file": f"ggml-{name}.bin", "relative_cost": 1.0 + i})
    registry = {"models": entries, "ladders": {"micro": ["b", "a"]}}
    (models / "registry.json").write_text(json.dumps(registry), encoding="utf-8")
    one = generate_corpus(tmp_path / "one", 2, 5, split="heldout", conditions=["clean"])
    two = generate_corpus(tmp_path / "two", 2, 6, split="heldout", conditions=["pink12"])
    readme = tmp_path / "README.md"
    readme.write_text("# B\n\n## Micro zoo\n\nSTALE\n", encoding="utf-8")
    monkeypatch.setattr(bench, "README", readme)
    argv = ["--models-dir", str(models), "--manifest", str(one), "--manifest", str(two)]
    assert bench.main([*argv, "--ladder-only", "--update-readme"]) == 0
    text = readme.read_text(encoding="utf-8")
    assert "STALE" not in text and "--ladder-only" in text
    assert "| condition | files | a | b |" in text  # the ladder's rungs only, cheapest first
    assert "| all (held-out) | 4 |" in text and "| clean | 2 |" in text
    assert "| pink 10-19 dB | 2 |" in text
    assert "Held-out: 4 utterances" in text
    assert "Paired bootstrap over files" in text
    assert "| a vs b | pink 10-19 dB | 2 |" in text and "| a vs b | clean |" not in text
    table = bench.bench(bench.parse_args([*argv, "--n", "1"]))
    assert "| condition | files | a | b | c |" in table and "| all (held-out) | 2 |" in table
