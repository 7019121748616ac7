"""``whisper-cascade report``: the performance or cost report as text or JSON, and the dashboard
as a static HTML file."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from whisper_cascade.errors import FileAccessError, InvalidArgumentError


def _load_ab(path: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise FileAccessError(f"{path}: cannot read A/B results: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise InvalidArgumentError(f"{path}: A/B results are not valid JSON: {exc}") from exc
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
        raise InvalidArgumentError(f"{path}: A/B results must be an object or a list of objects")
    return data


def _cmd_report(args: argparse.Namespace) -> int:
    from whisper_cascade.config import load_config
    from whisper_cascade.report import (
        cost_report,
        page_jobs,
        parse_period,
        performance_report,
        summary_text,
    )
    from whisper_cascade.store import open_store

    period = parse_period(args.period)
    prices = load_config(args.config).prices
    ab = _load_ab(args.ab) if args.ab else None
    with open_store(args.db) as store:
        perf = performance_report(store, period)
        cost = cost_report(store, prices, period)
    if args.html:
        from whisper_cascade.report_html import render_dashboard

        out = Path(args.html)
        try:
            out.write_text(render_dashboard(perf, cost, ab), encoding="utf-8")
        except OSError as exc:
            raise FileAccessError(f"{out}: cannot write dashboard: {exc.strerror or exc}") from exc
        print(f"wrote {out}", file=sys.stderr)
    chosen = cost if args.kind == "cost" else perf
    if args.json:
        if args.kind == "cost":  # the text summary and the dashboard rank all jobs
            chosen = page_jobs(cost, args.limit, args.offset)
        sys.stdout.write(json.dumps(chosen, ensure_ascii=False) + "\n")
    elif not args.html:
        print(summary_text(chosen))
    return 0


def add_report_commands(sub: Any) -> None:
    """Add the ``report`` command to the CLI's subparsers."""
    p = sub.add_parser(
        "report", help="performance or cost report from the store; --html writes the dashboard"
    )
    p.add_argument(
        "kind", nargs="?", choices=["performance", "cost"], default="performance",
        help="which report to print (default: performance)",
    )  # fmt: skip
    p.add_argument("--period", default="24h", help="time window: 30m, 24h, 7d, 2w or all")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.add_argument(
        "--limit", type=int, default=100, metavar="N",
        help="cost --json: list at most N jobs (1..10000, default 100); totals cover all jobs",
    )  # fmt: skip
    p.add_argument(
        "--offset", type=int, default=0, metavar="N",
        help="cost --json: skip the first N jobs (default 0)",
    )  # fmt: skip
    p.add_argument("--html", metavar="OUT", help="write the dashboard page to OUT")
    p.add_argument("--ab", metavar="FILE", help="JSON file of A/B test results for the dashboard")
    p.add_argument("--db", metavar="URL_OR_PATH", help="store (default: $WHISPER_CASCADE_DB)")
    p.add_argument(
        "--config",
        help="TOML config with [prices] (default: $WHISPER_CASCADE_CONFIG, then the user config)",
    )
    p.set_defaults(handler=_cmd_report)
