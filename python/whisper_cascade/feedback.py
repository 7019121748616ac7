"""Feedback references and ``learn``: run every model of a ladder on them and fit thresholds.

A feedback item is an audio file and its reference transcript, keyed by the SHA-256 of the
decoded samples (:func:`whisper_cascade.breaker.audio_hash`). :func:`learn` transcribes each
item with every model of the ladder, scores each transcript with the base preset's weights for
that model (as the cascade does), counts word edits against the reference, then fits the thresholds
(:func:`whisper_cascade.policy_fit.fit_policy`) and saves the policy in the store.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from whisper_cascade.audio import SAMPLE_RATE, load_audio
from whisper_cascade.backend import DecodeOptions
from whisper_cascade.breaker import audio_hash
from whisper_cascade.content import content_class
from whisper_cascade.errors import InvalidArgumentError, WhisperCascadeError
from whisper_cascade.evaluation import word_edits
from whisper_cascade.features import analyze
from whisper_cascade.fitting import FitItem, ModelRun, RunTable
from whisper_cascade.ladders import Ladder, folder_ladders, get_ladder
from whisper_cascade.learned import LearnedPolicy, save_policy
from whisper_cascade.manifest import read_manifest
from whisper_cascade.models import resolve_model
from whisper_cascade.policy import rule_rung, score
from whisper_cascade.policy_fit import fit_policy
from whisper_cascade.presets import get_preset
from whisper_cascade.store import FeedbackRecord, Store
from whisper_cascade.transcriber import Transcriber

__all__ = [
    "Skipped",
    "add_feedback",
    "add_manifest",
    "collect_runs",
    "learn",
    "records_from_manifest",
]


@dataclass(frozen=True)
class Skipped:
    """A feedback item left out of the fit, and why."""

    audio: str
    error: str


def _record(audio_path: str | os.PathLike[str], reference: str) -> FeedbackRecord:
    if not isinstance(reference, str):
        raise InvalidArgumentError("the reference must be a string")
    audio = load_audio(audio_path)
    return FeedbackRecord(audio_hash(audio.samples), os.path.abspath(audio_path), reference)


def add_feedback(
    store: Store, audio_path: str | os.PathLike[str], reference: str
) -> FeedbackRecord:
    """Read the audio (it must decode), then store its reference; returns the record."""
    record = _record(audio_path, reference)
    store.add_feedback(record)
    return record


def records_from_manifest(manifest: str | os.PathLike[str]) -> list[FeedbackRecord]:
    """One feedback record per manifest line (every audio file must decode)."""
    records = [_record(item.path, item.text) for item in read_manifest(manifest)]
    if not records:
        raise InvalidArgumentError(f"{manifest}: the manifest has no utterances")
    return records


def add_manifest(store: Store, manifest: str | os.PathLike[str]) -> list[FeedbackRecord]:
    """Add every line of a manifest (all lines are checked before any is stored)."""
    records = records_from_manifest(manifest)
    for record in records:
        store.add_feedback(record)
    return records


def collect_runs(
    records: Sequence[FeedbackRecord],
    ladder: str | Ladder = "micro",
    *,
    models_dir: str | os.PathLike[str] | None = None,
    base_preset: str = "balanced",
    n_threads: int | None = None,
    progress: bool = False,
) -> tuple[RunTable, list[Skipped]]:
    """Run every model of ``ladder`` on every item; unreadable or changed files are skipped.

    A model that cannot be found raises at once (no item could be fitted without it).
    """
    rungs = get_ladder(ladder, folder_ladders(models_dir))
    preset = get_preset(base_preset)
    specs = []
    for spec in rungs.models:
        found = spec if spec.path is not None else resolve_model(spec.name, models_dir)
        specs.append(replace(found, relative_cost=spec.relative_cost))
    runner = Transcriber()
    options = DecodeOptions(n_threads=n_threads or 0)
    items: list[FitItem] = []
    skipped: list[Skipped] = []
    try:
        for index, record in enumerate(records, start=1):
            try:
                audio = load_audio(record.audio_path)
                if audio_hash(audio.samples) != record.audio_hash:
                    raise InvalidArgumentError("the file changed since its feedback was added")
                feats = analyze(audio.samples, SAMPLE_RATE)
                runs = []
                for spec in specs:
                    assert spec.path is not None
                    tr = runner.transcribe(
                        spec.path, audio, options, name=spec.name, sha256=spec.sha256,
                        audio_ctx=spec.audio_ctx or 0, features=feats,
                    )  # fmt: skip
                    quality = score(tr.confidence, feats, preset.weights_for(spec.name))
                    edits, words = word_edits(record.reference, tr.text)
                    runs.append(
                        ModelRun(
                            quality.value,
                            edits,
                            tr.time_s,
                            bool(quality.flags),
                            metrics=dict(tr.confidence),
                        )  # fmt: skip
                    )
            except WhisperCascadeError as exc:
                skipped.append(Skipped(record.audio_path, f"{type(exc).__name__}: {exc}"))
                continue
            items.append(
                FitItem(
                    content_class(feats),
                    words,
                    tuple(runs),
                    record.audio_path,
                    speech_ratio=float(feats.speech_ratio),
                    start=rule_rung(feats, len(specs))[0] or 0,
                )  # fmt: skip
            )
            if progress:
                print(f"[{index}/{len(records)}] {record.audio_path}", file=sys.stderr, flush=True)
    finally:
        runner.pool.close()
    costs = tuple(s.relative_cost for s in specs)
    return RunTable(rungs.names, costs, tuple(items)), skipped


def learn(
    store: Store,
    ladder: str = "micro",
    *,
    max_wer_increase: float = 0.0,
    relative_to: str = "base",
    min_class_items: int = 30,
    models_dir: str | os.PathLike[str] | None = None,
    base_preset: str = "balanced",
    n_threads: int | None = None,
    dry_run: bool = False,
    progress: bool = False,
) -> LearnedPolicy:
    """Fit the learned policy of ``ladder`` from the store's feedback; save it unless dry-run."""
    if not (max_wer_increase >= 0 and max_wer_increase < 1):
        raise InvalidArgumentError(f"max_wer_increase must be in [0, 1), got {max_wer_increase}")
    if min_class_items < 1:
        raise InvalidArgumentError(f"min_class_items must be >= 1, got {min_class_items}")
    records = store.feedback()
    if not records:
        raise InvalidArgumentError(
            "no feedback in the store: add some with `whisper-cascade feedback add`"
        )
    rungs = get_ladder(ladder, folder_ladders(models_dir))
    table, skipped = collect_runs(
        records, rungs, models_dir=models_dir, base_preset=base_preset,
        n_threads=n_threads, progress=progress,
    )  # fmt: skip
    if not table.items:
        detail = "; ".join(f"{s.audio}: {s.error}" for s in skipped[:3])
        raise InvalidArgumentError(f"no feedback item could be transcribed ({detail})")
    policy = fit_policy(
        table,
        ladder=rungs.name,
        base_preset=base_preset,
        max_wer_increase=max_wer_increase,
        min_class_items=min_class_items,
        relative_to=relative_to,
    )
    report: dict[str, Any] = dict(policy.report)
    report["skipped"] = [{"audio": s.audio, "error": s.error} for s in skipped]
    policy = replace(policy, report=report)
    if not dry_run:
        save_policy(store, policy)
    return policy
