"""bench/bench_service.py with a small --n: a real server on loopback, tiny random models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench_support import load_bench


def test_bench_service_small(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bench = load_bench("bench_service")
    readme = tmp_path / "README.md"
    readme.write_text("# Benchmarks\n\n## Service load test\n\nold\n\n## Other\n\nkept\n")
    monkeypatch.setattr(bench, "README", readme)
    out = tmp_path / "r.json"
    args = ["--n", "6", "--queue-size", "64", "--queue-size", "1", "--workers", "1"]
    assert bench.main([*args, "--json", str(out), "--update-readme"]) == 0
    roomy, tight = json.loads(out.read_text())
    assert roomy["ok"] == 6 and roomy["rejected_429"] == 0 and roomy["errors"] == 0
    assert roomy["p50_s"] > 0 and roomy["p99_s"] >= roomy["p50_s"] and roomy["throughput_rps"] > 0
    assert tight["ok"] + tight["rejected_429"] == 6 and tight["rejected_429"] >= 1
    assert tight["rejected_in_metrics"] == tight["rejected_429"] and tight["errors"] == 0
    text = readme.read_text()
    assert "python bench/bench_service.py --n 6" in text and "old" not in text
    assert text.rstrip().endswith("kept") and "| 6 | 6 | 64 | 1 | 6 | 0 | 0 |" in text
