"""bench/bench_learned.py end to end on a tiny corpus with random-weight models (mechanics)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import ModuleType

import pytest

from bench_support import load_bench
from whisper_cascade.errors import InvalidArgumentError
from whisper_cascade.ggml_writer import random_whisper_model
from whisper_cascade.ladders import folder_ladders, get_ladder
from whisper_cascade.manifest import read_manifest

NAMES = ("micro-s", "micro-m", "micro-l")
pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModuleType, Path, Path]:
    from whisper_cascade.zoo.corpus import generate_corpus

    root = tmp_path_factory.mktemp("bench")
    for seed, name in enumerate(NAMES, start=1):
        random_whisper_model(root / f"ggml-{name}.bin", seed=seed)
    manifest = generate_corpus(root / "corpus", 6, 3, split="heldout", conditions=["clean"])
    return load_bench("bench_learned"), root, manifest


def test_split_is_deterministic_and_by_text(setup: tuple[ModuleType, Path, Path]) -> None:
    bench, _, manifest = setup
    items = read_manifest(manifest)
    fit, test = bench.split(items)
    assert bench.split(items) == (fit, test) and len(fit) + len(test) == len(items)
    assert not {i.text for i in fit} & {i.text for i in test}
    with pytest.raises(InvalidArgumentError, match="split left"):
        bench.run_bench(fit)


def test_cli_reports_both_presets_and_writes_readme(
    setup: tuple[ModuleType, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bench, models, manifest = setup
    fit, test = bench.split(read_manifest(manifest))
    assert fit and test  # seed 3 gives both halves
    readme = tmp_path / "README.md"
    readme.write_text(
        "# B\n\n## Learned thresholds\n\nSTALE\n\n## Other\n\nkept\n", encoding="utf-8"
    )
    monkeypatch.setattr(bench, "README", readme)
    out = tmp_path / "r.json"
    args = ["--manifest", str(manifest), "--models-dir", str(models), "--min-class-items", "2"]
    assert bench.main([*args, "--json", str(out), "--update-readme", "--quiet"]) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["n"] == 6 and report["n_fit"] == len(fit) and report["n_test"] == len(test)
    st = report["strategies"]
    assert set(st) == {"balanced", "learned"}
    for s in st.values():
        assert s["n"] == len(test) and s["failed"] == 0 and s["total_time_s"] > 0
        assert s["relative_cost"] >= len(test) * 1.0 and 0 <= s["escalation_rate"] <= 1
        assert sum(s["model_usage"].values()) == len(test)
    assert report["policy"]["n_items"] == len(fit)
    text = readme.read_text(encoding="utf-8")
    assert "STALE" not in text and "## Other\n\nkept" in text and "| learned |" in text
    assert "python bench/bench_learned.py --manifest" in text


def test_unknown_names_run_the_same_files_under_uncalibrated_names(
    setup: tuple[ModuleType, Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bench, models, manifest = setup
    readme = tmp_path / "README.md"
    readme.write_text(f"# B\n\n{bench.UNKNOWN_SECTION}\n\nSTALE\n", encoding="utf-8")
    monkeypatch.setattr(bench, "README", readme)
    out = tmp_path / "r.json"
    args = ["--manifest", str(manifest), "--manifest", str(manifest), "--n", "4"]
    args += ["--models-dir", str(models), "--unknown-names", "--update-readme", "--quiet"]
    assert bench.main([*args, "--json", str(out)]) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["ladder"] == "user" and report["unknown_names"] and report["n"] == 8
    rungs = len(get_ladder("micro", folder_ladders(models)))
    users = [f"user-{k}" for k in range(rungs)]
    assert set(report["policy"]["thresholds"]) == set(users[:-1])
    for s in report["strategies"].values():
        assert set(s["model_usage"]) <= set(users) and s["failed"] == 0
    text = readme.read_text(encoding="utf-8")
    assert "STALE" not in text and "names the presets do not know" in text
    links = tmp_path / "links"
    links.mkdir()
    name, folder = bench.unknown_name_ladder("micro", models, links)
    assert name == "user" and folder == links
    files = sorted(p.name for p in links.iterdir())
    assert files == [*(f"ggml-{u}.bin" for u in users), "registry.json"]
