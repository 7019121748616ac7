"""``whisper-cascade feedback add|list`` and ``whisper-cascade learn`` (see docs/learning.md)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from whisper_cascade.errors import InvalidArgumentError

__all__ = ["add_learn_commands"]


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _cmd_feedback_add(args: argparse.Namespace) -> int:
    from whisper_cascade.feedback import add_feedback, add_manifest
    from whisper_cascade.store import open_store

    if (args.manifest is None) == (args.audio is None):
        raise InvalidArgumentError("give either AUDIO with --reference, or --manifest")
    if args.audio is not None and args.reference is None:
        raise InvalidArgumentError("AUDIO needs --reference TEXT")
    if args.manifest is not None and args.reference is not None:
        raise InvalidArgumentError("--reference goes with AUDIO, not with --manifest")
    with open_store(args.db) as store:
        if args.manifest is not None:
            records = add_manifest(store, args.manifest)
        else:
            records = [add_feedback(store, args.audio, args.reference)]
        total = len(store.feedback())
    print(f"added {len(records)} feedback item(s); {total} in the store")
    return 0


def _cmd_feedback_list(args: argparse.Namespace) -> int:
    from whisper_cascade.store import open_store

    with open_store(args.db) as store:
        records = store.feedback()
    if args.json:
        for r in records:
            _print_json(
                {"audio_hash": r.audio_hash, "audio": r.audio_path, "reference": r.reference,
                 "created_at": r.created_at}
            )  # fmt: skip
    else:
        for r in records:
            print(f"{r.audio_hash[:12]}  {r.audio_path}  {r.reference!r}")
        print(f"{len(records)} feedback item(s)")
    return 0


def _cmd_learn(args: argparse.Namespace) -> int:
    from whisper_cascade.feedback import learn
    from whisper_cascade.store import open_store

    with open_store(args.db) as store:
        policy = learn(
            store,
            args.ladder,
            max_wer_increase=args.max_wer_increase,
            relative_to=args.relative_to,
            min_class_items=args.min_class_items,
            models_dir=args.models_dir,
            base_preset=args.base_preset,
            n_threads=args.threads,
            dry_run=args.dry_run,
            progress=not args.json and sys.stderr.isatty(),
        )
    if args.json:
        _print_json({**json.loads(policy.to_json()), "saved": not args.dry_run})
        return 0
    rep = policy.report
    print(f"ladder {policy.ladder}: {policy.n_items} items, thresholds "
          + ", ".join(f"{m} {t:.2f}" for m, t in policy.thresholds.items()))  # fmt: skip
    for cls, table in policy.class_thresholds.items():
        print(f"  class {cls}: " + ", ".join(f"{m} {t:.2f}" for m, t in table.items()))
    for name in ("learned", "base", "always_largest"):
        row = rep[name]
        label = f"{name} ({row['preset']})" if name == "base" else name
        print(
            f"  {label:<22} WER {100 * row['wer']:6.2f}%  cost {row['cost']:9.1f}  "
            f"escalation {100 * row['escalation_rate']:5.1f}%"
        )
    for skipped in rep.get("skipped", []):
        print(f"  skipped {skipped['audio']}: {skipped['error']}")
    print("dry run: not saved" if args.dry_run else "saved as preset 'learned'")
    return 0


def add_learn_commands(sub: Any) -> None:
    """Add ``feedback`` and ``learn`` to the ``whisper-cascade`` sub-parsers."""
    db_help = "store path or postgresql:// URL (default: $WHISPER_CASCADE_DB, then the user store)"
    fb = sub.add_parser("feedback", help="reference transcripts for learning thresholds")
    fsub = fb.add_subparsers(dest="feedback_command", required=True)
    p = fsub.add_parser("add", help="add AUDIO --reference TEXT, or every line of --manifest")
    p.add_argument("audio", nargs="?", help="an audio file")
    p.add_argument("--reference", help="the reference transcript of AUDIO")
    p.add_argument("--manifest", help="JSON Lines with 'audio' and 'text' (docs/evaluation.md)")
    p.add_argument("--db", help=db_help)
    p.set_defaults(handler=_cmd_feedback_add)
    p = fsub.add_parser("list", help="list the feedback in the store")
    p.add_argument("--json", action="store_true", help="one JSON object per item")
    p.add_argument("--db", help=db_help)
    p.set_defaults(handler=_cmd_feedback_list)

    p = sub.add_parser("learn", help="fit escalation thresholds from the feedback (preset learned)")
    p.add_argument("--ladder", default="micro", help="ladder to fit (default: micro)")
    p.add_argument(
        "--max-wer-increase",
        type=float,
        default=0.0,
        help="allowed WER above the baseline, a fraction (default 0: equal WER; 0.005 = 0.5 pt)",
    )
    p.add_argument(
        "--relative-to",
        choices=("base", "largest"),
        default="base",
        help="the baseline: the base preset's WER on the feedback (default) or always-largest's",
    )
    p.add_argument(
        "--min-class-items",
        type=int,
        default=30,
        help="items a content class needs for its own thresholds (default 30)",
    )
    p.add_argument("--base-preset", default="balanced", help="weights and fallbacks (balanced)")
    p.add_argument("--models-dir", help="folder holding ggml-NAME.bin files")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for whisper.cpp")
    p.add_argument("--db", help=db_help)
    p.add_argument("--json", action="store_true", help="print the policy document as JSON")
    p.add_argument("--dry-run", action="store_true", help="fit and report, do not save")
    p.set_defaults(handler=_cmd_learn)
