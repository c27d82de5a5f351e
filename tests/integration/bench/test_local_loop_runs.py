"""The local loop benchmark, run in smoke mode."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from bench import local_loop
from bench.common import BenchSettings, execute

pytestmark = pytest.mark.integration


@pytest.mark.slow
def test_smoke_run_writes_a_well_formed_result(
    smoke_settings: Callable[..., BenchSettings],
    check_result_file: Callable[..., dict[str, Any]],
) -> None:
    settings = smoke_settings()
    execute(local_loop.NAME, local_loop.TITLE, local_loop.run, settings)
    document = check_result_file(settings.out_dir / "local_loop.json", "local_loop")
    wall = document["figures"][0]
    assert wall["target"] == "< 150 s" and wall["unit"] == "s"
    states = document["details"]["states_s"]
    assert {"Train", "BatchTransform", "ComputeMetrics"} <= set(states)
    assert len(document["details"]["references"]) == len(local_loop.REFERENCES)
    assert document["details"]["prediction_detections"] != [None]
    (training,) = document["details"]["training"]
    assert 1 <= training["steps"] <= 2 and re.fullmatch("sha256:[0-9a-f]{12}", training["weights"])
    assert document["details"]["findings"][-1].startswith("training: ")
