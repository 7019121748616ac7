"""Fit escalation thresholds from a table of runs: the cheapest ladder policy at equal WER.

The input (:class:`RunTable`) holds, for every feedback item, its content class and the outcome
of EVERY model of the ladder: score, hallucination flag, word edits against the reference and
the measured time. :func:`simulate` replays whole-file escalation from rung 0: a rung's
transcript is accepted when its score reaches the rung's threshold and no hallucination is
suspected; the last rung always accepts. The transcript kept is the last one, or with
``keep_best`` (a preset's :attr:`~whisper_cascade.presets.Preset.keep_best`, as in the cascade)
the best-scoring of the rungs that ran (ties to the later rung, hallucination suspects last).
With ``preselect`` each item starts at the rung the pre-selection rules chose for it
(:attr:`FitItem.start`) instead of rung 0. The cost of an item is the sum of the relative costs
of the rungs that ran.

:func:`fit_thresholds` searches a grid (0, 0.02, ..., 1, and 1.01 = never accept at that rung)
for the vector of the cheapest total cost subject to
``WER ≤ WER(always the last rung) + max_wer_increase``: exhaustively when the grid has at most
:data:`EXHAUSTIVE_MAX` vectors, else by coordinate descent from "always the last rung".

Overfitting guard: a vector is admissible only if it AND each grid neighbour one step lower in
one coordinate (a riskier policy) meet the constraint, so a threshold that sits on the edge of
a WER cliff of the fit set is never picked. "Always the last rung" is always admissible, and so
is an ``anchor`` vector (the policy a fit must not be costlier than).

:func:`fit_lowest_wer` answers the other question: the lowest WER within a cost budget.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from whisper_cascade.errors import InvalidArgumentError

__all__ = [
    "EXHAUSTIVE_MAX",
    "GRID",
    "NEVER",
    "FitItem",
    "ModelRun",
    "Outcome",
    "RunTable",
    "fit_lowest_wer",
    "fit_thresholds",
    "largest_only",
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
    """One feedback item: its class, reference word count, one run per ladder model, its
    speech ratio (from the audio features; the score reads it) and the rung the pre-selection
    rules start it on (:func:`whisper_cascade.policy.rule_rung`; 0 when they defer)."""

    content_class: str
    ref_words: int
    runs: tuple[ModelRun, ...]
    audio: str = ""
    speech_ratio: float | None = None
    start: int = 0


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
            if not 0 <= item.start < len(self.models):
                raise InvalidArgumentError(
                    f"item {item.audio or '?'} starts at rung {item.start} of {len(self.models)}"
                )

    def subset(self, keep: Sequence[bool] | npt.NDArray[np.bool_]) -> RunTable:
        """The table of the items where ``keep`` is true."""
        return RunTable(
            self.models, self.costs, tuple(i for i, k in zip(self.items, keep, strict=True) if k)
        )

    def arrays(self, preselect: bool = False) -> dict[str, npt.NDArray[Any]]:
        """Scores, flags, edits, times (items × models), reference words and start rungs
        (items; all 0 without ``preselect``)."""

        def grid(attr: str, dtype: Any) -> npt.NDArray[Any]:
            rows = [[getattr(r, attr) for r in item.runs] for item in self.items]
            return np.array(rows, dtype=dtype).reshape(len(self.items), len(self.models))

        return {
            "score": grid("score", np.float64),
            "flagged": grid("flagged", bool),
            "edits": grid("edits", np.float64),
            "time": grid("time_s", np.float64),
            "words": np.array([i.ref_words for i in self.items], dtype=np.float64),
            "start": np.array([i.start if preselect else 0 for i in self.items], dtype=np.int64),
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
    """``out[i, r]``: the rung whose transcript item ``i`` keeps when rungs ``start..r`` ran."""
    scores = np.where(arrays["flagged"], -np.inf, arrays["score"])
    n, m = scores.shape
    # Rungs below the start never ran: below every real score, and not even a tie wins.
    before_start = np.arange(m)[None, :] < arrays["start"][:, None]
    scores = np.where(before_start, -np.inf, scores)
    out = np.zeros((n, m), dtype=np.int64)
    top, idx = scores[:, 0].copy(), np.zeros(n, dtype=np.int64)
    for r in range(1, m):
        later = (scores[:, r] >= top) & ~before_start[:, r]
        top, idx = np.where(later, scores[:, r], top), np.where(later, r, idx)
        out[:, r] = idx
    return out


def _final_rungs(
    arrays: Mapping[str, npt.NDArray[Any]], th: npt.NDArray[np.float64]
) -> npt.NDArray[np.int64]:
    """Final rung per (vector, item): ``th`` is vectors × (models − 1), or vectors × items ×
    (models − 1) for per-item thresholds."""
    scores, flagged = arrays["score"], arrays["flagged"]
    m = scores.shape[1]
    ran = np.arange(m - 1)[None, :] >= arrays["start"][:, None]
    per_item = th if th.ndim == 3 else th[:, None, :]
    accept = (scores[None, :, : m - 1] >= per_item) & ~flagged[None, :, : m - 1]
    accept &= ran[None, :, :]
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
    skipped_cost = (cum_cost - np.asarray(table.costs))[arrays["start"]].sum()
    edits_out = np.empty(len(th))
    cost_out = np.empty(len(th))
    n = len(table.items)
    kept = _kept_rungs(arrays) if keep_best else np.tile(np.arange(len(table.models)), (n, 1))
    for lo in range(0, len(th), _CHUNK):
        part = th[lo : lo + _CHUNK]
        final = _final_rungs(arrays, part)
        rows = np.arange(n)[None, :]
        edits_out[lo : lo + len(part)] = arrays["edits"][rows, kept[rows, final]].sum(axis=1)
        cost_out[lo : lo + len(part)] = cum_cost[final].sum(axis=1) - skipped_cost
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
    preselect: bool = False,
) -> Outcome:
    """Replay whole-file escalation under these thresholds (see the module doc).

    ``thresholds`` is one value per model but the last, or a mapping by model name (a missing
    model never accepts); ``class_thresholds`` override them for items of a class.
    ``keep_best`` keeps the best-scoring transcript of the rungs that ran, not the last;
    ``preselect`` starts each item at its pre-selected rung instead of rung 0.
    """
    arrays = table.arrays(preselect)
    n = len(table.items)
    default = _vector(table, thresholds)
    named = dict(zip(table.models[:-1], default, strict=True))
    per_class = {c: _vector(table, {**named, **t}) for c, t in (class_thresholds or {}).items()}
    if n == 0:
        return Outcome(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, {})
    th = np.array([per_class.get(i.content_class, default) for i in table.items]).reshape(n, -1)
    final = _final_rungs(arrays, th[None, :, :])[0]
    start = arrays["start"]
    rows = np.arange(n)
    kept = _kept_rungs(arrays)[rows, final] if keep_best else final
    edits = float(arrays["edits"][rows, kept].sum())
    words = float(arrays["words"].sum())
    cum_cost = np.cumsum(np.asarray(table.costs))
    cost = float((cum_cost[final] - (cum_cost - np.asarray(table.costs))[start]).sum())
    time_s = float(sum(arrays["time"][i, start[i] : final[i] + 1].sum() for i in range(n)))
    usage = Counter(table.models[int(f)] for f in kept)
    return Outcome(
        n=n,
        wer=_rate(edits, words),
        edits=edits,
        ref_words=words,
        cost=cost,
        time_s=time_s,
        escalation_rate=float(np.mean(final > start)),
        model_usage=dict(sorted(usage.items(), key=lambda kv: (-kv[1], kv[0]))),
    )


def largest_only(table: RunTable) -> Outcome:
    """What running only the last rung on every item does (its cost counts that rung alone,
    where ``simulate(table, {})`` climbs the whole ladder to it)."""
    last = len(table.models) - 1
    started = tuple(replace(i, start=last) for i in table.items)
    return simulate(RunTable(table.models, table.costs, started), {}, preselect=True)


def _admissible(
    table: RunTable,
    arrays: Mapping[str, npt.NDArray[Any]],
    idx: npt.NDArray[np.int64],
    limit: float,
    grid: npt.NDArray[np.float64],
    keep_best: bool,
    anchor: npt.NDArray[np.int64] | None = None,
) -> npt.NDArray[np.bool_]:
    """Which grid-index vectors (rows of ``idx``) and all their lower neighbours meet ``limit``
    (the ``anchor`` row and "never accept" are admissible whatever their WER)."""
    ok = _totals(table, arrays, grid[idx], keep_best)[0] <= limit
    for j in range(idx.shape[1]):
        lower = idx.copy()
        lower[:, j] = np.maximum(lower[:, j] - 1, 0)
        ok &= _totals(table, arrays, grid[lower], keep_best)[0] <= limit
    never = np.all(idx == len(grid) - 1, axis=1)
    result: npt.NDArray[np.bool_] = ok | never
    if anchor is not None:
        result |= np.all(idx == anchor[None, :], axis=1)
    return result


def _best(
    table: RunTable,
    arrays: Mapping[str, npt.NDArray[Any]],
    idx: npt.NDArray[np.int64],
    limit: float,
    grid: npt.NDArray[np.float64],
    keep_best: bool,
    anchor: npt.NDArray[np.int64] | None = None,
) -> npt.NDArray[np.int64]:
    """The admissible row of ``idx`` with the least cost, then fewest edits, then highest."""
    edits, cost = _totals(table, arrays, grid[idx], keep_best)
    ok = _admissible(table, arrays, idx, limit, grid, keep_best, anchor)
    order = np.lexsort((-idx.sum(axis=1), edits, cost, ~ok))
    best: npt.NDArray[np.int64] = idx[order[0]]
    return best


def _search(
    k: int,
    n_values: int,
    start: npt.NDArray[np.int64],
    pick: Callable[[npt.NDArray[np.int64]], npt.NDArray[np.int64]],
) -> npt.NDArray[np.int64]:
    """The grid-index vector ``pick`` prefers: among all of them when the grid has at most
    :data:`EXHAUSTIVE_MAX`, else by coordinate descent from ``start`` (one coordinate at a
    time, until a full pass changes nothing)."""
    if n_values**k <= EXHAUSTIVE_MAX:
        return pick(np.array(list(itertools.product(range(n_values), repeat=k)), dtype=np.int64))
    best = start.copy()
    for _ in range(20):
        before = best.copy()
        for j in range(k):
            idx = np.repeat(best[None, :], n_values, axis=0)
            idx[:, j] = np.arange(n_values)
            best = pick(idx)
        if np.array_equal(best, before):
            break
    return best


def fit_thresholds(
    table: RunTable,
    max_wer_increase: float = 0.005,
    grid: Sequence[float] = GRID,
    *,
    keep_best: bool = False,
    preselect: bool = False,
    baseline_wer: float | None = None,
    anchor: Sequence[float] | Mapping[str, float] | None = None,
) -> dict[str, float]:
    """The cheapest admissible thresholds (one per model but the last; see the module doc);
    ``keep_best`` and ``preselect`` as in :func:`simulate`. The WER limit is
    ``baseline_wer`` (default: always the last rung's) plus ``max_wer_increase``.

    ``anchor`` (thresholds as in :func:`simulate`, typically the policy ``baseline_wer`` was
    measured with) is admissible like "always the last rung", so the result never costs more
    than it on the table."""
    if not (math.isfinite(max_wer_increase) and max_wer_increase >= 0):
        raise InvalidArgumentError(f"max_wer_increase must be >= 0, got {max_wer_increase}")
    k = len(table.models) - 1
    if k == 0 or not table.items:
        return {m: NEVER for m in table.models[:-1]}
    anchor_vec = None if anchor is None else [min(t, NEVER) for t in _vector(table, anchor)]
    values = np.array(
        sorted({float(g) for g in grid} | {NEVER} | set(anchor_vec or ())), dtype=np.float64
    )
    anchor_idx = (
        None
        if anchor_vec is None
        else np.array([int(np.searchsorted(values, t)) for t in anchor_vec], dtype=np.int64)
    )
    arrays = table.arrays(preselect)
    words = float(arrays["words"].sum())
    last = float(arrays["edits"][:, -1].sum())
    baseline = last if baseline_wer is None else baseline_wer * words
    limit = baseline + max_wer_increase * words + 1e-9
    start = np.full(k, len(values) - 1, dtype=np.int64) if anchor_idx is None else anchor_idx
    best = _search(
        k, len(values), start,
        lambda idx: _best(table, arrays, idx, limit, values, keep_best, anchor_idx),
    )  # fmt: skip
    return {m: float(values[i]) for m, i in zip(table.models[:-1], best, strict=True)}


def fit_lowest_wer(
    table: RunTable,
    max_cost: float,
    grid: Sequence[float] = GRID,
    *,
    keep_best: bool = False,
    preselect: bool = False,
) -> dict[str, float]:
    """The thresholds of the lowest WER whose total cost stays within ``max_cost`` (summed
    relative costs over the table); ``keep_best`` and ``preselect`` as in :func:`simulate`.

    Overfitting guard: a vector's edits are averaged with those of its grid neighbours (one
    step either way in each coordinate), so a lucky dip of the fit set is not picked. Ties go
    to the cheaper vector. When nothing fits the budget, every rung accepts (the cheapest).
    """
    if not math.isfinite(max_cost):
        raise InvalidArgumentError(f"max_cost must be finite, got {max_cost}")
    values = np.array(sorted({float(g) for g in grid} | {NEVER}), dtype=np.float64)
    k = len(table.models) - 1
    if k == 0 or not table.items:
        return {m: NEVER for m in table.models[:-1]}
    arrays = table.arrays(preselect)

    def pick(idx: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        edits, cost = _totals(table, arrays, values[idx], keep_best)
        smoothed, count = edits.copy(), 1
        for j in range(k):
            for step in (-1, 1):
                near = idx.copy()
                near[:, j] = np.clip(near[:, j] + step, 0, len(values) - 1)
                smoothed += _totals(table, arrays, values[near], keep_best)[0]
                count += 1
        over = cost > max_cost + 1e-9
        # within the budget: lowest smoothed edits, then cheapest; over it: cheapest
        order = np.lexsort(
            (cost, np.where(over, 0.0, smoothed / count), np.where(over, cost, 0.0), over)
        )
        best: npt.NDArray[np.int64] = idx[order[0]]
        return best

    best = _search(k, len(values), np.zeros(k, dtype=np.int64), pick)
    return {m: float(values[i]) for m, i in zip(table.models[:-1], best, strict=True)}
