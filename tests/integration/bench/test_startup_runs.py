"""The startup benchmark, run in smoke mode."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bench import startup
from bench.common import BenchSettings, execute

pytestmark = pytest.mark.integration


@pytest.mark.slow
def test_smoke_run_writes_a_well_formed_result(
    smoke_settings: Callable[..., BenchSettings],
    check_result_file: Callable[..., dict[str, Any]],
) -> None:
    settings = smoke_settings()
    execute(startup.NAME, startup.TITLE, startup.run, settings)
    document = check_result_file(settings.out_dir / "startup.json", "startup")
    help_figure = document["figures"][0]
    assert help_figure["target"] == "< 1 s" and help_figure["unit"] == "s"
    imports = document["details"]["imports"]
    assert "torch" not in imports["help"]["heavy_imports_ms"]
    assert "stepfunctions" in imports["render"]["heavy_imports_ms"]
