"""Run audio through an A/B test: assign each session's arm, transcribe with the arm's target,
record the observation (score, latency, failure, cost and WER when a reference exists).

A target is a preset name (its own ladder), a ladder name or comma list (balanced preset), or a
model name or ggml path (a one-rung ladder). Bad audio is reported and not recorded (it is an
input problem, not an arm's); a model or backend failure is recorded as ``failed``.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from whisper_cascade.abtest import ABTests
from whisper_cascade.cascade import Cascade
from whisper_cascade.errors import AudioError, FileAccessError, WhisperCascadeError
from whisper_cascade.evaluation import word_edits
from whisper_cascade.ladders import Ladder, builtin_ladders
from whisper_cascade.presets import Preset, builtin_presets
from whisper_cascade.results import CascadeResult

__all__ = ["RunItem", "metrics_from_result", "run_items", "target_cascade"]


@dataclass(frozen=True)
class RunItem:
    """One audio to run: its session id and, when known, the reference transcript."""

    audio: str
    session: str
    reference: str | None = None


def target_cascade(
    target: str,
    *,
    models_dir: str | os.PathLike[str] | None = None,
    n_threads: int | None = None,
    presets: Mapping[str, Preset] | None = None,
    ladders: Mapping[str, Ladder] | None = None,
) -> Cascade:
    """The cascade an arm's target names (preset, ladder, or model via a one-rung ladder)."""
    kw: dict[str, Any] = {
        "models_dir": models_dir,
        "n_threads": n_threads,
        "presets": presets,
        "ladders": ladders,
    }
    if target in {**builtin_presets(), **(presets or {})}:
        return Cascade(None, target, **kw)
    if target in {**builtin_ladders(), **(ladders or {})} or "," in target:
        return Cascade(target, "balanced", **kw)
    return Cascade(Ladder.from_names(target, [target]), "balanced", **kw)


def metrics_from_result(
    result: CascadeResult, latency_s: float, reference: str | None = None
) -> dict[str, Any]:
    """Observation metrics of one successful transcription."""
    ms = result.model_selection
    cost = sum(float(step.get("cost") or 0.0) for step in ms.get("decision_history", []))
    out: dict[str, Any] = {
        "score": float(ms.get("decision_metrics", {}).get("score", 0.0)),
        "latency_s": latency_s,
        "cost": cost,
        "failed": False,
    }
    if reference is not None:
        edits, words = word_edits(reference, result.text)
        out["wer"] = edits / words if words else (0.0 if edits == 0 else 1.0)
    return out


def run_items(
    tests: ABTests,
    test_id: str,
    items: Iterable[RunItem],
    *,
    models_dir: str | os.PathLike[str] | None = None,
    n_threads: int | None = None,
    presets: Mapping[str, Preset] | None = None,
    ladders: Mapping[str, Ladder] | None = None,
) -> list[dict[str, Any]]:
    """Assign, transcribe and record each item; one outcome dict per item.

    Outcome keys: ``audio``, ``session``, ``arm``, ``job_id``, ``metrics`` (None when not
    recorded), ``text`` and ``error``.
    """
    config = tests.get(test_id).config
    cascades: dict[str, Cascade] = {}
    outcomes: list[dict[str, Any]] = []
    try:
        for item in items:
            arm = tests.assign(test_id, item.session)
            if arm not in cascades:
                cascades[arm] = target_cascade(
                    config.arms[arm],
                    models_dir=models_dir,
                    n_threads=n_threads,
                    presets=presets,
                    ladders=ladders,
                )
            job_id = uuid.uuid4().hex
            out: dict[str, Any] = {
                "audio": item.audio, "session": item.session, "arm": arm, "job_id": job_id,
                "metrics": None, "text": None, "error": None,
            }  # fmt: skip
            t0 = time.perf_counter()
            try:
                result = cascades[arm].transcribe(item.audio)
            except (AudioError, FileAccessError) as exc:
                out["error"] = f"{type(exc).__name__}: {exc}"
                outcomes.append(out)
                continue
            except WhisperCascadeError as exc:
                out["error"] = f"{type(exc).__name__}: {exc}"
                out["metrics"] = {"latency_s": time.perf_counter() - t0, "failed": True}
            else:
                out["text"] = result.text
                out["metrics"] = metrics_from_result(
                    result, time.perf_counter() - t0, item.reference
                )
            tests.record(test_id, arm, job_id, out["metrics"])
            outcomes.append(out)
    finally:
        for cascade in cascades.values():
            cascade.close()
    return outcomes
