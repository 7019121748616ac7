"""The ``whisper-cascade`` command line: parse, call the library, print. No logic of its own."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from whisper_cascade.errors import ModelValidationError, WhisperCascadeError

Handler = Callable[[argparse.Namespace], int]


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


# --- models -------------------------------------------------------------------------------


def _cmd_models_validate(args: argparse.Namespace) -> int:
    from whisper_cascade.modelfile import validate_model

    try:
        info = validate_model(args.path, sha256=args.sha256)
    except ModelValidationError as exc:
        print(f"invalid: {args.path}: {exc} [{exc.code}]", file=sys.stderr)
        return 1
    if args.json:
        _print_json(info.to_dict())
    else:
        hp = info.hparams
        print(
            f"valid: {args.path}: {info.model_type} ({info.ftype}), "
            f"{info.n_parameters:,} parameters, n_vocab {hp.n_vocab}, "
            f"audio {hp.n_audio_layer}x{hp.n_audio_state}, "
            f"text {hp.n_text_layer}x{hp.n_text_state}, "
            f"sha256 {info.sha256}"
        )
    return 0


def _cmd_models_quantize(args: argparse.Namespace) -> int:
    from whisper_cascade.modelfile import quantize_model

    report = quantize_model(args.input, args.output, args.type)
    if args.json:
        _print_json(report)
    else:
        print(
            f"wrote {args.output} ({args.type}): {report['bytes_in']:,} → {report['bytes_out']:,} "
            f"bytes, {report['tensors_quantized']} tensors quantized in {report['seconds']:.2f} s"
        )
    return 0


def _cmd_models_list(args: argparse.Namespace) -> int:
    from whisper_cascade.models import bundled_ladders, bundled_models

    models = [spec.to_dict() for spec in bundled_models().values()]
    ladders = {name: list(members) for name, members in bundled_ladders().items()}
    if args.json:
        _print_json({"models": models, "ladders": ladders})
    else:
        if not models:
            print("no bundled models installed")
        for m in models:
            state = m["path"] if m["present"] else "not present"
            print(
                f"{m['name']:<16} cost {m['relative_cost']:<6g} window {m['window_s']:g}s  {state}"
            )
        for name, members in ladders.items():
            print(f"ladder {name}: {' → '.join(members)}")
    return 0


# --- transcription ------------------------------------------------------------------------


def _cmd_transcribe(args: argparse.Namespace) -> int:
    from whisper_cascade.backend import ContextOptions
    from whisper_cascade.pipeline import transcribe_files

    context = ContextOptions(
        use_gpu=args.gpu, flash_attn=args.flash_attn, gpu_device=args.gpu_device
    )
    failures = 0
    for result in transcribe_files(
        args.audio,
        model=args.model,
        models_dir=args.models_dir,
        n_threads=args.threads,
        context=context,
    ):
        if isinstance(result, WhisperCascadeError):
            failures += 1
            print(f"error: {result}", file=sys.stderr)
            continue
        if args.json:
            _print_json(result.to_dict())
        else:
            print(result.text)
    return 1 if failures else 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from whisper_cascade.pipeline import demo

    status: int = demo(models_dir=args.models_dir)
    return status


# --- zoo ----------------------------------------------------------------------------------


def _zoo_corpus(argv: list[str]) -> int:
    # The corpus generator owns its flags; argparse's REMAINDER cannot forward leading options.
    from whisper_cascade.zoo.corpus import corpus_cli

    return int(corpus_cli(argv))


def _cmd_zoo_export(args: argparse.Namespace) -> int:
    from whisper_cascade.zoo.export import export_ggml

    for info in export_ggml(args.checkpoint, args.output, quantize=args.quantize or ()):
        print(f"wrote {info.path} ({info.ftype}, {info.file_size:,} bytes, sha256 {info.sha256})")
    return 0


def _add_zoo_commands(sub: Any) -> None:
    zoo = sub.add_parser("zoo", help="the micro zoo: synthetic corpus and model export")
    zsub = zoo.add_subparsers(dest="zoo_command", required=True)
    p = zsub.add_parser(
        "corpus",
        help="synthesise a corpus: zoo corpus OUT --n N --seed S [--split heldout] ...",
        add_help=False,
    )
    p.set_defaults(handler=lambda args: _zoo_corpus([]))
    p = zsub.add_parser("export", help="convert a trained checkpoint (.npz) to ggml")
    p.add_argument("checkpoint", help="a .npz checkpoint written by the zoo trainer")
    p.add_argument("output", help="the ggml f16 file to write")
    p.add_argument("--quantize", nargs="*", choices=["q8_0", "q5_0", "q5_1", "q4_0", "q4_1"])
    p.set_defaults(handler=_cmd_zoo_export)


# --- parser -------------------------------------------------------------------------------


def _add_context_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--gpu",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="let whisper.cpp use a GPU when its build has one (docs/gpu.md)",
    )
    p.add_argument("--flash-attn", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--gpu-device", type=int, default=0)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``whisper-cascade`` command."""
    parser = argparse.ArgumentParser(
        prog="whisper-cascade",
        description="Transcribe speech with a cascade of Whisper models (whisper.cpp).",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("transcribe", help="transcribe audio files")
    p.add_argument("audio", nargs="+", help="audio files (wav, flac, ogg, mp3, ...)")
    p.add_argument("--model", required=True, help="a model name or a ggml file path")
    p.add_argument("--models-dir", help="folder holding ggml-NAME.bin files")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for whisper.cpp")
    p.add_argument("--json", action="store_true", help="one JSON object per file (JSON Lines)")
    _add_context_flags(p)
    p.set_defaults(handler=_cmd_transcribe)

    p = sub.add_parser("demo", help="transcribe the bundled sample with the default models")
    p.add_argument("--models-dir", help="folder holding ggml-NAME.bin files")
    p.set_defaults(handler=_cmd_demo)

    models = sub.add_parser("models", help="inspect, validate and quantize model files")
    msub = models.add_subparsers(dest="models_command", required=True)
    p = msub.add_parser("validate", help="validate a whisper.cpp model file (exit 0 when valid)")
    p.add_argument("path")
    p.add_argument("--sha256", help="expected SHA-256 of the file")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_cmd_models_validate)
    p = msub.add_parser("quantize", help="quantize an f16 model file")
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--type", required=True, choices=["q8_0", "q5_0", "q5_1", "q4_0", "q4_1"])
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_cmd_models_quantize)
    p = msub.add_parser("list", help="list bundled models and ladders")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_cmd_models_list)
    _add_zoo_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``whisper-cascade`` command; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["zoo", "corpus"]:
        return _zoo_corpus(argv[2:])
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except ModelValidationError as exc:
        print(f"error: invalid model: {exc} [{exc.code}]", file=sys.stderr)
        return 1
    except WhisperCascadeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
