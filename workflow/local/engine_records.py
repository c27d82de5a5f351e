"""Execution records: boto-shaped history events, and where a redrive restarts.

Nothing here imports moto.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from workflow.local.engine_types import REDRIVABLE
from workflow.local.errors import RedriveError

# --------------------------------------------------------------------------------------------
# History normalisation
# --------------------------------------------------------------------------------------------


def _parse_timestamp(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    return value


def copy_json(value: Any) -> Any:
    # Much cheaper than copy.deepcopy for the dict/list/str trees of history events.
    if isinstance(value, dict):
        return {key: copy_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [copy_json(item) for item in value]
    return value


def normalise_event(event: Mapping[str, Any], id_offset: int = 0) -> dict[str, Any]:
    """Return a history event shaped like boto3's `get_execution_history` returns it.

    Args:
        event: An event of moto's event manager (or of a JSON record).
        id_offset: Added to `id` and to a non-zero `previousEventId` (redriven histories).

    Returns:
        A deep copy with `type` a plain str and `timestamp` a timezone-aware datetime.
    """
    out: dict[str, Any] = copy_json(dict(event))
    kind = out.get("type")
    out["type"] = str(getattr(kind, "value", kind))
    out["timestamp"] = _parse_timestamp(out.get("timestamp"))
    if id_offset:
        out["id"] = int(out["id"]) + id_offset
        if out.get("previousEventId"):
            out["previousEventId"] = int(out["previousEventId"]) + id_offset
    return out


def history_to_json(events: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Return history events with ISO-8601 timestamps, ready for `json.dumps`."""
    out = []
    for event in events:
        item = dict(event)
        stamp = item.get("timestamp")
        if isinstance(stamp, dt.datetime):
            item["timestamp"] = stamp.isoformat()
        out.append(item)
    return out


def state_event_name(event: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """Return (name, "entered"|"exited") for state events, else (None, None)."""
    if "stateEnteredEventDetails" in event:
        return event["stateEnteredEventDetails"].get("name"), "entered"
    if "stateExitedEventDetails" in event:
        return event["stateExitedEventDetails"].get("name"), "exited"
    return None, None


# --------------------------------------------------------------------------------------------
# Redrive records
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExecutionRecord:
    """What a redrive needs from a finished execution; JSON-serialisable via `to_dict()`.

    Attributes:
        name: The execution name (the redrive keeps it, and the ARN).
        arn: The execution ARN.
        state_machine_name: The state machine name.
        definition: The ASL document (JSON text) the execution ran.
        input: The execution input.
        start_time: `$$.Execution.StartTime` of the first attempt (AWS format).
        status: FAILED, TIMED_OUT or ABORTED (others cannot be redriven).
        history: The boto-shaped history events (timestamps may be ISO strings).
        redrive_count: How many redrives produced this record.
    """

    name: str
    arn: str
    state_machine_name: str
    definition: str
    input: Any
    start_time: str
    status: str
    history: list[dict[str, Any]]
    redrive_count: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict (timestamps as ISO strings)."""
        return {
            "name": self.name,
            "arn": self.arn,
            "state_machine_name": self.state_machine_name,
            "definition": self.definition,
            "input": self.input,
            "start_time": self.start_time,
            "status": self.status,
            "history": history_to_json(self.history),
            "redrive_count": self.redrive_count,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExecutionRecord:
        """Rebuild a record saved with `to_dict()`.

        Raises:
            RedriveError: A key is missing.
        """
        try:
            return cls(
                name=str(data["name"]),
                arn=str(data["arn"]),
                state_machine_name=str(data["state_machine_name"]),
                definition=str(data["definition"]),
                input=data["input"],
                start_time=str(data["start_time"]),
                status=str(data["status"]),
                history=[normalise_event(e) for e in data["history"]],
                redrive_count=int(data.get("redrive_count", 0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RedriveError(
                f"the execution record lacks or mangles {exc}; save it with "
                "LocalExecution.to_record().to_dict() and pass it back unchanged"
            ) from exc


@dataclass
class RedrivePlan:
    start_at: str
    state_input: Any
    replays: dict[tuple[str, str, str], deque[Any]]
    prefix: list[dict[str, Any]]
    redrive_count: int


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _loads(text: Any) -> Any:
    if isinstance(text, str):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def plan_redrive(record: ExecutionRecord) -> RedrivePlan:
    """Work out where a redrive restarts and which task results it replays.

    The restart point is the last top-level state entered without being exited (AWS's
    "unsuccessful step"); its recorded input becomes the state's input again. Inside that state
    (a Map or Parallel), Task invocations that succeeded in the record are replayed, keyed by
    state name and parameters, so only the failed iterations and branches call handlers again.

    Raises:
        RedriveError: The record is not FAILED, TIMED_OUT or ABORTED.
    """
    if record.status not in REDRIVABLE:
        raise RedriveError(
            f"execution {record.name!r} is {record.status}; only FAILED, TIMED_OUT or ABORTED "
            "executions can be redriven (start a new execution instead)"
        )
    definition = json.loads(record.definition)
    top_level = set((definition.get("States") or {}).keys())
    events = record.history
    open_state: tuple[str, int, Any] | None = None
    for event in events:
        name, kind = state_event_name(event)
        if name not in top_level:
            continue
        if kind == "entered":
            details = event["stateEnteredEventDetails"]
            open_state = (str(name), int(event["id"]), _loads(details.get("input")))
        elif kind == "exited" and open_state is not None and open_state[0] == name:
            open_state = None
    if open_state is None:
        start_at, first_id, state_input = str(definition["StartAt"]), 0, record.input
    else:
        start_at, first_id, state_input = open_state
    replays = _collect_replays(events, first_id, exclude=start_at)
    return RedrivePlan(
        start_at=start_at,
        state_input=state_input,
        replays=replays,
        prefix=[normalise_event(e) for e in events],
        redrive_count=record.redrive_count + 1,
    )


def _collect_replays(
    events: list[dict[str, Any]], first_id: int, exclude: str
) -> dict[tuple[str, str, str], deque[Any]]:
    by_id = {int(e["id"]): e for e in events}
    replays: dict[tuple[str, str, str], deque[Any]] = {}
    for event in events:
        if int(event["id"]) <= first_id:
            continue
        kind_key = {"TaskSucceeded": "task", "LambdaFunctionSucceeded": "lambda"}.get(event["type"])
        if kind_key is None:
            continue
        details = event.get(
            "taskSucceededEventDetails"
            if kind_key == "task"
            else "lambdaFunctionSucceededEventDetails",
            {},
        )
        parameters: Any = None
        state_name: str | None = None
        previous = by_id.get(int(event.get("previousEventId") or 0))
        while previous is not None and state_name is None:
            if parameters is None and previous["type"] == "TaskScheduled":
                parameters = _loads(previous["taskScheduledEventDetails"].get("parameters"))
            elif parameters is None and previous["type"] == "LambdaFunctionScheduled":
                scheduled = previous["lambdaFunctionScheduledEventDetails"]
                parameters = {
                    "FunctionName": scheduled.get("resource"),
                    "Payload": _loads(scheduled.get("input")),
                }
            name, kind = state_event_name(previous)
            if kind == "entered":
                state_name = name
            previous = by_id.get(int(previous.get("previousEventId") or 0))
        if state_name is None or parameters is None or state_name == exclude:
            continue
        key = (state_name, kind_key, canonical(parameters))
        replays.setdefault(key, deque()).append(_loads(details.get("output")))
    return replays
