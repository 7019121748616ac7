"""Content classes, class-aware preset thresholds and the learned-policy document."""

from __future__ import annotations

import dataclasses

import pytest

from whisper_cascade.content import ALL_CLASSES, UNKNOWN_CLASS, content_class
from whisper_cascade.errors import InvalidArgumentError, StateError
from whisper_cascade.features import analyze
from whisper_cascade.learned import (
    LearnedPolicy,
    learned_preset,
    load_policy,
    policy_key,
    save_policy,
)
from whisper_cascade.policy import Score, decide
from whisper_cascade.presets import get_preset
from whisper_cascade.store import SqliteStore


def _features(duration: float, snr: float, complexity: float):  # type: ignore[no-untyped-def]
    import numpy as np

    base = analyze(np.zeros(16_000, dtype=np.float32))
    return dataclasses.replace(base, duration_s=duration, snr_db=snr, complexity=complexity)


@pytest.mark.parametrize(
    ("duration", "snr", "complexity", "expected"),
    [
        (3.0, 40.0, 0.1, "short/clean/simple"),
        (5.0, 25.0, 0.5, "short/clean/complex"),
        (12.0, 20.0, 0.2, "medium/moderate/simple"),
        (30.0, 12.0, 0.9, "medium/moderate/complex"),
        (31.0, 11.9, 0.0, "long/noisy/simple"),
        (3600.0, -10.0, 1.0, "long/noisy/complex"),
    ],
)
def test_content_class_buckets(
    duration: float, snr: float, complexity: float, expected: str
) -> None:
    cls = content_class(_features(duration, snr, complexity))
    assert cls == expected
    assert cls in ALL_CLASSES


def test_content_class_without_analysis() -> None:
    assert content_class(None) == UNKNOWN_CLASS
    assert len(ALL_CLASSES) == len(set(ALL_CLASSES)) == 19


def test_class_thresholds_take_precedence() -> None:
    base = get_preset("balanced")
    preset = dataclasses.replace(
        base,
        thresholds={**base.thresholds, "micro-s": 0.5},  # not the shipped calibration's value
        class_thresholds={"short/clean/simple": {"micro-s": 0.2, "small": 0.9}},
    )
    assert preset.threshold_for("micro-s", "short/clean/simple") == 0.2
    assert preset.threshold_for("small-q8_0", "short/clean/simple") == 0.9
    assert preset.threshold_for("micro-s", "long/noisy/simple") == preset.thresholds["micro-s"]
    assert preset.threshold_for("micro-s") == preset.thresholds["micro-s"]
    result = Score(0.3, {}, ())
    assert decide(result, "micro-s", preset, content_class="short/clean/simple").accept
    assert not decide(result, "micro-s", preset, content_class="long/noisy/simple").accept
    with pytest.raises(InvalidArgumentError):
        dataclasses.replace(preset, class_thresholds={"x": {"micro-s": float("nan")}})


def test_policy_round_trip_through_the_store(tmp_path) -> None:  # type: ignore[no-untyped-def]
    policy = LearnedPolicy(
        ladder="micro",
        thresholds={"micro-s": 0.41, "micro-m": 0.37},
        class_thresholds={"short/noisy/complex": {"micro-s": 0.99}},
        n_items=120,
        report={"wer": 0.05},
    )
    with SqliteStore(tmp_path / "db.sqlite") as store:
        assert load_policy(store, "micro") is None
        save_policy(store, policy)
        loaded = load_policy(store, "micro")
        assert store.load_bandit_state(policy_key("micro")) is not None
    assert loaded is not None
    assert loaded.to_json() == policy.to_json()
    assert loaded.threshold_for("micro-s", "short/noisy/complex") == 0.99
    assert loaded.threshold_for("micro-s", "short/clean/simple") == 0.41
    assert loaded.threshold_for("micro-l") is None
    preset = learned_preset(loaded)
    assert preset.name == "learned" and preset.calibrated and preset.ladder == "micro"
    assert preset.threshold_for("micro-m") == 0.37
    assert preset.threshold_for("micro-s", "short/noisy/complex") == 0.99
    assert preset.threshold_for("micro-l") == get_preset("balanced").thresholds["micro-l"]


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        '{"version": 2}',
        '{"version": 1, "ladder": "micro"}',
        '{"version": 1, "ladder": "m", "thresholds": {"a": "x"}, "class_thresholds": {}}',
        '{"version": 1, "ladder": "m", "thresholds": {"a": 7}, "class_thresholds": {}}',
        '{"version": 1, "ladder": "m", "thresholds": {}, "class_thresholds": []}',
    ],
)
def test_bad_policy_documents_raise_state_error(text: str) -> None:
    with pytest.raises(StateError):
        LearnedPolicy.from_json(text)


def test_learned_preset_needs_a_policy() -> None:
    with pytest.raises(InvalidArgumentError, match="whisper-cascade learn"):
        learned_preset(None)
