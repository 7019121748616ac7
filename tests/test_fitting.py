"""Threshold fitting on synthetic run tables whose right answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from whisper_cascade import fitting, policy_fit
from whisper_cascade.errors import InvalidArgumentError
from whisper_cascade.fitting import (
    NEVER,
    FitItem,
    ModelRun,
    RunTable,
    fit_thresholds,
    simulate,
)
from whisper_cascade.learned import LearnedPolicy, learned_preset
from whisper_cascade.policy_fit import fit_policy, starts_under
from whisper_cascade.presets import get_preset

WORDS = 5


def _item(cls: str, *runs: tuple[float, int], flagged: int = -1) -> FitItem:
    return FitItem(
        cls,
        WORDS,
        tuple(
            ModelRun(score=s, edits=e, time_s=0.1 * (k + 1), flagged=k == flagged)
            for k, (s, e) in enumerate(runs)
        ),
    )


def _two(items: list[FitItem]) -> RunTable:
    return RunTable(("micro-s", "micro-l"), (1.0, 6.0), tuple(items))


def _separable(cls: str = "a", n: int = 10, good: float = 0.8, bad: float = 0.4) -> list[FitItem]:
    easy = [_item(cls, (good, 0), (0.9, 0)) for _ in range(n)]
    hard = [_item(cls, (bad, 3), (0.9, 0)) for _ in range(n)]
    return easy + hard


def test_a_perfect_predictor_is_separated() -> None:
    table = _two(_separable())
    th = fit_thresholds(table, 0.0)["micro-s"]
    assert 0.4 < th <= 0.8
    out = simulate(table, [th])
    assert out.wer == 0.0 and out.cost == 10 * 1.0 + 10 * 7.0
    assert out.escalation_rate == 0.5 and out.model_usage == {"micro-l": 10, "micro-s": 10}
    assert out.time_s == pytest.approx(10 * 0.1 + 10 * 0.3)
    assert simulate(table, {}).cost == 20 * 7.0  # a missing model never accepts


def test_uninformative_scores_keep_the_largest() -> None:
    items = [_item("a", (0.3 + 0.03 * i, 2 if i % 2 else 0), (0.5, 0)) for i in range(20)]
    assert fit_thresholds(_two(items), 0.0) == {"micro-s": NEVER}


def test_a_generous_wer_budget_accepts_everything_cheap() -> None:
    table = _two(_separable())
    th = fit_thresholds(table, 1.0)["micro-s"]
    assert th == 0.4  # the highest of the equally cheap thresholds
    assert simulate(table, [th]).cost == 20.0


def test_neighbour_guard_avoids_the_edge_of_a_cliff() -> None:
    good = [_item("a", (0.5, 0), (0.9, 0)) for _ in range(10)]
    bad = [_item("a", (0.48, 5), (0.9, 0))]
    table = _two(good + bad)
    assert simulate(table, [0.5]).wer == 0.0  # 0.5 alone would meet the constraint...
    assert simulate(table, [0.48]).wer > 0.0  # ...but its lower neighbour does not
    assert fit_thresholds(table, 0.0)["micro-s"] > 0.5


def test_hallucination_flags_escalate_whatever_the_score() -> None:
    items = _separable() + [_item("a", (0.99, 5), (0.9, 0), flagged=0)]
    table = _two(items)
    th = fit_thresholds(table, 0.0)["micro-s"]
    assert th <= 0.8 and simulate(table, [th]).wer == 0.0


def test_three_rungs_exhaustive_and_coordinate_descent_agree(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    items = (
        [_item("a", (0.8, 0), (0.9, 0), (0.9, 0)) for _ in range(6)]
        + [_item("a", (0.3, 4), (0.7, 0), (0.9, 0)) for _ in range(6)]
        + [_item("a", (0.2, 4), (0.3, 4), (0.9, 0)) for _ in range(6)]
    )
    table = RunTable(("s", "m", "l"), (1.0, 2.5, 6.0), tuple(items))
    exhaustive = fit_thresholds(table, 0.0)
    monkeypatch.setattr(fitting, "EXHAUSTIVE_MAX", 0)
    descent = fit_thresholds(table, 0.0)
    for th in (exhaustive, descent):
        assert 0.3 < th["s"] <= 0.8 and 0.3 < th["m"] <= 0.7
        assert simulate(table, th).cost == 6 * 1.0 + 6 * 3.5 + 6 * 9.5


def test_fit_policy_per_class_and_report() -> None:
    # class "a": the small model is right when confident; class "b": confidently wrong
    a = _separable("a", n=10, good=0.6, bad=0.2)
    b = [_item("b", (0.9, 3), (0.9, 0)) for _ in range(20)]
    rare = [_item("c", (0.9, 0), (0.9, 0)) for _ in range(3)]
    table = _two(a + b + rare)
    policy = fit_policy(
        table, ladder="custom", max_wer_increase=0.0, min_class_items=15, relative_to="largest"
    )
    assert set(policy.class_thresholds) == {"a", "b"}
    assert 0.2 < policy.class_thresholds["a"]["micro-s"] <= 0.6
    assert policy.class_thresholds["b"]["micro-s"] > 0.9
    assert policy.thresholds["micro-s"] > 0.9  # globally the small model cannot be trusted
    rep = policy.report
    assert rep["learned"]["wer"] <= rep["always_largest"]["wer"] + 1e-12
    assert rep["learned"]["cost"] < rep["always_largest"]["cost"]
    assert rep["base"]["preset"] == "balanced" and rep["n_per_class"] == {"a": 20, "b": 20, "c": 3}
    assert policy.n_items == 43 and not rep["class_thresholds_dropped"]
    again = LearnedPolicy.from_json(policy.to_json())
    assert again.class_thresholds == policy.class_thresholds
    preset = learned_preset(again)
    assert preset.threshold_for("micro-s", "a") == policy.class_thresholds["a"]["micro-s"]


def test_fit_policy_is_cheaper_at_the_base_presets_wer() -> None:
    # balanced accepts every confident small transcript; some of them are wrong, and the
    # scores cannot tell which: the fit relative to the base keeps its WER at less cost.
    # Names no calibration knows, so the base is balanced's generic threshold (0.6), not
    # whatever the shipped calibration holds for the micro rungs.
    unsure_right = [_item("a", (0.3, 0), (0.9, 0)) for _ in range(10)]
    sure_wrong = [_item("a", (0.85, 2), (0.9, 0)) for _ in range(10)]
    table = RunTable(("user-s", "user-l"), (1.0, 6.0), tuple(unsure_right + sure_wrong))
    assert get_preset("balanced").threshold_for("user-s") == pytest.approx(0.6)
    policy = fit_policy(table, ladder="custom")
    rep = policy.report
    assert rep["relative_to"] == "base" and rep["max_wer_increase"] == 0.0
    assert rep["learned"]["wer"] <= rep["base"]["wer"] + 1e-12
    assert rep["learned"]["cost"] < rep["base"]["cost"]
    assert rep["learned"]["wer"] > rep["always_largest"]["wer"]  # not bound to the largest's
    strict = fit_policy(table, ladder="custom", relative_to="largest").report
    assert strict["learned"]["wer"] == strict["always_largest"]["wer"] == 0.0
    with pytest.raises(InvalidArgumentError, match="relative_to"):
        fit_policy(table, ladder="custom", relative_to="oracle")


def test_bad_inputs_raise_typed_errors() -> None:
    with pytest.raises(InvalidArgumentError, match="one relative cost"):
        RunTable(("a", "b"), (1.0,), ())
    with pytest.raises(InvalidArgumentError, match="runs for"):
        RunTable(("a", "b"), (1.0, 2.0), (_item("x", (0.5, 0)),))
    table = _two(_separable())
    with pytest.raises(InvalidArgumentError, match="max_wer_increase"):
        fit_thresholds(table, -0.1)
    with pytest.raises(InvalidArgumentError, match="thresholds"):
        simulate(table, [0.1, 0.2])
    with pytest.raises(InvalidArgumentError, match="no feedback"):
        fit_policy(_two([]), ladder="x")
    with pytest.raises(InvalidArgumentError, match="min_class_items"):
        fit_policy(table, ladder="x", min_class_items=0)
    assert simulate(_two([]), [0.5]).n == 0
    assert fit_thresholds(RunTable(("only",), (1.0,), ()), 0.0) == {}


def test_keep_best_keeps_the_best_scoring_transcript() -> None:
    # Rung 0 is sure and right where rung 1 is unsure and wrong, and the other way round.
    small_wins = [_item("a", (0.7, 0), (0.5, 2)) for _ in range(10)]
    large_wins = [_item("a", (0.4, 2), (0.8, 0)) for _ in range(10)]
    tie = [_item("a", (0.6, 1), (0.6, 0))]  # a tie goes to the later rung
    suspect = [_item("a", (0.3, 0), (0.9, 4), flagged=1)]  # a suspect never wins
    table = _two(small_wins + large_wins + tie + suspect)
    everything = simulate(table, [NEVER], keep_best=True)
    assert everything.edits == 0 and everything.cost == 22 * 7.0
    assert everything.model_usage == {"micro-l": 11, "micro-s": 11}
    assert simulate(table, [NEVER]).edits == 10 * 2 + 4
    # Between the two groups' scores: the unsure rung-0 transcripts escalate.
    assert simulate(table, [0.65], keep_best=True).edits == 0
    assert simulate(table, [0.65]).edits == 4  # the suspect's transcript is kept
    # A fit with the same allowance is never worse off keeping the best.
    for allowance in (0.0, 0.1):
        best = simulate(table, fit_thresholds(table, allowance, keep_best=True), keep_best=True)
        last = simulate(table, fit_thresholds(table, allowance))
        assert (best.cost, best.edits) <= (last.cost, last.edits)


def test_fit_policy_keeps_the_base_presets_rule() -> None:
    table = _two([_item("a", (0.7, 0), (0.5, 2)) for _ in range(40)])
    fitting_preset = get_preset("balanced").with_overrides(keep_best=True)
    original = policy_fit.get_preset
    try:
        policy_fit.get_preset = lambda name: fitting_preset  # type: ignore[assignment]
        report = fit_policy(table, ladder="micro", min_class_items=100).report
    finally:
        policy_fit.get_preset = original  # type: ignore[assignment]
    assert report["learned"]["wer"] == 0.0


def _started(item: FitItem, start: int) -> FitItem:
    return FitItem(item.content_class, item.ref_words, item.runs, item.audio, start=start)


def test_preselect_starts_items_at_their_rung() -> None:
    # Noisy items (start 1): the small model is wrong but sure of itself.
    noisy = [_started(_item("a", (0.9, 3), (0.5, 0)), 1) for _ in range(10)]
    clean = [_item("a", (0.9, 0), (0.9, 0)) for _ in range(10)]
    table = _two(noisy + clean)
    from_zero = simulate(table, [0.5])
    assert from_zero.edits == 30 and from_zero.cost == 20 * 1.0
    skipped = simulate(table, [0.5], preselect=True)
    assert skipped.edits == 0 and skipped.cost == 10 * 6.0 + 10 * 1.0
    assert skipped.escalation_rate == 0.0 and skipped.time_s == pytest.approx(10 * 0.2 + 10 * 0.1)
    # keep_best never keeps a rung that did not run, however well it scored
    assert simulate(table, [NEVER], keep_best=True, preselect=True).edits == 0
    assert simulate(table, [NEVER], keep_best=True).edits == 30
    # the fit knows pre-selection saves the wrong cheap transcripts
    assert fit_thresholds(table, 0.0) == {"micro-s": NEVER}
    assert fit_thresholds(table, 0.0, preselect=True)["micro-s"] <= 0.9
    with pytest.raises(InvalidArgumentError, match="starts at rung 2"):
        _two([_started(clean[0], 2)])


def test_starts_under_a_preset() -> None:
    table = RunTable(
        ("micro-xs-q8_0", "micro-s", "micro-m"),
        (1.0, 2.0, 3.0),
        tuple(_started(_item("a", (0.5, 0), (0.5, 0), (0.5, 0)), k) for k in (0, 1, 2)),
    )
    base = get_preset("balanced").with_overrides(never_skip=frozenset())
    assert [i.start for i in starts_under(table, base).items] == [0, 1, 2]
    kept = base.with_overrides(never_skip=frozenset({"micro-s"}))
    assert [i.start for i in starts_under(table, kept).items] == [0, 1, 1]
    kept = base.with_overrides(never_skip=frozenset({"micro-xs"}))
    assert [i.start for i in starts_under(table, kept).items] == [0, 0, 0]
    off = base.with_overrides(preselect=False)
    assert [i.start for i in starts_under(table, off).items] == [0, 0, 0]


def test_lowest_wer_within_a_cost_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    items = (
        [_item("a", (0.8, 0), (0.9, 0), (0.9, 0)) for _ in range(6)]
        + [_item("a", (0.3, 4), (0.7, 0), (0.9, 0)) for _ in range(6)]
        + [_item("a", (0.2, 4), (0.3, 4), (0.9, 0)) for _ in range(6)]
    )
    table = RunTable(("s", "m", "l"), (1.0, 2.5, 6.0), tuple(items))
    # enough for the perfect policy (6 + 21 + 57 = 84): no word lost, nothing wasted
    for budget in (84.0, 200.0):
        th = fitting.fit_lowest_wer(table, budget)
        out = simulate(table, th)
        assert out.edits == 0 and out.cost == 84.0
    # less: the best the budget allows (the m rung fixes the middle group cheaply)
    th = fitting.fit_lowest_wer(table, 50.0)
    out = simulate(table, th)
    assert out.cost == 48.0 and out.edits == 6 * 4
    # nothing fits: every rung accepts
    assert simulate(table, fitting.fit_lowest_wer(table, 1.0)).cost == 18 * 1.0
    monkeypatch.setattr(fitting, "EXHAUSTIVE_MAX", 0)
    assert simulate(table, fitting.fit_lowest_wer(table, 84.0)).edits == 0
    with pytest.raises(InvalidArgumentError, match="finite"):
        fitting.fit_lowest_wer(table, float("nan"))
    assert fitting.fit_lowest_wer(RunTable(("s",), (1.0,), ()), 1.0) == {}


def test_lowest_wer_is_smoothed_over_grid_neighbours() -> None:
    # One lucky threshold (0.5) fixes a file; the grid points around it lose words.
    items = [_item("a", (0.5, 0), (0.5, 1))] + [
        _item("a", (0.5 + 0.02 * k, 0 if k % 2 else 2), (0.9, 0)) for k in range(1, 20)
    ]
    table = _two(items)
    th = fitting.fit_lowest_wer(table, 1000.0)["micro-s"]
    assert th > 0.88  # escalating everything is the robust lowest WER here


def test_an_anchor_is_always_admissible() -> None:
    # At 0.5 the fit set's WER equals the anchor's; one grid step lower (0.48) it jumps, so
    # the guard alone rejects 0.5 and falls back to the costliest vector.
    edge = [_item("a", (0.49, 3), (0.9, 0))]
    sure = [_item("a", (0.51, 0), (0.9, 0)) for _ in range(9)]
    unsure_wrong = [_item("a", (0.3, 2), (0.9, 0)) for _ in range(5)]
    table = _two(edge + sure + unsure_wrong)
    anchored_wer = simulate(table, [0.5]).wer
    free = fit_thresholds(table, 0.0, baseline_wer=anchored_wer)
    assert simulate(table, free).cost > simulate(table, [0.5]).cost
    anchored = fit_thresholds(table, 0.0, baseline_wer=anchored_wer, anchor=[0.5])
    assert anchored == {"micro-s": 0.5}
    # an anchor off the grid is searched too; one above every score means "never"
    assert fit_thresholds(table, 0.0, baseline_wer=anchored_wer, anchor={"micro-s": 0.505}) == {
        "micro-s": 0.505
    }
    assert fit_thresholds(table, 0.0, anchor=[7.0]) == {"micro-s": NEVER}


def test_the_learned_policy_never_costs_more_than_its_base_on_the_fit_set() -> None:
    rng = np.random.default_rng(5)
    for trial in range(30):
        items = [
            FitItem(
                rng.choice(["a", "b"]),
                WORDS,
                tuple(
                    ModelRun(score=float(rng.random()), edits=int(rng.integers(0, 3 - k)))
                    for k in range(3)
                ),
            )
            for _ in range(int(rng.integers(5, 60)))
        ]
        table = RunTable(("micro-xs-q8_0", "micro-s-q8_0", "big"), (0.5, 1.0, 3.0), tuple(items))
        rep = fit_policy(table, ladder="micro", min_class_items=20).report
        assert rep["learned"]["cost"] <= rep["base"]["cost"] + 1e-9, trial
        assert rep["learned"]["wer"] <= rep["base"]["wer"] + 1e-12, trial


def test_largest_only_counts_the_last_rung_alone() -> None:
    table = _two([_item("a", (0.9, 2), (0.4, 0)) for _ in range(4)])
    alone = fitting.largest_only(table)
    assert alone.cost == 4 * 6.0 and alone.edits == 0 and alone.escalation_rate == 0.0
    assert alone.model_usage == {"micro-l": 4}
    assert simulate(table, {}).cost == 4 * 7.0  # climbing the ladder pays every rung
