"""Writes that never block or fail a transcription.

:class:`SpoolingStore` wraps a backend opener. When the backend is unreachable, a write is
appended (one fsync'd JSON line) to a local spool file; the spool is replayed, in order, before
the next write that reaches the backend, or on :meth:`SpoolingStore.flush`. Replay is
at-least-once: a crash in the middle of a replay may write a spooled row twice.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .base import (
    ABObservation,
    ABTestRecord,
    DecisionRecord,
    FeedbackRecord,
    JobRecord,
    ModelRecord,
    QualityRecord,
    ServiceJobRecord,
    Store,
    StoreError,
    StoreUnavailableError,
)

log = logging.getLogger(__name__)


def _apply(store: Store, op: str, a: dict[str, Any]) -> None:
    if op == "record_job":
        store.record_job(JobRecord(**a))
    elif op == "record_decision":
        store.record_decision(DecisionRecord(**a))
    elif op == "record_quality":
        store.record_quality(QualityRecord(**a))
    elif op == "put_analysis":
        store.put_analysis(a["audio_hash"], a["features_json"])
    elif op == "save_bandit_state":
        store.save_bandit_state(a["name"], base64.b64decode(a["state"]))
    elif op == "register_model":
        store.register_model(a["name"], a["path"], a["sha256"], a["ladder"], a["version"])
    elif op == "set_deployment":
        store.set_deployment(a["name"], a["version"], a["state"])
    elif op == "create_ab_test":
        store.create_ab_test(ABTestRecord(**a))
    elif op == "set_ab_status":
        store.set_ab_status(a["test_id"], a["status"])
    elif op == "assign_ab":
        store.assign_ab(a["test_id"], a["session_id"], a["arm"])
    elif op == "record_ab_observation":
        store.record_ab_observation(ABObservation(**a))
    elif op == "add_feedback":
        store.add_feedback(FeedbackRecord(**a))
    elif op == "create_service_job":
        store.create_service_job(ServiceJobRecord(**a))
    elif op == "update_service_job":
        store.update_service_job(
            a["job_id"], a["status"], a["result_json"], a["error_json"], a["updated_at"]
        )
    else:
        raise StoreError(f"unknown spooled operation {op!r}")


class SpoolingStore(Store):
    """A :class:`Store` whose writes survive the backend being down (see the module doc)."""

    def __init__(self, opener: Callable[[], Store], spool_path: str | os.PathLike[str]) -> None:
        self._opener = opener
        self.spool_path = Path(spool_path)
        self._backend: Store | None = None
        self._lock = threading.RLock()
        with contextlib.suppress(StoreUnavailableError):
            self._open()

    def _open(self) -> Store:
        if self._backend is None:
            self._backend = self._opener()
        return self._backend

    def _drop_backend(self) -> None:
        if self._backend is not None:
            with contextlib.suppress(Exception):
                self._backend.close()
            self._backend = None

    @property
    def backend(self) -> Store:
        """The underlying store (opened now if needed); raises when unreachable."""
        with self._lock:
            try:
                return self._open()
            except StoreUnavailableError:
                self._drop_backend()
                raise

    @contextlib.contextmanager
    def _spool_file(self) -> Iterator[int]:
        self.spool_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.spool_path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # several processes may share one spool
            yield fd
        finally:
            os.close(fd)

    def _append(self, op: str, args: dict[str, Any]) -> None:
        line = (json.dumps({"op": op, "args": args}, sort_keys=True) + "\n").encode()
        with self._spool_file() as fd:
            os.write(fd, line)
            os.fsync(fd)
        log.warning("store unavailable; spooled %s to %s", op, self.spool_path)

    def pending(self) -> int:
        """Number of spooled writes not yet replayed."""
        if not _has_data(self.spool_path):
            return 0
        with self._spool_file() as fd:
            return sum(1 for line in _read_all(fd).splitlines() if line.strip())

    def flush(self) -> int:
        """Replay the spool; return the writes replayed. Raises when the backend is down."""
        with self._lock:
            if not _has_data(self.spool_path):
                return 0
            backend = self.backend
            done = 0
            with self._spool_file() as fd:
                lines = [ln for ln in _read_all(fd).splitlines() if ln.strip()]
                try:
                    for line in lines:
                        entry = json.loads(line)
                        try:
                            _apply(backend, entry["op"], entry["args"])
                        except StoreUnavailableError:
                            raise
                        except Exception as exc:  # a poisoned entry must not block the queue
                            log.error("dropping spooled %s: %s", entry.get("op"), exc)
                        done += 1
                except StoreUnavailableError:
                    self._drop_backend()
                    raise
                finally:
                    _rewrite(fd, lines[done:])
            return done

    def _write(self, op: str, args: dict[str, Any], call: Callable[[Store], Any]) -> Any:
        with self._lock:
            try:
                self.flush()
                return call(self.backend)
            except StoreUnavailableError:
                self._drop_backend()
                self._append(op, args)
                return None

    def record_job(self, record: JobRecord) -> None:
        self._write("record_job", dataclasses.asdict(record), lambda s: s.record_job(record))

    def record_decision(self, record: DecisionRecord) -> None:
        self._write(
            "record_decision", dataclasses.asdict(record), lambda s: s.record_decision(record)
        )

    def record_quality(self, record: QualityRecord) -> None:
        self._write(
            "record_quality", dataclasses.asdict(record), lambda s: s.record_quality(record)
        )

    def put_analysis(self, audio_hash: str, features_json: str) -> None:
        args = {"audio_hash": audio_hash, "features_json": features_json}
        self._write("put_analysis", args, lambda s: s.put_analysis(audio_hash, features_json))

    def save_bandit_state(self, name: str, state: bytes) -> None:
        args = {"name": name, "state": base64.b64encode(state).decode()}
        self._write("save_bandit_state", args, lambda s: s.save_bandit_state(name, state))

    def register_model(self, name: str, path: str, sha256: str, ladder: str, version: str) -> None:
        args = {"name": name, "path": path, "sha256": sha256, "ladder": ladder, "version": version}
        self._write(
            "register_model", args, lambda s: s.register_model(name, path, sha256, ladder, version)
        )

    def set_deployment(self, name: str, version: str, state: str) -> None:
        args = {"name": name, "version": version, "state": state}
        self._write("set_deployment", args, lambda s: s.set_deployment(name, version, state))

    def create_ab_test(self, test: ABTestRecord) -> None:
        self._write("create_ab_test", dataclasses.asdict(test), lambda s: s.create_ab_test(test))

    def set_ab_status(self, test_id: str, status: str) -> None:
        args = {"test_id": test_id, "status": status}
        self._write("set_ab_status", args, lambda s: s.set_ab_status(test_id, status))

    def assign_ab(self, test_id: str, session_id: str, arm: str) -> str:
        """As :meth:`Store.assign_ab`; while the backend is down the given arm is returned."""
        args = {"test_id": test_id, "session_id": session_id, "arm": arm}
        got = self._write("assign_ab", args, lambda s: s.assign_ab(test_id, session_id, arm))
        return arm if got is None else str(got)

    def record_ab_observation(
        self, observation: ABObservation, max_samples: int | None = None
    ) -> bool:
        """Spooled while the store is down: the cap is not checked then (True)."""
        stored = self._write(
            "record_ab_observation",
            dataclasses.asdict(observation),
            lambda s: s.record_ab_observation(observation, max_samples),
        )
        return stored is None or bool(stored)

    def add_feedback(self, record: FeedbackRecord) -> None:
        self._write("add_feedback", dataclasses.asdict(record), lambda s: s.add_feedback(record))

    def create_service_job(self, record: ServiceJobRecord) -> None:
        self._write(
            "create_service_job",
            dataclasses.asdict(record),
            lambda s: s.create_service_job(record),
        )

    def update_service_job(
        self,
        job_id: str,
        status: str,
        result_json: str | None = None,
        error_json: str | None = None,
        updated_at: float | None = None,
    ) -> None:
        at = time.time() if updated_at is None else updated_at  # fixed now, for a later replay
        args = {
            "job_id": job_id,
            "status": status,
            "result_json": result_json,
            "error_json": error_json,
            "updated_at": at,
        }
        self._write(
            "update_service_job",
            args,
            lambda s: s.update_service_job(job_id, status, result_json, error_json, at),
        )

    # Reads go to the backend and raise StoreUnavailableError while it is down.
    def _read(self, call: Callable[[Store], Any]) -> Any:
        with self._lock:
            try:
                return call(self.backend)
            except StoreUnavailableError:
                self._drop_backend()
                raise

    def get_analysis(self, audio_hash: str) -> str | None:
        result: str | None = self._read(lambda s: s.get_analysis(audio_hash))
        return result

    def load_bandit_state(self, name: str) -> bytes | None:
        result: bytes | None = self._read(lambda s: s.load_bandit_state(name))
        return result

    def list_models(self, name: str | None = None) -> list[ModelRecord]:
        result: list[ModelRecord] = self._read(lambda s: s.list_models(name))
        return result

    def get_ab_test(self, test_id: str) -> ABTestRecord | None:
        result: ABTestRecord | None = self._read(lambda s: s.get_ab_test(test_id))
        return result

    def list_ab_tests(self) -> list[ABTestRecord]:
        result: list[ABTestRecord] = self._read(lambda s: s.list_ab_tests())
        return result

    def ab_observations(self, test_id: str) -> list[ABObservation]:
        result: list[ABObservation] = self._read(lambda s: s.ab_observations(test_id))
        return result

    def jobs_since(self, timestamp: float) -> list[JobRecord]:
        result: list[JobRecord] = self._read(lambda s: s.jobs_since(timestamp))
        return result

    def decisions_since(self, timestamp: float) -> list[DecisionRecord]:
        result: list[DecisionRecord] = self._read(lambda s: s.decisions_since(timestamp))
        return result

    def quality_since(self, timestamp: float) -> list[QualityRecord]:
        result: list[QualityRecord] = self._read(lambda s: s.quality_since(timestamp))
        return result

    def feedback(self) -> list[FeedbackRecord]:
        result: list[FeedbackRecord] = self._read(lambda s: s.feedback())
        return result

    def get_service_job(self, job_id: str) -> ServiceJobRecord | None:
        result: ServiceJobRecord | None = self._read(lambda s: s.get_service_job(job_id))
        return result

    def close(self) -> None:
        """Try a last replay, then close the backend; the spool keeps whatever is left."""
        with self._lock:
            with contextlib.suppress(StoreUnavailableError):
                self.flush()
            self._drop_backend()


def _read_all(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks).decode()


def _rewrite(fd: int, lines: list[str]) -> None:
    """Keep only ``lines`` in the spool (in place, under the held lock)."""
    # Truncate rather than unlink: another process may be waiting on this inode's lock.
    os.ftruncate(fd, 0)
    os.write(fd, "".join(line + "\n" for line in lines).encode())
    os.fsync(fd)


def _has_data(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except FileNotFoundError:
        return False
