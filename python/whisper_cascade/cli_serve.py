"""``whisper-cascade serve``: run the HTTP service with uvicorn."""

from __future__ import annotations

import argparse
import os
from typing import Any


def _cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from whisper_cascade.service import API_KEY_ENV, ServiceSettings, create_app

    settings = ServiceSettings(
        host=args.host,
        port=args.port,
        api_key=args.api_key or os.environ.get(API_KEY_ENV) or None,
        max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
        queue_size=args.queue_size,
        workers=args.workers or ServiceSettings().workers,
        preset=args.preset,
        ladder=args.ladder,
        models_dir=args.models_dir,
        config=args.config,
        db=args.db,
        n_threads=args.threads,
    )
    app = create_app(settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=args.log_level)
    return 0


def add_serve_command(sub: Any) -> None:
    """Add ``serve`` to the CLI's subcommands."""
    p = sub.add_parser("serve", help="run the HTTP service (OpenAI-compatible API and more)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--api-key", help="require 'Authorization: Bearer KEY' (or $WHISPER_CASCADE_API_KEY)"
    )
    p.add_argument("--max-upload-mb", type=float, default=25.0)
    p.add_argument("--queue-size", type=int, default=256, help="waiting requests before 429")
    p.add_argument("--workers", type=int, default=None, help="transcriptions at once")
    p.add_argument("--preset", default="balanced")
    p.add_argument("--ladder", default=None)
    p.add_argument("--models-dir", help="folder holding ggml-NAME.bin files")
    p.add_argument("--config", help="TOML config (default: $WHISPER_CASCADE_CONFIG, then user's)")
    p.add_argument("--db", help="store path or postgresql:// URL (default: $WHISPER_CASCADE_DB)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads per whisper.cpp call")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info"])
    p.set_defaults(handler=_cmd_serve)
