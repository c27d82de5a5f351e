"""One reading of execution histories: progress lines, the failing state, state visits.

Event shapes: https://docs.aws.amazon.com/step-functions/latest/apireference/API_HistoryEvent.html
"""

from __future__ import annotations

import datetime as dt

from workflow.history import (
    failing_state,
    progress_line,
    shorten,
    state_visits,
    timestamp_seconds,
)

T0 = dt.datetime(2026, 11, 21, 19, 30, 0, tzinfo=dt.timezone.utc)


def _event(i: int, kind: str, seconds: float = 0.0, **details) -> dict:
    return {"id": i, "timestamp": T0 + dt.timedelta(seconds=seconds), "type": kind, **details}


def _entered(i: int, name: str, seconds: float) -> dict:
    return _event(i, "TaskStateEntered", seconds, stateEnteredEventDetails={"name": name})


def _exited(i: int, name: str, seconds: float) -> dict:
    return _event(i, "TaskStateExited", seconds, stateExitedEventDetails={"name": name})


def _failed(i: int, seconds: float, error: str, cause: str = "") -> dict:
    details = {"error": error, "cause": cause}
    return _event(i, "TaskFailed", seconds, taskFailedEventDetails=details)


def test_progress_lines() -> None:
    assert progress_line(_event(1, "ExecutionStarted"), execution_name="run") == (
        "execution run started"
    )
    assert progress_line(_entered(2, "Train", 0)) == "  > Train"
    assert progress_line(_exited(3, "Train", 1), duration=1.25) == "  < Train (1.2 s)"
    assert progress_line(_exited(3, "Train", 1)) == "  < Train"
    assert progress_line(_failed(4, 1, "States.TaskFailed", "bad\n data")) == (
        "  ! TaskFailed: States.TaskFailed: bad data"
    )
    ended = _event(5, "ExecutionFailed", executionFailedEventDetails={"error": "Rejected"})
    assert progress_line(ended, execution_name="run", duration=3) == (
        "execution run: FAILED after 3.0 s"
    )
    assert progress_line(_event(6, "TaskScheduled", taskScheduledEventDetails={})) is None


def test_failing_state_prefers_the_first_task_failure() -> None:
    history = [
        _entered(1, "Train", 0),
        _failed(2, 1, "SageMaker.ResourceLimitExceeded", "quota"),
        _event(3, "ExecutionFailed", 2, executionFailedEventDetails={"error": "E", "cause": "c"}),
    ]
    assert failing_state(history) == ("Train", "SageMaker.ResourceLimitExceeded", "quota")
    assert failing_state(history[:1] + history[2:]) == ("Train", "E", "c")


def test_state_visits_time_retries_and_catches() -> None:
    history = [
        _event(1, "ExecutionStarted", 0),
        _entered(2, "Train", 1),
        _failed(3, 2, "ThrottlingException"),
        _event(4, "TaskSucceeded", 4, taskSucceededEventDetails={}),
        _exited(5, "Train", 5),
        _entered(6, "FindEndpoint", 5),
        _failed(7, 6, "SageMaker.SageMakerException"),
        _exited(8, "FindEndpoint", 6),
        _entered(9, "CreateEndpoint", 6.5),
    ]
    visits = [(v.name, v.start, v.seconds, v.status) for v in state_visits(history)]
    assert visits == [
        ("Train", 1.0, 4.0, "retried"),
        ("FindEndpoint", 5.0, 1.0, "caught"),
        ("CreateEndpoint", 6.5, None, "running"),
    ]


def test_timestamps_and_shorten() -> None:
    assert timestamp_seconds(T0) == timestamp_seconds("2026-11-21T19:30:00Z") == T0.timestamp()
    assert timestamp_seconds(12.5) == 12.5
    assert shorten("a " * 200, 10) == "a a a a..."
