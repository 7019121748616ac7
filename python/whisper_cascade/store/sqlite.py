"""SQLite backend: the default store, a file in the user's data dir.

WAL journal with ``synchronous=FULL`` (a committed row survives a crash), a busy timeout so
concurrent processes wait instead of failing, foreign keys on, one connection per thread.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

from ._sql import Cursor, SqlStore, translate_errors

BUSY_TIMEOUT_MS = 10_000


def default_db_path() -> Path:
    """``$XDG_DATA_HOME/whisper-cascade/store.db`` (``~/.local/share`` when unset)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "whisper-cascade" / "store.db"


class SqliteStore(SqlStore):
    """Store in one SQLite file; safe to share between threads and processes."""

    serial = "INTEGER PRIMARY KEY AUTOINCREMENT"
    blob = "BLOB"
    placeholder = "?"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._closed = False
        with translate_errors((sqlite3.OperationalError, OSError), (sqlite3.Error,)):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._connection()
        self.migrate()

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        if self._closed:
            from .base import StoreError

            raise StoreError("the store is closed")
        conn = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
            check_same_thread=False,
        )  # fmt: skip
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
        except BaseException:
            conn.close()
            raise
        with self._lock:
            self._connections.append(conn)
        self._local.conn = conn
        return conn

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Cursor]:
        with translate_errors((sqlite3.OperationalError, OSError), (sqlite3.Error,)):
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn.cursor()
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def integrity_check(self) -> str:
        """``PRAGMA integrity_check`` result (``"ok"`` when sound)."""
        with translate_errors((sqlite3.OperationalError, OSError), (sqlite3.Error,)):
            return str(self._connection().execute("PRAGMA integrity_check").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()
