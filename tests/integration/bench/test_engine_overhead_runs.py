"""The engine overhead benchmark, run in smoke mode."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bench import engine_overhead
from bench.common import BenchSettings, execute

pytestmark = pytest.mark.integration


def test_smoke_run_writes_a_well_formed_result(
    smoke_settings: Callable[..., BenchSettings],
    check_result_file: Callable[..., dict[str, Any]],
) -> None:
    settings = smoke_settings()
    execute(engine_overhead.NAME, engine_overhead.TITLE, engine_overhead.run, settings)
    document = check_result_file(settings.out_dir / "engine_overhead.json", "engine_overhead")
    assert [f["unit"] for f in document["figures"]] == ["ms/state", "ms/item"]
    assert document["details"]["chain"]["events"] > 20
    assert document["settings"]["sizes"] == {"chain": 20, "map": 10}
