"""Fit the decision matrix's weights (policy.Weights) on a calibration corpus, report them on
held-out sets.

    .venv/bin/python bench/bench_weights.py \
        --fit /work/zoo-work/corpus/calib/manifest.jsonl \
        --manifest /work/zoo-work/corpus/heldout/manifest.jsonl \
        --manifest /work/zoo-work/corpus/heldout-unseen/manifest.jsonl [--update-readme]

The cheapest rung of the ladder (default ``micro``) transcribes every utterance once (greedy,
1 thread); then a grid of weights (:mod:`whisper_cascade.weight_fit`) is scored on the ``--fit``
set only, by the mean of two AUCs of −score: "the transcript has an error" and "its WER is
above 20 %". The best grid point, the current defaults, the first hand-set weights and the
weights the shipped calibration holds for that model (``calibrated``, fitted by
``zoo.calibrate`` on the same calibration corpus) are then compared on each ``--manifest``
(never used for fitting).
Nothing is written to the package: the defaults in ``policy.Weights`` are set by hand from this
table, so that a change of defaults is a reviewed commit.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path

from whisper_cascade.audio import load_audio
from whisper_cascade.evaluation import word_edits
from whisper_cascade.ladders import folder_ladders, get_ladder
from whisper_cascade.manifest import read_manifest
from whisper_cascade.policy import Weights
from whisper_cascade.presets import get_preset
from whisper_cascade.weight_fit import ScoredRun, aucs, fit_weights

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchlib, next to this file
from benchlib import update_readme_section  # noqa: E402

README = Path(__file__).with_name("README.md")
SECTION = "## Decision weights"
HAND_SET = Weights(
    consistency=0.15, coverage=0.25, low_confidence_penalty=0.3, no_speech_penalty=0.8
)
"""The weights before the first fit (set by hand), kept as the baseline."""


def collect(manifest: Path, ladder: str, models_dir: Path | None, n: int | None) -> list[ScoredRun]:
    """Transcribe a manifest with the cheapest rung of ``ladder``; one row per utterance."""
    from whisper_cascade.cascade import Cascade

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
            ratio = (result.info.get("analysis") or {}).get("speech_ratio")
            rows.append(ScoredRun(result.model_selection["decision_metrics"], ratio, edits, words))
    return rows


def report(
    fitted: Weights,
    fit_rows: Sequence[ScoredRun],
    held: Mapping[str, Sequence[ScoredRun]],
    calibrated: Weights | None = None,
) -> str:
    """The markdown tables: the weight sets, then their AUCs on the fit and held-out sets."""
    sets = {"hand-set": HAND_SET, "default": Weights(), "fitted": fitted}
    if calibrated is not None:
        sets["calibrated"] = calibrated
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
    cheapest = get_ladder(args.ladder, folder_ladders(args.models_dir)).names[0]
    balanced = get_preset("balanced")
    own = balanced.weights_for(cheapest)
    calibrated = None if own == balanced.weights else own
    print(f"cheapest rung: {cheapest}")
    table = report(fit_weights(fit_rows), fit_rows, held, calibrated)
    print(table)
    if args.update_readme:
        command = "python bench/bench_weights.py " + " ".join(sys.argv[1:])
        section = SECTION if args.ladder == "micro" else f"{SECTION} (ladder {args.ladder})"
        update_readme_section(section, command, table, README)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
