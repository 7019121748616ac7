"""Ship the micro zoo: export the trained sizes, pick quantizations, measure, register.

``python -m whisper_cascade.zoo.ship --work WORK --out python/whisper_cascade/data/models``
exports each available ``WORK/micro-<size>/best.npz`` to ``ggml-micro-<size>.bin`` (f16) plus
quantized variants, validates every file, keeps a quantized variant only when it costs at most
one WER point on held-out speech (``--quantize auto``), measures the median whisper.cpp time
per utterance (normalised to ``micro-s`` = 1.0), and writes ``registry.json`` (ladder ``micro``
of every shipped size, cheapest first, unless ``--ladder NAME=SIZE,SIZE`` declares the ladders)
and one model card per model (``<name>.md`` next to the file).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from whisper_cascade.audio import Audio, load_audio
from whisper_cascade.backend import DecodeOptions
from whisper_cascade.errors import InvalidArgumentError
from whisper_cascade.evaluation import EvalReport, run_eval
from whisper_cascade.manifest import ManifestItem, read_manifest
from whisper_cascade.modelfile import ModelInfo
from whisper_cascade.transcriber import Transcriber
from whisper_cascade.zoo.cards import training_summary, write_card
from whisper_cascade.zoo.export import export_ggml

SIZES = ("xs", "s", "m", "l")
AUTO_QUANT = ("q8_0",)  # q4_0 breaks models this small (see the issue)
MAX_QUANT_WER_COST = 0.01  # a quantized file may cost at most one WER point
WHEEL_BUDGET_BYTES = 60_000_000
LADDER = "micro"


def decode_options() -> DecodeOptions:
    """What every zoo measurement decodes with: greedy, no timestamps, one thread.

    ``max_tokens`` bounds a broken model's output; no domain sentence needs 64 tokens."""
    return DecodeOptions(n_threads=1, no_timestamps=True, max_tokens=64)


@dataclass
class ShippedModel:
    """One registry entry plus what its card reports."""

    name: str
    file: str
    sha256: str
    window_s: float
    audio_ctx: int
    relative_cost: float
    n_parameters: int
    ftype: str
    size: str
    file_bytes: int
    gzip_bytes: int
    time_per_utt_s: float = 0.0
    wer: float | None = None
    wer_by_condition: dict[str, float] = field(default_factory=dict)

    def registry_entry(self) -> dict[str, Any]:
        """The fields ``registry.json`` records for this model."""
        keys = ("name", "file", "sha256", "window_s", "audio_ctx", "relative_cost")
        d = asdict(self)
        return {**{k: d[k] for k in keys}, "n_parameters": self.n_parameters, "ftype": self.ftype}


def gzip_size(path: Path) -> int:
    """Size in bytes of ``path`` compressed with gzip -9 (what a wheel's deflate costs)."""
    sink = _CountingSink()
    with (
        path.open("rb") as src,
        gzip.GzipFile(fileobj=sink, mode="wb", compresslevel=9, mtime=0) as gz,
    ):
        shutil.copyfileobj(src, gz, 1 << 20)
    return sink.n


class _CountingSink:
    def __init__(self) -> None:
        self.n = 0

    def write(self, data: bytes) -> int:
        self.n += len(data)
        return len(data)

    def flush(self) -> None:
        pass


def transcribe_fn(
    path: Path, info: ModelInfo, transcriber: Transcriber | None = None
) -> Callable[[Path], dict[str, Any]]:
    """A :func:`~whisper_cascade.evaluation.run_eval` callback transcribing with one zoo model
    (its own ``audio_ctx``, :func:`decode_options`); the confidence travels along."""
    tr = transcriber or Transcriber()
    name = path.stem.removeprefix("ggml-")

    def run(audio_path: Path) -> dict[str, Any]:
        audio = load_audio(audio_path)
        result = tr.transcribe(
            path, audio, decode_options(), name=name, audio_ctx=info.hparams.n_audio_ctx
        )
        return {
            "text": result.text,
            "time_s": result.time_s,
            "model": name,
            "confidence": result.confidence,
            "duration_s": result.duration_s,
        }

    return run


def evaluate_model(
    path: Path, info: ModelInfo, items: Sequence[ManifestItem]
) -> tuple[EvalReport, list[dict[str, Any]]]:
    """WER report of one model on ``items`` plus each file's raw outcome (confidence...)."""
    outcomes: list[dict[str, Any]] = []
    fn = transcribe_fn(path, info)

    def keep(audio_path: Path) -> dict[str, Any]:
        out = fn(audio_path)
        outcomes.append(out)
        return out

    return run_eval(list(items), keep), outcomes


def median_time(path: Path, info: ModelInfo, audios: Sequence[Audio], repeats: int = 1) -> float:
    """Median whisper.cpp wall time (s) per utterance, after one warm-up run."""
    tr = Transcriber()
    opts = decode_options()
    ctx = info.hparams.n_audio_ctx
    tr.transcribe(path, audios[0], opts, audio_ctx=ctx)
    times = []
    for _ in range(repeats):
        for audio in audios:
            started = time.perf_counter()
            tr.transcribe(path, audio, opts, audio_ctx=ctx)
            times.append(time.perf_counter() - started)
    return float(statistics.median(times))


def condition_kind(condition: str | None) -> str:
    """``pink10`` → ``pink``; other conditions unchanged (``None`` → ``unspecified``)."""
    if not condition:
        return "unspecified"
    return condition.rstrip("0123456789") or condition


def _wer_by_kind(report: EvalReport) -> dict[str, float]:
    groups: dict[str, list[tuple[int, int]]] = {}
    for item in report.items:
        groups.setdefault(condition_kind(item.condition), []).append((item.edits, item.ref_words))
    return {k: sum(e for e, _ in v) / max(1, sum(w for _, w in v)) for k, v in groups.items()}


def ship(
    work: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    sizes: Sequence[str] = SIZES,
    quantize: str | Sequence[str] = "auto",
    eval_manifest: str | os.PathLike[str] | None = None,
    n_eval: int = 200,
    n_cost: int = 20,
    ladders: Mapping[str, Sequence[str]] | None = None,
) -> list[ShippedModel]:
    """Export, validate, measure and register every available size (see the module doc).

    ``ladders`` maps ladder names to sizes (default: ``micro`` = every shipped size); each
    ladder's rungs are sorted by measured cost.

    ``quantize``: ``"auto"`` (try q8_0, keep it only when it costs ≤ 1 WER point; needs
    ``eval_manifest``), ``"none"``, or a list of types to keep unconditionally. WER is
    measured on the first ``n_eval`` items of ``eval_manifest``, cost on its first ``n_cost``.
    """
    work, out = Path(work), Path(out)
    if isinstance(quantize, str):
        if quantize not in ("auto", "none"):
            raise InvalidArgumentError(f"quantize must be auto, none or a list, got {quantize!r}")
        qtypes: tuple[str, ...] = () if quantize == "none" else AUTO_QUANT
    else:
        qtypes = tuple(quantize)
    auto = quantize == "auto"
    if auto and eval_manifest is None:
        raise InvalidArgumentError("quantize 'auto' needs an eval manifest to measure WER")
    items = read_manifest(eval_manifest)[:n_eval] if eval_manifest is not None else []
    unknown = [s for s in sizes if s not in SIZES]
    if unknown:
        raise InvalidArgumentError(f"unknown sizes {unknown}; known: {SIZES}")
    out.mkdir(parents=True, exist_ok=True)
    found = [s for s in sizes if (work / f"micro-{s}" / "best.npz").is_file()]
    if not found:
        raise InvalidArgumentError(f"no micro-<size>/best.npz under {work}")
    for name, members in (ladders or {}).items():
        if not members or any(m not in found for m in members):
            raise InvalidArgumentError(
                f"ladder {name!r} must list shipped sizes ({', '.join(found)}), got {list(members)}"
            )
    cost_audio = [load_audio(i.path) for i in items[:n_cost]] if items else []
    shipped: list[tuple[ShippedModel, ModelInfo, dict[str, Any]]] = []
    for size in found:
        f16 = out / f"ggml-micro-{size}.bin"
        infos = export_ggml(work / f"micro-{size}" / "best.npz", f16, quantize=qtypes)
        training = training_summary(work, size)
        base_wer: float | None = None
        for info in infos:
            path = Path(info.path)
            model = _describe(path, info, size)
            if items:
                report, _ = evaluate_model(path, info, items)
                model.wer, model.wer_by_condition = report.wer, _wer_by_kind(report)
            if info.ftype == infos[0].ftype:
                base_wer = model.wer
            elif auto and (model.wer is None or base_wer is None or _too_costly(base_wer, model)):
                path.unlink()
                continue
            if cost_audio:
                model.time_per_utt_s = median_time(path, info, cost_audio, repeats=3)
            shipped.append((model, info, training))
    return _finish(out, shipped, ladders)


def _too_costly(base_wer: float, model: ShippedModel) -> bool:
    return model.wer is None or model.wer - base_wer > MAX_QUANT_WER_COST


def _describe(path: Path, info: ModelInfo, size: str) -> ShippedModel:
    ctx = info.hparams.n_audio_ctx
    return ShippedModel(
        name=path.stem.removeprefix("ggml-"),
        file=path.name,
        sha256=str(info.sha256),
        window_s=round(ctx * 0.02, 3),
        audio_ctx=ctx,
        relative_cost=1.0,
        n_parameters=info.n_parameters,
        ftype=info.ftype,
        size=size,
        file_bytes=info.file_size,
        gzip_bytes=gzip_size(path),
    )


def _finish(
    out: Path,
    shipped: list[tuple[ShippedModel, ModelInfo, dict[str, Any]]],
    ladders: Mapping[str, Sequence[str]] | None = None,
) -> list[ShippedModel]:
    ref = next((m for m, _, _ in shipped if m.name == "micro-s"), shipped[0][0])
    for model, _, _ in shipped:
        if ref.time_per_utt_s > 0:
            model.relative_cost = round(model.time_per_utt_s / ref.time_per_utt_s, 3)
        else:  # no timing: parameters of the audio encoder path stand in
            model.relative_cost = round(model.n_parameters / ref.n_parameters, 3)
    models = [m for m, _, _ in shipped]
    # One rung per size: its quantized variant when one was kept (same quality, cheaper).
    rung: dict[str, ShippedModel] = {}
    for m in models:
        if m.size not in rung or m.ftype != "f16":
            rung[m.size] = m
    declared = ladders or {LADDER: list(rung)}
    registry = {
        "models": [m.registry_entry() for m in models],
        "ladders": {
            name: [
                m.name
                for m in sorted(
                    (rung[size] for size in members if size in rung),
                    key=lambda m: (m.relative_cost, m.name),
                )
            ]
            for name, members in declared.items()
        },
    }
    tmp = out / "registry.json.tmp"
    tmp.write_text(json.dumps(registry, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, out / "registry.json")
    for model, info, training in shipped:
        write_card(out, model, info, training)
    return models


def budget_report(models: Sequence[ShippedModel]) -> str:
    """One line per file with its raw and gzip -9 size, and the total against the budget."""
    lines = [f"{m.file:<28} {m.file_bytes:>12,} B  gzip {m.gzip_bytes:>11,} B" for m in models]
    total = sum(m.gzip_bytes for m in models)
    verdict = "fits" if total <= WHEEL_BUDGET_BYTES else "EXCEEDS"
    lines.append(f"total compressed {total:,} B: {verdict} the {WHEEL_BUDGET_BYTES:,} B budget")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m whisper_cascade.zoo.ship`` (see the module doc)."""
    p = argparse.ArgumentParser(prog="python -m whisper_cascade.zoo.ship", description=__doc__)
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--sizes", nargs="+", default=list(SIZES), choices=SIZES)
    p.add_argument("--quantize", nargs="+", default=["auto"], help="auto | none | q8_0 ...")
    p.add_argument("--eval-manifest", type=Path, default=None)
    p.add_argument("--n-eval", type=int, default=200)
    p.add_argument("--n-cost", type=int, default=20)
    p.add_argument(
        "--ladder",
        action="append",
        default=[],
        metavar="NAME=SIZE,SIZE",
        help="declare a ladder (repeatable); default: micro = every shipped size",
    )
    args = p.parse_args(argv)
    ladders: dict[str, list[str]] = {}
    for spec in args.ladder:
        name, sep, members = spec.partition("=")
        if not sep or not name.strip():
            p.error(f"--ladder wants NAME=SIZE,SIZE, got {spec!r}")
        ladders[name.strip()] = [m.strip() for m in members.split(",") if m.strip()]
    manifest = args.eval_manifest
    if manifest is None and (args.work / "corpus/heldout/manifest.jsonl").is_file():
        manifest = args.work / "corpus/heldout/manifest.jsonl"
    quant: str | list[str] = args.quantize[0] if args.quantize[0] in ("auto", "none") else []
    if not isinstance(quant, str):
        quant = list(args.quantize)
    models = ship(
        args.work,
        args.out,
        sizes=args.sizes,
        quantize=quant,
        eval_manifest=manifest,
        n_eval=args.n_eval,
        n_cost=args.n_cost,
        ladders=ladders or None,
    )
    for m in models:
        wer = "n/a" if m.wer is None else f"{100 * m.wer:.1f}%"
        print(f"{m.name:<16} cost {m.relative_cost:6.2f}  WER {wer:>6}  {m.ftype}")
    print(budget_report(models))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
