from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bench import local_loop
from bench.common import BenchSettings, execute


def _event(kind: str, name: str, stamp: str) -> dict[str, Any]:
    key = "stateEnteredEventDetails" if kind.endswith("Entered") else "stateExitedEventDetails"
    return {"type": kind, key: {"name": name}, "timestamp": f"2026-11-21T20:00:{stamp}+00:00"}


def test_state_times_sum_re_entries() -> None:
    history = [
        {"type": "ExecutionStarted", "timestamp": "2026-11-21T20:00:00+00:00"},
        _event("TaskStateEntered", "Train", "00.500"),
        _event("TaskStateExited", "Train", "10.500"),
        _event("WaitStateEntered", "Poll", "11.000"),
        _event("WaitStateExited", "Poll", "12.000"),
        _event("WaitStateEntered", "Poll", "13.000"),
        _event("WaitStateExited", "Poll", "14.500"),
        {"type": "ExecutionSucceeded", "timestamp": "2026-11-21T20:00:15+00:00"},
    ]
    assert local_loop.state_times(history) == {
        "Train": {"seconds": 10.0, "entries": 1},
        "Poll": {"seconds": 2.5, "entries": 2},
    }
    assert local_loop.execution_seconds(history) == 15.0


def test_command_uses_the_cli_or_registers_run(tmp_path: Path) -> None:
    argv = local_loop.command(Path("."), tmp_path, ["gate.threshold=0"], registered=True)
    assert argv[1:5] == ["-m", "workflow", "run", "--local"]
    assert argv[-4:] == ["--set", f"local.root={tmp_path}", "--set", "gate.threshold=0"]
    shim = local_loop.command(Path("."), tmp_path, [], registered=False)
    assert (
        shim[1] == "-c" and "workflow.commands.run" in shim[2] and shim[3:5] == ["run", "--local"]
    )


def test_references_name_their_sources() -> None:
    for reference in local_loop.REFERENCES:
        assert reference["source"].startswith("https://github.com/")
        assert reference["seconds"] >= 120


@pytest.mark.slow
def test_smoke_run_writes_a_well_formed_result(
    smoke_settings: Callable[..., BenchSettings],
    check_result_file: Callable[..., dict[str, Any]],
) -> None:
    settings = smoke_settings()
    execute(local_loop.NAME, local_loop.TITLE, local_loop.run, settings)
    document = check_result_file(settings.out_dir / "local_loop.json", "local_loop")
    wall = document["figures"][0]
    assert wall["target"] == "< 150 s" and wall["unit"] == "s"
    states = document["details"]["states_s"]
    assert {"Train", "BatchTransform", "ComputeMetrics"} <= set(states)
    assert len(document["details"]["references"]) == len(local_loop.REFERENCES)
    assert document["details"]["prediction_detections"] != [None]
