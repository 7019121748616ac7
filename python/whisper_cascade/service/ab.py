"""A/B routing of transcriptions: pick the test, assign the session's arm (sticky), transcribe
with the arm's target and record the observation.

Which test a request joins: the one it names (``ab_test`` form field or ``X-AB-Test`` header);
otherwise, on ``/transcribe`` only, when it has a session id, names no preset or ladder and
exactly one test is running, that test. The OpenAI route joins a test only through the header.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

from whisper_cascade.abrun import metrics_from_result
from whisper_cascade.abtest import ABTestNotFoundError, ABTests
from whisper_cascade.errors import AudioError, StateError, WhisperCascadeError
from whisper_cascade.results import CascadeResult
from whisper_cascade.store import StoreError

from .engine import DEFAULT_MODEL_ALIAS, Service, Target
from .errors import ServiceError, from_library

log = logging.getLogger(__name__)

SESSION_HEADER = "x-session-id"
TEST_HEADER = "x-ab-test"


@dataclass(frozen=True)
class Enrollment:
    """The test a request joins and its session."""

    test_id: str
    session_id: str


@dataclass(frozen=True)
class Routed:
    """A transcription routed through an A/B test."""

    result: CascadeResult
    test_id: str
    arm: str
    recorded: bool

    def ab(self) -> dict[str, Any]:
        """The ``ab`` block of a response."""
        return {"test_id": self.test_id, "arm": self.arm, "recorded": self.recorded}


def ab_error(exc: WhisperCascadeError) -> ServiceError:
    """404 unknown test, 409 wrong state, else the library error's usual status."""
    if isinstance(exc, ABTestNotFoundError):
        return ServiceError(404, "ABTestNotFoundError", str(exc))
    if isinstance(exc, StateError):
        return ServiceError(409, "StateError", str(exc))
    return from_library(exc)


def check_target(service: Service, target: str) -> Target:
    """The service target of an arm: a preset, ladder or registered model name (400 else)."""
    if not isinstance(target, str) or target == DEFAULT_MODEL_ALIAS:
        raise ServiceError(
            400,
            "InvalidArgumentError",
            f"arm target {target!r}: give a preset, ladder or registered model name",
        )
    return service.target(model=target)


def enrollment(
    service: Service,
    *,
    test_id: str | None,
    session_id: str | None,
    implicit: bool,
) -> Enrollment | None:
    """The test this request joins, or None (see the module doc). Runs in a worker thread."""
    if test_id is not None:
        if not session_id:
            raise ServiceError(
                400,
                "InvalidArgumentError",
                "an A/B test needs a session id (session_id field or X-Session-Id header)",
            )
        return Enrollment(test_id, session_id)
    if not implicit or not session_id:
        return None
    try:
        running = [t for t in ABTests(service.store).list() if t.status == "running"]
    except (StoreError, StateError) as exc:  # A/B is optional: transcribe without it
        log.error("cannot list A/B tests: %s", exc)
        return None
    return Enrollment(running[0].test_id, session_id) if len(running) == 1 else None


def transcribe_routed(service: Service, data: bytes, name: str, enrolled: Enrollment) -> Routed:
    """Assign, transcribe with the arm's target, record (in a worker thread).

    Bad audio is not recorded (the input's fault, not the arm's); other library failures are
    recorded as ``failed`` and re-raised. A test that completed meanwhile keeps the result but
    records nothing (``recorded`` false).
    """
    tests = ABTests(service.store)
    try:
        arm = tests.assign(enrolled.test_id, enrolled.session_id)
        arm_target = tests.get(enrolled.test_id).config.arms[arm]
    except (ABTestNotFoundError, StateError) as exc:
        raise ab_error(exc) from exc
    target = check_target(service, arm_target)
    service.metrics.ab_assignments.labels(enrolled.test_id, arm).inc()
    t0 = time.perf_counter()
    try:
        result = service.transcribe(data, name, target)
    except AudioError:
        raise
    except WhisperCascadeError:
        failed = {"latency_s": time.perf_counter() - t0, "failed": True}
        _record(tests, enrolled.test_id, arm, uuid.uuid4().hex, failed)
        raise
    metrics = metrics_from_result(result, time.perf_counter() - t0)
    job_id = str(result.model_selection.get("job_id") or "")
    recorded = _record(tests, enrolled.test_id, arm, job_id, metrics)
    return Routed(result, enrolled.test_id, arm, recorded)


def _record(tests: ABTests, test_id: str, arm: str, job_id: str, metrics: dict[str, Any]) -> bool:
    try:
        tests.record(test_id, arm, job_id, metrics)
    except (StateError, StoreError) as exc:
        log.warning("A/B observation of %s/%s not recorded: %s", test_id, arm, exc)
        return False
    return True
