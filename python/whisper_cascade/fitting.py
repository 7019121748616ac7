"""Fit escalation thresholds from a table of runs: the cheapest ladder policy at equal WER.

The input (:class:`RunTable`) holds, for every feedback item, its content class and the outcome
of EVERY model of the ladder: score, hallucination flag, word edits against the reference and
the measured time. :func:`simulate` replays whole-file escalation from rung 0: a rung's
transcript is accepted when its score reaches the rung's threshold and no hallucination is
suspected; the last rung always accepts. The transcript kept is the last one, or with
``keep_best`` (a preset's :attr:`~whisper_cascade.presets.Preset.keep_best`, as in the cascade)
the best-scoring of the rungs that ran (ties to the later rung, hallucination suspects last).
The cost of an item is the sum of the relative costs of the rungs that ran.

:func:`fit_thresholds` searches a grid (0, 0.02, ..., 1, and 1.01 = never accept at that rung)
for the vector of the cheapest total cost subject to
``WER ≤ WER(always the last rung) + max_wer_increase``: exhaustively when the grid has at most
:data:`EXHAUSTIVE_MAX` vectors, else by coordinate descent from "always the last rung".

Overfitting guard: a vector is admissible only if it AND each grid neighbour one step lower in
one coordinate (a riskier policy) meet the constraint, so a threshold that sits on the edge of
a WER cliff of the fit set is never picked. "Always the last rung" is always admissible.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from whisper_cascade.errors import InvalidArgumentError
from whisper_cascade.learned import LearnedPolicy
from whisper_cascade.presets import get_preset

__all__ = [
    "EXHAUSTIVE_MAX",
    "GRID",
    "NEVER",
    "FitItem",
    "ModelRun",
    "Outcome",
    "RunTable",
    "fit_policy",
    "fit_thresholds",
    "simulate",
]

NEVER = 1.01
"""A threshold above every score: that rung never accepts."""
GRID: tuple[float, ...] = tuple(round(0.02 * i, 2) for i in range(51)) + (NEVER,)
EXHAUSTIVE_MAX = 20_000
_CHUNK = 512


@dataclass(frozen=True)
class ModelRun:
    """One model's transcript of one item: score, hallucination flag, edits, time, and the
    confidence metrics the score came from (when kept, the score can be recomputed with other
    weights: :mod:`whisper_cascade.weight_fit`)."""

    score: float
    edits: int
    time_s: float = 0.0
    flagged: bool = False
    metrics: Mapping[str, float] | None = None


@dataclass(frozen=True)
class FitItem:
    """One feedback item: its class, reference word count, one run per ladder model, and its
    speech ratio (from the audio features; the score reads it)."""

    content_class: str
    ref_words: int
    runs: tuple[ModelRun, ...]
    audio: str = ""
    speech_ratio: float | None = None


@dataclass(frozen=True)
class RunTable:
    """Runs of every model of a ladder (cheapest first) on every feedback item."""

    models: tuple[str, ...]
    costs: tuple[float, ...]
    items: tuple[FitItem, ...]

    def __post_init__(self) -> None:
        if not self.models or len(self.costs) != len(self.models):
            raise InvalidArgumentError("a run table needs one relative cost per model")
        for item in self.items:
            if len(item.runs) != len(self.models):
                raise InvalidArgumentError(
                    f"item {item.audio or '?'} has {len(item.runs)} runs for "
                    f"{len(self.models)} models"
                )

    def subset(self, keep: Sequence[bool] | npt.NDArray[np.bool_]) -> RunTable:
        """The table of the items where ``keep`` is true."""
        return RunTable(
            self.models, self.costs, tuple(i for i, k in zip(self.items, keep, strict=True) if k)
        )

    def arrays(self) -> dict[str, npt.NDArray[Any]]:
        """Scores, flags, edits, times (items × models) and reference words (items)."""

        def grid(attr: str, dtype: Any) -> npt.NDArray[Any]:
            rows = [[getattr(r, attr) for r in item.runs] for item in self.items]
            return np.array(rows, dtype=dtype).reshape(len(self.items), len(self.models))

        return {
            "score": grid("score", np.float64),
            "flagged": grid("flagged", bool),
            "edits": grid("edits", np.float64),
            "time": grid("time_s", np.float64),
            "words": np.array([i.ref_words for i in self.items], dtype=np.float64),
        }


@dataclass(frozen=True)
class Outcome:
    """What a threshold policy does on a table: WER, cost, time, escalations, usage."""

    n: int
    wer: float
    edits: float
    ref_words: float
    cost: float
    time_s: float
    escalation_rate: float
    model_usage: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "n": self.n,
            "wer": self.wer,
            "cost": self.cost,
            "time_s": self.time_s,
            "escalation_rate": self.escalation_rate,
            "model_usage": dict(self.model_usage),
        }


def _rate(edits: float, words: float) -> float:
    if words == 0:
        return 0.0 if edits == 0 else 1.0
    return edits / words


def _kept_rungs(arrays: Mapping[str, npt.NDArray[Any]]) -> npt.NDArray[np.int64]:
    """``out[i, r]``: the rung whose transcript item ``i`` keeps when rungs ``0..r`` ran."""
    scores = np.where(arrays["flagged"], -np.inf, arrays["score"])
    n, m = scores.shape
    out = np.zeros((n, m), dtype=np.int64)
    top, idx = scores[:, 0].copy(), np.zeros(n, dtype=np.int64)
    for r in range(1, m):
        later = scores[:, r] >= top
        top, idx = np.where(later, scores[:, r], top), np.where(later, r, idx)
        out[:, r] = idx
    return out


def _final_rungs(
    scores: npt.NDArray[np.float64], flagged: npt.NDArray[np.bool_], th: npt.NDArray[np.float64]
) -> npt.NDArray[np.int64]:
    """Final rung per (vector, item): ``th`` is vectors × (models − 1)."""
    m = scores.shape[1]
    accept = (scores[None, :, : m - 1] >= th[:, None, :]) & ~flagged[None, :, : m - 1]
    accept = np.concatenate([accept, np.ones(accept.shape[:2] + (1,), dtype=bool)], axis=2)
    final: npt.NDArray[np.int64] = np.argmax(accept, axis=2)
    return final


def _totals(
    table: RunTable,
    arrays: Mapping[str, npt.NDArray[Any]],
    th: npt.NDArray[np.float64],
    keep_best: bool = False,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(total edits, total cost) per threshold vector (rows of ``th``)."""
    cum_cost = np.cumsum(np.asarray(table.costs, dtype=np.float64))
    edits_out = np.empty(len(th))
    cost_out = np.empty(len(th))
    n = len(table.items)
    kept = _kept_rungs(arrays) if keep_best else np.tile(np.arange(len(table.models)), (n, 1))
    for lo in range(0, len(th), _CHUNK):
        part = th[lo : lo + _CHUNK]
        final = _final_rungs(arrays["score"], arrays["flagged"], part)
        rows = np.arange(n)[None, :]
        edits_out[lo : lo + len(part)] = arrays["edits"][rows, kept[rows, final]].sum(axis=1)
        cost_out[lo : lo + len(part)] = cum_cost[final].sum(axis=1)
    return edits_out, cost_out


def _vector(table: RunTable, thresholds: Sequence[float] | Mapping[str, float]) -> list[float]:
    if isinstance(thresholds, Mapping):
        return [float(thresholds.get(m, NEVER)) for m in table.models[:-1]]
    values = [float(t) for t in thresholds]
    if len(values) != len(table.models) - 1:
        raise InvalidArgumentError(
            f"expected {len(table.models) - 1} thresholds (every model but the last)"
        )
    return values


def simulate(
    table: RunTable,
    thresholds: Sequence[float] | Mapping[str, float],
    class_thresholds: Mapping[str, Mapping[str, float]] | None = None,
    *,
    keep_best: bool = False,
) -> Outcome:
    """Replay whole-file escalation from rung 0 under these thresholds (see the module doc).

    ``thresholds`` is one value per model but the last, or a mapping by model name (a missing
    model never accepts); ``class_thresholds`` override them for items of a class.
    ``keep_best`` keeps the best-scoring transcript of the rungs that ran, not the last.
    """
    arrays = table.arrays()
    n, m = len(table.items), len(table.models)
    default = _vector(table, thresholds)
    named = dict(zip(table.models[:-1], default, strict=True))
    per_class = {c: _vector(table, {**named, **t}) for c, t in (class_thresholds or {}).items()}
    if n == 0:
        return Outcome(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, {})
    th = np.array([per_class.get(i.content_class, default) for i in table.items]).reshape(n, -1)
    accept = (arrays["score"][:, : m - 1] >= th) & ~arrays["flagged"][:, : m - 1]
    accept = np.concatenate([accept, np.ones((n, 1), dtype=bool)], axis=1)
    final = np.argmax(accept, axis=1)
    rows = np.arange(n)
    kept = _kept_rungs(arrays)[rows, final] if keep_best else final
    edits = float(arrays["edits"][rows, kept].sum())
    words = float(arrays["words"].sum())
    cost = float(np.cumsum(np.asarray(table.costs))[final].sum())
    time_s = float(sum(arrays["time"][i, : final[i] + 1].sum() for i in range(n)))
    usage = Counter(table.models[int(f)] for f in kept)
    return Outcome(
        n=n,
        wer=_rate(edits, words),
        edits=edits,
        ref_words=words,
        cost=cost,
        time_s=time_s,
        escalation_rate=float(np.mean(final > 0)),
        model_usage=dict(sorted(usage.items(), key=lambda kv: (-kv[1], kv[0]))),
    )


def _admissible(
    table: RunTable,
    arrays: Mapping[str, npt.NDArray[Any]],
    idx: npt.NDArray[np.int64],
    limit: float,
    grid: npt.NDArray[np.float64],
    keep_best: bool,
) -> npt.NDArray[np.bool_]:
    """Which grid-index vectors (rows of ``idx``) and all their lower neighbours meet ``limit``."""
    ok = _totals(table, arrays, grid[idx], keep_best)[0] <= limit
    for j in range(idx.shape[1]):
        lower = idx.copy()
        lower[:, j] = np.maximum(lower[:, j] - 1, 0)
        ok &= _totals(table, arrays, grid[lower], keep_best)[0] <= limit
    never = np.all(idx == len(grid) - 1, axis=1)
    result: npt.NDArray[np.bool_] = ok | never
    return result


def _best(
    table: RunTable,
    arrays: Mapping[str, npt.NDArray[Any]],
    idx: npt.NDArray[np.int64],
    limit: float,
    grid: npt.NDArray[np.float64],
    keep_best: bool,
) -> npt.NDArray[np.int64]:
    """The admissible row of ``idx`` with the least cost, then fewest edits, then highest."""
    edits, cost = _totals(table, arrays, grid[idx], keep_best)
    ok = _admissible(table, arrays, idx, limit, grid, keep_best)
    order = np.lexsort((-idx.sum(axis=1), edits, cost, ~ok))
    best: npt.NDArray[np.int64] = idx[order[0]]
    return best


def fit_thresholds(
    table: RunTable,
    max_wer_increase: float = 0.005,
    grid: Sequence[float] = GRID,
    *,
    keep_best: bool = False,
) -> dict[str, float]:
    """The cheapest admissible thresholds (one per model but the last; see the module doc);
    ``keep_best`` as in :func:`simulate`."""
    if not (math.isfinite(max_wer_increase) and max_wer_increase >= 0):
        raise InvalidArgumentError(f"max_wer_increase must be >= 0, got {max_wer_increase}")
    values = np.array(sorted({float(g) for g in grid} | {NEVER}), dtype=np.float64)
    k = len(table.models) - 1
    if k == 0 or not table.items:
        return {m: NEVER for m in table.models[:-1]}
    arrays = table.arrays()
    baseline = float(arrays["edits"][:, -1].sum())
    limit = baseline + max_wer_increase * float(arrays["words"].sum()) + 1e-9
    top = len(values) - 1
    if len(values) ** k <= EXHAUSTIVE_MAX:
        idx = np.array(list(itertools.product(range(len(values)), repeat=k)), dtype=np.int64)
        best = _best(table, arrays, idx, limit, values, keep_best)
    else:
        best = np.full(k, top, dtype=np.int64)
        for _ in range(20):
            before = best.copy()
            for j in range(k):
                idx = np.repeat(best[None, :], len(values), axis=0)
                idx[:, j] = np.arange(len(values))
                best = _best(table, arrays, idx, limit, values, keep_best)
            if np.array_equal(best, before):
                break
    return {m: float(values[i]) for m, i in zip(table.models[:-1], best, strict=True)}


def fit_policy(
    table: RunTable,
    *,
    ladder: str,
    base_preset: str = "balanced",
    max_wer_increase: float = 0.005,
    min_class_items: int = 30,
    grid: Sequence[float] = GRID,
) -> LearnedPolicy:
    """Global thresholds from all items, per-class ones for classes with enough items.

    The report compares, on the fit set, the learned policy with ``base_preset``'s thresholds
    and with always running the last rung. If the per-class thresholds together break the
    global WER constraint (items of small classes use the global ones), they are dropped.
    """
    if min_class_items < 1:
        raise InvalidArgumentError(f"min_class_items must be >= 1, got {min_class_items}")
    if not table.items:
        raise InvalidArgumentError("no feedback items to fit on")
    base = get_preset(base_preset)
    keep_best = base.keep_best
    thresholds = fit_thresholds(table, max_wer_increase, grid, keep_best=keep_best)
    counts = Counter(i.content_class for i in table.items)
    classes: dict[str, dict[str, float]] = {}
    for name, count in sorted(counts.items()):
        if count >= min_class_items:
            keep = [i.content_class == name for i in table.items]
            classes[name] = fit_thresholds(
                table.subset(keep), max_wer_increase, grid, keep_best=keep_best
            )
    largest = simulate(table, {})
    limit = largest.wer + max_wer_increase + 1e-12
    learned = simulate(table, thresholds, classes, keep_best=keep_best)
    dropped = False
    if classes and learned.wer > limit:
        classes, dropped = {}, True
        learned = simulate(table, thresholds, keep_best=keep_best)
    base_th = {m: base.threshold_for(m) for m in table.models[:-1]}
    base_classes = {c: {m: base.threshold_for(m, c) for m in table.models[:-1]} for c in counts}
    report = {
        "learned": learned.to_dict(),
        "base": {
            "preset": base.name,
            **simulate(table, base_th, base_classes, keep_best=keep_best).to_dict(),
        },
        "always_largest": largest.to_dict(),
        "n_per_class": dict(sorted(counts.items())),
        "max_wer_increase": max_wer_increase,
        "min_class_items": min_class_items,
        "class_thresholds_dropped": dropped,
        "guard": "lower grid neighbours must also meet the WER limit",
        "simulation": "whole-file escalation from the first rung",
    }
    return LearnedPolicy(
        ladder=ladder,
        thresholds=thresholds,
        class_thresholds=classes,
        base_preset=base.name,
        n_items=len(table.items),
        report=report,
    )
