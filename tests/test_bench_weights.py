"""bench/bench_weights.py: the weight fit on synthetic rows, and one run on the bundled model."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from types import ModuleType

import pytest

from bench_support import load_bench
from whisper_cascade.audio import sample_path
from whisper_cascade.policy import Weights


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_bench("bench_weights")


def _rows(bench: ModuleType, n: int, seed: int) -> list:
    """Rows whose errors follow the low-confidence share, while coverage is noise."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        low = rng.random()
        metrics = {
            "n_tokens": 10,
            "mean": 0.8,
            "consistency": 0.5,
            "speech_coverage": rng.random(),
            "low_confidence_ratio": low,
            "speech_in_segments": 1.0,
        }
        edits = int(low > 0.5) * rng.choice((1, 5))
        rows.append(bench.Row(metrics, edits, 10))
    return rows


def test_fit_finds_the_informative_penalty(bench: ModuleType) -> None:
    fit_rows, held_rows = _rows(bench, 200, 1), _rows(bench, 200, 2)
    grid = {"coverage": (0.0, 0.25), "low_confidence_penalty": (0.0, 0.9)}
    fitted = bench.fit(fit_rows, grid)
    assert fitted.low_confidence_penalty == 0.9 and fitted.coverage == 0.0
    zero = Weights(low_confidence_penalty=0.0, coverage=0.25)
    assert bench.aucs(held_rows, fitted)[0] > bench.aucs(held_rows, zero)[0] + 0.2
    table = bench.report(fitted, fit_rows, {"held": held_rows})
    assert "| low_confidence_penalty | 0.3 |" in table and "| held | 200 |" in table
    one_class = [bench.Row(r.metrics, 0, 10) for r in fit_rows[:5]]
    assert "nan" in bench.report(fitted, one_class, {})


@pytest.mark.bundled
def test_collect_and_main_on_the_bundled_model(
    bench: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = tmp_path / "m.jsonl"
    line = {"audio": str(sample_path()), "text": "set a timer for ten minutes"}
    manifest.write_text(json.dumps(line) + "\n" + json.dumps(line) + "\n", encoding="utf-8")
    rows = bench.collect(manifest, "micro", None, 1)
    assert len(rows) == 1 and rows[0].words == 6 and "mean" in rows[0].metrics
    readme = tmp_path / "README.md"
    readme.write_text("# benches\n", encoding="utf-8")
    monkeypatch.setattr(bench, "README", readme)
    argv = ["bench_weights.py", "--fit", str(manifest), "--manifest", str(manifest), "--n", "2"]
    monkeypatch.setattr(sys, "argv", [*argv, "--update-readme"])
    assert bench.main() == 0
    assert "## Decision weights" in readme.read_text(encoding="utf-8")
