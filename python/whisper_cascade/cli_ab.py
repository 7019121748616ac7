"""``whisper-cascade ab ...``: create, start, stop, list, read and feed A/B tests."""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from whisper_cascade.errors import InvalidArgumentError

__all__ = ["add_ab_commands", "parse_arm", "parse_duration"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """Seconds in ``7d``, ``12h``, ``30m``, ``45s``, ``2w`` or a plain number of seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text)
    if not m or float(m.group(1)) <= 0:
        raise InvalidArgumentError(
            f"bad duration {text!r}: use a positive number with s, m, h, d or w (e.g. 7d, 12h)"
        )
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]


def parse_arm(text: str) -> tuple[str, str, float | None]:
    """``NAME=TARGET[:WEIGHT]`` → (name, target, weight or None)."""
    name, sep, rest = text.partition("=")
    if not sep or not name.strip() or not rest.strip():
        raise InvalidArgumentError(f"bad --arm {text!r}: expected NAME=TARGET[:WEIGHT]")
    target, weight = rest, None
    head, colon, tail = rest.rpartition(":")
    if colon:
        try:
            weight = float(tail)
        except ValueError:
            weight = None  # the colon belongs to the target
        else:
            target = head
            if not (math.isfinite(weight) and weight >= 0):
                raise InvalidArgumentError(f"bad --arm {text!r}: weight must be >= 0")
    if not target.strip():
        raise InvalidArgumentError(f"bad --arm {text!r}: empty target")
    return name.strip(), target.strip(), weight


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


@contextmanager
def _tests(args: argparse.Namespace) -> Iterator[Any]:
    from whisper_cascade.abtest import ABTests
    from whisper_cascade.store import open_store

    store = open_store(args.db)
    try:
        yield ABTests(store)
    finally:
        store.close()


def _cmd_create(args: argparse.Namespace) -> int:
    arms: dict[str, str] = {}
    weights: dict[str, float | None] = {}
    for spec in args.arm:
        name, target, weight = parse_arm(spec)
        if name in arms:
            raise InvalidArgumentError(f"arm {name!r} given twice")
        arms[name] = target
        weights[name] = weight
    given = [w for w in weights.values() if w is not None]
    if given and len(given) != len(weights):
        raise InvalidArgumentError("give a weight to every arm or to none")
    split = None
    if given:
        total = sum(given)
        if total <= 0:
            raise InvalidArgumentError("arm weights must not all be zero")
        split = {a: float(w or 0.0) / total for a, w in weights.items()}
    with _tests(args) as tests:
        test_id = tests.create(
            args.name,
            arms,
            split=split,
            metric=args.metric,
            alpha=args.alpha,
            min_samples=args.min_samples,
            max_samples=args.max_samples,
            max_duration_s=parse_duration(args.duration) if args.duration else None,
        )
        test = tests.get(test_id)
    if args.json:
        _print_json(test.to_dict())
    else:
        print(test_id)
    return 0


def _cmd_start(args: argparse.Namespace) -> int:
    with _tests(args) as tests:
        test = tests.start(args.test_id)
    print(f"{test.test_id}: {test.status}")
    return 0


def _cmd_stop(args: argparse.Namespace) -> int:
    with _tests(args) as tests:
        test = tests.stop(args.test_id)
    print(f"{test.test_id}: {test.status}")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    with _tests(args) as tests:
        listed = tests.list()
    if args.json:
        _print_json([t.to_dict() for t in listed])
        return 0
    for t in listed:
        arms = ", ".join(f"{a}={target} ({t.split[a]:.0%})" for a, target in t.config.arms.items())
        print(f"{t.test_id}  {t.status:<9}  {t.config.name}  [{arms}]  metric {t.config.metric}")
    return 0


def _fmt(v: Any, spec: str = ".4g") -> str:
    return "-" if v is None else format(v, spec)


def _print_results(r: dict[str, Any]) -> None:
    print(f"{r['test_id']} {r['name']}: {r['status']}" + (
        f" ({r['end_reason']})" if r["end_reason"] else ""
    ))  # fmt: skip
    print(f"primary metric {r['metric']} ({r['direction']} is better), alpha {r['alpha']:g}, "
          f"min samples {r['min_samples']} per arm, {r['n_total']} observations")  # fmt: skip
    print(f"{'arm':<12}{'n':>6}{'score':>9}{'wer':>9}{'lat p50':>9}{'lat p95':>9}"
          f"{'cost':>8}{'fail':>7}  target")  # fmt: skip
    for arm, s in r["arms"].items():
        print(
            f"{arm:<12}{s['n']:>6}{_fmt(s['score_mean'], '.3f'):>9}{_fmt(s['wer_mean'], '.3f'):>9}"
            f"{_fmt(s['latency_p50_s'], '.3f'):>9}{_fmt(s['latency_p95_s'], '.3f'):>9}"
            f"{_fmt(s['cost_mean'], '.2f'):>8}{_fmt(s['failure_rate'], '.1%'):>7}  {s['target']}"
        )
    for metric, comps in r["comparisons"].items():
        for c in comps:
            test = c.get("welch_t") or c.get("two_proportion_z") or {}
            ci = f"[{_fmt(test.get('ci_low'))}, {_fmt(test.get('ci_high'))}]" if test else "-"
            mw = c.get("mann_whitney")
            print(
                f"{metric:<13}{c['arm']} - {c['control']}: diff {_fmt(test.get('diff'))} "
                f"CI {ci} p {_fmt(test.get('p_value'), '.3g')}"
                + (f", MWU p {mw['p_value']:.3g}" if mw else "")
                + f", mSPRT p {c['msprt']['p_value']:.3g}"
            )
    print(f"winner: {r['winner'] or 'none'} — {r['winner_reason']}")


def _cmd_results(args: argparse.Namespace) -> int:
    with _tests(args) as tests:
        results = tests.results(args.test_id)
    if args.json:
        _print_json(results)
    else:
        _print_results(results)
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from whisper_cascade.abrun import RunItem, run_items
    from whisper_cascade.settings import load_settings

    items: list[RunItem] = []
    if args.manifest:
        if args.audio:
            raise InvalidArgumentError("give AUDIO files or --manifest, not both")
        from whisper_cascade.manifest import read_manifest

        for it in read_manifest(args.manifest):
            session = it.extra.get("session")
            session = str(session) if session is not None else str(it.path)
            items.append(RunItem(str(it.path), session, it.text))
    else:
        if not args.audio:
            raise InvalidArgumentError("give AUDIO files or --manifest")
        if not args.session:
            raise InvalidArgumentError("--session is required with AUDIO files")
        items = [RunItem(a, args.session, args.reference) for a in args.audio]
    settings = load_settings(args.config)
    with _tests(args) as tests:
        outcomes = run_items(
            tests,
            args.test_id,
            items,
            models_dir=args.models_dir,
            n_threads=args.threads,
            presets=settings.presets,
            ladders=settings.ladders,
        )
    failures = 0
    for out in outcomes:
        failures += out["error"] is not None
        if args.json:
            _print_json(out)
        elif out["error"]:
            print(f"error: {out['audio']} [{out['arm']}]: {out['error']}", file=sys.stderr)
        else:
            m = out["metrics"]
            wer = f", wer {m['wer']:.3f}" if "wer" in m else ""
            print(f"{out['audio']} [{out['arm']}]: score {m['score']:.3f}, "
                  f"{m['latency_s']:.2f} s, cost {m['cost']:g}{wer}")  # fmt: skip
    return 1 if failures else 0


def add_ab_commands(sub: Any) -> None:
    """Add the ``ab`` command group to the top-level subparsers."""
    ab = sub.add_parser("ab", help="A/B tests of presets, ladders or models (docs/ab-tests.md)")
    asub = ab.add_subparsers(dest="ab_command", required=True)

    def parser(name: str, help_: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = asub.add_parser(name, help=help_)
        p.add_argument(
            "--db", help="store path or postgresql:// URL (default: $WHISPER_CASCADE_DB)"
        )
        return p

    p = parser("create", "define a test (prints its id)")
    p.add_argument("name")
    p.add_argument(
        "--arm", action="append", required=True, metavar="NAME=TARGET[:WEIGHT]",
        help="an arm: a preset, ladder or model; the first arm is the control (repeat, 2+)",
    )  # fmt: skip
    p.add_argument(
        "--metric", default="score", choices=["wer", "score", "latency", "cost", "failure_rate"]
    )
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--min-samples", type=int, default=100, help="per arm, before a winner")
    p.add_argument("--max-samples", type=int, default=None, help="all arms; completes the test")
    p.add_argument("--duration", help="completes the test after 7d, 12h, 30m ... from start")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_cmd_create)

    for name, handler, help_ in (
        ("start", _cmd_start, "start or resume a test"),
        ("stop", _cmd_stop, "stop a test"),
    ):
        p = parser(name, help_)
        p.add_argument("test_id")
        p.set_defaults(handler=handler)

    p = parser("list", "list tests")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_cmd_list)

    p = parser("results", "per-arm metrics, statistics and the winner")
    p.add_argument("test_id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_cmd_results)

    p = parser("run", "transcribe audio in a running test and record the observations")
    p.add_argument("test_id")
    p.add_argument("audio", nargs="*")
    p.add_argument("--session", help="session id of the AUDIO files (sticky arm)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--reference", help="reference transcript of the AUDIO files (WER)")
    group.add_argument("--manifest", help="JSONL of audio + text (+ optional session)")
    p.add_argument("--models-dir", help="folder holding ggml-NAME.bin files")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--config", help="TOML config with user presets and ladders")
    p.add_argument("--json", action="store_true", help="one JSON object per audio")
    p.set_defaults(handler=_cmd_run)
