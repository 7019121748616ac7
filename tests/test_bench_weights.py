"""bench/bench_weights.py: the report on synthetic rows, and one run on the bundled model."""

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
from whisper_cascade.weight_fit import ScoredRun


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_bench("bench_weights")


def _rows(n: int, seed: int) -> list[ScoredRun]:
    """Rows whose errors follow the low-confidence share."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        low = rng.random()
        metrics = {"n_tokens": 10, "mean": 0.8, "low_confidence_ratio": low}
        rows.append(ScoredRun(metrics, None, int(low > 0.5) * rng.choice((1, 5)), 10))
    return rows


def test_report_compares_every_weight_set(bench: ModuleType) -> None:
    fit_rows, held_rows = _rows(100, 1), _rows(100, 2)
    own = Weights(consistency=1.2)
    table = bench.report(Weights(coverage=0.0), fit_rows, {"held": held_rows}, own)
    assert "| weight | hand-set | default | fitted | calibrated |" in table
    assert "| consistency | 0.15 | 0.4 | 0.4 | 1.2 |" in table and "| held | 100 |" in table
    one_class = [ScoredRun(r.metrics, None, 0, 10) for r in fit_rows[:5]]
    plain = bench.report(Weights(), one_class, {})
    assert "nan" in plain and "calibrated" not in plain


@pytest.mark.bundled
def test_collect_and_main_on_the_bundled_model(
    bench: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = tmp_path / "m.jsonl"
    line = {"audio": str(sample_path()), "text": "set a timer for ten minutes"}
    manifest.write_text(json.dumps(line) + "\n" + json.dumps(line) + "\n", encoding="utf-8")
    rows = bench.collect(manifest, "micro", None, 1)
    assert len(rows) == 1 and rows[0].ref_words == 6 and "mean" in rows[0].metrics
    assert rows[0].speech_ratio is not None and rows[0].speech_ratio > 0.5
    readme = tmp_path / "README.md"
    readme.write_text("# benches\n", encoding="utf-8")
    monkeypatch.setattr(bench, "README", readme)
    argv = ["bench_weights.py", "--fit", str(manifest), "--manifest", str(manifest), "--n", "2"]
    monkeypatch.setattr(sys, "argv", [*argv, "--update-readme"])
    assert bench.main() == 0
    assert "## Decision weights" in readme.read_text(encoding="utf-8")
