"""Manifests: JSON Lines of utterances, shared by the corpus generator, ``eval`` and feedback.

One JSON object per line with ``audio`` (a path; a relative path resolves against the
manifest's own folder) and ``text`` (the reference transcript), both required; ``condition``
(``clean``, ``white20``, ``pink10``, ``babble5``, ``reverb``, ``phone``...), ``voice`` and
``snr_db`` are optional and any other key is kept in ``extra``. Blank lines are allowed; anything
else that is not such an object raises :class:`ManifestError` naming the file and line.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from whisper_cascade.errors import FileAccessError, ManifestError


@dataclass(frozen=True)
class ManifestItem:
    """One utterance: ``audio`` as written in the manifest, ``path`` resolved."""

    audio: str
    path: Path
    text: str
    condition: str | None = None
    voice: str | None = None
    snr_db: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    line: int = 0


def read_manifest(path: str | os.PathLike[str]) -> list[ManifestItem]:
    """Read and validate a manifest; items in file order (may be empty)."""
    manifest = Path(path).expanduser()
    try:
        raw = manifest.read_bytes()
    except OSError as exc:
        raise FileAccessError(f"cannot read manifest {manifest}: {exc.strerror or exc}") from exc
    base = manifest.absolute().parent
    items = []
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if number == 1:
            line = line.removeprefix(b"\xef\xbb\xbf")  # UTF-8 byte-order mark
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ManifestError(f"{manifest}:{number}: not UTF-8 ({exc.reason})") from exc
        if text.strip():
            items.append(_parse_line(text, base, f"{manifest}:{number}", number))
    return items


def _parse_line(text: str, base: Path, where: str, number: int) -> ManifestItem:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{where}: invalid JSON: {exc.msg} (column {exc.colno})") from exc
    if not isinstance(obj, dict):
        raise ManifestError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    audio = obj.get("audio")
    if not isinstance(audio, str) or not audio.strip():
        raise ManifestError(f"{where}: 'audio' is required and must be a non-empty string")
    reference = obj.get("text")
    if not isinstance(reference, str):
        raise ManifestError(f"{where}: 'text' is required and must be a string")
    optional: dict[str, str | None] = {}
    for key in ("condition", "voice"):
        value = obj.get(key)
        if value is not None and not isinstance(value, str):
            raise ManifestError(f"{where}: '{key}' must be a string or null")
        optional[key] = value
    snr = obj.get("snr_db")
    if snr is not None:
        if isinstance(snr, bool) or not isinstance(snr, int | float):
            raise ManifestError(f"{where}: 'snr_db' must be a number or null")
        if not math.isfinite(snr):
            raise ManifestError(f"{where}: 'snr_db' must be finite")
    resolved = Path(audio).expanduser()
    if not resolved.is_absolute():
        resolved = base / resolved
    extra = {k: v for k, v in obj.items() if k not in _KNOWN}
    return ManifestItem(
        audio=audio,
        path=resolved,
        text=reference,
        condition=optional["condition"],
        voice=optional["voice"],
        snr_db=None if snr is None else float(snr),
        extra=extra,
        line=number,
    )


_KNOWN = ("audio", "text", "condition", "voice", "snr_db")
