"""Fit the decision matrix's weights for one model from transcripts with known errors.

The score only has to rank one model's transcripts well: its thresholds are fitted afterwards
on the scores it produces. So the weights are chosen, on a grid, to maximise the mean of two
AUCs of −score: "the transcript has an error" and "its WER is above 20 %". Different models
are confident in different ways (the smallest micro model's token probabilities say less than
its consistency does), hence one weight set per model (``calibration.json``'s ``weights``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from whisper_cascade.errors import InvalidArgumentError
from whisper_cascade.fitting import RunTable
from whisper_cascade.policy import Weights, score
from whisper_cascade.zoo.metrics import rank_auc

__all__ = [
    "BAD_WER",
    "GRID",
    "ScoredRun",
    "aucs",
    "fit_table_weights",
    "fit_weights",
    "objective",
    "rescore",
]

BAD_WER = 0.2
"""A transcript above this WER counts as bad for the second AUC."""
GRID: Mapping[str, Sequence[float]] = {
    "consistency": (0.0, 0.15, 0.4, 0.8, 1.2),
    "coverage": (0.0, 0.1, 0.25),
    # The probability of the whole text: the best single signal of "has an error" on the
    # zoo's calibration corpus (AUC 0.79 on micro-xs against 0.71 for the mean probability).
    "sequence": (0.0, 0.5, 1.5, 4.0, 10.0),
    "low_confidence_penalty": (0.0, 0.3, 0.6, 0.9),
    "logprob_penalty": (0.0, 0.3, 0.7),
    # Never 0: the no-speech penalty is the score's guard against text over silence.
    "no_speech_penalty": (0.2, 0.4, 0.6, 0.8),
}
"""The weights searched (the others keep their defaults)."""


@dataclass(frozen=True)
class ScoredRun:
    """One transcript: its confidence metrics, its file's speech ratio and its word errors."""

    metrics: Mapping[str, float]
    speech_ratio: float | None
    edits: int
    ref_words: int


@dataclass(frozen=True)
class _Share:
    speech_ratio: float


def _scores(runs: Sequence[ScoredRun], weights: Weights) -> list[float]:
    return [
        score(r.metrics, None if r.speech_ratio is None else _Share(r.speech_ratio), weights).value
        for r in runs
    ]


def aucs(runs: Sequence[ScoredRun], weights: Weights) -> tuple[float, float]:
    """AUC of −score for "has an error" and for "WER above 20 %" (NaN with one class only)."""
    negated = [-s for s in _scores(runs, weights)]
    out = []
    for labels in (
        [r.edits > 0 for r in runs],
        [r.edits > BAD_WER * max(1, r.ref_words) for r in runs],
    ):
        try:
            out.append(rank_auc(negated, labels))
        except InvalidArgumentError:
            out.append(math.nan)
    return out[0], out[1]


def objective(runs: Sequence[ScoredRun], weights: Weights) -> float:
    """The mean of the two :func:`aucs` that are defined; NaN when neither is."""
    values = [a for a in aucs(runs, weights) if not math.isnan(a)]
    return sum(values) / len(values) if values else math.nan


def fit_weights(
    runs: Sequence[ScoredRun],
    base: Weights | None = None,
    grid: Mapping[str, Sequence[float]] = GRID,
) -> Weights:
    """The grid point (on top of ``base``) with the best :func:`objective`; ``base`` itself
    when no point beats it or the runs cannot tell good from bad (all right or all wrong)."""
    base = base or Weights()
    unknown = set(grid) - set(base.__dict__)
    if unknown:
        raise InvalidArgumentError(f"unknown weights in the grid: {', '.join(sorted(unknown))}")
    best, best_value = base, objective(runs, base)
    if math.isnan(best_value):
        return base
    names = list(grid)
    for values in itertools.product(*(grid[k] for k in names)):
        try:
            weights = base.updated(dict(zip(names, values, strict=True)))
        except InvalidArgumentError:
            continue  # e.g. every positive weight 0: no score to rank by
        value = objective(runs, weights)
        if value > best_value + 1e-9:
            best, best_value = weights, value
    return best


def _column(table: RunTable, k: int) -> list[ScoredRun] | None:
    runs = []
    for item in table.items:
        run = item.runs[k]
        if run.metrics is None:
            return None
        runs.append(ScoredRun(run.metrics, item.speech_ratio, run.edits, item.ref_words))
    return runs


def fit_table_weights(
    table: RunTable, base: Weights | None = None, grid: Mapping[str, Sequence[float]] = GRID
) -> dict[str, Weights]:
    """Weights fitted for each model of ``table`` on its own transcripts; a model whose runs
    lack their metrics (a table saved before they were kept) is left out."""
    out = {}
    for k, model in enumerate(table.models):
        runs = _column(table, k)
        if runs is not None and runs:
            out[model] = fit_weights(runs, base, grid)
    return out


def rescore(table: RunTable, weights: Mapping[str, Weights]) -> RunTable:
    """``table`` with each model's scores recomputed with its ``weights`` (models not named,
    or runs without metrics, keep their scores)."""
    items = []
    for item in table.items:
        share = None if item.speech_ratio is None else _Share(item.speech_ratio)
        runs = tuple(
            run
            if run.metrics is None or model not in weights
            else replace(run, score=score(run.metrics, share, weights[model]).value)
            for model, run in zip(table.models, item.runs, strict=True)
        )
        items.append(replace(item, runs=runs))
    return RunTable(table.models, table.costs, tuple(items))
