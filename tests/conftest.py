"""Shared pytest configuration: the --run-slow flag for long runs."""

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
