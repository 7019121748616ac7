"""PostgreSQL backend (psycopg 3): the same schema, for several workers or machines."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import psycopg

from ._sql import Cursor, SqlStore, translate_errors
from .base import StoreError

CONNECT_TIMEOUT_S = 5
# Any constant works; it only serialises concurrent migrations of the same database.
_MIGRATION_LOCK_KEY = 0x77C5_0001


class PostgresStore(SqlStore):
    """Store in a PostgreSQL database given by a ``postgresql://`` URL."""

    serial = "BIGSERIAL PRIMARY KEY"
    blob = "BYTEA"
    placeholder = "%s"
    migration_lock = f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_KEY})"
    row_lock = " FOR UPDATE"

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.RLock()
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._closed = False
        with self._lock:
            self._connect()
        self.migrate()

    def _connect(self) -> psycopg.Connection[tuple[object, ...]]:
        if self._closed:
            raise StoreError("the store is closed")
        if self._conn is None or self._conn.closed or self._conn.broken:
            with translate_errors((psycopg.OperationalError, OSError), (psycopg.Error,)):
                self._conn = psycopg.connect(
                    self.url, connect_timeout=CONNECT_TIMEOUT_S, autocommit=True
                )
        return self._conn

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Cursor]:
        with (
            self._lock,
            translate_errors((psycopg.OperationalError, OSError), (psycopg.Error,)),
        ):
            conn = self._connect()
            with conn.transaction(), conn.cursor() as cur:
                yield cur

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._conn is not None:
                self._conn.close()
                self._conn = None
