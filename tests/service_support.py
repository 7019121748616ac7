"""Helpers for the HTTP service tests: the uploaded sample, service settings on the test ladder
and the check of an error response."""

from __future__ import annotations

from pathlib import Path

import httpx

from ladder_support import PRESETS
from whisper_cascade.audio import sample_path
from whisper_cascade.service import ServiceSettings

SAMPLE = sample_path().read_bytes()


def service_settings(models: Path, db: Path, **kw: object) -> ServiceSettings:
    """Settings for a small service on ``models`` (2 workers, 1 thread, the test presets)."""
    base: dict[str, object] = {
        "models_dir": str(models),
        "db": str(db),
        "workers": 2,
        "n_threads": 1,
        "preset": "accept-all",
        "presets": PRESETS,
    }
    base.update(kw)
    return ServiceSettings(**base)  # type: ignore[arg-type]


def expect_error(r: httpx.Response, status: int, type_: str) -> str:
    """Assert ``r`` is the service's error envelope with this status and type; its message."""
    assert r.status_code == status, r.text
    body = r.json()
    assert body["success"] is False and body["error"]["type"] == type_, body
    message: str = body["error"]["message"]
    assert message
    return message
