from __future__ import annotations

from bench import startup

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
