"""Progress and history of an execution in a notebook, read through `workflow.history`.

- :func:`follow`: print state changes of an execution while it runs (any endpoint).
- :func:`state_rows`, :func:`history_rows`, :func:`run_summary`: the progress, history and
  outcome tables of a finished execution, from its events (:func:`state_visits` gives the visits).
- :func:`require_success`: one sentence naming the failing state, error and cause.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from workflow.history import (
    STATUS_ORDER,
    StateVisit,
    event_details,
    failing_state,
    progress_line,
    shorten,
    state_name,
    state_visits,
    timestamp_seconds,
)
from workflow.notebook.session import NotebookError
from workflow.notebook.tables import Table


def follow(
    execution: Any,
    poll_seconds: float = 5.0,
    stream: TextIO | None = None,
    timeout: float | None = None,
) -> str:
    """Print the states an execution enters and leaves until it ends; return its status.

    Works with any Step Functions endpoint (it polls ``describe()`` and ``list_events()``).

    Raises:
        NotebookError: When ``timeout`` seconds pass first.
    """
    out = stream or sys.stdout
    seen = 0
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        status = str(execution.describe()["status"])
        events = list(execution.list_events(max_items=100000))
        for event in events[seen:]:
            # The execution's own start and end: the status line below says it.
            line = (
                None if str(event.get("type", "")).startswith("Execution") else progress_line(event)
            )
            if line:
                print(line, file=out, flush=True)
        seen = len(events)
        if status != "RUNNING":
            print(f"execution {status}", file=out, flush=True)
            return status
        if deadline is not None and time.monotonic() > deadline:
            raise NotebookError(
                f"the execution {execution.execution_arn} still runs after {timeout:.0f} s; "
                "follow it in the console or raise the timeout."
            )
        time.sleep(poll_seconds)


def state_rows(events: Sequence[Mapping[str, Any]]) -> Table:
    """Return the progress table: one row per state with visits, start, duration and status."""
    rows: dict[str, list[Any]] = {}
    for visit in state_visits(events):
        row = rows.get(visit.name)
        if row is None:
            rows[visit.name] = [visit.name, 1, visit.start, visit.seconds, visit.status]
            continue
        row[1] += 1
        if visit.seconds is not None:
            row[3] = (row[3] or 0.0) + visit.seconds
        row[4] = max(row[4], visit.status, key=STATUS_ORDER.index)
    for row in rows.values():
        row[3] = None if row[3] is None else round(row[3], 2)
    return Table(
        ["state", "visits", "started at (s)", "duration (s)", "status"],
        list(rows.values()),
        title="states of the execution",
    )


HISTORY_TAIL = 20


def history_rows(events: Sequence[Mapping[str, Any]], limit: int = 200) -> Table:
    """Return the execution history as a table (id, time, type, state, details).

    A history longer than ``limit`` keeps its first events and its last ``HISTORY_TAIL`` (where
    the outcome is), with one row saying how many were left out between them.
    """
    if not events:
        return Table(["id", "t (s)", "type", "state", "details"], [])
    origin = timestamp_seconds(events[0]["timestamp"])
    rows = []
    current = ""
    for event in events:
        kind = str(event.get("type", ""))
        name = state_name(event)
        if name:
            current = name
        details = event_details(event)
        text = ""
        if details.get("error") or details.get("cause"):
            text = f"{details.get('error', '')}: {str(details.get('cause', ''))[:160]}"
        elif details.get("resource"):
            text = f"{details.get('resourceType', '')}:{details['resource']}"
        rows.append(
            [
                event.get("id"),
                round(timestamp_seconds(event["timestamp"]) - origin, 2),
                kind,
                current,
                text,
            ]
        )
    if len(rows) > limit:
        tail = min(HISTORY_TAIL, limit // 2)
        left_out = len(rows) - limit
        rows = [*rows[: limit - tail], ["...", "", f"{left_out} events left out", "", ""],
                *rows[-tail:]]  # fmt: skip
    return Table(["id", "t (s)", "type", "state", "details"], rows, title="execution history")


def run_summary(status: str, output: Any) -> Table:
    """Return the outcome of an execution: status, model artifact, metrics, endpoint."""
    from workflow.local.report import find_key, metrics_of

    rows: list[list[Any]] = [["status", status]]
    rows.append(["model artifact", find_key(output, "S3ModelArtifacts")])
    for key, value in sorted(metrics_of(output).items()):
        rows.append([f"metric {key}", value])
    rows.append(["endpoint", find_key(output, "EndpointName")])
    return Table(["", "value"], rows, title="run summary")


def require_success(status: str, events: Sequence[Mapping[str, Any]]) -> None:
    """Raise when an execution did not succeed, naming the state, error and cause.

    Raises:
        NotebookError: When ``status`` is not ``SUCCEEDED``.
    """
    if status == "SUCCEEDED":
        return
    state, error, cause = failing_state(events)
    raise NotebookError(
        f"the execution ended {status} in state {state or '-'} with {error or 'no error'}: "
        f"{shorten(cause, 400)}; fix the cause (see the history above) and run the cell again."
    )


__all__ = [
    "StateVisit",
    "follow",
    "history_rows",
    "require_success",
    "run_summary",
    "state_rows",
    "state_visits",
]
