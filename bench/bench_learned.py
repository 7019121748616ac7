"""Learned thresholds vs the ``balanced`` preset on held-out files (issue 5, learning).

    .venv/bin/python bench/bench_learned.py \
        --manifest /work/zoo-work/corpus/heldout/manifest.jsonl [--manifest M2 ...] \
        --models-dir python/whisper_cascade/data/models [--ladder micro] [--n N] [--threads 1] \
        [--max-wer-increase 0] [--relative-to base|largest] [--min-class-items 30] \
        [--unknown-names] [--json OUT] [--update-readme]

``--n`` keeps the first N utterances of each manifest. ``--unknown-names`` runs the same model
files under names no preset is calibrated for (``user-0``, ``user-1``, ... declared by a
``registry.json`` in a temporary folder of links to them), as a user's own models or an
OpenAI ladder would be: ``balanced`` then scores them with its generic weights and thresholds,
and the learned policy fits thresholds for them from the feedback (its README section is
"Learned thresholds (models the presets do not know)").

The utterances are split by the SHA-256 of their reference text (first byte even: fit half,
odd: test half), so every rendering of a sentence lands in the same half. The fit half is added
as feedback to a temporary SQLite store and fitted with the code path of ``whisper-cascade
learn`` (:func:`whisper_cascade.feedback.learn`). The test half then runs through real
cascades, one with ``balanced`` and one with ``learned_preset(policy)`` (same ladder, model pool
and decoding options; each warmed up on the first test file), and the report compares total
time, relative cost spent (the sum of each attempt's ``cost``), WER and escalation rate.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from whisper_cascade.backend_pool import ModelPool
from whisper_cascade.cascade import Cascade
from whisper_cascade.errors import InvalidArgumentError
from whisper_cascade.evaluation import run_eval
from whisper_cascade.feedback import add_feedback, learn
from whisper_cascade.ladders import folder_ladders, get_ladder
from whisper_cascade.learned import learned_preset
from whisper_cascade.manifest import ManifestItem, read_manifest
from whisper_cascade.models import resolve_model
from whisper_cascade.presets import Preset, get_preset
from whisper_cascade.store import SqliteStore

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchlib, next to this file
from benchlib import publish  # noqa: E402

README = Path(__file__).with_name("README.md")
SECTION = "## Learned thresholds"
UNKNOWN_SECTION = "## Learned thresholds (models the presets do not know)"


def split(items: Sequence[ManifestItem]) -> tuple[list[ManifestItem], list[ManifestItem]]:
    """(fit, test): by the parity of the first byte of SHA-256 of the reference text."""
    fit, test = [], []
    for item in items:
        (test if hashlib.sha256(item.text.encode()).digest()[0] % 2 else fit).append(item)
    return fit, test


def unknown_name_ladder(
    ladder: str, models_dir: str | Path | None, folder: Path
) -> tuple[str, Path]:
    """Link ``ladder``'s model files into ``folder`` as ``user-0``, ``user-1``, ... (same costs,
    windows and checksums) with a ``registry.json`` declaring ladder ``user``; returns
    (``"user"``, ``folder``)."""
    rungs = get_ladder(ladder, folder_ladders(models_dir))
    entries = []
    for k, spec in enumerate(rungs.models):
        path = resolve_model(spec.name, models_dir).path
        assert path is not None  # resolve_model raises when the file is missing
        name = f"user-{k}"
        (folder / f"ggml-{name}.bin").symlink_to(path.resolve())
        entries.append(
            {"name": name, "file": f"ggml-{name}.bin", "sha256": spec.sha256,
             "window_s": spec.window_s, "audio_ctx": spec.audio_ctx,
             "relative_cost": spec.relative_cost}
        )  # fmt: skip
    registry = {"models": entries, "ladders": {"user": [e["name"] for e in entries]}}
    (folder / "registry.json").write_text(json.dumps(registry, indent=1), encoding="utf-8")
    return "user", folder


def _evaluate(cascade: Cascade, preset: Preset, items: Sequence[ManifestItem]) -> dict[str, Any]:
    costs: list[float] = []

    def one(path: Path) -> dict[str, Any]:
        result = cascade.transcribe(path, preset=preset).to_dict()
        costs.append(
            sum(a.get("cost") or 0.0 for a in result["model_selection"]["decision_history"])
        )
        return result

    report = run_eval(items, one)
    return {
        "n": report.n,
        "failed": len(report.errors),
        "wer": report.wer,
        "total_time_s": report.total_time_s,
        "relative_cost": sum(costs),
        "escalation_rate": report.escalation_rate,
        "model_usage": report.model_usage,
    }


def run_bench(
    items: Sequence[ManifestItem],
    *,
    ladder: str = "micro",
    models_dir: str | Path | None = None,
    threads: int = 1,
    max_wer_increase: float = 0.0,
    relative_to: str = "base",
    min_class_items: int = 30,
    unknown_names: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """Fit on one half, evaluate ``balanced`` and the learned preset on the other."""
    fit, test = split(items)
    if not fit or not test:
        raise InvalidArgumentError(
            f"the split left {len(fit)} fit and {len(test)} test items: give more utterances"
        )
    with tempfile.TemporaryDirectory(prefix="bench-learned-") as tmp:
        if unknown_names:
            models = Path(tmp) / "models"
            models.mkdir()
            ladder, models_dir = unknown_name_ladder(ladder, models_dir, models)
        return _fit_and_compare(
            fit, test, Path(tmp) / "store.db", ladder=ladder, models_dir=models_dir,
            threads=threads, max_wer_increase=max_wer_increase, relative_to=relative_to,
            min_class_items=min_class_items, unknown_names=unknown_names, progress=progress,
        )  # fmt: skip


def _fit_and_compare(
    fit: Sequence[ManifestItem],
    test: Sequence[ManifestItem],
    store_path: Path,
    *,
    ladder: str,
    models_dir: str | Path | None,
    threads: int,
    max_wer_increase: float,
    relative_to: str,
    min_class_items: int,
    unknown_names: bool,
    progress: bool,
) -> dict[str, Any]:
    with SqliteStore(store_path) as store:
        for item in fit:
            add_feedback(store, item.path, item.text)
        policy = learn(
            store,
            ladder,
            max_wer_increase=max_wer_increase,
            relative_to=relative_to,
            min_class_items=min_class_items,
            models_dir=models_dir,
            n_threads=threads,
            progress=progress,
        )
    presets = {"balanced": get_preset("balanced"), "learned": learned_preset(policy)}
    pool = ModelPool()
    strategies: dict[str, Any] = {}
    try:
        for name, preset in presets.items():
            cascade = Cascade(ladder, preset, models_dir=models_dir, n_threads=threads, pool=pool)
            cascade.transcribe(test[0].path)  # warm-up: loads, first-call allocations
            cascade.analysis_cache = type(cascade.analysis_cache)()
            strategies[name] = _evaluate(cascade, preset, test)
            if progress:
                print(f"{name}: done", file=sys.stderr, flush=True)
    finally:
        pool.close()
    b, lrn = strategies["balanced"], strategies["learned"]
    return {
        "ladder": policy.ladder,
        "unknown_names": unknown_names,
        "n": len(fit) + len(test),
        "n_fit": len(fit),
        "n_test": len(test),
        "policy": json.loads(policy.to_json()),
        "strategies": strategies,
        "cost_ratio": lrn["relative_cost"] / b["relative_cost"] if b["relative_cost"] else None,
        "time_ratio": lrn["total_time_s"] / b["total_time_s"] if b["total_time_s"] else None,
        "wer_delta": lrn["wer"] - b["wer"],
    }


def markdown(report: dict[str, Any]) -> str:
    """The side-by-side table and the fitted thresholds."""
    lines = [
        f"ladder `{report['ladder']}`"
        + (" (its files under names the presets do not know)" if report["unknown_names"] else "")
        + f", {report['n']} utterances: {report['n_fit']} fit, "
        f"{report['n_test']} test (split by hash of the text)",
        "",
        "| preset | WER | total time (s) | relative cost | escalation | failed |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, s in report["strategies"].items():
        lines.append(
            f"| {name} | {100 * s['wer']:.2f}% | {s['total_time_s']:.2f} | "
            f"{s['relative_cost']:.1f} | {100 * s['escalation_rate']:.1f}% | {s['failed']} |"
        )
    pol = report["policy"]
    th = ", ".join(f"{m} {t:.2f}" for m, t in pol["thresholds"].items())
    lines += ["", f"learned thresholds: {th}; classes with their own: "
              f"{', '.join(pol['class_thresholds']) or 'none'}"]  # fmt: skip
    ratio = report["cost_ratio"]
    if ratio is not None:
        lines.append(
            f"learned / balanced: cost {ratio:.2f}x, time {report['time_ratio']:.2f}x, "
            f"WER {100 * report['wer_delta']:+.2f} points"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--manifest", type=Path, action="append", required=True)
    p.add_argument("--ladder", default="micro")
    p.add_argument("--models-dir", type=Path, default=None)
    p.add_argument("--n", type=int, default=None, help="first N utterances of each manifest")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--max-wer-increase", type=float, default=0.0)
    p.add_argument("--relative-to", choices=("base", "largest"), default="base")
    p.add_argument("--min-class-items", type=int, default=30)
    p.add_argument(
        "--unknown-names", action="store_true",
        help="run the ladder's files under names no preset is calibrated for",
    )  # fmt: skip
    p.add_argument("--json", type=Path, default=None, help="write the full report here")
    p.add_argument("--update-readme", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = p.parse_args(argv)
    if args.n is not None and args.n < 2:
        p.error("--n must be >= 2")
    items = [item for m in args.manifest for item in read_manifest(m)[: args.n]]
    report = run_bench(
        items,
        ladder=args.ladder,
        models_dir=args.models_dir,
        threads=args.threads,
        max_wer_increase=args.max_wer_increase,
        relative_to=args.relative_to,
        min_class_items=args.min_class_items,
        unknown_names=args.unknown_names,
        progress=not args.quiet,
    )
    publish(
        markdown(report),
        report,
        script="bench_learned.py",
        section=UNKNOWN_SECTION if args.unknown_names else SECTION,
        json_path=args.json,
        update_readme=args.update_readme,
        argv=argv,
        readme=README,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
