"""Notebook sessions on a tmp project: the notebook helper tests and their integration twin."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from workflow.notebook import Session, start


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project folder (with pyproject.toml) as the working directory."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    monkeypatch.chdir(folder)
    return folder


@pytest.fixture
def make_session(project: Path) -> Callable[..., Session]:
    """Start a session in the tmp project (store under it unless ``root`` is given)."""

    def make(mode: str = "local", **kwargs: Any) -> Session:
        kwargs.setdefault("root", str(project / "store"))
        return start(mode, environ={}, **kwargs)

    return make
