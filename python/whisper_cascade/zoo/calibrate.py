"""Calibrate the built-in presets' micro thresholds on a held-out calibration corpus.

``python -m whisper_cascade.zoo.calibrate --manifest CALIB/manifest.jsonl --models-dir DIR
--out python/whisper_cascade/data/models/calibration.json`` runs every model of the ladder on
every utterance (as ``whisper-cascade learn`` does), fits each model's decision weights on its
own transcripts (:func:`whisper_cascade.weight_fit.fit_table_weights`; ``--no-weights`` keeps
the defaults), rescores the table with them, then fits, for each built-in preset, the
thresholds: for ``fast`` the cheapest whose WER stays within 3 points of always running the
largest model (:func:`whisper_cascade.fitting.fit_thresholds`, with its guard against
thresholds on the edge of a WER cliff); for ``balanced`` and ``accurate`` the most accurate
whose cost stays within 0.75× and 1× that of running only the largest model on every file
(:func:`whisper_cascade.fitting.fit_lowest_wer`, WER smoothed over grid neighbours). Each is
fitted keeping the last transcript and the best-scoring one (``keep_best``), with and without
the pre-selection rules (``preselect``: without it, the preset never skips the ladder's
cheaper models); the best fit wins, ties going to pre-selection. The run table can be saved
(``--save-table``) and refitted without transcribing again (``--table``). Both options repeat:
several corpora (e.g. one of seen voices, one of unseen voices) or tables are fitted as one.

The calibration corpus must not overlap the sets the cascade is benchmarked on.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from whisper_cascade.errors import InvalidArgumentError
from whisper_cascade.feedback import collect_runs, records_from_manifest
from whisper_cascade.fitting import (
    FitItem,
    ModelRun,
    Outcome,
    RunTable,
    fit_lowest_wer,
    fit_thresholds,
    largest_only,
    simulate,
)
from whisper_cascade.policy import Weights
from whisper_cascade.weight_fit import ScoredRun, aucs, fit_table_weights, rescore

__all__ = ["ALLOWANCES", "BUDGETS", "calibrate", "load_table", "merge_tables", "save_table"]

ALLOWANCES: Mapping[str, float] = {"fast": 0.03}
"""WER (a fraction) these presets may add over always running the largest model; each gets
the cheapest policy within it."""
BUDGETS: Mapping[str, float] = {"balanced": 0.75, "accurate": 1.0}
"""Cost these presets may spend, as a share of running only the largest model on every file;
each gets the most accurate policy within it. (``balanced`` sits at the knee of the micro
zoo's cost/WER curve on the calibration corpora, see docs/zoo.md.)"""


def save_table(table: RunTable, path: str | os.PathLike[str]) -> None:
    """Write a run table as JSON."""
    data = {
        "models": list(table.models),
        "costs": list(table.costs),
        "items": [
            {
                "audio": i.audio,
                "content_class": i.content_class,
                "ref_words": i.ref_words,
                "runs": [[r.score, r.edits, r.time_s, r.flagged, r.metrics] for r in i.runs],
                "speech_ratio": i.speech_ratio,
                "start": i.start,
            }
            for i in table.items
        ],
    }
    Path(path).write_text(json.dumps(data), encoding="utf-8")


def _run(score: float, edits: int, time_s: float, flagged: bool, metrics: Any = None) -> ModelRun:
    if metrics is not None and not isinstance(metrics, dict):
        raise TypeError("a run's metrics must be an object")
    return ModelRun(float(score), int(edits), float(time_s), bool(flagged), metrics)


def load_table(path: str | os.PathLike[str]) -> RunTable:
    """Read a run table written by :func:`save_table`."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        items = tuple(
            FitItem(
                content_class=str(i["content_class"]),
                ref_words=int(i["ref_words"]),
                runs=tuple(_run(*r) for r in i["runs"]),
                audio=str(i.get("audio", "")),
                speech_ratio=None if i.get("speech_ratio") is None else float(i["speech_ratio"]),
                start=int(i.get("start", 0)),
            )
            for i in data["items"]
        )
        return RunTable(tuple(data["models"]), tuple(float(c) for c in data["costs"]), items)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InvalidArgumentError(f"{path}: not a run table ({exc})") from exc


def merge_tables(tables: Sequence[RunTable]) -> RunTable:
    """One table holding every item of ``tables`` (all of the same ladder and costs)."""
    if not tables:
        raise InvalidArgumentError("no run table to merge")
    first = tables[0]
    for other in tables[1:]:
        if other.models != first.models or other.costs != first.costs:
            raise InvalidArgumentError(
                f"run tables of different ladders cannot be merged: {list(first.models)} "
                f"{list(first.costs)} vs {list(other.models)} {list(other.costs)}"
            )
    return RunTable(first.models, first.costs, tuple(i for t in tables for i in t.items))


def _mode_fits(
    table: RunTable, fit: Callable[..., dict[str, float]], limit: float
) -> list[tuple[dict[str, bool], dict[str, float], Outcome]]:
    """``fit(table, limit, keep_best=, preselect=)`` in each of the four ways of running the
    ladder, with its outcome on ``table``: keeping the last or the best-scoring transcript,
    with and without the pre-selection rules."""
    out = []
    for preselect in (False, True):
        for keep_best in (False, True):
            thresholds = fit(table, limit, keep_best=keep_best, preselect=preselect)
            outcome = simulate(table, thresholds, keep_best=keep_best, preselect=preselect)
            out.append(({"keep_best": keep_best, "preselect": preselect}, thresholds, outcome))
    return out


def calibrate(
    table: RunTable,
    allowances: Mapping[str, float] = ALLOWANCES,
    source: str = "",
    *,
    budgets: Mapping[str, float] = BUDGETS,
    fit_weights: bool = True,
) -> dict[str, Any]:
    """The calibration file's content: per-model weights (when ``fit_weights`` and the table
    kept its metrics), then fitted thresholds and fit-set outcome per preset."""
    if len(table.models) < 2:
        raise InvalidArgumentError("calibration needs a ladder of at least two models")
    if not table.items:
        raise InvalidArgumentError("calibration needs at least one transcribed utterance")
    weights = fit_table_weights(table) if fit_weights else {}
    weights_report = _weights_report(table, weights)
    table = rescore(table, weights)
    presets: dict[str, Any] = {}
    for name, allowance in allowances.items():
        fits = _mode_fits(table, fit_thresholds, allowance)
        how, thresholds, outcome = min(
            fits, key=lambda f: (f[2].cost, f[2].wer, not f[0]["preselect"])
        )
        presets[name] = {"max_wer_increase": allowance, "thresholds": thresholds, **how}
        presets[name]["fit_set"] = outcome.to_dict()
    largest = largest_only(table)
    for name, share in budgets.items():
        fits = _mode_fits(table, fit_lowest_wer, share * largest.cost)
        how, thresholds, outcome = min(
            fits, key=lambda f: (f[2].wer, f[2].cost, not f[0]["preselect"])
        )
        presets[name] = {"max_cost_share": share, "thresholds": thresholds, **how}
        presets[name]["fit_set"] = outcome.to_dict()
    return {
        "ladder_models": list(table.models),
        "relative_costs": list(table.costs),
        "n_items": len(table.items),
        "source": source,
        "simulation": "whole-file escalation from the first rung, or with pre-selection "
        "from the rung the rules choose, "
        + ("each model's fitted weights" if weights else "balanced weights"),
        "always_largest": largest.to_dict(),
        "weights": {m: asdict(w) for m, w in weights.items()},
        "weights_fit": weights_report,
        "presets": presets,
    }


def _weights_report(table: RunTable, weights: Mapping[str, Weights]) -> dict[str, Any]:
    """Per model: AUCs (any error, WER > 20 %) of the default and the fitted weights on the
    fit set (the held-out check is bench/bench_weights.py's job)."""
    out = {}
    for k, model in enumerate(table.models):
        if model not in weights:
            continue
        runs = [
            ScoredRun(i.runs[k].metrics or {}, i.speech_ratio, i.runs[k].edits, i.ref_words)
            for i in table.items
        ]
        out[model] = {
            "auc_default": [_finite(a) for a in aucs(runs, Weights())],
            "auc_fitted": [_finite(a) for a in aucs(runs, weights[model])],
        }
    return out


def _finite(x: float) -> float | None:
    return None if math.isnan(x) else round(x, 4)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (see the module doc)."""
    p = argparse.ArgumentParser(prog="python -m whisper_cascade.zoo.calibrate", description=__doc__)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--manifest", action="append", help="calibration corpus (JSONL with audio and text)"
    )
    src.add_argument(
        "--table", action="append", help="a run table saved by --save-table (no transcription)"
    )
    p.add_argument("--ladder", default="micro")
    p.add_argument("--models-dir", default=None)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--save-table", default=None, help="write the run table here")
    p.add_argument("--source", default="", help="a description of the corpus, kept in the file")
    p.add_argument("--out", required=True, help="where to write calibration.json")
    p.add_argument(
        "--no-weights", action="store_true", help="keep the default weights for every model"
    )
    args = p.parse_args(argv)
    if args.table:
        table = merge_tables([load_table(t) for t in args.table])
    else:
        records = [r for m in args.manifest for r in records_from_manifest(m)]
        table, skipped = collect_runs(
            records, args.ladder, models_dir=args.models_dir, n_threads=args.threads,
            progress=True,
        )  # fmt: skip
        for s in skipped:
            print(f"skipped {s.audio}: {s.error}")
        if args.save_table:
            save_table(table, args.save_table)
    result = calibrate(
        table,
        source=args.source or " + ".join(args.manifest or args.table),
        fit_weights=not args.no_weights,
    )
    for model, fit in result["weights_fit"].items():
        print(f"{model}: AUC default {fit['auc_default']} -> fitted {fit['auc_fitted']}")
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    for name, entry in result["presets"].items():
        fit = entry["fit_set"]
        print(
            f"{name:9s} thresholds {entry['thresholds']}  WER {fit['wer']:.4f}  "
            f"cost {fit['cost']:.1f}  usage {fit['model_usage']}"
        )
    top = result["always_largest"]
    print(f"always-largest WER {top['wer']:.4f}  cost {top['cost']:.1f}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
