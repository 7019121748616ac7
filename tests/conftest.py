"""Shared pytest configuration: the --run-slow flag, the private default store, bundled-model
isolation and the PostgreSQL fixtures (one throwaway server per run, see ``pg_support``).

Tests build their own ladders of random-weight models; the models the package ships would
otherwise shadow the ``micro`` ladder. Tests about the shipped models opt in with
``@pytest.mark.bundled``.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ladder_support import write_ladder
from pg_support import PG_BINS, Backend, PgServer, postgres_backend, sqlite_backend


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip_slow = pytest.mark.skip(
        reason="long run: use --run-slow (SLOW=1 bash scripts/dev.sh test)"
    )
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


@pytest.fixture(autouse=True)
def _private_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """CLI commands record into the store by default: keep that inside the test's tmp dir."""
    monkeypatch.setenv("WHISPER_CASCADE_DB", str(tmp_path / "default-store.db"))


@pytest.fixture(scope="session", autouse=True)
def _hide_bundled_models() -> Iterator[None]:
    """Hide the shipped models for the whole run (module-scoped fixtures included)."""
    from whisper_cascade import models

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(models, "_bundled_registry", lambda: ({}, {}))
        yield


@pytest.fixture(autouse=True)
def _bundled_models_when_marked(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tests marked ``bundled`` see the shipped models."""
    if request.node.get_closest_marker("bundled") is None:
        return
    from whisper_cascade import models

    real = models.read_registry(models.resources.files(models.BUNDLED_MODELS_PACKAGE))
    monkeypatch.setattr(models, "_bundled_registry", lambda: real)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder with the random-weight test ladder (``ladder_support.write_ladder``)."""
    return write_ladder(tmp_path_factory.mktemp("zoo"))


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A PostgreSQL server shared by the whole run (skips when the binaries are absent)."""
    if not PG_BINS:
        pytest.skip("PostgreSQL server binaries (initdb) not installed")
    server = PgServer()
    server.start()
    try:
        yield server
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            server.stop()
        shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """A fresh store location on each backend, with ``down()``/``up()``."""
    if request.param == "sqlite":
        return sqlite_backend(tmp_path)
    return postgres_backend(request.getfixturevalue("pg_server"))
