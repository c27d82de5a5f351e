"""Step Functions execution histories: the one reading of their events, shared by every viewer.

The AWS follower (`workflow.aws.wait_for_execution`), the local runs' live progress
(`workflow.local.report.Progress`), the notebooks (`workflow.notebook.progress`) and the benchmarks
read histories through these functions, so a state, a failure and a duration mean the same
everywhere and print as the same line:

    execution <name> started
      > Train
      ! TaskFailed: States.TaskFailed: bad data
      < Train (12.3 s)
    execution <name>: FAILED after 14.0 s

Events are the dicts of ``GetExecutionHistory``
(https://docs.aws.amazon.com/step-functions/latest/apireference/API_HistoryEvent.html): a
``type``, a ``timestamp`` and one ``<kind>EventDetails`` member.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# The history event types that report a failure (of a task, a Lambda or the execution).
FAILURE_EVENTS = frozenset(
    {
        "TaskFailed",
        "TaskTimedOut",
        "TaskSubmitFailed",
        "TaskStartFailed",
        "LambdaFunctionFailed",
        "LambdaFunctionTimedOut",
        "LambdaFunctionStartFailed",
        "ExecutionFailed",
        "ExecutionTimedOut",
        "ExecutionAborted",
    }
)
# Statuses of a state visit, least to most notable.
STATUS_ORDER = ("succeeded", "retried", "caught", "running", "failed")


def state_name(event: Mapping[str, Any]) -> str | None:
    """Return the state a ``...StateEntered`` or ``...StateExited`` event names, else None."""
    for key in ("stateEnteredEventDetails", "stateExitedEventDetails"):
        details = event.get(key)
        if isinstance(details, Mapping) and details.get("name"):
            return str(details["name"])
    return None


def event_details(event: Mapping[str, Any]) -> Mapping[str, Any]:
    """Return the ``<kind>EventDetails`` member of an event (empty when it has none)."""
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, Mapping):
            return value
    return {}


def failure_details(event: Mapping[str, Any]) -> tuple[str, str]:
    """Return ``(error, cause)`` of a failure event."""
    details = event_details(event)
    return str(details.get("error", "")), str(details.get("cause", ""))


def shorten(text: str, limit: int = 300) -> str:
    """Return the text on one line, cut to ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def timestamp_seconds(value: Any) -> float:
    """Return an event timestamp (datetime, epoch seconds or ISO 8601 text) as epoch seconds."""
    if isinstance(value, dt.datetime):
        return value.timestamp()
    if isinstance(value, (int, float)):
        return float(value)
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def progress_line(
    event: Mapping[str, Any],
    *,
    execution_name: str = "",
    duration: float | None = None,
    state: str | None = None,
) -> str | None:
    """Return the progress line of an event worth showing, else None.

    Args:
        event: A history event.
        execution_name: Named in the execution's start and end lines.
        duration: Seconds the state (``...StateExited``) or the execution (its end) took.
        state: The state the event belongs to, when the caller knows it (default: the event's).
    """
    kind = str(event.get("type", ""))
    name = state or state_name(event)
    if kind.endswith("StateEntered") and name:
        return f"  > {name}"
    if kind.endswith("StateExited") and name:
        took = f" ({duration:.1f} s)" if duration is not None else ""
        return f"  < {name}{took}"
    if kind in FAILURE_EVENTS and not kind.startswith("Execution"):
        error, cause = failure_details(event)
        return f"  ! {kind}: {error}: {shorten(cause)}"
    if kind == "ExecutionStarted":
        return f"execution {execution_name} started"
    if kind == "ExecutionRedriven":
        return f"execution {execution_name} redriven"
    if kind.startswith("Execution"):
        took = f" after {duration:.1f} s" if duration is not None else ""
        return f"execution {execution_name}: {kind[len('Execution') :].upper()}{took}"
    return None


def failing_state(history: Iterable[Mapping[str, Any]]) -> tuple[str | None, str, str]:
    """Return ``(state, error, cause)`` of the first task failure, else of the execution's end."""
    current: str | None = None
    first: tuple[str | None, str, str] | None = None
    last: tuple[str | None, str, str] = (None, "", "")
    for event in history:
        kind = str(event.get("type", ""))
        if kind.endswith("StateEntered"):
            current = state_name(event)
        if kind in FAILURE_EVENTS:
            error, cause = failure_details(event)
            if not kind.startswith("Execution") and first is None:
                first = (current, error, cause)
            last = (current, error, cause)
    return first or last


@dataclass(frozen=True)
class StateVisit:
    """One visit of a state: its start (seconds after the execution started) and duration."""

    name: str
    start: float
    seconds: float | None
    status: str


def state_visits(events: Sequence[Mapping[str, Any]]) -> list[StateVisit]:
    """Return every state visit of an execution history, in the order they started.

    ``status`` of a visit: ``succeeded``; ``retried`` (a task error, then a retry succeeded);
    ``caught`` (a task error routed on by a ``Catch``, e.g. "endpoint missing -> create it");
    ``failed`` (a task error and the state was not left); ``running`` (not left yet).
    """
    if not events:
        return []
    origin = timestamp_seconds(events[0]["timestamp"])
    visits: list[dict[str, Any]] = []
    open_visits: dict[str, dict[str, Any]] = {}
    for event in events:
        kind = str(event.get("type", ""))
        name = state_name(event)
        at = timestamp_seconds(event["timestamp"]) - origin
        current = list(open_visits.values())[-1] if open_visits else None
        if kind.endswith("StateEntered") and name:
            visit = {"name": name, "start": at, "end": None, "failed": False, "recovered": False}
            visits.append(visit)
            open_visits[name] = visit
        elif kind.endswith("StateExited") and name and name in open_visits:
            open_visits.pop(name)["end"] = at
        elif kind in FAILURE_EVENTS and not kind.startswith("Execution") and current:
            current["failed"], current["recovered"] = True, False
        elif kind.endswith("Succeeded") and current and current["failed"]:
            current["recovered"] = True
    return [
        StateVisit(
            name=v["name"],
            start=round(v["start"], 3),
            seconds=None if v["end"] is None else round(v["end"] - v["start"], 3),
            status=_visit_status(v),
        )
        for v in visits
    ]


def _visit_status(visit: Mapping[str, Any]) -> str:
    if visit["end"] is None:
        return "failed" if visit["failed"] else "running"
    if visit["failed"]:
        return "retried" if visit["recovered"] else "caught"
    return "succeeded"


__all__ = [
    "FAILURE_EVENTS",
    "STATUS_ORDER",
    "StateVisit",
    "event_details",
    "failing_state",
    "failure_details",
    "progress_line",
    "shorten",
    "state_name",
    "state_visits",
    "timestamp_seconds",
]
