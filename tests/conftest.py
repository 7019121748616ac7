"""Shared pytest configuration: the --run-slow flag, a private store, bundled-model isolation.

Tests build their own ladders of random-weight models; the models the package ships would
otherwise shadow the ``micro`` ladder. Tests about the shipped models opt in with
``@pytest.mark.bundled``.
"""

from __future__ import annotations

from pathlib import Path

import pytest


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


@pytest.fixture(autouse=True)
def _without_bundled_models(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hide the shipped models unless the test is marked ``bundled``."""
    if request.node.get_closest_marker("bundled") is not None:
        return
    from whisper_cascade import models

    monkeypatch.setattr(models, "_bundled_registry", lambda: ({}, {}))
