"""Fixtures of the workflow unit tests: configuration factories."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from workflow.config import WorkflowConfig, load_config


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    """Write a workflow.yaml with the given data and return its path."""

    def write(data: Any, name: str = "workflow.yaml") -> Path:
        path = tmp_path / name
        path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
        return path

    return write


@pytest.fixture
def make_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., WorkflowConfig]:
    """Build a config from the defaults plus dotted overrides (no file, no environment)."""
    empty = tmp_path / "cwd"
    empty.mkdir()
    monkeypatch.chdir(empty)

    def make(overrides: dict[str, Any] | None = None, **kwargs: Any) -> WorkflowConfig:
        dotted = {key.replace("__", "."): value for key, value in kwargs.items()}
        return load_config(environ={}, overrides={**(overrides or {}), **dotted})

    return make
