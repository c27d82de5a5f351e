"""Benchmark helpers that run programs: git for the versions, timed commands, a whole result."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.common import (
    BenchError,
    BenchSettings,
    Figure,
    Measurement,
    execute,
    time_command,
    versions,
)

pytestmark = pytest.mark.integration


def test_versions_name_the_packages_and_the_commit(repo_root: Path) -> None:
    found = versions(repo_root)
    assert found["torch"] and found["moto"] == "5.2.5"
    assert found["commit"] is None or len(found["commit"]) == 40


def test_time_command_reports_a_failing_command(tmp_path: Path) -> None:
    elapsed, result = time_command(["true"], cwd=tmp_path)
    assert elapsed > 0 and result.returncode == 0
    with pytest.raises(BenchError, match="exited with code 3"):
        time_command(["sh", "-c", "echo boom >&2; exit 3"], cwd=tmp_path)


def test_execute_writes_a_result_and_records_failures(tmp_path: Path) -> None:
    settings = BenchSettings(smoke=True, out_dir=tmp_path, profile=False)

    def ok(s: BenchSettings) -> Measurement:
        return Measurement(
            figures=[Figure(figure="x", target="< 1 s", result=0.5, unit="s", verdict="met")],
            settings={"runs": 1},
            details={"raw": [0.5]},
        )

    def broken(s: BenchSettings) -> Measurement:
        raise BenchError("the server did not start; look at its log")

    document = execute("demo", "Demo", ok, settings)
    written = json.loads((tmp_path / "demo.json").read_text())
    assert written == json.loads(json.dumps(document, default=str))
    assert written["figures"][0]["result"] == 0.5 and written["error"] is None
    assert written["settings"] == {"runs": 1} and written["duration_s"] >= 0

    failed = execute("demo", "Demo", broken, settings)
    assert failed["error"] == "the server did not start; look at its log"
    assert failed["figures"][0]["verdict"] == "failed"
    assert json.loads((tmp_path / "demo.json").read_text())["error"] == failed["error"]
