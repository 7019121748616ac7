"""Calibrating the built-in presets' micro thresholds (zoo.calibrate) and applying them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from whisper_cascade import presets as presets_module
from whisper_cascade.errors import InvalidArgumentError
from whisper_cascade.fitting import FitItem, ModelRun, RunTable, simulate
from whisper_cascade.ggml_writer import random_whisper_model
from whisper_cascade.presets import apply_calibration, builtin_presets, get_preset
from whisper_cascade.zoo.calibrate import (
    ALLOWANCES,
    BUDGETS,
    calibrate,
    load_table,
    main,
    merge_tables,
    save_table,
)

MODELS = ("micro-s-q8_0", "micro-m-q8_0", "micro-l-q8_0")


def _table() -> RunTable:
    """Confident small-model transcripts are right; unsure ones are wrong; the largest is right."""
    items = []
    for i in range(60):
        confident = i % 3 != 0
        s = ModelRun(0.9 if confident else 0.3, 0 if confident else 3, 0.1)
        m = ModelRun(0.8, 0 if i % 2 else 1, 0.3)
        items.append(FitItem("short_clean_simple", 5, (s, m, ModelRun(0.95, 0, 1.0)), f"a{i}.wav"))
    return RunTable(MODELS, (1.0, 2.5, 6.0), tuple(items))


def test_calibrate_fits_each_preset_within_its_allowance() -> None:
    table = _table()
    result = calibrate(table, source="unit")
    assert result["n_items"] == 60 and result["ladder_models"] == list(MODELS)
    largest = simulate(table, {})
    assert result["always_largest"]["wer"] == largest.wer == 0.0
    for name, allowance in ALLOWANCES.items():
        entry = result["presets"][name]
        assert set(entry["thresholds"]) == set(MODELS[:-1])
        assert entry["fit_set"]["wer"] <= largest.wer + allowance + 1e-9
    # accurate: the lowest WER within the cost of always running only the largest model; the
    # unsure small-model transcripts escalate past m too, and no word is lost
    acc = result["presets"]["accurate"]
    assert acc["fit_set"]["wer"] == 0.0 and acc["max_cost_share"] == BUDGETS["accurate"]
    assert acc["fit_set"]["cost"] <= len(table.items) * table.costs[-1]
    assert 0.3 < acc["thresholds"]["micro-s-q8_0"] <= 0.9
    assert (
        acc["thresholds"]["micro-m-q8_0"] > 0.8
        and "micro-m-q8_0" not in acc["fit_set"]["model_usage"]
    )


def test_calibrate_rejects_what_cannot_be_fitted() -> None:
    with pytest.raises(InvalidArgumentError, match="two models"):
        calibrate(RunTable(("a",), (1.0,), ()))
    with pytest.raises(InvalidArgumentError, match="at least one"):
        calibrate(RunTable(("a", "b"), (1.0, 2.0), ()))


def test_table_round_trip_and_bad_file(tmp_path: Path) -> None:
    table = _table()
    save_table(table, tmp_path / "t.json")
    assert load_table(tmp_path / "t.json") == table
    (tmp_path / "bad.json").write_text('{"models": []}', encoding="utf-8")
    with pytest.raises(InvalidArgumentError, match="not a run table"):
        load_table(tmp_path / "bad.json")
    with pytest.raises(InvalidArgumentError, match="not a run table"):
        load_table(tmp_path / "missing.json")


def test_apply_calibration_sets_micro_thresholds_only() -> None:
    result = calibrate(_table())
    out = apply_calibration(presets_module._PLACEHOLDERS, result)
    for name in ALLOWANCES:
        fitted = result["presets"][name]["thresholds"]
        assert out[name].calibrated
        # fitted on q8_0 files, the threshold applies to the model whatever its file type
        assert out[name].threshold_for("micro-s") == fitted["micro-s-q8_0"]
        assert out[name].threshold_for("micro-m-q8_0") == fitted["micro-m-q8_0"]
        assert out[name].threshold_for("base") == presets_module._PLACEHOLDERS[name].threshold_for(
            "base"
        )
        assert "calibrated on 60 held-out utterances" in out[name].note
    partial = apply_calibration(
        presets_module._PLACEHOLDERS, {"presets": {"fast": {"thresholds": {}}}}
    )
    assert partial["fast"].calibrated and not partial["balanced"].calibrated
    with pytest.raises(InvalidArgumentError, match="'presets'"):
        apply_calibration(presets_module._PLACEHOLDERS, {})
    with pytest.raises(InvalidArgumentError, match="needs 'thresholds'"):
        apply_calibration(presets_module._PLACEHOLDERS, {"presets": {"fast": 3}})


def test_shipped_calibration_is_what_the_builtins_use() -> None:
    shipped = presets_module._shipped_calibration()
    if shipped is None:
        assert not any(p.calibrated for p in builtin_presets().values())
        return
    for name, entry in shipped["presets"].items():
        preset = get_preset(name)
        assert preset.calibrated
        for model, value in entry["thresholds"].items():
            assert preset.threshold_for(model) == value


def test_main_refits_saved_tables(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    save_table(_table(), tmp_path / "t.json")
    save_table(_table(), tmp_path / "u.json")
    argv = ["--table", str(tmp_path / "t.json"), "--table", str(tmp_path / "u.json")]
    assert main([*argv, "--out", str(tmp_path / "c.json")]) == 0
    data = json.loads((tmp_path / "c.json").read_text(encoding="utf-8"))
    assert set(data["presets"]) == set(ALLOWANCES) | set(BUDGETS)
    assert data["n_items"] == 2 * len(_table().items)
    assert data["source"] == f"{tmp_path / 't.json'} + {tmp_path / 'u.json'}"
    assert "always-largest WER 0.0000" in capsys.readouterr().out


def test_tables_of_different_ladders_do_not_merge() -> None:
    table = _table()
    assert merge_tables([table]) == table
    with pytest.raises(InvalidArgumentError, match="different ladders"):
        merge_tables([table, RunTable(("x", "y", "z"), table.costs, table.items)])
    with pytest.raises(InvalidArgumentError, match="different ladders"):
        merge_tables([table, RunTable(table.models, (1.0, 2.5, 9.0), table.items)])
    with pytest.raises(InvalidArgumentError, match="no run table"):
        merge_tables([])


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")
def test_main_transcribes_a_manifest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from whisper_cascade.zoo.corpus import generate_corpus

    corpus = generate_corpus(tmp_path / "corpus", 2, 5, conditions=["clean"])
    models = tmp_path / "models"
    models.mkdir()
    for seed, name in enumerate(("micro-s", "micro-m"), start=1):
        random_whisper_model(models / f"ggml-{name}.bin", seed=seed)
    out = tmp_path / "cal.json"
    argv = [
        "--manifest", str(corpus), "--ladder", "micro-s,micro-m",
        "--models-dir", str(models), "--save-table", str(tmp_path / "t.json"), "--out", str(out),
    ]  # fmt: skip
    assert main(argv) == 0
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["n_items"] == 2 and data["ladder_models"] == ["micro-s", "micro-m"]
    assert len(load_table(tmp_path / "t.json").items) == 2


def _table_with_metrics() -> RunTable:
    """The small model's errors follow its consistency; its low-confidence share is noise
    (which the default weights weigh heavily)."""
    items = []
    for i in range(60):
        low = (i % 10) / 10
        metrics = {
            "n_tokens": 8,
            "mean": 0.7,
            "consistency": 1.0 - low,
            "speech_coverage": 0.9,
            "low_confidence_ratio": ((i * 7) % 11) / 10,
            "speech_in_segments": 1.0,
        }
        s = ModelRun(0.5, 2 if low >= 0.5 else 0, 0.1, metrics=metrics)
        top = ModelRun(0.95, 0, 1.0)
        items.append(FitItem("c", 5, (s, top), f"a{i}.wav", speech_ratio=0.7))
    return RunTable(("micro-xs-q8_0", "micro-s-q8_0"), (1.0, 2.0), tuple(items))


def test_calibrate_fits_weights_per_model_then_thresholds(tmp_path: Path) -> None:
    table = _table_with_metrics()
    result = calibrate(table, source="unit")
    assert set(result["weights"]) == {"micro-xs-q8_0"}
    fit = result["weights_fit"]["micro-xs-q8_0"]
    assert fit["auc_default"][0] < 0.9 and fit["auc_fitted"][0] == 1.0
    assert "fitted weights" in result["simulation"]
    # rescored with the fitted weights, the right and wrong transcripts separate, so the
    # accurate preset keeps the sure ones on the small model at no WER cost
    accurate = result["presets"]["accurate"]
    kept = accurate["fit_set"]["model_usage"]["micro-xs-q8_0"]
    assert accurate["fit_set"]["wer"] == 0.0 and 20 <= kept <= 30
    plain = calibrate(table, fit_weights=False)
    assert plain["weights"] == {} and "balanced weights" in plain["simulation"]
    # without them the scores do not separate: within its budget accurate cannot fix a word
    assert plain["presets"]["accurate"]["fit_set"]["wer"] > accurate["fit_set"]["wer"]
    # applied: the preset scores micro-xs transcripts (any file type) with its own weights
    applied = apply_calibration(builtin_presets(), result)["balanced"]
    own = applied.weights_for("micro-xs")
    assert own == applied.weights_for("micro-xs-q8_0") != applied.weights
    assert (
        own.low_confidence_penalty == result["weights"]["micro-xs-q8_0"]["low_confidence_penalty"]
    )
    # the metrics and speech ratios survive a saved table
    save_table(table, tmp_path / "t.json")
    assert load_table(tmp_path / "t.json") == table


def test_bad_calibration_weights_raise() -> None:
    result = calibrate(_table_with_metrics())
    with pytest.raises(InvalidArgumentError, match="map model names"):
        apply_calibration(builtin_presets(), {**result, "weights": [1]})
    with pytest.raises(InvalidArgumentError, match="must be an object"):
        apply_calibration(builtin_presets(), {**result, "weights": {"micro-xs": 1}})
    with pytest.raises(InvalidArgumentError, match="unknown weights"):
        apply_calibration(builtin_presets(), {**result, "weights": {"micro-xs": {"x": 1}}})
    data = {"models": ["a"], "costs": [1.0], "items": [
        {"content_class": "c", "ref_words": 1, "runs": [[0.5, 0, 0.1, False, [1]]]}
    ]}  # fmt: skip
    with pytest.raises(InvalidArgumentError, match="not a run table"):
        load_table_from(data)


def load_table_from(data: object) -> RunTable:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "t.json"
        path.write_text(json.dumps(data), encoding="utf-8")
        return load_table(path)


def _noisy_table(small_fails_in_noise: bool) -> RunTable:
    """Half the items are noisy (pre-selection starts them on the larger model). The small
    model is sure of itself everywhere; in noise it is wrong or, the other way, right."""
    items = []
    for i in range(40):
        noisy = i % 2 == 0
        wrong = noisy and small_fails_in_noise
        small = ModelRun(0.9, 3 if wrong else 0, 0.1)
        large = ModelRun(0.9, 1 if noisy and not small_fails_in_noise else 0, 0.3)
        items.append(FitItem("c", 5, (small, large), f"a{i}.wav", start=int(noisy)))
    return RunTable(("micro-xs-q8_0", "micro-s-q8_0"), (1.0, 2.0), tuple(items))


def test_calibration_keeps_preselection_only_where_it_pays(tmp_path: Path) -> None:
    pays = calibrate(_noisy_table(small_fails_in_noise=True))["presets"]["accurate"]
    assert pays["preselect"] is True and pays["fit_set"]["wer"] == 0.0
    hurts = calibrate(_noisy_table(small_fails_in_noise=False))
    fit = hurts["presets"]["accurate"]
    assert fit["preselect"] is False and fit["fit_set"]["model_usage"] == {"micro-xs-q8_0": 40}
    applied = apply_calibration(presets_module._PLACEHOLDERS, hurts)["accurate"]
    assert (
        not applied.may_skip("micro-xs")
        and applied.may_skip("micro-s")
        and applied.may_skip("tiny")
    )
    kept = apply_calibration(presets_module._PLACEHOLDERS, {**hurts, "presets": {"fast": pays}})
    assert kept["fast"].never_skip == frozenset()
    # the start rungs survive a saved table
    save_table(_noisy_table(True), tmp_path / "t.json")
    assert [i.start for i in load_table(tmp_path / "t.json").items][:2] == [1, 0]
