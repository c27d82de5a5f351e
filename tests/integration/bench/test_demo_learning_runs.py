"""The demo learning benchmark, run in smoke mode."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bench import demo_learning
from bench.common import BenchSettings, execute

pytestmark = pytest.mark.integration

LOG = """\
2026-12-03 01:21:10,772 INFO validation: bbox_mAP=0.0276 segm_mAP=0.0192 bbox_AP50=0.0530 \
segm_AP50=0.0452 epoch=1 train_seconds=67.9
2026-12-03 01:23:02,522 INFO validation: bbox_mAP=0.1177 segm_mAP=0.1099 bbox_AP50=0.0825 \
segm_AP50=0.0508 epoch=2 train_seconds=135.1
"""


# Here, not in tests/unit: on a cold font cache matplotlib runs fc-list.
def test_draw_writes_a_png(tmp_path: Path) -> None:
    curve = demo_learning.learning_curve(LOG)
    path = tmp_path / "curve.png"
    demo_learning.draw(path, {"demo": [curve], "previous": [curve[:1]]}, shipped=0.0)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


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
