from __future__ import annotations

import pytest

from bench import engine_overhead


def test_definitions_have_the_requested_size() -> None:
    chain = engine_overhead.chain_definition(5)
    assert list(chain["States"]) == ["S0", "S1", "S2", "S3", "S4"]
    assert chain["States"]["S4"] == {"Type": "Pass", "End": True}
    definition, payload, size = engine_overhead.workload("map", 7)
    assert payload == {"items": list(range(7))} and size == 7
    assert definition["States"]["Map"]["Type"] == "Map"
    with pytest.raises(ValueError, match="unknown workload"):
        engine_overhead.workload("parallel", 3)
