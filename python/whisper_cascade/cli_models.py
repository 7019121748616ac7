"""The ``whisper-cascade models`` commands: inspect, import, validate, quantize, register,
deploy and roll back."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from whisper_cascade.errors import ModelValidationError

QUANT_CHOICES = ["q8_0", "q5_0", "q5_1", "q4_0", "q4_1"]


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _store(args: argparse.Namespace) -> Any:
    from whisper_cascade.store import open_store

    return open_store(args.db)


def _registered_sha(path: str, db: str | None) -> str | None:
    """The registry's checksum for the file at ``path``, when the store exists and has it."""
    from whisper_cascade.lifecycle import registered_records

    absolute = str(Path(path).resolve())
    return next((r.sha256 for r in registered_records(db) if r.path == absolute), None)


def _cmd_validate(args: argparse.Namespace) -> int:
    from whisper_cascade.modelfile import validate_model

    sha256 = args.sha256 or _registered_sha(args.path, args.db)
    try:
        info = validate_model(args.path, sha256=sha256)
    except ModelValidationError as exc:
        print(f"invalid: {args.path}: {exc} [{exc.code}]", file=sys.stderr)
        return 1
    out: dict[str, Any] = info.to_dict()
    problems: list[str] = []
    if info.ftype == "f32":
        problems.append(
            "all-f32 file: the bundled whisper.cpp aborts at its first inference on it "
            "(f32 convolution weights); the backend refuses it, use an f16 or quantized file"
        )
    elif args.manifest:
        from whisper_cascade.lifecycle import performance_check

        perf = performance_check(args.path, args.manifest, sha256=sha256)
        out["performance"] = perf.to_dict()
        if perf.failures:
            problems.append(f"{perf.failures} of {perf.n} utterances failed")
        if args.max_wer is not None and perf.wer > args.max_wer:
            problems.append(f"WER {perf.wer:.2%} > {args.max_wer:.2%}")
        if args.max_rtf is not None and perf.rtf > args.max_rtf:
            problems.append(f"real-time factor {perf.rtf:.3f} > {args.max_rtf:g}")
    out["problems"] = problems
    if args.json:
        _print_json(out)
    else:
        hp = info.hparams
        print(
            f"valid: {args.path}: {info.model_type} ({info.ftype}), "
            f"{info.n_parameters:,} parameters, n_vocab {hp.n_vocab}, "
            f"audio {hp.n_audio_layer}x{hp.n_audio_state}, "
            f"text {hp.n_text_layer}x{hp.n_text_state}, "
            f"sha256 {info.sha256}" + (" (integrity checked)" if sha256 else "")
        )
        if "performance" in out:
            p = out["performance"]
            score = "n/a" if p["score"] is None else f"{p['score']:.3f}"
            print(
                f"performance: {p['n']} utterances, WER {p['wer']:.2%}, "
                f"RTF {p['rtf']:.3f}, failures {p['failures']}, mean score {score}"
            )
        for problem in problems:
            print(f"fails: {problem}", file=sys.stderr)
    return 1 if problems else 0


def _cmd_quantize(args: argparse.Namespace) -> int:
    from whisper_cascade.lifecycle import gated_quantize

    report = gated_quantize(
        args.input, args.output, args.type, args.gate, max_wer_increase=args.max_wer_increase
    )
    if args.json:
        _print_json(report)
        return 0
    print(
        f"wrote {args.output} ({args.type}): {report['bytes_in']:,} → {report['bytes_out']:,} "
        f"bytes, {report['tensors_quantized']} tensors quantized in {report['seconds']:.2f} s"
    )
    if "gate" in report:
        before, after = report["gate"]["input"]["wer"], report["gate"]["output"]["wer"]
        print(f"gate passed: WER {after:.2%} (input {before:.2%})")
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    from whisper_cascade.lifecycle import import_checkpoint

    for info in import_checkpoint(args.checkpoint, args.output, quantize=args.quantize or ()):
        print(f"wrote {info.path} ({info.ftype}, {info.file_size:,} bytes, sha256 {info.sha256})")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from whisper_cascade.errors import ModelNotFoundError
    from whisper_cascade.ladders import builtin_ladders
    from whisper_cascade.models import ModelSpec, bundled_models, resolve_model

    specs: dict[str, ModelSpec] = dict(bundled_models())
    ladder_objs = builtin_ladders()
    for ladder in ladder_objs.values():
        for spec in ladder.models:
            specs.setdefault(spec.name, spec)
    models = []
    for name, spec in specs.items():
        try:
            found = resolve_model(name, args.models_dir)
            entry = {**spec.to_dict(), "path": str(found.path), "present": True}
        except ModelNotFoundError:
            entry = {**spec.to_dict(), "path": None, "present": False}
        entry["size_bytes"] = Path(entry["path"]).stat().st_size if entry["present"] else None
        models.append(entry)
    ladders = {name: list(ladder.names) for name, ladder in ladder_objs.items()}
    if args.json:
        _print_json({"models": models, "ladders": ladders})
    else:
        for m in models:
            state = m["path"] if m["present"] else "not present"
            print(
                f"{m['name']:<16} cost {m['relative_cost']:<6g} window {m['window_s']:g}s  {state}"
            )
        for name, members in ladders.items():
            print(f"ladder {name}: {' → '.join(members)}")
    return 0


def _cmd_register(args: argparse.Namespace) -> int:
    from whisper_cascade.lifecycle import register

    with _store(args) as store:
        rec = register(store, args.name, args.path, args.ladder, args.version)
    print(f"registered {rec.name} version {rec.version} ({rec.state}): {rec.path}")
    return 0


def _cmd_registry(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    with _store(args) as store:
        records = store.list_models()
    if args.json:
        _print_json([asdict(r) for r in records])
        return 0
    for r in records:
        print(f"{r.name:<16} {r.version:<8} {r.state:<12} {r.ladder:<10} {r.sha256[:12]}  {r.path}")
    if not records:
        print("no registered models")
    return 0


def _cmd_deploy(args: argparse.Namespace) -> int:
    from whisper_cascade.deploy import Tolerances, deploy

    tol = Tolerances(
        latency=args.max_latency_increase,
        failure_rate=args.max_failure_increase,
        score=args.max_score_drop,
        wer=args.max_wer_increase,
    )
    with _store(args) as store:
        report = deploy(store, args.name, args.version, args.strategy, args.manifest, tol)
    if args.json:
        _print_json(report.to_dict())
    else:
        for stage in report.stages:
            c = stage.candidate
            line = f"  {stage.share:>4.0%}: candidate n={c.n} WER {c.wer:.1%} RTF {c.rtf:.3f}"
            if stage.baseline is not None:
                b = stage.baseline
                line += f" | baseline n={b.n} WER {b.wer:.1%} RTF {b.rtf:.3f}"
            print(line + (" DEGRADED" if stage.degradations else ""))
        print(f"{report.name} version {report.version}: {report.outcome} ({report.reason})")
    return 0 if report.ok else 1


def _cmd_rollback(args: argparse.Namespace) -> int:
    from whisper_cascade.deploy import rollback

    with _store(args) as store:
        rec = rollback(store, args.name, args.to)
    print(f"{rec.name}: version {rec.version} is active again")
    return 0


def add_models_commands(sub: Any) -> None:
    """Add the ``models`` command group to the top-level subparsers."""
    models = sub.add_parser("models", help="model files: inspect, import, register, deploy")
    msub = models.add_subparsers(dest="models_command", required=True)

    def db_flag(p: argparse.ArgumentParser) -> None:
        p.add_argument("--db", help="store path or postgresql:// URL (default $WHISPER_CASCADE_DB)")

    p = msub.add_parser("validate", help="validate a whisper.cpp model file (exit 0 when valid)")
    p.add_argument("path")
    p.add_argument("--sha256", help="expected SHA-256 (default: the registry's, if registered)")
    p.add_argument("--manifest", help="also measure WER and real-time factor on this manifest")
    p.add_argument("--max-wer", type=float, help="fail above this WER (a fraction)")
    p.add_argument("--max-rtf", type=float, help="fail above this real-time factor")
    p.add_argument("--json", action="store_true")
    db_flag(p)
    p.set_defaults(handler=_cmd_validate)

    p = msub.add_parser("quantize", help="quantize an f16 model file, optionally WER-gated")
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--type", required=True, choices=QUANT_CHOICES)
    p.add_argument("--gate", help="manifest: reject the output if its WER degrades too much")
    p.add_argument("--max-wer-increase", type=float, default=0.01, help="default 0.01 (1 pt)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_cmd_quantize)

    p = msub.add_parser("import", help="convert a Whisper checkpoint (.pt or zoo .npz) to ggml")
    p.add_argument("checkpoint", help="openai-whisper .pt (needs the train extra) or zoo .npz")
    p.add_argument("output", help="the ggml f16 file to write")
    p.add_argument("--quantize", nargs="*", choices=QUANT_CHOICES)
    p.set_defaults(handler=_cmd_import)

    p = msub.add_parser("list", help="list models and ladders (cheapest first)")
    p.add_argument("--models-dir", help="folder holding ggml-NAME.bin files")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_cmd_list)

    p = msub.add_parser("register", help="add a validated model file to the registry")
    p.add_argument("name")
    p.add_argument("path")
    p.add_argument("--ladder", default="custom")
    p.add_argument("--version", help="default: the next integer")
    db_flag(p)
    p.set_defaults(handler=_cmd_register)

    p = msub.add_parser("registry", help="registered model versions and their states")
    p.add_argument("--json", action="store_true")
    db_flag(p)
    p.set_defaults(handler=_cmd_registry)

    p = msub.add_parser("deploy", help="deploy a registered version (exit 1 when rolled back)")
    p.add_argument("name")
    p.add_argument("--version", help="default: the newest version not yet deployed")
    p.add_argument(
        "--strategy", default="immediate", choices=["immediate", "canary", "gradual", "blue-green"]
    )
    p.add_argument("--manifest", help="traffic sample (required except for immediate)")
    p.add_argument("--max-latency-increase", type=float, default=0.25, help="relative RTF")
    p.add_argument("--max-failure-increase", type=float, default=0.02, help="failure-rate pts")
    p.add_argument("--max-score-drop", type=float, default=0.05)
    p.add_argument("--max-wer-increase", type=float, default=0.01)
    p.add_argument("--json", action="store_true")
    db_flag(p)
    p.set_defaults(handler=_cmd_deploy)

    p = msub.add_parser("rollback", help="restore the previous active version")
    p.add_argument("name")
    p.add_argument("--to", help="the version to restore (default: the last retired one)")
    db_flag(p)
    p.set_defaults(handler=_cmd_rollback)
