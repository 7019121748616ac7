"""Deploying registered model versions: health checks, staged traffic ramps, automatic rollback.

Registry states: ``registered`` → ``candidate`` → ``canary`` → ``active`` → ``retired``, or
``rolled_back`` when a deployment fails. A manifest is the traffic sample: each stage of a ramp
routes a deterministic share of its utterances to the candidate and the rest to the active
model, and compares the two windows. See docs/lifecycle.md.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from whisper_cascade.errors import InvalidArgumentError, ModelError, StateError
from whisper_cascade.lifecycle import (
    ItemOutcome,
    ModelRunner,
    Performance,
    active_version,
    get_version,
    manifest_items,
    summarize,
)
from whisper_cascade.manifest import ManifestItem
from whisper_cascade.modelfile import validate_model
from whisper_cascade.store import ModelRecord, Store

STRATEGIES = ("immediate", "canary", "gradual", "blue-green")
#: Traffic share of the candidate at each stage of a ramp.
RAMPS: dict[str, tuple[float, ...]] = {
    "canary": (0.05, 1.0),
    "gradual": (0.10, 0.25, 0.50, 1.0),
    "blue-green": (1.0,),
}


@dataclass(frozen=True)
class Tolerances:
    """How much worse than the baseline the candidate may be before it is rolled back.

    ``latency``: relative real-time-factor increase (0.25 = +25%); ``failure_rate``,
    ``score`` and ``wer``: absolute (fractions). A negative value demands an improvement.
    """

    latency: float = 0.25
    failure_rate: float = 0.02
    score: float = 0.05
    wer: float = 0.01

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not math.isfinite(value):
                raise InvalidArgumentError(f"tolerance {name} must be finite, got {value}")


def degradations(candidate: Performance, baseline: Performance, tol: Tolerances) -> list[str]:
    """Why ``candidate`` is worse than ``baseline`` beyond ``tol`` (empty when healthy)."""
    out = []
    if candidate.failure_rate > baseline.failure_rate + tol.failure_rate:
        out.append(
            f"failure rate {candidate.failure_rate:.1%} vs baseline {baseline.failure_rate:.1%}"
        )
    if baseline.n - baseline.failures == 0 or candidate.n - candidate.failures == 0:
        return out  # no successful window on one side: nothing else to compare
    if candidate.rtf > baseline.rtf * (1.0 + tol.latency):
        out.append(f"latency RTF {candidate.rtf:.3f} vs baseline {baseline.rtf:.3f}")
    if (
        candidate.score is not None
        and baseline.score is not None
        and candidate.score < baseline.score - tol.score
    ):
        out.append(f"score {candidate.score:.3f} vs baseline {baseline.score:.3f}")
    if candidate.wer > baseline.wer + tol.wer:
        out.append(f"WER {candidate.wer:.1%} vs baseline {baseline.wer:.1%}")
    return out


@dataclass(frozen=True)
class Stage:
    """One stage of a deployment: the candidate's traffic share and both windows."""

    share: float
    candidate: Performance
    baseline: Performance | None
    degradations: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "share": self.share,
            "candidate": self.candidate.to_dict(),
            "baseline": None if self.baseline is None else self.baseline.to_dict(),
            "degradations": list(self.degradations),
        }


@dataclass(frozen=True)
class DeploymentReport:
    """What a deployment did: ``outcome`` is ``active`` or ``rolled_back``."""

    name: str
    version: str
    strategy: str
    outcome: str
    previous: str | None
    reason: str
    stages: tuple[Stage, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        """True when the candidate became active."""
        return self.outcome == "active"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "name": self.name,
            "version": self.version,
            "strategy": self.strategy,
            "outcome": self.outcome,
            "previous": self.previous,
            "reason": self.reason,
            "stages": [s.to_dict() for s in self.stages],
        }


def route_share(name: str, item: ManifestItem) -> float:
    """A stable position in [0, 1) for ``item``; a stage with share s sends the items below s
    to the candidate, so an item on the candidate stays there as the share grows."""
    digest = hashlib.sha256(f"{name}\0{item.audio}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def split(
    name: str, items: Sequence[ManifestItem], share: float
) -> tuple[list[ManifestItem], list[ManifestItem]]:
    """(candidate items, baseline items) of one stage; the candidate gets at least one item."""
    ranked = sorted(items, key=lambda it: route_share(name, it))
    k = sum(1 for it in ranked if route_share(name, it) < share)
    k = max(k, 1)
    return ranked[:k], ranked[k:]


class _Cached:
    """A model runner that transcribes each utterance once per deployment."""

    def __init__(self, record: ModelRecord) -> None:
        self.runner = ModelRunner(record.path, sha256=record.sha256)
        self.seen: dict[str, ItemOutcome] = {}

    def run(self, items: Sequence[ManifestItem]) -> list[ItemOutcome]:
        for item in items:
            if item.audio not in self.seen:
                self.seen[item.audio] = self.runner.run(item)
        return [self.seen[item.audio] for item in items]


def health_check(record: ModelRecord) -> str | None:
    """Format, architecture, security scan and integrity of a registered file; the reason it
    fails, or None when healthy."""
    try:
        validate_model(record.path, sha256=record.sha256)
    except ModelError as exc:
        return f"health check failed: {exc}"
    return None


def deploy(
    store: Store,
    name: str,
    version: str | None = None,
    strategy: str = "immediate",
    manifest: str | os.PathLike[str] | Sequence[ManifestItem] | None = None,
    tolerances: Tolerances | None = None,
) -> DeploymentReport:
    """Deploy ``name`` at ``version`` (default: the newest version never deployed).

    Every state change is written to ``store``. Returns the report; a failed deployment leaves
    the candidate ``rolled_back`` and the previous active version active.
    """
    if strategy not in STRATEGIES:
        raise InvalidArgumentError(f"unknown strategy {strategy!r}; expected one of {STRATEGIES}")
    if strategy != "immediate" and manifest is None:
        raise InvalidArgumentError(
            f"the {strategy} strategy needs a traffic sample: pass a manifest (--manifest)"
        )
    tol = tolerances or Tolerances()
    record = _candidate(store, name, version)
    previous = active_version(store, name)
    if previous is not None and previous.version == record.version:
        raise StateError(f"{name} version {record.version} is already active")
    items = None if manifest is None else manifest_items(manifest)
    prev_version = None if previous is None else previous.version

    def finish(outcome: str, reason: str, stages: Sequence[Stage] = ()) -> DeploymentReport:
        store.set_deployment(name, record.version, outcome)
        return DeploymentReport(
            name, record.version, strategy, outcome, prev_version, reason, tuple(stages)
        )

    store.set_deployment(name, record.version, "candidate")
    problem = health_check(record)
    if problem is not None:
        return finish("rolled_back", problem)
    candidate = _Cached(record)
    baseline = _Cached(previous) if previous is not None else None
    try:
        if strategy == "immediate":
            if items is None:
                return finish("active", "healthy (validation and integrity)")
            stage = _stage(name, 1.0, items, candidate, None, tol)
            if stage.degradations:
                return finish("rolled_back", "; ".join(stage.degradations), [stage])
            return finish("active", "healthy (validation, integrity and performance)", [stage])
        assert items is not None
        store.set_deployment(name, record.version, "canary")
        stages: list[Stage] = []
        for share in RAMPS[strategy]:
            stage = _stage(name, share, items, candidate, baseline, tol)
            stages.append(stage)
            if stage.degradations:
                why = f"at {share:.0%} traffic: " + "; ".join(stage.degradations)
                return finish("rolled_back", why, stages)
        return finish("active", f"healthy at every stage of the {strategy} ramp", stages)
    finally:
        candidate.runner.close()
        if baseline is not None:
            baseline.runner.close()


def _stage(
    name: str,
    share: float,
    items: Sequence[ManifestItem],
    candidate: _Cached,
    baseline: _Cached | None,
    tol: Tolerances,
) -> Stage:
    """Run one stage. Without an active model there is no baseline: the candidate must not
    fail more than the failure tolerance allows."""
    if baseline is None:
        perf = summarize(candidate.run(items))
        empty = Performance(n=0, failures=0, wer=0.0, rtf=0.0, score=None, audio_s=0.0, time_s=0.0)
        bad = perf.failure_rate > tol.failure_rate
        return Stage(share, perf, None, tuple(degradations(perf, empty, tol)) if bad else ())
    if share >= 1.0:
        # Blue-green and the last ramp stage: both models see the whole sample side by side.
        cand_items, base_items = list(items), list(items)
    else:
        cand_items, base_items = split(name, items, share)
        if not base_items:
            base_items = list(items)
    cand = summarize(candidate.run(cand_items))
    base = summarize(baseline.run(base_items))
    return Stage(share, cand, base, tuple(degradations(cand, base, tol)))


def _candidate(store: Store, name: str, version: str | None) -> ModelRecord:
    if version is not None:
        return get_version(store, name, version)
    fresh = [r for r in store.list_models(name) if r.state in ("registered", "candidate")]
    if not fresh:
        raise StateError(f"model {name!r} has no registered version waiting to be deployed")
    return fresh[-1]


def rollback(store: Store, name: str, to_version: str | None = None) -> ModelRecord:
    """Make ``to_version`` (default: the most recently retired version) active again; the
    current active version becomes ``rolled_back``. The target must pass the health check."""
    records = store.list_models(name)
    if not records:
        raise StateError(f"model {name!r} is not registered")
    current = active_version(store, name)
    if to_version is None:
        retired = [r for r in records if r.state == "retired"]
        if not retired:
            raise StateError(f"model {name!r} has no retired version to roll back to")
        target = max(retired, key=lambda r: r.updated_at)
    else:
        target = get_version(store, name, to_version)
    if current is not None and current.version == target.version:
        raise StateError(f"{name} version {target.version} is already active")
    problem = health_check(target)
    if problem is not None:
        raise StateError(f"cannot roll back to {name} version {target.version}: {problem}")
    if current is not None:
        store.set_deployment(name, current.version, "rolled_back")
    store.set_deployment(name, target.version, "active")
    return get_version(store, name, target.version)


__all__ = [
    "RAMPS",
    "STRATEGIES",
    "DeploymentReport",
    "Stage",
    "Tolerances",
    "degradations",
    "deploy",
    "health_check",
    "rollback",
    "route_share",
    "split",
]
