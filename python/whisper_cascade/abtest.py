"""A/B tests of cascade configurations: define, run, assign sessions, record, read results.

A test compares arms (each a preset, ladder or model name) on one primary metric. Sessions are
assigned stickily: ``sha256(test_id, session_id)`` maps to ``[0, 1)`` and the cumulative traffic
split picks the arm; the first assignment is persisted, so a session keeps its arm across
restarts and split changes. Lifecycle: ``created`` → ``running`` ⇄ ``stopped``; a running test
becomes ``completed`` once ``max_samples`` observations or ``max_duration_s`` are reached.

The definition lives in the store's ``ab_tests`` table; runtime state (start and end times,
the end reason, a changed split) is a JSON document under the store key ``ab:<test_id>``
(the bandit-state table, like the learned policy). Results: :mod:`whisper_cascade.abreport`.
"""

from __future__ import annotations

import builtins
import dataclasses
import hashlib
import json
import math
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from whisper_cascade.errors import InvalidArgumentError, StateError
from whisper_cascade.store import ABObservation, ABTestRecord, Store

__all__ = [
    "METRICS",
    "ABTest",
    "ABTestConfig",
    "ABTestNotFoundError",
    "ABTests",
    "assign_arm",
]

# metric name -> (observation key, better direction)
METRICS: dict[str, tuple[str, str]] = {
    "wer": ("wer", "lower"),
    "score": ("score", "higher"),
    "latency": ("latency_s", "lower"),
    "cost": ("cost", "lower"),
    "failure_rate": ("failed", "lower"),
}
OBSERVATION_KEYS = ("wer", "score", "latency_s", "cost", "failed")


class ABTestNotFoundError(InvalidArgumentError):
    """No A/B test has the given id."""


def _check_split(arms: Mapping[str, str], split: Mapping[str, float]) -> dict[str, float]:
    if set(split) != set(arms):
        raise InvalidArgumentError(
            f"split must name exactly the arms {sorted(arms)}, got {sorted(split)}"
        )
    out = {}
    for arm in arms:  # arm order, not the split's order
        w = split[arm]
        if isinstance(w, bool) or not isinstance(w, int | float) or not math.isfinite(w) or w < 0:
            raise InvalidArgumentError(f"split weight of arm {arm!r} must be >= 0, got {w!r}")
        out[arm] = float(w)
    if abs(sum(out.values()) - 1.0) > 1e-6:
        raise InvalidArgumentError(f"split weights must sum to 1, got {sum(out.values()):g}")
    return out


@dataclass(frozen=True)
class ABTestConfig:
    """What an A/B test compares and when it ends.

    ``arms`` maps arm names to targets (preset, ladder or model name), in order; the first arm is
    the control. ``split`` maps the same arms to traffic weights summing to 1 (default equal).
    ``metric`` is one of :data:`METRICS`; ``direction`` (``lower``/``higher``) defaults to the
    metric's. ``min_samples`` per arm must be reached before a winner is named; ``max_samples``
    (all arms together) and ``max_duration_s`` (from the first start) complete the test.
    """

    name: str
    arms: dict[str, str]
    split: dict[str, float] = field(default_factory=dict)
    metric: str = "score"
    direction: str = ""
    alpha: float = 0.05
    min_samples: int = 100
    max_samples: int | None = None
    max_duration_s: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise InvalidArgumentError("an A/B test needs a non-empty name")
        if not isinstance(self.arms, dict) or len(self.arms) < 2:
            raise InvalidArgumentError("an A/B test needs at least two arms")
        for arm, target in self.arms.items():
            if not (isinstance(arm, str) and arm.strip() and isinstance(target, str)):
                raise InvalidArgumentError(f"arm {arm!r}: names and targets must be strings")
            if not target.strip():
                raise InvalidArgumentError(f"arm {arm!r} has an empty target")
        split = self.split or {arm: 1.0 / len(self.arms) for arm in self.arms}
        object.__setattr__(self, "split", _check_split(self.arms, split))
        if self.metric not in METRICS:
            raise InvalidArgumentError(
                f"unknown metric {self.metric!r}; expected one of {', '.join(METRICS)}"
            )
        direction = self.direction or METRICS[self.metric][1]
        if direction not in ("lower", "higher"):
            raise InvalidArgumentError(f"direction must be lower or higher, got {direction!r}")
        object.__setattr__(self, "direction", direction)
        if not (isinstance(self.alpha, int | float) and 0.0 < self.alpha < 0.5):
            raise InvalidArgumentError(f"alpha must be in (0, 0.5), got {self.alpha!r}")
        if not (isinstance(self.min_samples, int) and self.min_samples >= 2):
            raise InvalidArgumentError(
                f"min_samples must be an integer >= 2, got {self.min_samples!r}"
            )
        if self.max_samples is not None and not (
            isinstance(self.max_samples, int) and self.max_samples >= 1
        ):
            raise InvalidArgumentError(f"max_samples must be >= 1, got {self.max_samples!r}")
        if self.max_duration_s is not None and not (
            isinstance(self.max_duration_s, int | float) and self.max_duration_s > 0
        ):
            raise InvalidArgumentError(f"max_duration_s must be > 0, got {self.max_duration_s!r}")

    @property
    def control(self) -> str:
        """The first arm, which the others are compared with."""
        return next(iter(self.arms))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (round-trips through :meth:`from_dict`)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ABTestConfig:
        """A config from :meth:`to_dict` output; unknown keys raise InvalidArgumentError."""
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise InvalidArgumentError(f"unknown A/B config keys: {sorted(unknown)}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise InvalidArgumentError(f"bad A/B config: {exc}") from exc


@dataclass(frozen=True)
class ABTest:
    """A test as stored: config, status, times, end reason and the current traffic split."""

    test_id: str
    config: ABTestConfig
    status: str
    created_at: float
    started_at: float | None
    ended_at: float | None
    end_reason: str | None
    split: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "test_id": self.test_id,
            "name": self.config.name,
            "status": self.status,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "end_reason": self.end_reason,
            "split": dict(self.split),
            "config": self.config.to_dict(),
        }


def assign_arm(test_id: str, session_id: str, split: Mapping[str, float]) -> str:
    """The arm the deterministic hash of ``(test_id, session_id)`` falls in under ``split``."""
    digest = hashlib.sha256(f"{test_id}\x00{session_id}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2.0**64
    total = 0.0
    last = None
    for arm, weight in split.items():
        if weight <= 0:
            continue
        total += weight
        last = arm
        if u < total:
            return arm
    if last is None:
        raise InvalidArgumentError("the split gives no arm any traffic")
    return last  # u beyond a total a hair under 1 from rounding


_RECORD_LOCKS: dict[str, threading.Lock] = {}
_RECORD_LOCKS_GUARD = threading.Lock()


def _record_lock(test_id: str) -> threading.Lock:
    """One lock per test for this process: the running check, the insert and the sample-count
    completion of :meth:`ABTests.record` must not interleave, or two concurrent observations
    both land in a test that allows one more."""
    with _RECORD_LOCKS_GUARD:
        return _RECORD_LOCKS.setdefault(test_id, threading.Lock())


class ABTests:
    """Create, run and analyse A/B tests kept in ``store`` (see the module doc)."""

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    # --- definitions and lifecycle ----------------------------------------------------------

    def create(
        self,
        name: str,
        arms: Mapping[str, str],
        *,
        split: Mapping[str, float] | None = None,
        metric: str = "score",
        direction: str | None = None,
        alpha: float = 0.05,
        min_samples: int = 100,
        max_samples: int | None = None,
        max_duration_s: float | None = None,
        test_id: str | None = None,
    ) -> str:
        """Define a test (status ``created``) and return its id (a new UUID unless given)."""
        config = ABTestConfig(
            name=name,
            arms=dict(arms),
            split=dict(split or {}),
            metric=metric,
            direction=direction or "",
            alpha=alpha,
            min_samples=min_samples,
            max_samples=max_samples,
            max_duration_s=max_duration_s,
        )
        return self.create_from_config(config, test_id=test_id)

    def create_from_config(self, config: ABTestConfig, *, test_id: str | None = None) -> str:
        """Define a test from a config (status ``created``); return its id."""
        test_id = test_id or uuid.uuid4().hex[:12]
        if self.store.get_ab_test(test_id) is not None:
            raise StateError(f"A/B test {test_id!r} already exists")
        self.store.create_ab_test(
            ABTestRecord(
                test_id=test_id,
                name=config.name,
                arms_json=json.dumps(config.arms),
                config_json=json.dumps(config.to_dict()),
                created_at=self.clock(),
            )
        )
        return test_id

    def get(self, test_id: str) -> ABTest:
        """The test ``test_id``; raises ABTestNotFoundError."""
        record = self.store.get_ab_test(test_id)
        if record is None:
            raise ABTestNotFoundError(f"unknown A/B test {test_id!r}")
        return self._view(record)

    def list(self) -> builtins.list[ABTest]:
        """Every test, oldest first."""
        return [self._view(r) for r in self.store.list_ab_tests()]

    def start(self, test_id: str) -> ABTest:
        """Start (or resume a stopped) test; a completed test cannot restart."""
        test = self.get(test_id)
        if test.status == "completed":
            raise StateError(f"A/B test {test_id!r} is completed and cannot be restarted")
        if test.status != "running":
            state = self._state(test_id)
            state.setdefault("started_at", self.clock())
            state.update(ended_at=None, end_reason=None)
            self._save_state(test_id, state)
            self.store.set_ab_status(test_id, "running")
        return self._check_duration(self.get(test_id))

    def stop(self, test_id: str) -> ABTest:
        """Stop a test (no more assignments or observations until started again)."""
        test = self.get(test_id)
        if test.status == "completed":
            raise StateError(f"A/B test {test_id!r} is already completed")
        if test.status != "stopped":
            self._end(test_id, "stopped", "stopped by request")
        return self.get(test_id)

    def set_split(self, test_id: str, split: Mapping[str, float]) -> ABTest:
        """Change the traffic split for new sessions; assigned sessions keep their arm."""
        test = self.get(test_id)
        if test.status == "completed":
            raise StateError(f"A/B test {test_id!r} is completed")
        checked = _check_split(test.config.arms, split)
        state = self._state(test_id)
        state["split"] = checked
        self._save_state(test_id, state)
        return self.get(test_id)

    # --- traffic ----------------------------------------------------------------------------

    def assign(self, test_id: str, session_id: str) -> str:
        """The session's arm: sticky once given; refused unless the test is running."""
        if not isinstance(session_id, str) or not session_id:
            raise InvalidArgumentError("session_id must be a non-empty string")
        test = self._require_running(self._check_duration(self.get(test_id)))
        return self.store.assign_ab(
            test_id, session_id, assign_arm(test_id, session_id, test.split)
        )

    def record(self, test_id: str, arm: str, job_id: str, metrics: Mapping[str, Any]) -> None:
        """Store one observation of ``arm``: any of wer, score, latency_s, cost, failed.

        A test with ``max_samples`` never takes more: the store checks the count and inserts
        in one transaction that locks the test (across processes); a record that finds the
        test full completes it and raises StateError like any record after the end.
        """
        with _record_lock(test_id):
            test = self._require_running(self._check_duration(self.get(test_id)))
            if arm not in test.config.arms:
                raise InvalidArgumentError(f"A/B test {test_id!r} has no arm {arm!r}")
            clean = _clean_metrics(metrics)
            stored = self.store.record_ab_observation(
                ABObservation(test_id, arm, str(job_id), json.dumps(clean), self.clock()),
                test.config.max_samples,
            )
            if not stored:
                self._check_samples(test, len(self.store.ab_observations(test_id)))
                raise StateError(f"A/B test {test_id!r} has its max_samples; not recorded")
            if test.config.max_samples is not None:
                self._check_samples(test, len(self.store.ab_observations(test_id)))

    def observations(self, test_id: str) -> builtins.list[tuple[str, dict[str, Any]]]:
        """(arm, metrics) of every observation, oldest first."""
        self.get(test_id)
        return [(o.arm, json.loads(o.metrics_json)) for o in self.store.ab_observations(test_id)]

    def results(self, test_id: str) -> dict[str, Any]:
        """Per-arm metrics, tests and the winner (:mod:`whisper_cascade.abreport`)."""
        from whisper_cascade.abreport import build_results

        test = self._check_duration(self.get(test_id))
        obs = self.observations(test_id)
        test = self._check_samples(test, len(obs))
        return build_results(test, obs, now=self.clock())

    # --- internals --------------------------------------------------------------------------

    def _require_running(self, test: ABTest) -> ABTest:
        if test.status != "running":
            raise StateError(f"A/B test {test.test_id!r} is {test.status}, not running")
        return test

    def _check_duration(self, test: ABTest) -> ABTest:
        limit = test.config.max_duration_s
        if (
            test.status == "running"
            and limit is not None
            and test.started_at is not None
            and self.clock() - test.started_at >= limit
        ):
            self._end(test.test_id, "completed", f"max_duration_s {limit:g} reached")
            return self.get(test.test_id)
        return test

    def _check_samples(self, test: ABTest, n: int) -> ABTest:
        limit = test.config.max_samples
        if test.status == "running" and limit is not None and n >= limit:
            self._end(test.test_id, "completed", f"max_samples {limit} reached")
            return self.get(test.test_id)
        return test

    def _end(self, test_id: str, status: str, reason: str) -> None:
        state = self._state(test_id)
        state.update(ended_at=self.clock(), end_reason=reason)
        self._save_state(test_id, state)
        self.store.set_ab_status(test_id, status)

    def _state(self, test_id: str) -> dict[str, Any]:
        raw = self.store.load_bandit_state(f"ab:{test_id}")
        if raw is None:
            return {}
        try:
            state = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise StateError(f"A/B test {test_id!r}: malformed runtime state: {exc}") from exc
        if not isinstance(state, dict):
            raise StateError(f"A/B test {test_id!r}: malformed runtime state")
        return state

    def _save_state(self, test_id: str, state: dict[str, Any]) -> None:
        self.store.save_bandit_state(f"ab:{test_id}", json.dumps(state, sort_keys=True).encode())

    def _view(self, record: ABTestRecord) -> ABTest:
        try:
            config = ABTestConfig.from_dict(json.loads(record.config_json))
        except ValueError as exc:
            raise StateError(f"A/B test {record.test_id!r}: malformed config: {exc}") from exc
        state = self._state(record.test_id)
        split = state.get("split") or config.split
        return ABTest(
            test_id=record.test_id,
            config=config,
            status=record.status,
            created_at=record.created_at,
            started_at=state.get("started_at"),
            ended_at=state.get("ended_at"),
            end_reason=state.get("end_reason"),
            split={arm: float(split[arm]) for arm in config.arms},
        )


def _clean_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(metrics, Mapping):
        raise InvalidArgumentError("metrics must be a mapping")
    unknown = set(metrics) - set(OBSERVATION_KEYS)
    if unknown:
        raise InvalidArgumentError(
            f"unknown metrics {sorted(unknown)}; expected any of {', '.join(OBSERVATION_KEYS)}"
        )
    out: dict[str, Any] = {}
    for key, value in metrics.items():
        if value is None:
            continue
        if key == "failed":
            if not isinstance(value, bool):
                raise InvalidArgumentError(f"failed must be true or false, got {value!r}")
            out[key] = value
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidArgumentError(f"metric {key} must be a number, got {value!r}")
        if not math.isfinite(value) or value < 0:
            raise InvalidArgumentError(f"metric {key} must be finite and >= 0, got {value!r}")
        out[key] = float(value)
    return out
