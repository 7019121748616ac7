"""The learned policy: escalation thresholds fitted from a run table relative to a preset.

:func:`fit_policy` is what ``whisper-cascade learn`` runs on the feedback's run table (see
:mod:`whisper_cascade.fitting` for the table, the replay and the threshold search). With
``relative_to="base"`` (the default) the base preset's own thresholds are an admissible answer,
so on the fit set the learned policy never costs more than the preset it replaces.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

from whisper_cascade.errors import InvalidArgumentError
from whisper_cascade.fitting import GRID, RunTable, fit_thresholds, largest_only, simulate
from whisper_cascade.learned import LearnedPolicy
from whisper_cascade.presets import Preset, get_preset

__all__ = ["fit_policy", "starts_under"]


def starts_under(table: RunTable, preset: Preset) -> RunTable:
    """``table`` with each item's start rung as ``preset`` would choose it: 0 without
    pre-selection, else the rules' rung, never past a model the preset must not skip."""
    first_kept = next(
        (i for i, m in enumerate(table.models) if not preset.may_skip(m)), len(table.models)
    )
    items = tuple(
        replace(i, start=min(i.start, first_kept) if preset.preselect else 0) for i in table.items
    )
    return RunTable(table.models, table.costs, items)


def fit_policy(
    table: RunTable,
    *,
    ladder: str,
    base_preset: str = "balanced",
    max_wer_increase: float = 0.0,
    min_class_items: int = 30,
    grid: Sequence[float] = GRID,
    relative_to: str = "base",
) -> LearnedPolicy:
    """Global thresholds from all items, per-class ones for classes with enough items.

    The cheapest thresholds whose WER on the fit set stays within ``max_wer_increase`` of the
    base preset's WER (``relative_to="base"``: cheaper at equal WER) or of always running the
    last rung (``"largest"``); per class, of that baseline on the class's items. The report
    compares, on the fit set, the learned policy with ``base_preset``'s thresholds and with
    always running the last rung. If the per-class thresholds together break the global WER
    constraint (items of small classes use the global ones), they are dropped.
    """
    if relative_to not in ("base", "largest"):
        raise InvalidArgumentError(f"relative_to must be 'base' or 'largest', got {relative_to!r}")
    if min_class_items < 1:
        raise InvalidArgumentError(f"min_class_items must be >= 1, got {min_class_items}")
    if not table.items:
        raise InvalidArgumentError("no feedback items to fit on")
    base = get_preset(base_preset)
    keep_best = base.keep_best
    table = starts_under(table, base)
    counts = Counter(i.content_class for i in table.items)
    base_th = {m: base.threshold_for(m) for m in table.models[:-1]}
    base_classes = {c: {m: base.threshold_for(m, c) for m in table.models[:-1]} for c in counts}

    def fit(part: RunTable, anchor: dict[str, float]) -> dict[str, float]:
        if relative_to == "largest":
            return fit_thresholds(part, max_wer_increase, grid, keep_best=keep_best, preselect=True)
        baseline = simulate(part, base_th, base_classes, keep_best=keep_best, preselect=True).wer
        return fit_thresholds(
            part, max_wer_increase, grid, keep_best=keep_best, preselect=True,
            baseline_wer=baseline, anchor=anchor,
        )  # fmt: skip

    thresholds = fit(table, base_th)
    classes: dict[str, dict[str, float]] = {}
    for name, count in sorted(counts.items()):
        if count >= min_class_items:
            part = table.subset([i.content_class == name for i in table.items])
            classes[name] = fit(part, base_classes[name])
    largest = largest_only(table)
    base_outcome = simulate(table, base_th, base_classes, keep_best=keep_best, preselect=True)
    baseline_wer = base_outcome.wer if relative_to == "base" else largest.wer
    limit = baseline_wer + max_wer_increase + 1e-12
    learned = simulate(table, thresholds, classes, keep_best=keep_best, preselect=True)
    dropped = False
    if classes and learned.wer > limit:
        classes, dropped = {}, True
        learned = simulate(table, thresholds, keep_best=keep_best, preselect=True)
    report = {
        "learned": learned.to_dict(),
        "base": {"preset": base.name, **base_outcome.to_dict()},
        "always_largest": largest.to_dict(),
        "n_per_class": dict(sorted(counts.items())),
        "max_wer_increase": max_wer_increase,
        "relative_to": relative_to,
        "min_class_items": min_class_items,
        "class_thresholds_dropped": dropped,
        "guard": "lower grid neighbours must also meet the WER limit"
        + ("; the base preset's thresholds are always admissible" if relative_to == "base" else ""),
        "simulation": "whole-file escalation from the rung the base preset's pre-selection "
        "rules choose",
    }
    return LearnedPolicy(
        ladder=ladder,
        thresholds=thresholds,
        class_thresholds=classes,
        base_preset=base.name,
        n_items=len(table.items),
        report=report,
    )
