"""bench/bench_cascade.py end to end on tiny random models (garbage transcripts, real timings)."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from bench_support import load_bench
from whisper_cascade.ggml_writer import random_whisper_model
from whisper_cascade.zoo.corpus import generate_corpus
from whisper_cascade.zoo.metrics import condition_bucket

NAMES = ("micro-s", "micro-m", "micro-l")


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModuleType, Path, Path]:
    root = tmp_path_factory.mktemp("bench")
    for seed, name in enumerate(NAMES, start=1):
        random_whisper_model(root / f"ggml-{name}.bin", seed=seed)
    manifest = generate_corpus(
        root / "corpus", 3, 5, split="heldout", conditions=["clean", "white10", "reverb"]
    )
    with manifest.open("a", encoding="utf-8") as fh:  # a file that cannot be read
        fh.write(json.dumps({"audio": "audio/missing.wav", "text": "turn on the lights"}) + "\n")
    return load_bench("bench_cascade"), root, manifest


def test_report_structure_oracle_and_totals(setup: tuple[ModuleType, Path, Path]) -> None:
    bench, models, manifest = setup
    items = bench.load_items([manifest])
    report: dict[str, Any] = bench.run_bench(items, models_dir=models, threads=1)
    st = report["strategies"]
    assert list(st) == ["always-micro-s", "always-micro-l", "oracle", *bench.CASCADES]
    assert report["n"] == 4 and report["files_failed"] == 1 and len(report["items"]) == 4
    eps = 1e-9
    buckets = {condition_bucket(f["condition"]) for f in report["items"]}
    assert st["oracle"]["total_time_s"] <= st["always-micro-l"]["total_time_s"] + eps
    assert st["oracle"]["wer"] <= st["always-micro-l"]["wer"] + eps
    for name, s in st.items():
        recs = [f["strategies"][name] for f in report["items"]]
        assert s["failed"] == 1 and sum(s["model_usage"].values()) == 3
        assert s["total_time_s"] == pytest.approx(sum(r["time_s"] for r in recs))
        words = sum(r["ref_words"] for r in recs)
        assert s["wer"] == pytest.approx(sum(r["edits"] for r in recs) / words)
        assert set(s["per_condition_wer"]) == buckets and "unspecified" in buckets
        assert 0.0 <= s["score_pass_rate"] <= 1.0
    for name in bench.CASCADES:
        s, t = st[name], report["targets"][name]
        assert 0.0 <= s["escalation_rate"] <= 1.0 and s["overhead_s"] >= 0.0
        assert 0.0 <= s["net_overhead_s"] <= s["overhead_s"]
        assert t["time_vs_largest"] == pytest.approx(
            s["total_time_s"] / st["always-micro-l"]["total_time_s"]
        )
        assert isinstance(t["meets_wer"], bool)
        assert all(h.split("/")[0] in NAMES for h in s["model_runs"])
    missing = report["items"][-1]
    assert missing["error"] and missing["strategies"]["oracle"]["error"]
    table = bench.markdown(report)
    assert "| oracle |" in table and "time / always-largest" in table
    json.dumps(report)


def test_cli_writes_json_and_readme_section(
    setup: tuple[ModuleType, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bench, models, manifest = setup
    readme = tmp_path / "README.md"
    readme.write_text("# Benchmarks\n\n## Cascade\n\nold\n\n## Other\n\nkept\n", encoding="utf-8")
    monkeypatch.setattr(bench, "README", readme)
    out = tmp_path / "report.json"
    args = ["--manifest", str(manifest), "--models-dir", str(models), "--n", "1"]
    assert bench.main([*args, "--json", str(out), "--update-readme", "--quiet"]) == 0
    assert json.loads(out.read_text(encoding="utf-8"))["n"] == 1
    text = readme.read_text(encoding="utf-8")
    assert "old" not in text and "## Other\n\nkept" in text
    assert "python bench/bench_cascade.py --manifest" in text
