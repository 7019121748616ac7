"""bench/bench_beam.py end to end on a tiny corpus with a random-weight model (mechanics)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench_support import load_bench
from whisper_cascade.ggml_writer import random_whisper_model

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")


def test_greedy_and_beam_rows_and_readme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from whisper_cascade.zoo.corpus import generate_corpus

    bench = load_bench("bench_beam")
    model = random_whisper_model(tmp_path / "ggml-rand.bin", seed=3)
    manifest = generate_corpus(tmp_path / "corpus", 3, 5, split="heldout", conditions=["clean"])
    readme = tmp_path / "README.md"
    readme.write_text("# B\n\n## Beam search\n\nSTALE\n", encoding="utf-8")
    monkeypatch.setattr(bench, "README", readme)
    out = tmp_path / "r.json"
    args = ["--manifest", str(manifest), "--models", str(model), "--beams", "1", "2"]
    assert bench.main([*args, "--json", str(out), "--update-readme"]) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["n"] == 3 and report["beams"] == [1, 2]
    rows = report["models"]["rand"]
    for beam in ("1", "2"):
        assert rows[beam]["words"] > 0 and rows[beam]["time_s"] > 0
        assert rows[beam]["wer"] == rows[beam]["edits"] / rows[beam]["words"]
    text = readme.read_text(encoding="utf-8")
    assert "STALE" not in text and "| rand |" in text and "WER beam 2" in text
    with pytest.raises(SystemExit):
        bench.main(["--manifest", str(manifest), "--beams", "0"])
