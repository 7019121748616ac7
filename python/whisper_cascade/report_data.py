"""The data behind the reports: store records grouped per transcription, the report window,
periods and percentiles.

A *transcription* is one ``job_id``: one or more :class:`JobRecord` rows (one per model run, in
run order) and normally one :class:`DecisionRecord` (initial model, final model, reason, the
estimated time saved against running only the largest model). A job without a decision is taken
as a single run accepted by its last model.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any

from whisper_cascade.errors import InvalidArgumentError
from whisper_cascade.store.base import DecisionRecord, JobRecord, Store

__all__ = [
    "Transcription",
    "load_transcriptions",
    "mean",
    "parse_period",
    "percentile",
    "rate",
    "window",
]

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_period(text: str) -> float | None:
    """``"24h"``, ``"30m"``, ``"7d"``, ``"2w"``, ``"90s"`` or a bare number of seconds → seconds;
    ``"all"`` → None (everything)."""
    text = text.strip().lower()
    if text == "all":
        return None
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhdw]?)", text)
    if m is None or float(m.group(1)) <= 0:
        raise InvalidArgumentError(f"invalid period {text!r}: use e.g. 90s, 30m, 24h, 7d, 2w, all")
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of non-empty ``values``, linearly interpolated."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass
class Transcription:
    """One job: its model runs in order and its decision (None when none was recorded)."""

    job_id: str
    runs: list[JobRecord] = field(default_factory=list)
    decision: DecisionRecord | None = None

    @property
    def created_at(self) -> float:
        times = [r.created_at for r in self.runs]
        if self.decision is not None:
            times.append(self.decision.created_at)
        return min(times)

    @property
    def initial_model(self) -> str:
        return self.decision.initial_model if self.decision else self.runs[0].model

    @property
    def final_model(self) -> str:
        return self.decision.final_model if self.decision else self.runs[-1].model

    @property
    def escalated(self) -> bool:
        return self.initial_model != self.final_model

    @property
    def reason(self) -> str:
        return self.decision.reason if self.decision else "accepted"

    @property
    def content_class(self) -> str:
        return self.runs[0].content_class if self.runs else "unknown"

    @property
    def processing_s(self) -> float:
        return sum(r.processing_time_s for r in self.runs)

    @property
    def cpu_seconds(self) -> float:
        return sum(r.cpu_seconds for r in self.runs)

    @property
    def audio_s(self) -> float:
        return max((r.audio_duration_s for r in self.runs), default=0.0)

    @property
    def time_saved_s(self) -> float:
        return self.decision.time_saved_s if self.decision else 0.0

    @property
    def final_score(self) -> float | None:
        if self.decision is not None:
            score = self.metrics.get("score")
            if isinstance(score, int | float) and not isinstance(score, bool):
                return float(score)
        finals = [r.score for r in self.runs if r.model == self.final_model]
        return finals[-1] if finals else None

    @property
    def metrics(self) -> dict[str, Any]:
        if self.decision is None:
            return {}
        try:
            data = json.loads(self.decision.metrics_json)
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}


def load_transcriptions(store: Store, since: float) -> list[Transcription]:
    """Group the store's job and decision records created at or after ``since`` by job id."""
    by_id: dict[str, Transcription] = {}
    for run in store.jobs_since(since):
        by_id.setdefault(run.job_id, Transcription(run.job_id)).runs.append(run)
    for dec in store.decisions_since(since):
        by_id.setdefault(dec.job_id, Transcription(dec.job_id)).decision = dec
    items = [t for t in by_id.values() if t.runs]
    items.sort(key=lambda t: t.created_at)
    return items


def window(period_s: float | None, now: float | None) -> tuple[float, float]:
    """(start, end) of the last ``period_s`` seconds before ``now`` (start 0 when None)."""
    if period_s is not None and (not math.isfinite(period_s) or period_s <= 0):
        raise InvalidArgumentError(f"period must be > 0 seconds, got {period_s}")
    end = time.time() if now is None else now
    return (0.0 if period_s is None else end - period_s), end


def mean(values: list[float]) -> float | None:
    """The mean, None when empty."""
    return sum(values) / len(values) if values else None


def rate(part: int, whole: int) -> float | None:
    """``part / whole``, None when ``whole`` is 0."""
    return part / whole if whole else None
