"""The demo learning benchmark, run in smoke mode."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bench import demo_learning
from bench.common import BenchSettings, execute

pytestmark = pytest.mark.integration


def test_smoke_run_writes_the_result_and_the_png(
    smoke_settings: Callable[..., BenchSettings],
    check_result_file: Callable[..., dict[str, Any]],
) -> None:
    settings = smoke_settings()
    execute(demo_learning.NAME, demo_learning.TITLE, demo_learning.run, settings)
    document = check_result_file(settings.out_dir / "demo_learning.json", "demo_learning")
    demo, previous, shipped = document["figures"]
    assert demo["target"].startswith(">= 0.35") and demo["unit"] == "mAP"
    assert previous["unit"] == shipped["unit"] == "mAP"
    assert document["details"]["shipped"]["metrics"]["steps"] == 2
    assert len(document["details"]["runs"]["demo"][0]["curve"]) == 1  # one epoch, one line
    png = settings.out_dir / "demo_learning.png"
    assert png.read_bytes()[:4] == b"\x89PNG"
