"""Writing a cascade's work into the performance store, never failing the transcription.

Per transcription: one :class:`~whisper_cascade.store.JobRecord` per model run, one
:class:`~whisper_cascade.store.DecisionRecord` (its ``metrics_json``: the decision metrics,
``score`` included, plus ``largest_model``, the ladder's most expensive rung) and one
:class:`~whisper_cascade.store.QualityRecord` (``wer`` and ``has_reference`` from
``model_selection["wer"]``: set when ``transcribe`` got a reference).
A write that fails (:class:`~whisper_cascade.store.StoreError`, :class:`OSError`) is logged as a
warning; :class:`~whisper_cascade.store.SpoolingStore` already spools writes while the database
is down. The analysis cache reads and writes the store's ``analysis_cache`` table the same way.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from whisper_cascade.errors import WhisperCascadeError
from whisper_cascade.features import AudioFeatures

if TYPE_CHECKING:
    from whisper_cascade.results import CascadeResult
    from whisper_cascade.store import JobRecord, Store

__all__ = ["cached_analysis", "record_result"]

log = logging.getLogger(__name__)


def _safely(what: str, call: Callable[[], Any]) -> Any:
    from whisper_cascade.store import StoreError

    try:
        return call()
    except (StoreError, OSError) as exc:
        log.warning("store: %s failed: %s", what, exc)
        return None


def record_result(store: Store, result: CascadeResult, runs: Sequence[JobRecord]) -> None:
    """Write the job, decision and quality records of one finished transcription."""
    from whisper_cascade.store import DecisionRecord, QualityRecord

    ms = result.model_selection
    job_id = str(ms["job_id"])
    for run in runs:
        _safely(f"job record of {run.model}", functools.partial(store.record_job, run))
    # the reports read the baseline model and the final score from here
    metrics = dict(ms["decision_metrics"], largest_model=str(ms["largest_model"]))
    decision = DecisionRecord(
        job_id=job_id,
        initial_model=str(ms["initial_model"]),
        final_model=str(ms["final_model"]),
        reason=str(ms["escalation_reason"]),
        metrics_json=json.dumps(metrics, sort_keys=True),
        time_saved_s=float(ms["processing_time_saved_s"]),
    )
    _safely("decision record", lambda: store.record_decision(decision))
    wer = None if ms.get("wer") is None else float(ms["wer"])
    quality = QualityRecord(
        job_id=job_id,
        model=str(ms["final_model"]),
        score=float(ms["decision_metrics"]["score"]),
        wer=wer,
        has_reference=wer is not None,
    )
    _safely("quality record", lambda: store.record_quality(quality))


def cached_analysis(store: Store, key: str, compute: Callable[[], AudioFeatures]) -> AudioFeatures:
    """The store's analysis of ``key`` when it has a valid one, else ``compute()`` saved there."""
    raw = _safely("analysis lookup", lambda: store.get_analysis(key))
    if raw is not None:
        try:
            return AudioFeatures.from_dict(json.loads(raw))
        except (ValueError, TypeError, WhisperCascadeError) as exc:
            log.warning("store: cached analysis of %s unusable, recomputing: %s", key, exc)
    feats = compute()
    text = json.dumps(feats.to_dict())
    _safely("analysis save", lambda: store.put_analysis(key, text))
    return feats
