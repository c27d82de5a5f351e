"""The repository's buildspec.yml, parsed: its structure tests and the build emulator read it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def read_buildspec() -> dict[str, Any]:
    """The repository's buildspec.yml as a dictionary."""
    return yaml.safe_load((REPO / "buildspec.yml").read_text())


@pytest.fixture
def buildspec() -> dict[str, Any]:
    return read_buildspec()
