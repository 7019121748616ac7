"""The ``whisper-cascade`` command line: parse, call the library, print. No logic of its own."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from whisper_cascade.backend_logs import set_quiet_loading
from whisper_cascade.cli_ab import add_ab_commands
from whisper_cascade.cli_flags import add_learning_flags
from whisper_cascade.cli_learn import add_learn_commands
from whisper_cascade.cli_models import add_models_commands
from whisper_cascade.cli_report import add_report_commands
from whisper_cascade.cli_serve import add_serve_command
from whisper_cascade.errors import ModelValidationError, WhisperCascadeError

Handler = Callable[[argparse.Namespace], int]


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


# --- transcription ------------------------------------------------------------------------


def _context(args: argparse.Namespace) -> Any:
    from whisper_cascade.backend import ContextOptions

    return ContextOptions(use_gpu=args.gpu, flash_attn=args.flash_attn, gpu_device=args.gpu_device)


def _progress(items: list[str]) -> Iterable[str]:
    """Wrap ``items`` in a tqdm bar on stderr when there are several and stderr is a TTY."""
    if len(items) < 2 or not sys.stderr.isatty():
        return items
    from tqdm import tqdm  # type: ignore[import-untyped]

    bar: Iterable[str] = tqdm(items, file=sys.stderr, unit="file")
    return bar


LONG_AUDIO_S = 60.0
"""Files at least this long get a progress bar of their own (in seconds of audio)."""


class AudioProgress:
    """A ``progress(done_s, total_s)`` callback drawing one tqdm bar per long file on stderr.

    A new bar starts whenever the total changes or the position goes back (the next file, or
    the next rung of a cascade); short files and non-TTY stderr draw nothing.
    """

    def __init__(self, stream: Any = None, min_total_s: float = LONG_AUDIO_S) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.min_total_s = min_total_s
        self._bar: Any = None
        self._total = -1.0
        self._done = 0.0

    def __call__(self, done_s: float, total_s: float) -> None:
        if total_s < self.min_total_s or not self.stream.isatty():
            return
        if self._bar is None or total_s != self._total or done_s < self._done:
            self.close()
            from tqdm import tqdm

            self._bar = tqdm(total=round(total_s, 1), unit="s", file=self.stream, leave=False)
            self._total, self._done = total_s, 0.0
        self._bar.update(round(done_s - self._done, 1))
        self._done = done_s

    def close(self) -> None:
        """Finish the current bar, if any."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _emit(args: argparse.Namespace, source: str, result: dict[str, Any], text: str) -> None:
    if args.output_format:
        from whisper_cascade.formats import write_outputs

        write_outputs(result, source, args.output_format, args.output_dir or ".")
    if args.json:
        _print_json(result)
    elif not args.output_format:
        print(text)


def _user_settings(args: argparse.Namespace) -> dict[str, Any]:
    """Presets and ladders of the user's TOML config, as Cascade keyword arguments."""
    from whisper_cascade.settings import load_settings

    settings = load_settings(args.config)
    return {"presets": settings.presets, "ladders": settings.ladders}


def _cmd_transcribe(args: argparse.Namespace) -> int:
    if args.model:
        return _transcribe_single(args)
    from whisper_cascade.cascade import Cascade
    from whisper_cascade.cli_flags import cascade_options

    failures = 0
    with (
        cascade_options(args) as learning,
        Cascade(
            args.ladder,
            args.preset,
            models_dir=args.models_dir,
            n_threads=args.threads,
            context=_context(args),
            **_user_settings(args),
            **learning,
        ) as cascade,
    ):
        for source in _progress(list(args.audio)):
            try:
                result = cascade.transcribe(source)
                _emit(args, source, result.to_dict(), result.text)
            except WhisperCascadeError as exc:
                failures += 1
                print(f"error: {source}: {exc}", file=sys.stderr)
    return 1 if failures else 0


def _transcribe_single(args: argparse.Namespace) -> int:
    from whisper_cascade.lifecycle import resolve_registered
    from whisper_cascade.pipeline import transcribe_files

    # An active version in the model registry wins over the ggml-NAME.bin file search.
    registered = resolve_registered(args.model)
    failures = 0
    within = AudioProgress()
    for result in transcribe_files(
        _progress(list(args.audio)),
        model=args.model if registered is None else registered.path,
        models_dir=args.models_dir,
        n_threads=args.threads,
        context=_context(args),
        progress=within,
    ):
        within.close()
        if isinstance(result, WhisperCascadeError):
            failures += 1
            print(f"error: {result}", file=sys.stderr)
            continue
        try:
            _emit(args, result.audio, result.to_dict(), result.text)
        except WhisperCascadeError as exc:
            failures += 1
            print(f"error: {result.audio}: {exc}", file=sys.stderr)
    return 1 if failures else 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from whisper_cascade.evaluation import run_eval

    if args.model:
        from whisper_cascade.audio import load_audio
        from whisper_cascade.models import resolve_model
        from whisper_cascade.transcriber import Transcriber

        spec = resolve_model(args.model, args.models_dir)
        assert spec.path is not None
        runner = Transcriber(context=_context(args))
        path = spec.path

        def one(source: Path) -> dict[str, Any]:
            out = runner.transcribe(path, load_audio(source), name=spec.name, sha256=spec.sha256)
            return out.to_dict()

        report = run_eval(args.manifest, one, progress=not args.json and sys.stderr.isatty())
    else:
        from whisper_cascade.cascade import Cascade
        from whisper_cascade.cli_flags import cascade_options

        with (
            cascade_options(args) as learning,
            Cascade(
                args.ladder,
                args.preset,
                models_dir=args.models_dir,
                context=_context(args),
                **_user_settings(args),
                **learning,
            ) as cascade,
        ):
            report = run_eval(  # the cascade gets each item's text as its reference
                args.manifest, cascade, progress=not args.json and sys.stderr.isatty()
            )
    if args.json:
        _print_json(report.to_dict())
    else:
        print(report.summary_text())
    return 0


def _cmd_analyze(args: argparse.Namespace) -> int:
    from whisper_cascade.cascade import Cascade

    cascade = Cascade(args.ladder, args.preset, models_dir=args.models_dir, **_user_settings(args))
    report = cascade.recommend(args.audio)
    if args.json:
        _print_json(report)
        return 0
    feats = report["features"]
    if feats is None:
        print(f"analysis failed: {report['analysis_error']}")
    else:
        print(
            f"{report['audio']}: {feats['duration_s']:.2f} s, SNR {feats['snr_db']:.1f} dB, "
            f"speech {feats['speech_ratio']:.0%}, rate {feats['speech_rate']:.1f}/s, "
            f"complexity {feats['complexity']:.2f}"
        )
    print(
        f"start with {report['start_model']} ({report['reason']}; ladder {report['ladder']}: "
        f"{' → '.join(report['ladder_models'])}, preset {report['preset']})"
    )
    return 0


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


def _cmd_zoo_grow(args: argparse.Namespace) -> int:
    from whisper_cascade.zoo.export import save_npz
    from whisper_cascade.zoo.grow import load_any, widen

    dims, state = load_any(args.source)
    if args.widen != 1:
        dims, state = widen(dims, state, args.widen, seed=args.seed)
    save_npz(args.output, dims, state)
    print(f"wrote {args.output} (d_model {dims['n_audio_state']}, {dims['n_audio_head']} heads)")
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
    p = zsub.add_parser(
        "grow", help="a model file or checkpoint as a .npz checkpoint, optionally widened"
    )
    p.add_argument("source", help="a zoo .npz or a whisper.cpp f16/f32 model file")
    p.add_argument("output", help="the .npz checkpoint to write")
    p.add_argument("--widen", type=int, default=1, metavar="K", help="K times wider, same outputs")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weight splits")
    p.set_defaults(handler=_cmd_zoo_grow)


# --- parser -------------------------------------------------------------------------------


def _add_context_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--gpu",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="let whisper.cpp use a GPU when its build has one (docs/gpu.md)",
    )
    p.add_argument(
        "--flash-attn",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="whisper.cpp flash attention (off: on the CPU it accumulates in float16)",
    )
    p.add_argument("--gpu-device", type=int, default=0)


def _add_model_source_flags(p: argparse.ArgumentParser, ladder_help: str | None = None) -> None:
    """``--ladder``, ``--models-dir`` and ``--config``: where the models and presets come from."""
    p.add_argument("--ladder", default=None, help=ladder_help)
    p.add_argument("--models-dir", help="folder holding ggml-NAME.bin files")
    p.add_argument(
        "--config",
        help="TOML config (default: $WHISPER_CASCADE_CONFIG, then the user config)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``whisper-cascade`` command."""
    parser = argparse.ArgumentParser(
        prog="whisper-cascade",
        description="Transcribe speech with a cascade of Whisper models (whisper.cpp).",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("transcribe", help="transcribe audio files")
    p.add_argument("audio", nargs="+", help="audio files (wav, flac, ogg, mp3, ...)")
    p.add_argument(
        "--model", help="one model (a name or a ggml file path): no cascade, no escalation"
    )
    p.add_argument(
        "--preset", default="balanced", help="fast, balanced (default), accurate or learned"
    )
    _add_model_source_flags(p, ladder_help="micro (default), openai, openai.en or a list")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for whisper.cpp")
    p.add_argument("--json", action="store_true", help="one JSON object per file (JSON Lines)")
    p.add_argument(
        "--output-format",
        choices=["txt", "vtt", "srt", "tsv", "json", "all"],
        help="write AUDIO_STEM.<format> files (all: every format)",
    )
    p.add_argument("--output-dir", help="folder for --output-format files (default: .)")
    _add_context_flags(p)
    add_learning_flags(p)
    p.set_defaults(handler=_cmd_transcribe)

    p = sub.add_parser("eval", help="WER, time and escalation statistics over a manifest")
    p.add_argument("manifest")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--preset", default="balanced")
    group.add_argument("--model", help="one model, no cascade")
    _add_model_source_flags(p)
    p.add_argument("--json", action="store_true")
    _add_context_flags(p)
    add_learning_flags(p)
    p.set_defaults(handler=_cmd_eval)

    p = sub.add_parser("analyze", help="audio features and the recommended starting model")
    p.add_argument("audio")
    p.add_argument("--preset", default="balanced")
    _add_model_source_flags(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_cmd_analyze)

    p = sub.add_parser("demo", help="transcribe the bundled sample with the default models")
    p.add_argument("--models-dir", help="folder holding ggml-NAME.bin files")
    p.set_defaults(handler=_cmd_demo)

    add_models_commands(sub)
    _add_zoo_commands(sub)
    add_learn_commands(sub)
    add_ab_commands(sub)
    add_report_commands(sub)
    add_serve_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``whisper-cascade`` command; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["zoo", "corpus"]:
        return _zoo_corpus(argv[2:])
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    set_quiet_loading(args.command != "serve")
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
