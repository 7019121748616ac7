"""The SQL implementation shared by the SQLite and PostgreSQL backends.

SQL is written with ``?`` placeholders and ``{serial}``/``{blob}`` type tokens; each backend
translates them. Migrations are an ordered list; each step runs once, in its own transaction,
and is recorded in ``schema_version``.
"""

from __future__ import annotations

import abc
import contextlib
import time
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from ..errors import InvalidArgumentError, StateError
from .base import (
    AB_STATUSES,
    DEPLOYMENT_STATES,
    SERVICE_JOB_STATUSES,
    ABObservation,
    ABTestRecord,
    DecisionRecord,
    FeedbackRecord,
    JobRecord,
    ModelRecord,
    QualityRecord,
    ServiceJobRecord,
    Store,
)

MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE jobs (
            id {serial}, job_id TEXT NOT NULL, model TEXT NOT NULL,
            audio_duration_s DOUBLE PRECISION NOT NULL, processing_time_s DOUBLE PRECISION NOT NULL,
            score DOUBLE PRECISION NOT NULL, wer DOUBLE PRECISION, content_class TEXT NOT NULL,
            cpu_seconds DOUBLE PRECISION NOT NULL, peak_memory_bytes BIGINT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL)""",
        "CREATE INDEX jobs_created ON jobs (created_at)",
        "CREATE INDEX jobs_job ON jobs (job_id)",
        """CREATE TABLE decisions (
            id {serial}, job_id TEXT NOT NULL, initial_model TEXT NOT NULL,
            final_model TEXT NOT NULL, reason TEXT NOT NULL, metrics_json TEXT NOT NULL,
            time_saved_s DOUBLE PRECISION NOT NULL, created_at DOUBLE PRECISION NOT NULL)""",
        "CREATE INDEX decisions_created ON decisions (created_at)",
        """CREATE TABLE quality (
            id {serial}, job_id TEXT NOT NULL, model TEXT NOT NULL,
            score DOUBLE PRECISION NOT NULL, wer DOUBLE PRECISION, has_reference INTEGER NOT NULL,
            created_at DOUBLE PRECISION NOT NULL)""",
        "CREATE INDEX quality_created ON quality (created_at)",
        """CREATE TABLE analysis_cache (
            audio_hash TEXT PRIMARY KEY, features_json TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL)""",
        """CREATE TABLE bandit_state (
            name TEXT PRIMARY KEY, state {blob} NOT NULL, updated_at DOUBLE PRECISION NOT NULL)""",
        """CREATE TABLE models (
            name TEXT NOT NULL, version TEXT NOT NULL, path TEXT NOT NULL, sha256 TEXT NOT NULL,
            ladder TEXT NOT NULL, state TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (name, version))""",
        """CREATE TABLE ab_tests (
            test_id TEXT PRIMARY KEY, name TEXT NOT NULL, arms_json TEXT NOT NULL,
            config_json TEXT NOT NULL, status TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL)""",
        """CREATE TABLE ab_assignments (
            test_id TEXT NOT NULL REFERENCES ab_tests (test_id), session_id TEXT NOT NULL,
            arm TEXT NOT NULL, assigned_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (test_id, session_id))""",
        """CREATE TABLE ab_observations (
            id {serial}, test_id TEXT NOT NULL REFERENCES ab_tests (test_id), arm TEXT NOT NULL,
            job_id TEXT NOT NULL, metrics_json TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL)""",
        "CREATE INDEX ab_observations_test ON ab_observations (test_id)",
    ],
    [
        """CREATE TABLE feedback (
            id {serial}, audio_hash TEXT NOT NULL, audio_path TEXT NOT NULL,
            reference TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL)""",
        "CREATE UNIQUE INDEX feedback_item ON feedback (audio_hash, reference)",
    ],
    [
        """CREATE TABLE service_jobs (
            job_id TEXT PRIMARY KEY, status TEXT NOT NULL, request_json TEXT NOT NULL,
            result_json TEXT, error_json TEXT, created_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL)""",
        "CREATE INDEX service_jobs_created ON service_jobs (created_at)",
    ],
]

_JOB_COLS = (
    "job_id, model, audio_duration_s, processing_time_s, score, wer, content_class, "
    "cpu_seconds, peak_memory_bytes, created_at"
)
_DECISION_COLS = (
    "job_id, initial_model, final_model, reason, metrics_json, time_saved_s, created_at"
)
_QUALITY_COLS = "job_id, model, score, wer, has_reference, created_at"
_MODEL_COLS = "name, version, path, sha256, ladder, state, created_at, updated_at"
_AB_COLS = "test_id, name, arms_json, config_json, status, created_at"
_OBS_COLS = "test_id, arm, job_id, metrics_json, created_at"
_FEEDBACK_COLS = "audio_hash, audio_path, reference, created_at"
_SERVICE_JOB_COLS = "job_id, status, request_json, result_json, error_json, created_at, updated_at"


class Cursor(Protocol):
    """The DB-API cursor subset both drivers provide."""

    def execute(self, sql: Any, params: Any = ...) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def fetchone(self) -> Any: ...


def _marks(n: int) -> str:
    return ", ".join("?" * n)


class SqlStore(Store):
    """Store over a DB-API driver; subclasses provide transactions and the SQL dialect."""

    serial: str
    blob: str
    placeholder: str
    migration_lock: str | None = None
    row_lock: str = ""
    """Appended to a SELECT that must lock its row until commit (PostgreSQL ``FOR UPDATE``;
    SQLite's ``BEGIN IMMEDIATE`` already serialises every writer)."""

    @abc.abstractmethod
    def _transaction(self) -> contextlib.AbstractContextManager[Cursor]:
        """A cursor inside one transaction: commit on success, rollback on error."""

    def _sql(self, sql: str) -> str:
        sql = sql.replace("{serial}", self.serial).replace("{blob}", self.blob)
        return sql.replace("?", self.placeholder) if self.placeholder != "?" else sql

    def _exec(self, cur: Cursor, sql: str, params: Sequence[Any] = ()) -> None:
        cur.execute(self._sql(sql), tuple(params))

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._transaction() as cur:
            cur.execute(self._sql(sql), tuple(params))
            return [tuple(r) for r in cur.fetchall()]

    def _write(self, sql: str, params: Sequence[Any]) -> None:
        with self._transaction() as cur:
            self._exec(cur, sql, params)

    def migrate(self) -> int:
        """Apply the pending migration steps; return the schema version (idempotent)."""
        with self._transaction() as cur:
            if self.migration_lock:
                self._exec(cur, self.migration_lock)
            self._exec(
                cur,
                "CREATE TABLE IF NOT EXISTS schema_version ("
                "version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)",
            )
            self._exec(cur, "SELECT COALESCE(MAX(version), 0) FROM schema_version")
            current = int(cur.fetchall()[0][0])
            for version, step in enumerate(MIGRATIONS, start=1):
                if version <= current:
                    continue
                for statement in step:
                    self._exec(cur, statement)
                self._exec(
                    cur,
                    "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                    (version, time.time()),
                )
            return max(current, len(MIGRATIONS))

    def schema_version(self) -> int:
        """The applied schema version."""
        return int(self._query("SELECT COALESCE(MAX(version), 0) FROM schema_version")[0][0])

    def record_job(self, record: JobRecord) -> None:
        r = record
        self._write(
            f"INSERT INTO jobs ({_JOB_COLS}) VALUES ({_marks(10)})",
            (r.job_id, r.model, r.audio_duration_s, r.processing_time_s, r.score, r.wer,
             r.content_class, r.cpu_seconds, int(r.peak_memory_bytes), r.created_at),
        )  # fmt: skip

    def record_decision(self, record: DecisionRecord) -> None:
        r = record
        self._write(
            f"INSERT INTO decisions ({_DECISION_COLS}) VALUES ({_marks(7)})",
            (r.job_id, r.initial_model, r.final_model, r.reason, r.metrics_json,
             r.time_saved_s, r.created_at),
        )  # fmt: skip

    def record_quality(self, record: QualityRecord) -> None:
        r = record
        self._write(
            f"INSERT INTO quality ({_QUALITY_COLS}) VALUES ({_marks(6)})",
            (r.job_id, r.model, r.score, r.wer, int(r.has_reference), r.created_at),
        )

    def get_analysis(self, audio_hash: str) -> str | None:
        rows = self._query(
            "SELECT features_json FROM analysis_cache WHERE audio_hash = ?", (audio_hash,)
        )
        return str(rows[0][0]) if rows else None

    def put_analysis(self, audio_hash: str, features_json: str) -> None:
        self._write(
            "INSERT INTO analysis_cache (audio_hash, features_json, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT (audio_hash) DO UPDATE SET features_json = excluded.features_json, "
            "created_at = excluded.created_at",
            (audio_hash, features_json, time.time()),
        )

    def load_bandit_state(self, name: str) -> bytes | None:
        rows = self._query("SELECT state FROM bandit_state WHERE name = ?", (name,))
        return bytes(rows[0][0]) if rows else None

    def save_bandit_state(self, name: str, state: bytes) -> None:
        self._write(
            "INSERT INTO bandit_state (name, state, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET state = excluded.state, "
            "updated_at = excluded.updated_at",
            (name, bytes(state), time.time()),
        )

    def register_model(self, name: str, path: str, sha256: str, ladder: str, version: str) -> None:
        now = time.time()
        with self._transaction() as cur:
            self._exec(
                cur,
                "SELECT path, sha256, ladder FROM models WHERE name = ? AND version = ?",
                (name, version),
            )
            rows = cur.fetchall()
            if rows:
                if tuple(rows[0]) != (path, sha256, ladder):
                    raise StateError(
                        f"model {name!r} version {version!r} is already registered "
                        "with a different file, checksum or ladder"
                    )
                return
            self._exec(
                cur,
                f"INSERT INTO models ({_MODEL_COLS}) VALUES ({_marks(8)})",
                (name, version, path, sha256, ladder, "registered", now, now),
            )

    def list_models(self, name: str | None = None) -> list[ModelRecord]:
        where, params = (" WHERE name = ?", (name,)) if name is not None else ("", ())
        rows = self._query(
            f"SELECT {_MODEL_COLS} FROM models{where} ORDER BY created_at, name, version", params
        )
        return [ModelRecord(*row) for row in rows]

    def set_deployment(self, name: str, version: str, state: str) -> None:
        if state not in DEPLOYMENT_STATES:
            raise InvalidArgumentError(
                f"unknown deployment state {state!r}; expected one of {DEPLOYMENT_STATES}"
            )
        now = time.time()
        with self._transaction() as cur:
            self._exec(cur, "SELECT 1 FROM models WHERE name = ? AND version = ?", (name, version))
            if not cur.fetchall():
                raise StateError(f"model {name!r} version {version!r} is not registered")
            if state == "active":
                self._exec(
                    cur,
                    "UPDATE models SET state = 'retired', updated_at = ? "
                    "WHERE name = ? AND version <> ? AND state = 'active'",
                    (now, name, version),
                )
            self._exec(
                cur,
                "UPDATE models SET state = ?, updated_at = ? WHERE name = ? AND version = ?",
                (state, now, name, version),
            )

    def create_ab_test(self, test: ABTestRecord) -> None:
        _check_ab_status(test.status)
        t = test
        self._write(
            f"INSERT INTO ab_tests ({_AB_COLS}) VALUES ({_marks(6)})",
            (t.test_id, t.name, t.arms_json, t.config_json, t.status, t.created_at),
        )

    def get_ab_test(self, test_id: str) -> ABTestRecord | None:
        rows = self._query(f"SELECT {_AB_COLS} FROM ab_tests WHERE test_id = ?", (test_id,))
        return ABTestRecord(*rows[0]) if rows else None

    def list_ab_tests(self) -> list[ABTestRecord]:
        rows = self._query(f"SELECT {_AB_COLS} FROM ab_tests ORDER BY created_at, test_id")
        return [ABTestRecord(*row) for row in rows]

    def set_ab_status(self, test_id: str, status: str) -> None:
        _check_ab_status(status)
        with self._transaction() as cur:
            self._exec(cur, "SELECT 1 FROM ab_tests WHERE test_id = ?", (test_id,))
            if not cur.fetchall():
                raise StateError(f"unknown A/B test {test_id!r}")
            self._exec(cur, "UPDATE ab_tests SET status = ? WHERE test_id = ?", (status, test_id))

    def assign_ab(self, test_id: str, session_id: str, arm: str) -> str:
        with self._transaction() as cur:
            self._exec(
                cur,
                "INSERT INTO ab_assignments (test_id, session_id, arm, assigned_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (test_id, session_id) DO NOTHING",
                (test_id, session_id, arm, time.time()),
            )
            self._exec(
                cur,
                "SELECT arm FROM ab_assignments WHERE test_id = ? AND session_id = ?",
                (test_id, session_id),
            )
            return str(cur.fetchall()[0][0])

    def record_ab_observation(
        self, observation: ABObservation, max_samples: int | None = None
    ) -> bool:
        o = observation
        with self._transaction() as cur:
            if max_samples is not None:
                # The test's row lock makes writers of every process count one after another.
                self._exec(
                    cur, f"SELECT 1 FROM ab_tests WHERE test_id = ?{self.row_lock}", (o.test_id,)
                )
                self._exec(
                    cur, "SELECT COUNT(*) FROM ab_observations WHERE test_id = ?", (o.test_id,)
                )
                if int(cur.fetchone()[0]) >= max_samples:
                    return False
            self._exec(
                cur,
                f"INSERT INTO ab_observations ({_OBS_COLS}) VALUES ({_marks(5)})",
                (o.test_id, o.arm, o.job_id, o.metrics_json, o.created_at),
            )
        return True

    def ab_observations(self, test_id: str) -> list[ABObservation]:
        rows = self._query(
            f"SELECT {_OBS_COLS} FROM ab_observations WHERE test_id = ? ORDER BY id", (test_id,)
        )
        return [ABObservation(*row) for row in rows]

    def jobs_since(self, timestamp: float) -> list[JobRecord]:
        rows = self._query(
            f"SELECT {_JOB_COLS} FROM jobs WHERE created_at >= ? ORDER BY created_at, id",
            (timestamp,),
        )
        return [
            JobRecord(
                job_id=r[0], model=r[1], audio_duration_s=r[2], processing_time_s=r[3],
                score=r[4], wer=r[5], content_class=r[6], cpu_seconds=r[7],
                peak_memory_bytes=int(r[8]), created_at=r[9],
            )
            for r in rows
        ]  # fmt: skip

    def decisions_since(self, timestamp: float) -> list[DecisionRecord]:
        rows = self._query(
            f"SELECT {_DECISION_COLS} FROM decisions WHERE created_at >= ? ORDER BY created_at, id",
            (timestamp,),
        )
        return [DecisionRecord(*row) for row in rows]

    def quality_since(self, timestamp: float) -> list[QualityRecord]:
        rows = self._query(
            f"SELECT {_QUALITY_COLS} FROM quality WHERE created_at >= ? ORDER BY created_at, id",
            (timestamp,),
        )
        return [QualityRecord(r[0], r[1], r[2], r[3], bool(r[4]), r[5]) for r in rows]

    def add_feedback(self, record: FeedbackRecord) -> None:
        r = record
        self._write(
            f"INSERT INTO feedback ({_FEEDBACK_COLS}) VALUES ({_marks(4)}) "
            "ON CONFLICT (audio_hash, reference) DO NOTHING",
            (r.audio_hash, r.audio_path, r.reference, r.created_at),
        )

    def feedback(self) -> list[FeedbackRecord]:
        rows = self._query(f"SELECT {_FEEDBACK_COLS} FROM feedback ORDER BY created_at, id")
        return [FeedbackRecord(*row) for row in rows]

    def create_service_job(self, record: ServiceJobRecord) -> None:
        _check_service_status(record.status)
        r = record
        self._write(
            f"INSERT INTO service_jobs ({_SERVICE_JOB_COLS}) VALUES ({_marks(7)}) "
            "ON CONFLICT (job_id) DO NOTHING",
            (r.job_id, r.status, r.request_json, r.result_json, r.error_json, r.created_at,
             r.updated_at),
        )  # fmt: skip

    def update_service_job(
        self,
        job_id: str,
        status: str,
        result_json: str | None = None,
        error_json: str | None = None,
        updated_at: float | None = None,
    ) -> None:
        _check_service_status(status)
        with self._transaction() as cur:
            self._exec(cur, "SELECT 1 FROM service_jobs WHERE job_id = ?", (job_id,))
            if not cur.fetchall():
                raise StateError(f"unknown service job {job_id!r}")
            self._exec(
                cur,
                "UPDATE service_jobs SET status = ?, result_json = ?, error_json = ?, "
                "updated_at = ? WHERE job_id = ?",
                (status, result_json, error_json, updated_at or time.time(), job_id),
            )

    def get_service_job(self, job_id: str) -> ServiceJobRecord | None:
        rows = self._query(
            f"SELECT {_SERVICE_JOB_COLS} FROM service_jobs WHERE job_id = ?", (job_id,)
        )
        return ServiceJobRecord(*rows[0]) if rows else None

    def count(self, table: str) -> int:
        """Row count of one store table (for reports and checks)."""
        if table not in _TABLES:
            raise InvalidArgumentError(f"unknown store table {table!r}")
        return int(self._query(f"SELECT COUNT(*) FROM {table}")[0][0])


_TABLES = frozenset(
    {"jobs", "decisions", "quality", "analysis_cache", "bandit_state", "models", "ab_tests",
     "ab_assignments", "ab_observations", "feedback", "service_jobs", "schema_version"}
)  # fmt: skip


def _check_service_status(status: str) -> None:
    if status not in SERVICE_JOB_STATUSES:
        raise InvalidArgumentError(
            f"unknown service job status {status!r}; expected one of {SERVICE_JOB_STATUSES}"
        )


def _check_ab_status(status: str) -> None:
    if status not in AB_STATUSES:
        raise InvalidArgumentError(f"unknown A/B status {status!r}; expected one of {AB_STATUSES}")


@contextlib.contextmanager
def translate_errors(
    unavailable: tuple[type[BaseException], ...], other: tuple[type[BaseException], ...]
) -> Iterator[None]:
    """Re-raise driver errors as :class:`StoreUnavailableError` / :class:`StoreError`."""
    from .base import StoreError, StoreUnavailableError

    try:
        yield
    except unavailable as exc:
        raise StoreUnavailableError(f"store unavailable: {exc}") from exc
    except other as exc:
        raise StoreError(f"store error: {exc}") from exc
