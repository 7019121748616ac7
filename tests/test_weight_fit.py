"""Fitting the decision weights of one model (weight_fit), per model on a run table."""

from __future__ import annotations

import math
import random

import pytest

from whisper_cascade.errors import InvalidArgumentError
from whisper_cascade.fitting import FitItem, ModelRun, RunTable
from whisper_cascade.policy import Weights, score
from whisper_cascade.weight_fit import (
    ScoredRun,
    aucs,
    fit_table_weights,
    fit_weights,
    objective,
    rescore,
)

GRID = {"coverage": (0.0, 0.25), "low_confidence_penalty": (0.0, 0.9)}


def _metrics(low: float, coverage: float) -> dict[str, float]:
    return {
        "n_tokens": 10,
        "mean": 0.8,
        "consistency": 0.5,
        "speech_coverage": coverage,
        "low_confidence_ratio": low,
        "speech_in_segments": 1.0,
    }


def _runs(n: int, seed: int) -> list[ScoredRun]:
    """Runs whose errors follow the low-confidence share, while coverage is noise."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        low = rng.random()
        edits = int(low > 0.5) * rng.choice((1, 5))
        out.append(ScoredRun(_metrics(low, rng.random()), 0.8, edits, 10))
    return out


def test_fit_finds_the_informative_penalty_and_holds_out() -> None:
    fitted = fit_weights(_runs(200, 1), Weights(low_confidence_penalty=0.0), GRID)
    assert fitted.low_confidence_penalty == 0.9 and fitted.coverage == 0.0
    held = _runs(200, 2)
    zero = Weights(low_confidence_penalty=0.0, coverage=0.25)
    assert aucs(held, fitted)[0] > aucs(held, zero)[0] + 0.2
    assert objective(held, fitted) == pytest.approx(sum(aucs(held, fitted)) / 2)


def test_fit_weighs_the_sequence_confidence_when_errors_follow_length() -> None:
    """Every token equally likely: the mean cannot tell a long text (more chances of an error)
    from a short one; the probability of the whole text can."""
    rng = random.Random(4)
    runs = []
    for _ in range(300):
        n = rng.randint(3, 40)
        p = rng.uniform(0.95, 0.96)
        wrong = rng.random() > p**n
        m = {**_metrics(0.1, 1.0), "n_tokens": n, "mean": p, "geometric_mean": p}
        runs.append(ScoredRun(m, 0.8, int(wrong), 10))
    fitted = fit_weights(runs, Weights(), {"sequence": (0.0, 4.0)})
    assert fitted.sequence == 4.0
    assert aucs(runs, fitted)[0] > aucs(runs, Weights())[0] + 0.1
    # A grid point with every positive weight 0 is skipped, not raised.
    only_sequence = Weights(confidence=0.0, consistency=0.0, coverage=0.0, sequence=1.0)
    assert fit_weights(runs, only_sequence, {"sequence": (0.0, 2.0)}).sequence in (1.0, 2.0)


def test_one_class_keeps_the_base_and_bad_grids_raise() -> None:
    right = [ScoredRun(r.metrics, r.speech_ratio, 0, 10) for r in _runs(20, 3)]
    assert all(math.isnan(a) for a in aucs(right, Weights()))
    assert math.isnan(objective(right, Weights()))
    base = Weights(coverage=0.25)
    assert fit_weights(right, base, GRID) is base
    with pytest.raises(InvalidArgumentError, match="unknown weights in the grid: fluency"):
        fit_weights(right, grid={"fluency": (1.0,)})


def test_only_the_bad_wer_auc_defined_still_fits() -> None:
    # every transcript has an error, only some are above 20 %: the first AUC is undefined
    runs = [ScoredRun(r.metrics, None, 1 + 4 * int(r.edits > 0), 10) for r in _runs(100, 4)]
    first, second = aucs(runs, Weights())
    assert math.isnan(first) and not math.isnan(second)
    assert (
        fit_weights(runs, Weights(low_confidence_penalty=0.0), GRID).low_confidence_penalty == 0.9
    )


def test_a_silent_file_scores_through_its_speech_ratio() -> None:
    run = ScoredRun(_metrics(0.0, 1.0), 0.01, 3, 10)
    loud = ScoredRun(_metrics(0.0, 1.0), 0.9, 0, 10)
    assert aucs([run, loud], Weights()) == (1.0, 1.0)  # text over silence ranks lowest


def _table(with_metrics: bool = True) -> RunTable:
    rng = random.Random(5)
    items = []
    for i in range(80):
        low = rng.random()
        small = ModelRun(
            0.5,
            int(low > 0.5) * 3,
            0.1,
            metrics=_metrics(low, rng.random()) if with_metrics else None,
        )
        large = ModelRun(0.9, 0, 0.3)  # no metrics: keeps its score
        items.append(FitItem("c", 10, (small, large), f"a{i}.wav", speech_ratio=0.8))
    return RunTable(("xs", "s"), (1.0, 2.0), tuple(items))


def test_per_model_fit_and_rescore() -> None:
    table = _table()
    weights = fit_table_weights(table, Weights(low_confidence_penalty=0.0), GRID)
    assert set(weights) == {"xs"} and weights["xs"].low_confidence_penalty == 0.9
    rescored = rescore(table, weights)
    first = table.items[0]
    share = type("S", (), {"speech_ratio": 0.8})()
    expected = score(first.runs[0].metrics or {}, share, weights["xs"]).value
    assert rescored.items[0].runs[0].score == pytest.approx(expected)
    assert rescored.items[0].runs[1] == first.runs[1]
    assert rescore(table, {}) == table
    assert fit_table_weights(_table(with_metrics=False)) == {}
