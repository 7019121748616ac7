"""CLI flags shared by ``transcribe`` and ``eval``: the store, start selection and budgets.

By default both commands record into the store ``open_store()`` selects (``--db``, else
``$WHISPER_CASCADE_DB``, else the user data folder); ``--no-store`` records nothing (and then
``--preset learned`` is an error, since the learned policy lives in the store).
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from typing import Any

__all__ = ["add_learning_flags", "cascade_options"]


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from exc
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _score(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from exc
    if not 0.0 <= value <= 1.5:
        raise argparse.ArgumentTypeError(f"must be within [0, 1.5], got {text}")
    return value


def add_learning_flags(p: argparse.ArgumentParser) -> None:
    """Add ``--db``, ``--no-store``, ``--start-selection``, ``--max-cost``, ``--max-latency``
    and ``--min-score`` to a cascade command."""
    p.add_argument(
        "--db",
        metavar="URL_OR_PATH",
        help="store to record into: SQLite path or postgresql:// URL "
        "(default: $WHISPER_CASCADE_DB, then the user data folder)",
    )
    p.add_argument("--no-store", action="store_true", help="record nothing in the store")
    p.add_argument(
        "--start-selection",
        choices=["rules", "bandit"],
        default="rules",
        help="choose the starting model by rules (default) or by a bandit learned per "
        "content class (kept in the store)",
    )
    p.add_argument("--max-cost", type=_positive, metavar="X", help="relative-cost budget per file")
    p.add_argument("--max-latency", type=_positive, metavar="SECONDS", help="time budget per file")
    p.add_argument(
        "--min-score", type=_score, metavar="S", help="accept a transcript at this score"
    )


@contextlib.contextmanager
def cascade_options(args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    """Cascade keyword arguments from the flags; the store opened here is closed on exit."""
    store = None
    if not args.no_store:
        from whisper_cascade.store import open_store

        store = open_store(args.db)
    try:
        yield {
            "store": store,
            "start_selection": args.start_selection,
            "max_cost": args.max_cost,
            "max_latency_s": args.max_latency,
            "min_score": args.min_score,
        }
    finally:
        if store is not None:
            store.close()
