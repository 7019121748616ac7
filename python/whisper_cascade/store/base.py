"""The store interface: typed records and the abstract :class:`Store`.

Every write is one transaction: when a write method returns, the row is durable. Timestamps are
Unix epoch seconds (float).
"""

from __future__ import annotations

import abc
import time
from dataclasses import dataclass, field

from ..errors import WhisperCascadeError


class StoreError(WhisperCascadeError):
    """A store operation failed for a reason other than the store being unreachable."""


class StoreUnavailableError(StoreError):
    """The store cannot be reached or written right now (down, locked, unwritable)."""


DEPLOYMENT_STATES = ("registered", "candidate", "canary", "active", "retired", "rolled_back")
AB_STATUSES = ("created", "running", "stopped", "completed")
SERVICE_JOB_STATUSES = ("queued", "running", "done", "failed")


def _now() -> float:
    return time.time()


@dataclass(frozen=True)
class JobRecord:
    """Performance metrics of one model run on one job."""

    job_id: str
    model: str
    audio_duration_s: float
    processing_time_s: float
    score: float
    content_class: str
    cpu_seconds: float
    peak_memory_bytes: int
    wer: float | None = None
    created_at: float = field(default_factory=_now)


@dataclass(frozen=True)
class DecisionRecord:
    """Audit of one selection decision (which model started, which one finished, why)."""

    job_id: str
    initial_model: str
    final_model: str
    reason: str
    metrics_json: str
    time_saved_s: float
    created_at: float = field(default_factory=_now)


@dataclass(frozen=True)
class QualityRecord:
    """Transcription quality of one model on one job; ``wer`` only when a reference exists."""

    job_id: str
    model: str
    score: float
    wer: float | None
    has_reference: bool
    created_at: float = field(default_factory=_now)


@dataclass(frozen=True)
class ModelRecord:
    """One registered model version and its deployment state."""

    name: str
    version: str
    path: str
    sha256: str
    ladder: str
    state: str
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class ABTestRecord:
    """An A/B test definition; ``arms_json`` and ``config_json`` are JSON documents."""

    test_id: str
    name: str
    arms_json: str
    config_json: str
    status: str = "created"
    created_at: float = field(default_factory=_now)


@dataclass(frozen=True)
class ABObservation:
    """One observed outcome of an arm in an A/B test."""

    test_id: str
    arm: str
    job_id: str
    metrics_json: str
    created_at: float = field(default_factory=_now)


@dataclass(frozen=True)
class FeedbackRecord:
    """A reference transcript for one audio file (``audio_hash``: SHA-256 of its samples)."""

    audio_hash: str
    audio_path: str
    reference: str
    created_at: float = field(default_factory=_now)


@dataclass(frozen=True)
class ServiceJobRecord:
    """An asynchronous job of the HTTP service; result and error are JSON documents."""

    job_id: str
    status: str
    request_json: str
    result_json: str | None = None
    error_json: str | None = None
    created_at: float = field(default_factory=_now)
    updated_at: float = field(default_factory=_now)


class Store(abc.ABC):
    """Persistence for metrics, decisions, quality, caches, bandit state, registry and A/B tests."""

    @abc.abstractmethod
    def record_job(self, record: JobRecord) -> None:
        """Store the metrics of one model run."""

    @abc.abstractmethod
    def record_decision(self, record: DecisionRecord) -> None:
        """Store one selection decision."""

    @abc.abstractmethod
    def record_quality(self, record: QualityRecord) -> None:
        """Store one quality measurement."""

    @abc.abstractmethod
    def get_analysis(self, audio_hash: str) -> str | None:
        """The cached content-analysis JSON for ``audio_hash``, or None."""

    @abc.abstractmethod
    def put_analysis(self, audio_hash: str, features_json: str) -> None:
        """Cache the content-analysis JSON of ``audio_hash`` (replaces an older entry)."""

    @abc.abstractmethod
    def load_bandit_state(self, name: str) -> bytes | None:
        """The saved state of bandit ``name``, or None."""

    @abc.abstractmethod
    def save_bandit_state(self, name: str, state: bytes) -> None:
        """Save (replace) the state of bandit ``name``."""

    @abc.abstractmethod
    def register_model(self, name: str, path: str, sha256: str, ladder: str, version: str) -> None:
        """Add a model version (state ``registered``); re-registering the same data is a no-op."""

    @abc.abstractmethod
    def list_models(self, name: str | None = None) -> list[ModelRecord]:
        """Registered model versions (of ``name`` when given), oldest first."""

    @abc.abstractmethod
    def set_deployment(self, name: str, version: str, state: str) -> None:
        """Set the deployment state; making a version ``active`` retires the previous active one."""

    @abc.abstractmethod
    def create_ab_test(self, test: ABTestRecord) -> None:
        """Create an A/B test."""

    @abc.abstractmethod
    def get_ab_test(self, test_id: str) -> ABTestRecord | None:
        """The A/B test ``test_id``, or None."""

    @abc.abstractmethod
    def list_ab_tests(self) -> list[ABTestRecord]:
        """Every A/B test, oldest first."""

    @abc.abstractmethod
    def set_ab_status(self, test_id: str, status: str) -> None:
        """Change the status of an A/B test."""

    @abc.abstractmethod
    def assign_ab(self, test_id: str, session_id: str, arm: str) -> str:
        """Record ``arm`` for the session unless it already has one; return the sticky arm."""

    @abc.abstractmethod
    def record_ab_observation(
        self, observation: ABObservation, max_samples: int | None = None
    ) -> bool:
        """Store one A/B observation; with ``max_samples``, only while the test has fewer
        (checked and inserted atomically, across processes). True when stored."""

    @abc.abstractmethod
    def ab_observations(self, test_id: str) -> list[ABObservation]:
        """Observations of one test, oldest first."""

    @abc.abstractmethod
    def jobs_since(self, timestamp: float) -> list[JobRecord]:
        """Job records created at or after ``timestamp``, oldest first."""

    @abc.abstractmethod
    def decisions_since(self, timestamp: float) -> list[DecisionRecord]:
        """Decision records created at or after ``timestamp``, oldest first."""

    @abc.abstractmethod
    def quality_since(self, timestamp: float) -> list[QualityRecord]:
        """Quality records created at or after ``timestamp``, oldest first."""

    @abc.abstractmethod
    def add_feedback(self, record: FeedbackRecord) -> None:
        """Store a reference transcript; a repeated (audio_hash, reference) is a no-op."""

    @abc.abstractmethod
    def feedback(self) -> list[FeedbackRecord]:
        """All feedback, oldest first."""

    @abc.abstractmethod
    def create_service_job(self, record: ServiceJobRecord) -> None:
        """Create a service job (an existing id is left as it is)."""

    @abc.abstractmethod
    def update_service_job(
        self,
        job_id: str,
        status: str,
        result_json: str | None = None,
        error_json: str | None = None,
        updated_at: float | None = None,
    ) -> None:
        """Set a service job's status with its result or error JSON (None clears them)."""

    @abc.abstractmethod
    def get_service_job(self, job_id: str) -> ServiceJobRecord | None:
        """The service job ``job_id``, or None."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections; the store must not be used afterwards."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
