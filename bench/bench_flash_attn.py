"""whisper.cpp with flash attention on and off, side by side: WER, identical transcripts, time.

    .venv/bin/python bench/bench_flash_attn.py --models-dir python/whisper_cascade/data/models \
        --manifest /work/zoo-work/corpus/heldout/manifest.jsonl [--n 200] [--update-readme]

Every model of ``MODELS_DIR/registry.json`` (or the files given with ``--models``) is loaded
twice, once per setting, and each file is transcribed by both contexts in alternating order, so
the machine's noise hits both columns alike. Decoding as in bench_zoo: greedy, no timestamps,
1 thread, the model's own ``audio_ctx``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from whisper_cascade.audio import load_audio
from whisper_cascade.backend import ContextOptions
from whisper_cascade.evaluation import normalize_text, word_edits
from whisper_cascade.manifest import read_manifest
from whisper_cascade.modelfile import validate_model
from whisper_cascade.transcriber import Transcriber
from whisper_cascade.zoo.ship import decode_options

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchlib, next to this file
from benchlib import update_readme_section  # noqa: E402

README = Path(__file__).with_name("README.md")
SECTION = "## Flash attention"
SETTINGS = (("on", True), ("off", False))


def _files(args: argparse.Namespace) -> list[Path]:
    if args.models:
        return [Path(p) for p in args.models]
    registry = json.loads((args.models_dir / "registry.json").read_text(encoding="utf-8"))
    return [args.models_dir / m["file"] for m in registry["models"]]


def measure(path: Path, items: list, repeats: int) -> dict[str, dict[str, float | list[str]]]:
    """Per setting: transcripts, edits, reference words and seconds per file."""
    info = validate_model(path)
    ctx = info.hparams.n_audio_ctx
    runners = {
        label: Transcriber(context=ContextOptions(use_gpu=False, flash_attn=flag))
        for label, flag in SETTINGS
    }
    out: dict[str, dict[str, float | list[str]]] = {
        label: {"texts": [], "edits": 0, "words": 0, "time_s": 0.0} for label, _ in SETTINGS
    }
    audios = [load_audio(item.path) for item in items]
    for tr in runners.values():  # warm-up: load both contexts before timing
        tr.transcribe(path, audios[0], decode_options(), name=path.stem, audio_ctx=ctx)
    for i, (item, audio) in enumerate(zip(items, audios, strict=True)):
        order = SETTINGS if i % 2 == 0 else SETTINGS[::-1]
        for label, _ in order:
            start = time.perf_counter()
            for _ in range(repeats):
                result = runners[label].transcribe(
                    path, audio, decode_options(), name=path.stem, audio_ctx=ctx
                )
            row = out[label]
            row["time_s"] = float(row["time_s"]) + (time.perf_counter() - start) / repeats
            edits, words = word_edits(item.text, result.text)
            row["edits"] = int(row["edits"]) + edits
            row["words"] = int(row["words"]) + words
            texts = row["texts"]
            assert isinstance(texts, list)
            texts.append(result.text)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--models-dir", type=Path, default=Path("python/whisper_cascade/data/models"))
    p.add_argument("--models", nargs="*", help="ggml files instead of the registry")
    p.add_argument("--manifest", type=Path, required=True)
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--repeats", type=int, default=1, help="timed runs per file and setting")
    p.add_argument("--update-readme", action="store_true")
    args = p.parse_args()
    items = read_manifest(args.manifest)[: args.n]
    lines = [
        f"{len(items)} utterances of `{args.manifest.name}` (`{args.manifest.parent.name}`); "
        "each file transcribed with flash attention on and off in alternating order.",
        "",
        "| model | WER on | WER off | identical | ms/file on | ms/file off | time off/on |",
        "|---|---|---|---|---|---|---|",
    ]
    for path in _files(args):
        res = measure(path, items, args.repeats)
        on, off = res["on"], res["off"]
        same = sum(
            normalize_text(a) == normalize_text(b)
            for a, b in zip(on["texts"], off["texts"], strict=True)  # type: ignore[arg-type]
        )
        wer = {k: 100 * float(v["edits"]) / max(1, float(v["words"])) for k, v in res.items()}
        ms = {k: 1000 * float(v["time_s"]) / len(items) for k, v in res.items()}
        lines.append(
            f"| {path.stem.removeprefix('ggml-')} | {wer['on']:.1f}% | {wer['off']:.1f}% "
            f"| {100 * same / len(items):.0f}% | {ms['on']:.1f} | {ms['off']:.1f} "
            f"| {ms['off'] / ms['on']:.2f}× |"
        )
        print(lines[-1], flush=True)
    text = "\n".join(lines)
    print(text)
    if args.update_readme:
        command = "python bench/bench_flash_attn.py " + " ".join(sys.argv[1:])
        update_readme_section(SECTION, command, text, README)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
