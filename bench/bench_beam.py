"""Beam search against greedy decoding, per model: would a wider beam make a dearer, better rung?

    .venv/bin/python bench/bench_beam.py --models-dir python/whisper_cascade/data/models \
        --manifest /work/zoo-work/corpus/heldout/manifest.jsonl [--manifest M2 ...] \
        [--n 150] [--beams 1 3 5] [--models FILE ...] [--json OUT] [--update-readme]

Every model of the ladder ``--ladder`` (default ``micro``; or the files given with ``--models``)
transcribes the first ``--n`` utterances of each manifest once per beam size (1 = greedy), no
timestamps, 1 thread, the model's own ``audio_ctx``, after one warm-up call per setting. The
table gives corpus-level WER and whisper.cpp time per file for each setting.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from whisper_cascade.audio import load_audio
from whisper_cascade.backend import LoadedModel
from whisper_cascade.evaluation import word_edits
from whisper_cascade.ladders import folder_ladders, get_ladder
from whisper_cascade.manifest import ManifestItem, read_manifest
from whisper_cascade.models import resolve_model
from whisper_cascade.zoo.ship import decode_options

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchlib, next to this file
from benchlib import publish  # noqa: E402

README = Path(__file__).with_name("README.md")
SECTION = "## Beam search"


def measure(path: Path, items: Sequence[ManifestItem], beams: Sequence[int]) -> dict[str, Any]:
    """Per beam size: WER (fraction), edits, reference words and whisper.cpp seconds."""
    samples = [load_audio(item.path).samples for item in items]
    out: dict[str, Any] = {}
    with LoadedModel(path) as model:
        for beam in beams:
            options = replace(decode_options(), beam_size=0 if beam <= 1 else beam)
            model.transcribe(samples[0], options)  # warm-up
            edits = words = 0
            seconds = 0.0
            for item, audio in zip(items, samples, strict=True):
                raw = model.transcribe(audio, options)
                seconds += raw.time_s
                e, w = word_edits(item.text, " ".join(s.text for s in raw.segments))
                edits, words = edits + e, words + w
            out[str(beam)] = {
                "wer": edits / words if words else 0.0,
                "edits": edits,
                "words": words,
                "time_s": seconds,
            }
    return out


def markdown(report: dict[str, Any]) -> str:
    """One row per model: WER and ms per file for each beam size, and the time ratios."""
    beams = report["beams"]
    head = " | ".join(f"WER beam {b}" for b in beams) + " | "
    head += " | ".join(f"ms/file beam {b}" for b in beams)
    lines = [
        f"{report['n']} utterances; beam 1 = greedy. No timestamps, 1 thread.",
        "",
        f"| model | {head} |",
        "|---|" + "---:|" * (2 * len(beams)),
    ]
    for name, res in report["models"].items():
        wers = " | ".join(f"{100 * res[str(b)]['wer']:.1f}%" for b in beams)
        ms = " | ".join(f"{1000 * res[str(b)]['time_s'] / report['n']:.1f}" for b in beams)
        lines.append(f"| {name} | {wers} | {ms} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--manifest", type=Path, action="append", required=True)
    p.add_argument("--models-dir", type=Path, default=None)
    p.add_argument("--ladder", default="micro")
    p.add_argument("--models", nargs="+", type=Path, help="ggml files instead of the ladder")
    p.add_argument("--n", type=int, default=150, help="first N utterances of each manifest")
    p.add_argument("--beams", type=int, nargs="+", default=[1, 3, 5])
    p.add_argument("--json", type=Path, default=None, help="write the full report here")
    p.add_argument("--update-readme", action="store_true")
    args = p.parse_args(argv)
    if any(not 1 <= b <= 16 for b in args.beams):
        p.error("--beams must be in 1..16")
    items = [item for m in args.manifest for item in read_manifest(m)[: args.n]]
    if not items:
        p.error("no utterances")
    if args.models:
        paths = {path.stem.removeprefix("ggml-"): path for path in args.models}
    else:
        ladder = get_ladder(args.ladder, folder_ladders(args.models_dir))
        paths = {}
        for spec in ladder.models:
            found = resolve_model(spec.name, args.models_dir).path
            assert found is not None  # resolve_model raises when the file is missing
            paths[spec.name] = found
    report = {
        "n": len(items),
        "beams": args.beams,
        "models": {name: measure(path, items, args.beams) for name, path in paths.items()},
    }
    publish(
        markdown(report),
        report,
        script="bench_beam.py",
        section=SECTION,
        json_path=args.json,
        update_readme=args.update_readme,
        argv=argv,
        readme=README,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
