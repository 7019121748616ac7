"""Load test of the HTTP service on loopback: N concurrent POST /transcribe requests.

    python bench/bench_service.py [--n 200] [--concurrency N] [--queue-size 256] [--workers W]
        [--models-dir DIR] [--preset accept-all] [--threads 1] [--json OUT] [--update-readme]

The bench starts the server itself (uvicorn in a thread, a temporary SQLite store). Without
``--models-dir`` it writes tiny random-weight micro-s/m/l models (garbage transcripts, real
whisper.cpp timings). ``accept-all`` (the default preset here) stops at the first rung, so the
numbers measure the service, not the escalation policy. Every request either succeeds (200) or
is refused because the queue is full (429); anything else counts as an error and the exit
status is 1. With ``--queue-size`` at least the concurrency, a 429 is an error too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from whisper_cascade.audio import sample_path
from whisper_cascade.ggml_writer import random_whisper_model
from whisper_cascade.presets import get_preset
from whisper_cascade.service import ServiceSettings, create_app
from whisper_cascade.service.background import serve_in_thread

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchlib, next to this file
from benchlib import update_readme_section  # noqa: E402

README = Path(__file__).with_name("README.md")
SECTION = "## Service load test"
ACCEPT_ALL = get_preset("balanced").with_overrides(
    name="accept-all", thresholds={}, default_threshold=0.0, hallucination_check=False
)


async def _fire(url: str, n: int, concurrency: int, audio: bytes, preset: str) -> list[Any]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=600) as client:

        async def one(i: int) -> tuple[int, float]:
            async with gate:
                t0 = time.perf_counter()
                try:
                    r = await client.post(
                        "/transcribe",
                        files={"file": (f"clip{i}.wav", audio)},
                        data={"preset": preset, "session_id": f"bench-{i}"},
                    )
                    status = r.status_code
                except httpx.HTTPError:
                    status = -1
                return status, time.perf_counter() - t0

        return list(await asyncio.gather(*(one(i) for i in range(n))))


def run_bench(
    *,
    n: int,
    concurrency: int,
    queue_size: int,
    workers: int,
    models_dir: Path,
    preset: str,
    threads: int,
    db: Path,
) -> dict[str, Any]:
    """Start the server, fire the requests, and summarise statuses, latency and throughput."""
    settings = ServiceSettings(
        queue_size=queue_size,
        workers=workers,
        models_dir=str(models_dir),
        db=str(db),
        n_threads=threads,
        preset=preset,
        presets={"accept-all": ACCEPT_ALL},
    )
    audio = sample_path().read_bytes()
    with serve_in_thread(create_app(settings)) as url:
        httpx.post(url + "/transcribe", files={"file": ("warm.wav", audio)}, timeout=600)
        started = time.perf_counter()
        results = asyncio.run(_fire(url, n, concurrency, audio, preset))
        wall = time.perf_counter() - started
        metrics = httpx.get(url + "/metrics").text
    codes = [c for c, _ in results]
    ok = sorted(t for c, t in results if c == 200)
    rejected = codes.count(429)
    errors = len(codes) - len(ok) - rejected
    if queue_size >= concurrency:
        errors += rejected  # the queue had room for every request
    counted = sum(
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("whisper_cascade_queue_rejections_total")
    )
    return {
        "n": n,
        "concurrency": concurrency,
        "queue_size": queue_size,
        "workers": workers,
        "threads": threads,
        "ok": len(ok),
        "rejected_429": rejected,
        "rejected_in_metrics": counted,
        "errors": errors,
        "p50_s": float(np.percentile(ok, 50)) if ok else None,
        "p99_s": float(np.percentile(ok, 99)) if ok else None,
        "wall_s": wall,
        "throughput_rps": len(ok) / wall if wall > 0 else None,
    }


def markdown(reports: Sequence[dict[str, Any]]) -> str:
    """The results as a markdown table."""
    rows = [
        "| requests | concurrency | queue | workers | ok | 429 | errors | p50 s | p99 s | ok/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        p50 = "-" if r["p50_s"] is None else f"{r['p50_s']:.2f}"
        p99 = "-" if r["p99_s"] is None else f"{r['p99_s']:.2f}"
        rps = "-" if r["throughput_rps"] is None else f"{r['throughput_rps']:.1f}"
        rows.append(
            f"| {r['n']} | {r['concurrency']} | {r['queue_size']} | {r['workers']} | {r['ok']} "
            f"| {r['rejected_429']} | {r['errors']} | {p50} | {p99} | {rps} |"
        )
    return "\n".join(rows) + "\n"


def update_readme(table: str, command: str) -> None:
    """Replace (or append) the service section of bench/README.md."""
    note = (
        "Loopback, the server started by the bench (uvicorn, one shared Cascade, SQLite "
        "store), the bundled 1.6 s sample, tiny random-weight micro models, preset accept-all. "
        "Latency is per request, from send to answer, so it includes time in the queue.\n"
    )
    update_readme_section(SECTION, command, f"{note}\n{table}", README)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--n", type=int, default=200, help="requests (default 200)")
    p.add_argument("--concurrency", type=int, default=None, help="in flight at once (default n)")
    p.add_argument("--queue-size", type=int, action="append", default=None,
                   help="server queue size; repeat to run several (default 256)")  # fmt: skip
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="whisper.cpp threads per call")
    p.add_argument("--models-dir", type=Path, default=None)
    p.add_argument("--preset", default="accept-all")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--update-readme", action="store_true")
    args = p.parse_args(argv)
    if args.n < 1:
        p.error("--n must be >= 1")
    concurrency = args.concurrency or args.n
    with tempfile.TemporaryDirectory(prefix="bench-service-") as tmp:
        models_dir = args.models_dir
        if models_dir is None:
            models_dir = Path(tmp) / "models"
            models_dir.mkdir()
            for seed, name in enumerate(("micro-s", "micro-m", "micro-l"), start=1):
                random_whisper_model(models_dir / f"ggml-{name}.bin", seed=seed)
        reports = [
            run_bench(
                n=args.n,
                concurrency=concurrency,
                queue_size=q,
                workers=args.workers,
                models_dir=models_dir,
                preset=args.preset,
                threads=args.threads,
                db=Path(tmp) / f"store-{q}.db",
            )
            for q in args.queue_size or [256]
        ]
    table = markdown(reports)
    print(table)
    if args.json:
        args.json.write_text(json.dumps(reports, indent=1) + "\n", encoding="utf-8")
    if args.update_readme:
        argv_text = " ".join(sys.argv[1:] if argv is None else argv)
        update_readme(table, f"python bench/bench_service.py {argv_text}".rstrip())
    return 1 if any(r["errors"] for r in reports) else 0


if __name__ == "__main__":
    raise SystemExit(main())
