from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import local_loop


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


def test_picture_figure_counts_the_runs_that_label_every_shape_right() -> None:
    right = {"shapes": 4, "right": 4, "wrong": 0, "missed": 0}
    one_wrong = {"shapes": 4, "right": 3, "wrong": 1, "missed": 0}
    figure = local_loop.picture_figure([right, one_wrong, None])
    assert (figure.result, figure.target, figure.verdict) == (1, "3 of 3", "missed")
    assert figure.note.endswith(": 4/4, 3/4, -/-")
    assert local_loop.picture_figure([right, right]).verdict == "met"
