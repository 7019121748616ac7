"""WER per condition and real-time factor of the micro zoo in whisper.cpp, plus the issue's
ladder checks and the confidence AUC of the smallest model.

    .venv/bin/python bench/bench_zoo.py --models-dir python/whisper_cascade/data/models \
        --manifest /work/zoo-work/corpus/heldout/manifest.jsonl \
        --unseen /work/zoo-work/corpus/heldout-unseen/manifest.jsonl [--n 100] [--update-readme]

``--manifest`` repeats: the held-out sets are measured as one (a noise bucket of 30 files
swings by several points between checkpoints; more files make the ladder verdict steadier).
Models: every entry of ``MODELS_DIR/registry.json`` (ladder ``micro`` first, cheapest first;
with ``--ladder-only`` only the ladders' rungs), or the ``ggml-*.bin`` files given with
``--models``. Decoding: greedy, no timestamps, 1 thread,
each model's own ``audio_ctx``. Do not trust the time columns while training runs.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from whisper_cascade.errors import InvalidArgumentError
from whisper_cascade.evaluation import EvalReport
from whisper_cascade.manifest import ManifestItem, read_manifest
from whisper_cascade.modelfile import validate_model
from whisper_cascade.policy import score
from whisper_cascade.presets import get_preset
from whisper_cascade.zoo.metrics import (
    condition_bucket,
    is_noisy,
    ladder_violations,
    paired_wer_difference,
    rank_auc,
)
from whisper_cascade.zoo.ship import evaluate_model

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchlib, next to this file
from benchlib import update_readme_section  # noqa: E402

README = Path(__file__).with_name("README.md")
SECTION = "## Micro zoo"
UNSEEN = "unseen voices"
CONFIDENCE_KEYS = ("mean", "geometric_mean", "min", "avg_logprob", "sequence_confidence")


def files_by_bucket(items: list[ManifestItem]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        bucket = condition_bucket(item.condition)
        counts[bucket] = counts.get(bucket, 0) + 1
    return counts


def edits_by_bucket(report: EvalReport) -> dict[str, list[tuple[int, int]]]:
    """``(edits, ref_words)`` of every file, grouped by condition bucket, in manifest order."""
    groups: dict[str, list[tuple[int, int]]] = {}
    for item in report.items:
        groups.setdefault(condition_bucket(item.condition), []).append((item.edits, item.ref_words))
    return groups


def wer_by_bucket(report: EvalReport) -> dict[str, float]:
    groups = edits_by_bucket(report)
    return {k: sum(e for e, _ in v) / max(1, sum(w for _, w in v)) for k, v in groups.items()}


def ladder_evidence(
    ladder: list[str], edits: dict[str, dict[str, list[tuple[int, int]]]]
) -> list[str]:
    """Each adjacent pair on each degraded bucket, with a paired-bootstrap 95 % interval of the
    WER difference: the ladder check's verdicts separated from the measurement's noise."""
    lines = [
        "| pair | condition | files | WER difference (pt) | 95 % interval | verdict |",
        "|---|---|---:|---:|---:|---|",
    ]
    tally = {"larger better": 0, "smaller better": 0, "cannot tell": 0}
    for small, large in zip(ladder, ladder[1:], strict=False):
        for bucket in sorted(edits[small], key=_bucket_order):
            if not is_noisy(bucket) or bucket not in edits[large]:
                continue
            d, lo, hi = paired_wer_difference(edits[small][bucket], edits[large][bucket])
            verdict = "larger better" if hi < 0 else "smaller better" if lo > 0 else "cannot tell"
            tally[verdict] += 1
            lines.append(
                f"| {large} vs {small} | {bucket} | {len(edits[small][bucket])} | "
                f"{100 * d:+.1f} | {100 * lo:+.1f}..{100 * hi:+.1f} | {verdict} |"
            )
    summary = ", ".join(f"{k}: {v}" for k, v in tally.items())
    head = f"Paired bootstrap over files (2 000 draws), larger minus smaller: {summary}."
    return [head, ""] + lines


def _models(args: argparse.Namespace) -> tuple[list[Path], dict[str, list[str]]]:
    """The files to measure (every ladder's rungs first, cheapest first) and the ladders."""
    if args.models:
        paths = [Path(p) for p in args.models]
        return paths, {"given": [p.stem.removeprefix("ggml-") for p in paths]}
    registry = json.loads((args.models_dir / "registry.json").read_text(encoding="utf-8"))
    ladders = {k: list(v) for k, v in registry.get("ladders", {}).items()}
    cost = {m["name"]: float(m["relative_cost"]) for m in registry["models"]}
    rungs = sorted({n for members in ladders.values() for n in members}, key=lambda n: cost[n])
    names = rungs
    if not args.ladder_only:
        names = rungs + [m["name"] for m in registry["models"] if m["name"] not in rungs]
    files = {m["name"]: m["file"] for m in registry["models"]}
    return [args.models_dir / files[n] for n in names], ladders


def _take(manifests: list[Path], n: int | None) -> list[ManifestItem]:
    items: list[ManifestItem] = []
    for manifest in manifests:
        some = read_manifest(manifest)
        items += some[:n] if n else some
    return items


def bench(args: argparse.Namespace) -> str:
    paths, ladders = _models(args)
    held = _take(args.manifest, args.n)
    unseen = _take([args.unseen], args.n) if args.unseen else []
    rows: dict[str, dict[str, float]] = {}
    rtf: dict[str, float] = {}
    per_file: dict[str, float] = {}
    edits: dict[str, dict[str, list[tuple[int, int]]]] = {}
    outcomes_by_model: dict[str, tuple[EvalReport, list[dict[str, Any]]]] = {}
    for path in paths:
        name = path.stem.removeprefix("ggml-")
        info = validate_model(path)
        report, outcomes = evaluate_model(path, info, held)
        by = wer_by_bucket(report)
        by["all (held-out)"] = report.wer
        edits[name] = edits_by_bucket(report)
        edits[name]["all (held-out)"] = [(i.edits, i.ref_words) for i in report.items]
        times = [i.time_s for i in report.items]
        audio_s = sum(float(o["duration_s"]) for o in outcomes)
        if unseen:
            rep_u, out_u = evaluate_model(path, info, unseen)
            by[UNSEEN] = rep_u.wer
            edits[name][UNSEEN] = [(i.edits, i.ref_words) for i in rep_u.items]
            times += [i.time_s for i in rep_u.items]
            audio_s += sum(float(o["duration_s"]) for o in out_u)
        rows[name] = by
        rtf[name] = sum(times) / audio_s
        per_file[name] = sum(times) / len(times)
        outcomes_by_model[name] = (report, outcomes)
        print(f"{name}: WER {100 * report.wer:.1f}%, RTF {rtf[name]:.4f}", file=sys.stderr)
    names = [p.stem.removeprefix("ggml-") for p in paths]
    buckets = sorted({b for r in rows.values() for b in r}, key=_bucket_order)
    out = [
        f"Held-out: {len(held)} utterances of new sentences"
        + (f"; unseen voices: {len(unseen)} utterances" if unseen else "")
        + ". WER in %, greedy, no timestamps, 1 thread.",
        "",
        "| condition | files | " + " | ".join(names) + " |",
        "|---|---:|" + "---:|" * len(names),
    ]
    files = files_by_bucket(held)
    files["all (held-out)"], files[UNSEEN] = len(held), len(unseen)
    for b in buckets:
        cells = [f"{100 * rows[n][b]:.1f}" if b in rows[n] else "–" for n in names]
        out.append(f"| {b} | {files.get(b, 0)} | " + " | ".join(cells) + " |")
    timing = " | ".join(f"{1000 * per_file[n]:.0f}" for n in names)
    out.append(f"| time per file (ms) | | {timing} |")
    out.append("| real-time factor | | " + " | ".join(f"{rtf[n]:.4f}" for n in names) + " |")
    rungs = [n for n in names if any(n in members for members in ladders.values())]
    for rung in rungs or names[:1]:
        out += ["", f'Confidence of {rung} for "transcript has an error" (AUC of −score):', ""]
        out += _auc_lines(*outcomes_by_model[rung], model=rung)
    for ladder_name, ladder in ladders.items():
        if len(ladder) > 1:
            problems = ladder_violations(ladder, rows, per_file)
            verdict = "monotone" if not problems else "not monotone"
            out += ["", f"Ladder {ladder_name} ({' < '.join(ladder)}): {verdict}"]
            out += [f"- {p}" for p in problems]
            out += [""] + ladder_evidence(ladder, edits)
    return "\n".join(out) + "\n"


def _bucket_order(bucket: str) -> tuple[int, str]:
    if bucket.startswith("all"):
        return (0, bucket)
    if bucket == "clean":
        return (1, bucket)
    if bucket == UNSEEN:
        return (4, bucket)
    m = re.match(r"(\w+) (\d+)-", bucket)
    return (2, f"{m.group(1)} {int(m.group(2)):02d}") if m else (3, bucket)


def _auc_lines(report: EvalReport, outcomes: list[dict[str, Any]], model: str) -> list[str]:
    errors = [item.edits > 0 for item in report.items]
    bad = [item.wer > 0.5 for item in report.items]
    lines = [f"{sum(errors)} of {len(errors)} transcripts have an error, {sum(bad)} a WER > 50%."]
    lines += ["", "| score | AUC (any error) | AUC (WER > 50%) |", "|---|---:|---:|"]
    for key in CONFIDENCE_KEYS:
        scores = [-float(o["confidence"][key]) for o in outcomes]
        lines.append(f"| {key} | {_auc(scores, errors)} | {_auc(scores, bad)} |")
    balanced = get_preset("balanced")
    sets = {"default weights": balanced.weights}
    if balanced.weights_for(model) != balanced.weights:
        sets["its calibrated weights"] = balanced.weights_for(model)
    for label, weights in sets.items():
        decision = [-score(o["confidence"], None, weights).value for o in outcomes]
        lines.append(
            f"| decision score ({label}) | {_auc(decision, errors)} | {_auc(decision, bad)} |"
        )
    return lines


def _auc(scores: list[float], labels: list[bool]) -> str:
    try:
        return f"{rank_auc(scores, labels):.3f}"
    except InvalidArgumentError:
        return "n/a (one class only)"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--models-dir", type=Path, default=Path("python/whisper_cascade/data/models"))
    p.add_argument("--models", nargs="+", help="ggml files instead of a registry")
    p.add_argument("--manifest", type=Path, action="append", required=True, help="repeatable")
    p.add_argument("--unseen", type=Path, default=None)
    p.add_argument("--ladder-only", action="store_true", help="only the ladders' rungs")
    p.add_argument("--n", type=int, default=None, help="first N utterances of each manifest")
    p.add_argument("--update-readme", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    table = bench(args)
    print(table)
    if args.update_readme:
        update_readme_section(
            SECTION,
            "python bench/bench_zoo.py " + " ".join(sys.argv[1:] if argv is None else argv),
            table,
            README,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
