"""Circuit breakers per model, and the analysis cache keyed by audio hash.

A breaker opens after ``failure_threshold`` consecutive failures of its model; while open,
calls are refused until ``cooldown_s`` has passed; then it half-opens and lets one trial call
through: success closes it, failure opens it again for another cool-down.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from whisper_cascade.errors import InvalidArgumentError

__all__ = ["AnalysisCache", "BreakerBoard", "CircuitBreaker", "audio_hash"]

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class CircuitBreaker:
    """One model's breaker (thread-safe); ``clock`` is injectable for tests."""

    def __init__(
        self,
        failure_threshold: int = 3,
        cooldown_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1 or cooldown_s < 0:
            raise InvalidArgumentError("failure_threshold must be >= 1 and cooldown_s >= 0")
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False
        self.total_failures = 0

    def _state_locked(self) -> str:
        if self._opened_at is None:
            return CLOSED
        if self._clock() - self._opened_at >= self.cooldown_s:
            return HALF_OPEN
        return OPEN

    @property
    def state(self) -> str:
        """``closed``, ``open`` or ``half_open``."""
        with self._lock:
            return self._state_locked()

    def allow(self) -> bool:
        """May a call go to the model now? In half-open state, only one trial at a time."""
        with self._lock:
            state = self._state_locked()
            if state == CLOSED:
                return True
            if state == HALF_OPEN and not self._trial_running:
                self._trial_running = True
                return True
            return False

    def record_success(self) -> None:
        """A call succeeded: close the breaker."""
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._trial_running = False

    def record_failure(self) -> None:
        """A call failed: count it; open (again) at the threshold or after a failed trial."""
        with self._lock:
            self._failures += 1
            self.total_failures += 1
            if self._trial_running or self._failures >= self.failure_threshold:
                self._opened_at = self._clock()
            self._trial_running = False

    def snapshot(self) -> dict[str, Any]:
        """State for health checks: state, consecutive and total failures."""
        with self._lock:
            return {
                "state": self._state_locked(),
                "consecutive_failures": self._failures,
                "total_failures": self.total_failures,
            }


class BreakerBoard:
    """Breakers by model key, created on first use."""

    def __init__(
        self,
        failure_threshold: int = 3,
        cooldown_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        CircuitBreaker(failure_threshold, cooldown_s, clock)  # validates the settings
        self._settings = (failure_threshold, cooldown_s, clock)
        self._lock = threading.Lock()
        self._breakers: dict[str, CircuitBreaker] = {}

    def get(self, key: str) -> CircuitBreaker:
        """The breaker of ``key``."""
        with self._lock:
            breaker = self._breakers.get(key)
            if breaker is None:
                breaker = self._breakers[key] = CircuitBreaker(*self._settings)
            return breaker

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Every breaker's :meth:`CircuitBreaker.snapshot` by key."""
        with self._lock:
            breakers = dict(self._breakers)
        return {key: b.snapshot() for key, b in breakers.items()}


def audio_hash(samples: Any) -> str:
    """SHA-256 of the float32 sample bytes (the key of :class:`AnalysisCache`)."""
    return hashlib.sha256(np.ascontiguousarray(samples).data.cast("B")).hexdigest()


class AnalysisCache:
    """A bounded, thread-safe LRU map from audio hash to analysis results."""

    def __init__(self, max_entries: int = 256) -> None:
        if max_entries < 1:
            raise InvalidArgumentError(f"max_entries must be >= 1, got {max_entries}")
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._items: OrderedDict[str, Any] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get_or_compute(self, key: str, compute: Callable[[], Any]) -> Any:
        """The cached value of ``key``, or ``compute()`` stored under it (errors not cached)."""
        with self._lock:
            if key in self._items:
                self.hits += 1
                self._items.move_to_end(key)
                return self._items[key]
            self.misses += 1
        value = compute()  # outside the lock: analyses of different audio run in parallel
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)
        return value

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
