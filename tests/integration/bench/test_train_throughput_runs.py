"""The training throughput benchmark, run in smoke mode."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bench import train_throughput
from bench.common import BenchSettings, execute

pytestmark = pytest.mark.integration


@pytest.mark.slow
def test_smoke_run_writes_a_well_formed_result(
    smoke_settings: Callable[..., BenchSettings],
    check_result_file: Callable[..., dict[str, Any]],
) -> None:
    settings = smoke_settings()
    execute(train_throughput.NAME, train_throughput.TITLE, train_throughput.run, settings)
    document = check_result_file(settings.out_dir / "train_throughput.json", "train_throughput")
    main, amp = document["figures"]
    assert main["unit"] == "images/s" and main["ratio"] > 0
    assert amp["verdict"] == "not measured" and "no GPU lent" in amp["note"]
    fp32 = document["details"]["fp32"]
    assert fp32["images_per_s"]["container"]["n"] == 1
    assert fp32["images_per_s"]["baseline"]["n"] == 1
    assert set(fp32["ratio_by_order"]) == {"container_first"}
    assert fp32["ratio_by_order"]["container_first"] == pytest.approx(
        fp32["ratio"]["values"][0], abs=1e-3
    )
    assert document["settings"]["threads"] == 1
    assert document["settings"]["model"]["backbone"] == "resnet18_fpn"
