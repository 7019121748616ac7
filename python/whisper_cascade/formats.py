"""Transcript writers: txt, vtt, srt, tsv and json, in the spirit of openai-whisper's CLI.

A result is a mapping with ``text`` and ``segments`` (each with ``start``, ``end`` in seconds,
``text`` and optionally ``words``). Subtitle cue texts are flattened to one line and ``-->`` is
replaced by ``->`` so a cue can never be misparsed; segments whose text is blank are skipped by
the timed formats. An ``end`` before its ``start`` is clamped to ``start``.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from whisper_cascade.errors import FileAccessError, InvalidArgumentError

FORMATS = ("txt", "vtt", "srt", "tsv", "json")


def format_timestamp(seconds: float, decimal_marker: str = ".") -> str:
    """``HH:MM:SS.mmm`` (hours always shown, may exceed 99) from seconds >= 0."""
    total_ms = round(seconds * 1000.0)
    hours, rest = divmod(total_ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, ms = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal_marker}{ms:03d}"


def render(result: Mapping[str, Any], fmt: str) -> str:
    """The text of ``result`` in format ``fmt`` (one of :data:`FORMATS`)."""
    if not isinstance(result, Mapping):
        raise InvalidArgumentError(f"result must be a mapping, got {type(result).__name__}")
    if fmt == "json":
        return json.dumps(_jsonable(result, "result"), ensure_ascii=False, indent=2) + "\n"
    if fmt not in FORMATS:
        raise InvalidArgumentError(f"unknown output format {fmt!r} (one of {', '.join(FORMATS)})")
    cues = _cues(result)
    if fmt == "txt":
        if not cues:
            text = _one_line(_text_of(result))
            return f"{text}\n" if text else ""
        return "".join(f"{text}\n" for _, _, text in cues)
    if fmt == "vtt":
        body = "".join(
            f"{format_timestamp(s)} --> {format_timestamp(e)}\n{text}\n\n" for s, e, text in cues
        )
        return "WEBVTT\n\n" + body
    if fmt == "srt":
        return "".join(
            f"{i}\n{format_timestamp(s, ',')} --> {format_timestamp(e, ',')}\n{text}\n\n"
            for i, (s, e, text) in enumerate(cues, start=1)
        )
    rows = "".join(f"{round(1000 * s)}\t{round(1000 * e)}\t{text}\n" for s, e, text in cues)
    return "start\tend\ttext\n" + rows


def resolve_formats(formats: Sequence[str] | str) -> list[str]:
    """Expand ``"all"`` and check names; order kept, duplicates dropped."""
    names = [formats] if isinstance(formats, str) else list(formats)
    out: list[str] = []
    for name in names:
        if not isinstance(name, str):
            raise InvalidArgumentError(f"output format must be a string, got {name!r}")
        expanded = FORMATS if name == "all" else (name,)
        for fmt in expanded:
            if fmt not in FORMATS:
                raise InvalidArgumentError(
                    f"unknown output format {fmt!r} (one of {', '.join(FORMATS)}, or all)"
                )
            if fmt not in out:
                out.append(fmt)
    if not out:
        raise InvalidArgumentError("no output format given")
    return out


def write_outputs(
    result: Mapping[str, Any],
    audio_path: str,
    formats: Sequence[str] | str,
    output_dir: str | os.PathLike[str],
) -> list[Path]:
    """Write ``<audio stem>.<ext>`` for each format into ``output_dir`` (created if needed).

    Everything is rendered before anything is written; each file is written to a temporary file
    in the same folder and renamed over the target, so a reader never sees a partial file.
    """
    stem = Path(os.fspath(audio_path)).stem
    if not stem:
        raise InvalidArgumentError(f"cannot name outputs after audio path {audio_path!r}")
    rendered = [(fmt, render(result, fmt)) for fmt in resolve_formats(formats)]
    folder = Path(output_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FileAccessError(f"cannot create output folder {folder}: {exc}") from exc
    written: list[Path] = []
    for fmt, text in rendered:
        target = folder / f"{stem}.{fmt}"
        _atomic_write(target, text)
        written.append(target)
    return written


def _atomic_write(target: Path, text: str) -> None:
    tmp_name: str | None = None
    try:
        with tempfile.NamedTemporaryFile(
            "w",
            encoding="utf-8",
            newline="\n",
            dir=target.parent,
            prefix=f".{target.name}.",
            suffix=".tmp",
            delete=False,
        ) as handle:
            tmp_name = handle.name
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except OSError as exc:
        if tmp_name is not None:
            Path(tmp_name).unlink(missing_ok=True)
        raise FileAccessError(f"cannot write {target}: {exc}") from exc


def _text_of(result: Mapping[str, Any]) -> str:
    text = result.get("text", "")
    if not isinstance(text, str):
        raise InvalidArgumentError(f"result text must be a string, got {type(text).__name__}")
    return text


def _cues(result: Mapping[str, Any]) -> list[tuple[float, float, str]]:
    _text_of(result)
    segments = result.get("segments") or []
    if not isinstance(segments, Sequence) or isinstance(segments, str):
        raise InvalidArgumentError("result segments must be a list")
    cues = []
    for i, seg in enumerate(segments):
        if not isinstance(seg, Mapping):
            raise InvalidArgumentError(f"segment {i} must be a mapping")
        start = _time(seg.get("start"), f"segment {i} start")
        end = max(start, _time(seg.get("end"), f"segment {i} end"))
        raw = seg.get("text", "")
        if not isinstance(raw, str):
            raise InvalidArgumentError(f"segment {i} text must be a string")
        text = _one_line(raw)
        if text:
            cues.append((start, end, text))
    return cues


def _time(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgumentError(f"{what} must be a number of seconds, got {value!r}")
    seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0:
        raise InvalidArgumentError(f"{what} must be finite and >= 0, got {seconds}")
    return seconds


def _one_line(text: str) -> str:
    return " ".join(text.replace("-->", "->").split())


def _jsonable(value: Any, where: str) -> Any:
    """A copy that :func:`json.dumps` accepts: NaN/inf become null, numpy scalars plain."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    tolist = getattr(value, "tolist", None)  # numpy arrays and scalars
    if callable(tolist):
        return _jsonable(tolist(), where)
    raise InvalidArgumentError(f"{where} cannot be written as JSON ({type(value).__name__})")
