"""Settings of the HTTP service."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from whisper_cascade.errors import InvalidArgumentError
from whisper_cascade.ladders import Ladder
from whisper_cascade.presets import Preset

API_KEY_ENV = "WHISPER_CASCADE_API_KEY"


def _default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


@dataclass(frozen=True)
class ServiceSettings:
    """What ``whisper-cascade serve`` takes.

    ``queue_size`` is how many admitted requests may wait for a worker; ``workers`` run at
    once; beyond both the service answers 429. ``api_key`` None means no authentication.
    ``presets`` and ``ladders`` add to the built-ins and those of ``config`` (a TOML file).
    ``db`` is a store path or PostgreSQL URL (default: ``open_store()``'s choice).
    """

    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None
    max_upload_bytes: int = 25 * 1024 * 1024
    queue_size: int = 256
    workers: int = field(default_factory=_default_workers)
    preset: str = "balanced"
    ladder: str | None = None
    models_dir: str | None = None
    config: str | None = None
    db: str | None = None
    n_threads: int | None = None
    breaker_threshold: int = 3
    breaker_cooldown_s: float = 30.0
    presets: Mapping[str, Preset] = field(default_factory=dict)
    ladders: Mapping[str, Ladder] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.max_upload_bytes < 1:
            raise InvalidArgumentError("max_upload_bytes must be >= 1")
        if self.queue_size < 0:
            raise InvalidArgumentError("queue_size must be >= 0")
        if self.workers < 1:
            raise InvalidArgumentError("workers must be >= 1")
        if self.api_key is not None and not self.api_key.strip():
            raise InvalidArgumentError("api_key must not be blank")
