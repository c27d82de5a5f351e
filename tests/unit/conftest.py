"""Unit tests start no process: anything that runs a program belongs in ``tests/integration``."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest


@pytest.fixture(scope="session", autouse=True)
def matplotlib_font_cache() -> None:
    """Let matplotlib build its font cache first: on a fresh machine that runs ``fc-list`` once."""
    import matplotlib.font_manager  # noqa: F401  (the import builds or loads the cache)


@pytest.fixture(autouse=True)
def no_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail a unit test that starts a process, naming the program it tried to run."""

    def refuse(self: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> None:
        raise AssertionError(
            f"a unit test started a process ({args!r}); move the test to tests/integration."
        )

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)
