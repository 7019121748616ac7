"""The performance store: metrics, decisions, quality, caches, bandit state, registry, A/B tests.

``open_store()`` picks the backend: an explicit argument, else ``$WHISPER_CASCADE_DB`` (a path or
a ``postgresql://`` URL), else ``$XDG_DATA_HOME/whisper-cascade/store.db``. The result is a
:class:`SpoolingStore`, so writes never fail while the backend is down.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

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
    StoreError,
    StoreUnavailableError,
)
from .spool import SpoolingStore
from .sqlite import SqliteStore, default_db_path

ENV_VAR = "WHISPER_CASCADE_DB"

__all__ = [
    "AB_STATUSES",
    "DEPLOYMENT_STATES",
    "ENV_VAR",
    "SERVICE_JOB_STATUSES",
    "ABObservation",
    "ABTestRecord",
    "DecisionRecord",
    "FeedbackRecord",
    "JobRecord",
    "ModelRecord",
    "QualityRecord",
    "ServiceJobRecord",
    "SpoolingStore",
    "SqliteStore",
    "Store",
    "StoreError",
    "StoreUnavailableError",
    "default_db_path",
    "open_store",
    "store_location",
]


def _is_postgres(location: str) -> bool:
    return location.startswith(("postgresql://", "postgres://"))


def store_location(url_or_path: str | os.PathLike[str] | None = None) -> str:
    """The store the arguments and environment select (a path or a PostgreSQL URL)."""
    if url_or_path is not None and str(url_or_path):
        return str(url_or_path)
    return os.environ.get(ENV_VAR) or str(default_db_path())


def open_store(
    url_or_path: str | os.PathLike[str] | None = None,
    spool_dir: str | os.PathLike[str] | None = None,
) -> SpoolingStore:
    """Open the selected store behind a spool (next to the DB file, or in ``spool_dir``)."""
    location = store_location(url_or_path)
    if _is_postgres(location):
        digest = hashlib.sha256(location.encode()).hexdigest()[:16]
        folder = Path(spool_dir) if spool_dir is not None else default_db_path().parent
        spool = folder / f"spool-pg-{digest}.jsonl"

        def opener() -> Store:
            from .postgres import PostgresStore

            return PostgresStore(location)

    else:
        path = Path(location).expanduser()
        folder = Path(spool_dir) if spool_dir is not None else path.parent
        spool = folder / f"{path.name}.spool.jsonl"

        def opener() -> Store:
            return SqliteStore(path)

    return SpoolingStore(opener, spool)
