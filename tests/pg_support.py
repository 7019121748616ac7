"""A throwaway PostgreSQL server and store backends for the tests.

``tests/conftest.py`` turns these into the session fixture ``pg_server`` (one server per run,
skipped when the PostgreSQL binaries are absent) and the ``backend`` fixture (SQLite and
PostgreSQL, with a way to take each down and back up).
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from whisper_cascade.store import SqliteStore
from whisper_cascade.store._sql import SqlStore

PG_BINS = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))


class PgServer:
    """A PostgreSQL server in a temp dir, unix socket only, run as a non-root user."""

    def __init__(self) -> None:
        self.bindir = Path(PG_BINS[-1]).parent
        self.root = Path(tempfile.mkdtemp(prefix="wc-pg-"))
        self.data = self.root / "data"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.user: str | None = None
        if os.geteuid() == 0:
            self.user = "postgres" if _user_exists("postgres") else "nobody"
            shutil.chown(self.root, self.user)
            os.chmod(self.root, 0o700)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-N")
        self.counter = itertools.count()

    def _run(self, tool: str, *args: str) -> None:
        cmd = [str(self.bindir / tool), *args]
        if self.user is not None:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, cwd="/")

    def start(self) -> None:
        opts = f"-k {self.root} -p {self.port} -c listen_addresses='' -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.root / "log"),
                  "-w", "start")  # fmt: skip

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def url(self, db: str) -> str:
        return f"postgresql://postgres@/{db}?host={self.root}&port={self.port}"

    def new_database(self) -> str:
        import psycopg

        name = f"t{next(self.counter)}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@dataclass
class Backend:
    """A fresh store location plus a way to take the backend down and back up."""

    kind: str
    location: str
    down: Callable[[], None]
    up: Callable[[], None]


def sqlite_backend(tmp_path: Path) -> Backend:
    """A SQLite location whose folder can be made unopenable (even for root) and restored."""
    db_dir = tmp_path / "db"

    def down() -> None:  # the DB folder becomes a plain file
        shutil.move(db_dir, tmp_path / "moved")
        db_dir.write_text("not a folder")

    def up() -> None:
        db_dir.unlink()
        shutil.move(tmp_path / "moved", db_dir)

    return Backend("sqlite", str(db_dir / "store.db"), down, up)


def postgres_backend(server: PgServer) -> Backend:
    """A new database on ``server``; down/up stop and start the whole server."""
    return Backend("postgres", server.new_database(), server.stop, server.start)


def raw_store(b: Backend) -> SqlStore:
    """The backend's store without the spooling wrapper."""
    if b.kind == "sqlite":
        return SqliteStore(b.location)
    from whisper_cascade.store.postgres import PostgresStore

    return PostgresStore(b.location)
