"""The service's shared state: one Cascade, the store, a bounded worker pool, jobs and metrics.

Admission is counted, not queued in a separate structure: a request is admitted while fewer
than ``workers + queue_size`` are waiting or running, else it is refused with 429. Admitted
work goes to a :class:`~concurrent.futures.ThreadPoolExecutor` of ``workers`` threads over one
thread-safe :class:`~whisper_cascade.cascade.Cascade` (per-model locks live in its pool).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from whisper_cascade.audio import load_audio
from whisper_cascade.cascade import Cascade
from whisper_cascade.errors import WhisperCascadeError
from whisper_cascade.ladders import Ladder, builtin_ladders
from whisper_cascade.models import ModelSpec, bundled_models, resolve_model
from whisper_cascade.presets import Preset, builtin_presets
from whisper_cascade.results import CascadeResult
from whisper_cascade.settings import Settings, load_settings
from whisper_cascade.store import (
    ServiceJobRecord,
    SpoolingStore,
    Store,
    StoreError,
    StoreUnavailableError,
    open_store,
)

from .errors import ServiceError, from_library
from .metrics import Metrics
from .openai_format import jsonable
from .settings import ServiceSettings

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_MODEL_ALIAS = "whisper-1"
_MAX_REMEMBERED_JOBS = 10_000


@dataclass(frozen=True)
class Target:
    """What a request asked for: a preset and/or a ladder (None: the service default)."""

    preset: Preset | None = None
    ladder: Ladder | None = None


class Service:
    """Everything the routes share; one per app."""

    def __init__(self, settings: ServiceSettings, store: Store | None = None) -> None:
        self.settings = settings
        user = load_settings(settings.config) if settings.config else Settings()
        self.presets: dict[str, Preset] = {**user.presets, **settings.presets}
        self.ladders: dict[str, Ladder] = {**user.ladders, **settings.ladders}
        self.store: Store = store if store is not None else open_store(settings.db)
        kwargs: dict[str, Any] = {
            "models_dir": settings.models_dir,
            "n_threads": settings.n_threads,
            "presets": self.presets,
            "ladders": self.ladders,
            "breaker_threshold": settings.breaker_threshold,
            "breaker_cooldown_s": settings.breaker_cooldown_s,
            "store": self.store,  # job and decision records feed the reports
        }
        self.cascade = Cascade(settings.ladder, settings.preset, **kwargs)
        self.metrics = Metrics()
        self.executor = ThreadPoolExecutor(settings.workers, thread_name_prefix="wc-service")
        self._lock = threading.Lock()
        self._admitted = 0
        self._running = 0
        self._jobs: OrderedDict[str, ServiceJobRecord] = OrderedDict()

    # --- names ------------------------------------------------------------------------------

    def known_presets(self) -> dict[str, Preset]:
        """Built-in and user presets by name."""
        return {**builtin_presets(), **self.presets}

    def known_ladders(self) -> dict[str, Ladder]:
        """Built-in and user ladders by name."""
        return {**builtin_ladders(), **self.ladders}

    def known_models(self) -> dict[str, ModelSpec]:
        """Registered models: bundled, members of known ladders, and active store versions."""
        specs: dict[str, ModelSpec] = dict(bundled_models())
        for ladder in self.known_ladders().values():
            for spec in ladder.models:
                specs.setdefault(spec.name, spec)
        try:
            records = self.store.list_models()
        except StoreError:
            records = []
        for rec in records:
            if rec.state == "active" and rec.name not in specs:
                path = Path(rec.path)
                specs[rec.name] = ModelSpec(
                    name=rec.name,
                    file_name=path.name,
                    sha256=rec.sha256 or None,
                    family="registry",
                    path=path,
                )
        return specs

    def target(
        self, *, model: str | None = None, preset: str | None = None, ladder: str | None = None
    ) -> Target:
        """Resolve request names; only registered names are accepted, never paths or lists."""
        chosen_preset: Preset | None = None
        chosen_ladder: Ladder | None = None
        if model is not None and model != DEFAULT_MODEL_ALIAS:
            presets, ladders = self.known_presets(), self.known_ladders()
            if model in presets:
                chosen_preset = presets[model]
            elif model in ladders:
                chosen_ladder = ladders[model]
            else:
                spec = self.known_models().get(model)
                if spec is None:
                    raise ServiceError(
                        400,
                        "InvalidArgumentError",
                        f"unknown model {model!r}: give {DEFAULT_MODEL_ALIAS}, a preset, a "
                        "ladder or a registered model name (GET /models lists them)",
                    )
                chosen_ladder = Ladder(spec.name, (spec,))
        if preset is not None:
            presets = self.known_presets()
            if preset not in presets:
                raise ServiceError(
                    400, "InvalidArgumentError", f"unknown preset {preset!r} (GET /models)"
                )
            chosen_preset = presets[preset]
        if ladder is not None:
            ladders = self.known_ladders()
            if ladder not in ladders:
                raise ServiceError(
                    400,
                    "InvalidArgumentError",
                    f"unknown ladder {ladder!r}: only registered ladder names (GET /models)",
                )
            chosen_ladder = ladders[ladder]
        return Target(chosen_preset, chosen_ladder)

    # --- admission and the pool -------------------------------------------------------------

    @property
    def capacity(self) -> int:
        """Requests that may be waiting or running at once."""
        return self.settings.workers + self.settings.queue_size

    def queue_state(self) -> dict[str, int]:
        """Waiting and running counts and the limits."""
        with self._lock:
            waiting = self._admitted - self._running
            running = self._running
        return {
            "depth": waiting,
            "running": running,
            "queue_size": self.settings.queue_size,
            "workers": self.settings.workers,
        }

    def _admit(self) -> None:
        with self._lock:
            if self._admitted >= self.capacity:
                self.metrics.rejected.inc()
                raise ServiceError(
                    429,
                    "QueueFullError",
                    f"server busy: {self._admitted} requests waiting or running "
                    f"(capacity {self.capacity}); retry later",
                )
            self._admitted += 1

    def _work(self, fn: Callable[[], T]) -> T:
        with self._lock:
            self._running += 1
        try:
            return fn()
        finally:
            with self._lock:
                self._running -= 1
                self._admitted -= 1

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        """Admit ``fn`` (429 when full) and run it on the pool."""
        self._admit()
        try:
            return self.executor.submit(self._work, fn)
        except RuntimeError:  # pool shut down
            with self._lock:
                self._admitted -= 1
            raise ServiceError(503, "ShuttingDown", "the service is shutting down") from None

    async def run(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the pool and await its result."""
        return await asyncio.wrap_future(self.submit(fn))

    # --- work -------------------------------------------------------------------------------

    def transcribe(self, data: bytes, filename: str, target: Target) -> CascadeResult:
        """Decode the upload and run the cascade (in a worker thread)."""
        audio = replace(load_audio(data), source=filename)
        result = self.cascade.transcribe(audio, preset=target.preset, ladder=target.ladder)
        self.metrics.observe_result(result)
        return result

    def recommend(self, data: bytes, filename: str, target: Target) -> dict[str, Any]:
        """Features and the starting model (in a worker thread)."""
        audio = replace(load_audio(data), source=filename)
        return self.cascade.recommend(audio, preset=target.preset, ladder=target.ladder)

    # --- jobs -------------------------------------------------------------------------------

    def _remember(self, record: ServiceJobRecord) -> None:
        with self._lock:
            self._jobs[record.job_id] = record
            self._jobs.move_to_end(record.job_id)
            while len(self._jobs) > _MAX_REMEMBERED_JOBS:
                self._jobs.popitem(last=False)

    def _save(self, record: ServiceJobRecord, *, create: bool = False) -> None:
        self._remember(record)
        try:
            if create:
                self.store.create_service_job(record)
            else:
                self.store.update_service_job(
                    record.job_id,
                    record.status,
                    record.result_json,
                    record.error_json,
                    record.updated_at,
                )
        except StoreError as exc:  # the in-memory copy still answers GET /jobs/{id}
            log.error("cannot persist job %s: %s", record.job_id, exc)

    def create_job(
        self, data: bytes, filename: str, target: Target, request: dict[str, Any]
    ) -> str:
        """Admit and queue an asynchronous transcription; return its id."""
        job_id = uuid.uuid4().hex
        record = ServiceJobRecord(job_id, "queued", json.dumps(request, sort_keys=True))
        self._admit()
        try:
            self._save(record, create=True)
            self.executor.submit(self._work, lambda: self._run_job(record, data, filename, target))
        except BaseException:
            with self._lock:
                self._admitted -= 1
            raise
        return job_id

    def _run_job(
        self, record: ServiceJobRecord, data: bytes, filename: str, target: Target
    ) -> None:
        self._save(replace(record, status="running", updated_at=time.time()))
        try:
            result = self.transcribe(data, filename, target)
        except WhisperCascadeError as exc:
            err = from_library(exc)
            self.metrics.errors.labels(err.type).inc()
            error = json.dumps({"type": err.type, "message": err.message, "status": err.status})
            done = replace(record, status="failed", error_json=error, updated_at=time.time())
        except Exception as exc:
            log.exception("job %s failed", record.job_id)
            self.metrics.errors.labels("InternalError").inc()
            error = json.dumps(
                {"type": "InternalError", "message": f"{type(exc).__name__}: {exc}", "status": 500}
            )
            done = replace(record, status="failed", error_json=error, updated_at=time.time())
        else:
            body = json.dumps(success_body(result, json.loads(record.request_json)))
            done = replace(record, status="done", result_json=body, updated_at=time.time())
        self._save(done)

    def get_job(self, job_id: str) -> ServiceJobRecord | None:
        """A job from memory, else from the store (503 when the store is down)."""
        with self._lock:
            record = self._jobs.get(job_id)
        if record is not None:
            return record
        try:
            return self.store.get_service_job(job_id)
        except StoreUnavailableError as exc:
            raise ServiceError(503, "StoreUnavailableError", str(exc)) from exc

    # --- health -----------------------------------------------------------------------------

    def store_status(self) -> dict[str, Any]:
        """Whether the store answers a read, and spooled writes waiting."""
        try:
            self.store.get_service_job("health-probe")
            reachable, error = True, None
        except StoreError as exc:
            reachable, error = False, str(exc)
        pending = self.store.pending() if isinstance(self.store, SpoolingStore) else 0
        return {"reachable": reachable, "error": error, "spooled_writes": pending}

    def health(self) -> dict[str, Any]:
        """Status, breakers, queue and store."""
        cascade = self.cascade.health()
        store = self.store_status()
        breakers_ok = all(b["state"] == "closed" for b in cascade["breakers"].values())
        status = "ok" if breakers_ok and store["reachable"] else "degraded"
        return jsonable({"status": status, **cascade, "queue": self.queue_state(), "store": store})  # type: ignore[no-any-return]

    def close(self) -> None:
        """Finish running work, free models and close the store."""
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.cascade.close()
        self.store.close()


def success_body(result: CascadeResult, request: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``/transcribe`` success document."""
    body: dict[str, Any] = {
        "success": True,
        "model_selection": result.model_selection,
        "transcription_result": {
            "text": result.text,
            "segments": [s.to_dict() for s in result.segments],
            "info": result.info,
        },
    }
    if request and request.get("session_id") is not None:
        body["session_id"] = request["session_id"]
    return jsonable(body)  # type: ignore[no-any-return]


def resolve_present(spec: ModelSpec, models_dir: str | None) -> bool:
    """Whether the model's file can be found."""
    if spec.path is not None:
        return spec.path.is_file()
    try:
        resolve_model(spec.name, models_dir)
    except WhisperCascadeError:
        return False
    return True
