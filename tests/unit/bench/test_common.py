from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bench.common import (
    BenchError,
    BenchSettings,
    Figure,
    Measurement,
    at_least,
    at_most,
    clean_env,
    execute,
    median,
    percentile,
    summary,
    time_command,
    versions,
)


def test_percentile_interpolates_like_numpy() -> None:
    values = [4.0, 1.0, 3.0, 2.0]
    assert median(values) == 2.5
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 4.0
    assert percentile(values, 95) == pytest.approx(3.85)
    assert percentile([7.0], 95) == 7.0


def test_percentile_rejects_empty_and_out_of_range() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)
    with pytest.raises(ValueError, match=r"outside 0\.\.100"):
        percentile([1.0], 101)


def test_summary_and_verdicts() -> None:
    stats = summary([3.0, 1.0, 2.0])
    assert stats["median"] == 2.0 and stats["min"] == 1.0 and stats["max"] == 3.0
    assert stats["n"] == 3 and stats["values"] == [3.0, 1.0, 2.0]
    assert at_most(0.9, 1.0) == "met" and at_most(1.1, 1.0) == "missed"
    assert at_least(1.0, 1.0) == "met" and at_least(0.99, 1.0) == "missed"


def test_settings_count_prefers_repeats() -> None:
    assert BenchSettings().count(7) == 7
    assert BenchSettings(smoke=True).count(7, smoke=2) == 2
    assert BenchSettings(smoke=True, repeats=3).count(7) == 3


def test_clean_env_drops_the_variables_that_change_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLOPS_S3__BUCKET", "other")
    monkeypatch.setenv("MODEL_SERVER_WORKERS", "8")
    env = clean_env({"EXTRA": "1"})
    assert "MLOPS_S3__BUCKET" not in env and "MODEL_SERVER_WORKERS" not in env
    assert env["EXTRA"] == "1" and env["PATH"] == os.environ["PATH"]


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
