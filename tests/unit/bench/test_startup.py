from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bench import startup
from bench.common import BenchSettings, execute

IMPORTTIME = """\
import time: self [us] | cumulative | imported package
import time:       100 |        100 |   _io
import time:       500 |       2500 | site
import time:      1000 |       1000 |     sagemaker.utils
import time:      2000 |     900000 | sagemaker
import time:       300 |        300 |   yaml.reader
"""


def test_top_imports_ranks_top_level_imports() -> None:
    top = startup.top_imports(IMPORTTIME, count=2)
    assert top == [
        {"module": "sagemaker", "cumulative_ms": 900.0, "self_ms": 2.0},
        {"module": "site", "cumulative_ms": 2.5, "self_ms": 0.5},
    ]
    assert startup.heavy_modules(IMPORTTIME, ("sagemaker", "torch")) == {"sagemaker": 900.0}


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
