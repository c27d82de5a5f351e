"""Fixtures for the benchmark runs: `bench` importable, smoke settings writing into tmp_path."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
if str(REPO_ROOT) not in sys.path:  # `bench/` is a folder of the checkout, not an installed package
    sys.path.insert(0, str(REPO_ROOT))

from helpers.echo_server import echo_server  # noqa: E402, F401

from bench.common import BenchSettings  # noqa: E402

RESULT_KEYS = {
    "benchmark",
    "title",
    "created",
    "smoke",
    "machine",
    "versions",
    "load_average",
    "error",
    "settings",
    "figures",
    "details",
    "duration_s",
}
FIGURE_KEYS = {"figure", "target", "result", "unit", "ratio", "verdict", "note"}


@pytest.fixture
def smoke_settings(tmp_path: Path) -> Callable[..., BenchSettings]:
    """Factory: smoke settings writing into `tmp_path/results` (overrides as keywords)."""

    def make(**overrides: Any) -> BenchSettings:
        values: dict[str, Any] = {
            "smoke": True,
            "threads": 1,
            "out_dir": tmp_path / "results",
            "repo_root": REPO_ROOT,
            "profile": False,
        }
        values.update(overrides)
        return BenchSettings(**values)

    return make


def _check_result_file(path: Path, name: str) -> dict[str, Any]:
    """Assert that `path` is a well-formed result document of benchmark `name`; return it."""
    document = json.loads(path.read_text(encoding="utf-8"))
    assert set(document) >= RESULT_KEYS, RESULT_KEYS - set(document)
    assert document["benchmark"] == name
    assert document["error"] is None, document["error"]
    assert document["smoke"] is True
    machine = document["machine"]
    assert machine["cpu_model"] and machine["usable_cores"] >= 1
    assert {"python", "torch", "torchvision", "moto", "commit"} <= set(document["versions"])
    assert len(document["load_average"]["before"]) == 3
    assert len(document["load_average"]["after"]) == 3
    assert document["figures"]
    for figure in document["figures"]:
        assert set(figure) == FIGURE_KEYS
        assert figure["verdict"] in {"met", "missed", "info", "not measured"}
        if figure["verdict"] in {"met", "missed"}:
            assert isinstance(figure["result"], (int, float)) and figure["result"] > 0
            assert figure["target"]
    return document


@pytest.fixture
def check_result_file() -> Callable[[Path, str], dict[str, Any]]:
    """`check_result_file(path, name)`: assert a well-formed result document and return it."""
    return _check_result_file
