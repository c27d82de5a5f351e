from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bench import engine_overhead
from bench.common import BenchSettings, execute


def test_definitions_have_the_requested_size() -> None:
    chain = engine_overhead.chain_definition(5)
    assert list(chain["States"]) == ["S0", "S1", "S2", "S3", "S4"]
    assert chain["States"]["S4"] == {"Type": "Pass", "End": True}
    definition, payload, size = engine_overhead.workload("map", 7)
    assert payload == {"items": list(range(7))} and size == 7
    assert definition["States"]["Map"]["Type"] == "Map"
    with pytest.raises(ValueError, match="unknown workload"):
        engine_overhead.workload("parallel", 3)


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
