"""`python -m bench`, run in smoke mode."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.__main__ import main

pytestmark = pytest.mark.integration


def test_smoke_run_prints_json_lines_and_writes_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            ["--smoke", "--no-profile", "--threads", "1", "--out", str(tmp_path), "engine_overhead"]
        )
        == 0
    )
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["benchmark"] == "engine_overhead" and line["error"] is None
    assert (tmp_path / "engine_overhead.json").is_file()
    table = (tmp_path / "README.md").read_text()
    assert "| engine_overhead (smoke) |" in table
