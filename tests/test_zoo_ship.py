"""Shipping the zoo (no torch): export, validate, measure, register, cards; AUC and ladders."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from whisper_cascade.errors import InvalidArgumentError
from whisper_cascade.ggml_writer import TINY_RANDOM_DIMS, random_state_dict
from whisper_cascade.modelfile import validate_model
from whisper_cascade.models import read_registry
from whisper_cascade.zoo import cards
from whisper_cascade.zoo import ship as zs
from whisper_cascade.zoo.export import save_npz
from whisper_cascade.zoo.metrics import (
    condition_bucket,
    is_noisy,
    ladder_violations,
    paired_wer_difference,
    rank_auc,
)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    (work / "micro-s").mkdir(parents=True)
    save_npz(
        work / "micro-s" / "best.npz", asdict(TINY_RANDOM_DIMS), random_state_dict(TINY_RANDOM_DIMS)
    )
    (work / "train-s.csv").write_text(
        "step,elapsed_s,lr,loss,max_difficulty,wer,wall\n"
        "50,40.0,1e-4,3.0,0.1,,10:00:00\n"
        "500,400.0,1e-3,2.0,0.2,0.9,10:06:00\n"
        "1000,800.0,1e-3,1.5,0.4,0.6,10:12:00\n"
        "1050,840.0,1e-3,1.4,0.4,,10:13:00\n",
        encoding="utf-8",
    )
    return work


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    (folder / "audio").mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    for i, condition in enumerate(["clean", "pink12"]):
        t = np.arange(16000) / 16000
        audio = 0.3 * np.sin(2 * np.pi * (200 + 50 * i) * t) + 0.01 * rng.standard_normal(16000)
        sf.write(folder / "audio" / f"{i}.wav", audio.astype(np.float32), 16000)
        rows.append(
            {"audio": f"audio/{i}.wav", "text": "turn on the lights", "condition": condition}
        )
    path = folder / "manifest.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_ship_tiny_checkpoint(work: Path, manifest: Path, tmp_path: Path) -> None:
    out = tmp_path / "models"
    models = zs.ship(work, out, quantize=["q8_0"], eval_manifest=manifest, n_eval=2, n_cost=2)
    assert [m.name for m in models] == ["micro-s", "micro-s-q8_0"]
    registry = json.loads((out / "registry.json").read_text(encoding="utf-8"))
    assert registry["ladders"] == {"micro": ["micro-s-q8_0"]}
    for entry, model in zip(registry["models"], models, strict=True):
        assert set(entry) == {
            "name",
            "file",
            "sha256",
            "window_s",
            "audio_ctx",
            "relative_cost",
            "n_parameters",
            "ftype",
        }
        info = validate_model(out / entry["file"], sha256=entry["sha256"])
        assert entry["audio_ctx"] == info.hparams.n_audio_ctx == 1500
        assert entry["window_s"] == 30.0
        assert entry["n_parameters"] == info.n_parameters
        assert entry["ftype"] == info.ftype
        assert model.wer is not None and model.time_per_utt_s > 0
        assert 0 < model.gzip_bytes < model.file_bytes
        card = (out / f"{entry['name']}.md").read_text(encoding="utf-8")
        assert entry["sha256"] in card and "checkpoint of step 1000" in card
        assert "| clean |" in card and "| pink |" in card
    assert registry["models"][0]["relative_cost"] == 1.0
    specs, ladders = read_registry(out)
    assert ladders["micro"] == ("micro-s-q8_0",)
    assert specs["micro-s"].path == out / "ggml-micro-s.bin"
    assert specs["micro-s-q8_0"].audio_ctx == 1500
    assert "fits" in zs.budget_report(models)


def test_ship_without_measurements(
    work: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "models"
    assert zs.main(["--work", str(work), "--out", str(out), "--quantize", "none"]) == 0
    assert "micro-s" in capsys.readouterr().out
    registry = json.loads((out / "registry.json").read_text(encoding="utf-8"))
    assert [m["name"] for m in registry["models"]] == ["micro-s"]
    assert registry["models"][0]["relative_cost"] == 1.0
    assert "## WER" not in (out / "micro-s.md").read_text(encoding="utf-8")
    assert read_registry(tmp_path) == ({}, {})
    argv = ["--work", str(work), "--out", str(out), "--quantize", "none"]
    assert zs.main([*argv, "--ladder", "micro=s", "--ladder", " solo = s "]) == 0
    registry = json.loads((out / "registry.json").read_text(encoding="utf-8"))
    assert registry["ladders"] == {"micro": ["micro-s"], "solo": ["micro-s"]}
    with pytest.raises(SystemExit):
        zs.main([*argv, "--ladder", "micro"])
    with pytest.raises(InvalidArgumentError, match="shipped sizes"):
        zs.main([*argv, "--ladder", "micro=s,m"])


def test_ship_rejects_bad_requests(work: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="eval manifest"):
        zs.ship(work, tmp_path / "o")
    with pytest.raises(InvalidArgumentError, match="quantize"):
        zs.ship(work, tmp_path / "o", quantize="q4")
    with pytest.raises(InvalidArgumentError, match="unknown sizes"):
        zs.ship(work, tmp_path / "o", sizes=["xl"], quantize="none")
    with pytest.raises(InvalidArgumentError, match="best.npz"):
        zs.ship(tmp_path, tmp_path / "o", quantize="none")


def test_quantized_kept_only_within_one_point() -> None:
    m = zs.ShippedModel("a", "f", "0", 10.0, 500, 1.0, 1, "q8_0", "s", 1, 1, wer=0.105)
    assert not zs._too_costly(0.10, m)
    m.wer = 0.111
    assert zs._too_costly(0.10, m)
    m.wer = None
    assert zs._too_costly(0.10, m)


def test_training_summary_missing(tmp_path: Path) -> None:
    assert cards.training_summary(tmp_path, "s") == {}
    (tmp_path / "train-s.csv").write_text("step,elapsed_s,wer\n", encoding="utf-8")
    assert cards.training_summary(tmp_path, "s") == {}


def test_condition_kind_and_bucket() -> None:
    assert zs.condition_kind("pink10") == "pink"
    assert zs.condition_kind(None) == "unspecified"
    assert zs.condition_kind("reverb") == "reverb"
    assert condition_bucket("pink13") == "pink 10-19 dB"
    assert condition_bucket("white0") == "white 0-9 dB"
    assert condition_bucket("babble30") == "babble 20-30 dB"
    assert condition_bucket("babble45") == "babble >30 dB"
    assert condition_bucket("phone") == "phone"
    assert condition_bucket(None) == "unspecified"
    assert is_noisy("phone") and not is_noisy("clean")


def test_rank_auc_known_values() -> None:
    assert rank_auc([0.1, 0.4, 0.35, 0.8], [False, False, True, True]) == 0.75
    assert rank_auc([1, 2, 3, 4], [False, False, True, True]) == 1.0
    assert rank_auc([1, 2, 3, 4], [True, True, False, False]) == 0.0
    assert rank_auc([5, 5, 5, 5], [True, False, True, False]) == 0.5
    assert rank_auc([1, 2, 2, 3], [False, True, False, True]) == 0.875
    with pytest.raises(InvalidArgumentError):
        rank_auc([1, 2], [True, True])
    with pytest.raises(InvalidArgumentError):
        rank_auc([1, 2], [True])


def test_ladder_violations() -> None:
    wer = {
        "s": {"clean": 0.2, "pink 0-9 dB": 0.5, "phone": 0.3},
        "m": {"clean": 0.25, "pink 0-9 dB": 0.4, "phone": 0.3},
    }
    problems = ladder_violations(["s", "m"], wer, {"s": 0.05, "m": 0.04})
    assert len(problems) == 2
    assert "not slower" in problems[0] and problems[1].startswith("phone")
    assert ladder_violations(["s", "m"], wer | {"m": {"pink 0-9 dB": 0.4}}, {"s": 1, "m": 2}) == []


def test_paired_wer_difference_separates_noise_from_a_real_gap() -> None:
    small = [(2, 10)] * 40 + [(0, 10)] * 40  # 10 % WER
    clearly_better = [(0, 10)] * 80
    d, lo, hi = paired_wer_difference(small, clearly_better)
    assert d == pytest.approx(-0.1) and lo < d < hi < 0
    swapped = [(0, 10)] * 40 + [(2, 10)] * 40  # same WER, different files wrong
    d, lo, hi = paired_wer_difference(small, swapped, draws=500, seed=3)
    assert d == 0 and lo < 0 < hi
    assert paired_wer_difference(small, small) == (0.0, 0.0, 0.0)
    with pytest.raises(InvalidArgumentError, match="different files"):
        paired_wer_difference(small, clearly_better[:3])
    with pytest.raises(InvalidArgumentError, match="no files"):
        paired_wer_difference([], [])
    with pytest.raises(InvalidArgumentError, match="draws"):
        paired_wer_difference(small, small, draws=10)


def test_training_time_adds_up_resumed_runs(tmp_path: Path) -> None:
    rows = ["step,elapsed_s,wer", "50,10,", "100,20,0.9", "150,5,", "200,15,0.5", "250,30,"]
    (tmp_path / "train-s.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    summary = cards.training_summary(tmp_path, "s")
    assert summary["train_seconds"] == 50.0 and summary["steps"] == 250
    assert summary["best_heldout_wer"] == 0.5 and summary["best_step"] == 200
    assert summary["data"] == cards.TRAINING_DATA


def test_training_data_names_the_swapped_corpus_past_its_step(tmp_path: Path) -> None:
    rows = ["step,elapsed_s,wer", "12000,10,0.3", "12500,20,0.2"]
    (tmp_path / "train-s.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (tmp_path / "train-xs.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    swapped = cards.training_summary(tmp_path, "s")["data"]
    assert "from step 12,000 also 9 000 slot-swapped" in swapped
    assert cards.training_summary(tmp_path, "xs")["data"] == cards.TRAINING_DATA
    rows.append("16000,30,0.1")
    (tmp_path / "train-s.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert "42 more espeak-ng variants" in cards.training_summary(tmp_path, "s")["data"]
    rows.pop()
    (tmp_path / "micro-s").mkdir()
    (tmp_path / "micro-s" / "best.json").write_text('{"step": 12500}')
    promoted = cards.training_summary(tmp_path, "s")
    assert promoted["best_step"] == 12500 and promoted["best_heldout_wer"] == 0.2
    (tmp_path / "micro-s" / "best.json").write_text('{"step": 12600}')
    assert cards.training_summary(tmp_path, "s")["best_heldout_wer"] is None
    (tmp_path / "micro-s" / "best.json").unlink()
    rows[2] = "12500,20,0.4"
    (tmp_path / "train-s.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert cards.training_summary(tmp_path, "s")["data"] == cards.TRAINING_DATA


def test_a_reshipped_file_without_its_log_keeps_its_training_record(
    work: Path, tmp_path: Path
) -> None:
    out = tmp_path / "models"
    argv = ["--work", str(work), "--out", str(out), "--quantize", "none"]
    assert zs.main(argv) == 0
    card = (out / "micro-s.md").read_text(encoding="utf-8")
    rows = [line for line in card.splitlines() if line.startswith("| training")]
    assert len(rows) == 3
    (work / "train-s.csv").unlink()  # the training folder is gone; the file is the same
    assert zs.main(argv) == 0
    again = (out / "micro-s.md").read_text(encoding="utf-8")
    assert [line for line in again.splitlines() if line.startswith("| training")] == rows
    state = random_state_dict(TINY_RANDOM_DIMS, seed=9)  # another model: its record is unknown
    save_npz(work / "micro-s" / "best.npz", asdict(TINY_RANDOM_DIMS), state)
    assert zs.main(argv) == 0
    assert "| training" not in (out / "micro-s.md").read_text(encoding="utf-8")


def test_a_grown_size_names_its_source_and_skips_its_start_row(tmp_path: Path) -> None:
    rows = ["step,elapsed_s,wer", "0,,0.11", "500,100,0.12", "1000,200,0.10", "1050,210,"]
    (tmp_path / "train-m.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    summary = cards.training_summary(tmp_path, "m")
    assert summary["data"] == cards.WARM_DATA["m"] and "widened" in summary["data"]
    assert summary["train_seconds"] == 210.0 and summary["best_step"] == 1000
    # A warm-restarted leg of a size trained from scratch before: named only when the log
    # starts with the restart's evaluation row.
    (tmp_path / "train-xs.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert cards.training_summary(tmp_path, "xs")["data"] == cards.WARM_DATA["xs"]
    (tmp_path / "train-xs.csv").write_text("\n".join(rows[:1] + rows[2:]) + "\n")
    assert cards.training_summary(tmp_path, "xs")["data"] == cards.TRAINING_DATA
