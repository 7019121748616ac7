"""Fit the decision matrix's weights (policy.Weights) on a calibration corpus, report them on
held-out sets.

    .venv/bin/python bench/bench_weights.py \
        --fit /work/zoo-work/corpus/calib/manifest.jsonl \
        --manifest /work/zoo-work/corpus/heldout/manifest.jsonl \
        --manifest /work/zoo-work/corpus/heldout-unseen/manifest.jsonl [--update-readme]

The cheapest rung of the ladder (default ``micro``) transcribes every utterance once (greedy,
1 thread); then a grid of weights is scored on the ``--fit`` set only, by the mean of two AUCs
of −score: "the transcript has an error" and "its WER is above 20 %". The best grid point and
the current defaults and the first hand-set weights are then compared on each ``--manifest``
(never used for fitting).
Nothing is written to the package: the defaults in ``policy.Weights`` are set by hand from this
table, so that a change of defaults is a reviewed commit.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from whisper_cascade.audio import load_audio
from whisper_cascade.errors import InvalidArgumentError
from whisper_cascade.evaluation import word_edits
from whisper_cascade.manifest import read_manifest
from whisper_cascade.policy import Weights, score
from whisper_cascade.zoo.metrics import rank_auc

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchlib, next to this file
from benchlib import update_readme_section  # noqa: E402

README = Path(__file__).with_name("README.md")
SECTION = "## Decision weights"
HAND_SET = Weights(
    consistency=0.15, coverage=0.25, low_confidence_penalty=0.3, no_speech_penalty=0.8
)
"""The weights before the first fit (set by hand), kept as the baseline."""
BAD_WER = 0.2
GRID: Mapping[str, Sequence[float]] = {
    "consistency": (0.0, 0.15, 0.4, 0.8, 1.2),
    "coverage": (0.0, 0.1, 0.25),
    "low_confidence_penalty": (0.0, 0.3, 0.6, 0.9),
    "logprob_penalty": (0.0, 0.3, 0.7),
    # Never 0: the no-speech penalty is the score's guard against text over silence.
    "no_speech_penalty": (0.2, 0.4, 0.6, 0.8),
}


@dataclass(frozen=True)
class Row:
    """One transcribed utterance: its confidence metrics and word errors."""

    metrics: Mapping[str, Any]
    edits: int
    words: int


def collect(manifest: Path, ladder: str, models_dir: Path | None, n: int | None) -> list[Row]:
    """Transcribe a manifest with the cheapest rung of ``ladder``; one row per utterance."""
    from whisper_cascade.cascade import Cascade
    from whisper_cascade.presets import get_preset

    accept = get_preset("balanced").with_overrides(
        name="accept-all",
        thresholds={},
        default_threshold=0.0,
        hallucination_check=False,
        preselect=False,
    )
    items = read_manifest(manifest)[:n]
    rows = []
    with Cascade(ladder, accept, models_dir=models_dir, n_threads=1) as cascade:
        for item in items:
            result = cascade.transcribe(load_audio(item.path), preset=accept)
            edits, words = word_edits(item.text, result.text)
            rows.append(Row(result.model_selection["decision_metrics"], edits, words))
    return rows


def aucs(rows: Sequence[Row], weights: Weights) -> tuple[float, float]:
    """AUC of −score for "has an error" and for "WER above 20 %" (NaN with one class only)."""
    scores = [-score(r.metrics, None, weights).value for r in rows]
    out = []
    label: Callable[[Row], bool]
    for label in (lambda r: r.edits > 0, lambda r: r.edits > BAD_WER * max(1, r.words)):
        try:
            out.append(rank_auc(scores, [label(r) for r in rows]))
        except InvalidArgumentError:
            out.append(float("nan"))
    return out[0], out[1]


def fit(rows: Sequence[Row], grid: Mapping[str, Sequence[float]] = GRID) -> Weights:
    """The grid point with the highest mean of the two AUCs on ``rows`` (first wins ties)."""
    best, best_value = Weights(), -1.0
    names = list(grid)
    for values in itertools.product(*(grid[k] for k in names)):
        weights = Weights().updated(dict(zip(names, values, strict=True)))
        value = sum(aucs(rows, weights)) / 2
        if value > best_value + 1e-9:
            best, best_value = weights, value
    return best


def report(fitted: Weights, fit_rows: Sequence[Row], held: Mapping[str, Sequence[Row]]) -> str:
    """The markdown tables: the weight sets, then their AUCs on the fit and held-out sets."""
    sets = {"hand-set": HAND_SET, "default": Weights(), "fitted": fitted}
    values = {name: asdict(w) for name, w in sets.items()}
    lines = ["| weight | " + " | ".join(sets) + " |", "|---|" + "---:|" * len(sets)]
    lines += [
        f"| {k} | " + " | ".join(str(values[n][k]) for n in sets) + " |" for k in values["default"]
    ]
    lines += ["", "AUC of −score (any error / WER > 20 %):", ""]
    lines += ["| set | n | " + " | ".join(sets) + " |", "|---|---:|" + "---:|" * len(sets)]
    for name, rows in {"fit set": fit_rows, **held}.items():
        cells = [" / ".join(f"{a:.3f}" for a in aucs(rows, w)) for w in sets.values()]
        lines.append(f"| {name} | {len(rows)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--fit", type=Path, required=True, help="calibration manifest (fitting)")
    p.add_argument("--manifest", type=Path, action="append", default=[], help="held-out set")
    p.add_argument("--ladder", default="micro")
    p.add_argument("--models-dir", type=Path, default=None)
    p.add_argument("--n", type=int, default=None, help="first N utterances of each manifest")
    p.add_argument("--update-readme", action="store_true")
    args = p.parse_args()
    fit_rows = collect(args.fit, args.ladder, args.models_dir, args.n)
    held = {m.parent.name: collect(m, args.ladder, args.models_dir, args.n) for m in args.manifest}
    table = report(fit(fit_rows), fit_rows, held)
    print(table)
    if args.update_readme:
        command = "python bench/bench_weights.py " + " ".join(sys.argv[1:])
        update_readme_section(SECTION, command, table, README)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
