"""Execution records: boto-shaped history events, and where a redrive restarts.

Nothing here imports moto.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
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
    """Where a redrive restarts, and what of the restarted state already succeeded.

    `iterations` (index -> output) are the Map iterations and `branches` (branch `StartAt` ->
    output) the Parallel branches of `start_at` that succeeded in an earlier attempt: AWS
    "reschedules and redrives only the iterations and branches that failed or aborted"
    (https://docs.aws.amazon.com/step-functions/latest/apireference/API_RedriveExecution.html).
    `iteration_resumes`/`branch_resumes`: for the others, the state they did not finish and
    its input; they continue there, like the execution (same page).
    """

    start_at: str
    state_input: Any
    replays: dict[tuple[str, str, str], deque[Any]]
    prefix: list[dict[str, Any]]
    redrive_count: int
    iterations: dict[int, Any] = field(default_factory=dict)
    branches: dict[str, Any] = field(default_factory=dict)
    iteration_resumes: dict[int, tuple[str, Any]] = field(default_factory=dict)
    branch_resumes: dict[str, tuple[str, Any]] = field(default_factory=dict)


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
    """Work out where a redrive restarts, what of that state it keeps, and what it replays.

    The restart point is the last top-level state entered without being exited (AWS's
    "unsuccessful step"); its recorded input becomes the state's input again. If it is a Map
    or Parallel, its succeeded iterations and branches are kept and the others continue from
    their own unsuccessful state (see `RedrivePlan`); Task invocations that succeeded deeper
    inside are replayed, keyed by state name and parameters.

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
        first_id = _first_attempt(events, start_at, first_id)
    state = (definition.get("States") or {}).get(start_at) or {}
    return RedrivePlan(
        start_at=start_at,
        state_input=state_input,
        replays=_collect_replays(events, first_id, exclude=start_at),
        prefix=[normalise_event(e) for e in events],
        redrive_count=record.redrive_count + 1,
        iterations=_succeeded_iterations(events, first_id, start_at) if first_id else {},
        branches=_succeeded_branches(events, first_id, state) if first_id else {},
        iteration_resumes=_open_in_iterations(events, first_id, start_at, state),
        branch_resumes=_open_in_branches(events, first_id, state),
    )


def _open_in_iterations(
    events: list[dict[str, Any]], first_id: int, name: str, state: Mapping[str, Any]
) -> dict[int, tuple[str, Any]]:
    # The events of one iteration chain back (previousEventId) to its MapIterationStarted.
    processor = state.get("ItemProcessor") or state.get("Iterator") or {}
    names = set((processor.get("States") or {}).keys()) if state.get("Type") == "Map" else set()
    if not names or not first_id:
        return {}
    by_id = {int(e["id"]): e for e in events}
    index_of: dict[int, int | None] = {}

    def iteration(event_id: int) -> int | None:
        seen: list[int] = []
        current = by_id.get(event_id)
        found: int | None = None
        while current is not None:
            cid = int(current["id"])
            if cid in index_of:
                found = index_of[cid]
                break
            seen.append(cid)
            details = current.get("mapIterationStartedEventDetails") or {}
            if details.get("name") == name:
                found = int(details["index"])
                break
            previous = int(current.get("previousEventId") or 0)
            current = by_id.get(previous) if 0 < previous < cid else None
        for cid in seen:
            index_of[cid] = found
        return found

    later = [e for e in events if int(e["id"]) > first_id and state_event_name(e)[0] in names]
    return _open_states((e, iteration(int(e["id"]))) for e in later)


def _open_in_branches(
    events: list[dict[str, Any]], first_id: int, state: Mapping[str, Any]
) -> dict[str, tuple[str, Any]]:
    if state.get("Type") != "Parallel" or not first_id:
        return {}
    branch_of = {
        str(name): str(branch["StartAt"])
        for branch in state.get("Branches") or []
        for name in (branch.get("States") or {})
    }
    return _open_states(
        (e, branch_of.get(str(state_event_name(e)[0])))
        for e in events
        if int(e["id"]) > first_id and state_event_name(e)[0] in branch_of
    )


def _open_states(tagged: Iterable[tuple[dict[str, Any], Any]]) -> dict[Any, tuple[str, Any]]:
    """Per tag (iteration index or branch), the last state entered and not exited."""
    open_by: dict[Any, tuple[str, Any] | None] = {}
    for event, tag in tagged:
        if tag is None:
            continue
        name, kind = state_event_name(event)
        if kind == "entered":
            details = event["stateEnteredEventDetails"]
            open_by[tag] = (str(name), _loads(details.get("input")))
        elif kind == "exited" and (open_by.get(tag) or ("",))[0] == name:
            open_by[tag] = None
    return {tag: point for tag, point in open_by.items() if point is not None}


def _first_attempt(events: list[dict[str, Any]], name: str, entered_id: int) -> int:
    """Return the id where `name` was first entered, across the redrives that re-entered it.

    A redrive enters the restarted state right after its `ExecutionRedriven` event, so the
    iterations and branches that succeeded in any earlier attempt of it count too.
    """
    by_id = {int(e["id"]): e for e in events}
    first = entered_id
    while by_id.get(first - 1, {}).get("type") == "ExecutionRedriven":
        earlier = [
            int(e["id"])
            for e in events
            if int(e["id"]) < first - 1 and state_event_name(e) == (name, "entered")
        ]
        if not earlier:
            break
        first = earlier[-1]
    return first


def _succeeded_iterations(events: list[dict[str, Any]], first_id: int, name: str) -> dict[int, Any]:
    # A MapIterationSucceeded event follows the iteration's last StateExited, which holds
    # the iteration's output.
    by_id = {int(e["id"]): e for e in events}
    outputs: dict[int, Any] = {}
    for event in events:
        details = event.get("mapIterationSucceededEventDetails") or {}
        if int(event["id"]) <= first_id or details.get("name") != name:
            continue
        last = by_id.get(int(event.get("previousEventId") or 0)) or {}
        if "stateExitedEventDetails" in last:
            outputs[int(details["index"])] = _loads(last["stateExitedEventDetails"].get("output"))
    return outputs


def _succeeded_branches(
    events: list[dict[str, Any]], first_id: int, state: Mapping[str, Any]
) -> dict[str, Any]:
    # A branch succeeded when one of its own terminal states (End, or Succeed) exited; state
    # names are unique in a document, so the name tells the branch.
    if state.get("Type") != "Parallel":
        return {}
    terminal: dict[str, str] = {}
    for branch in state.get("Branches") or []:
        for name, child in (branch.get("States") or {}).items():
            if child.get("End") is True or child.get("Type") == "Succeed":
                terminal[str(name)] = str(branch["StartAt"])
    outputs: dict[str, Any] = {}
    for event in events:
        name, kind = state_event_name(event)
        if int(event["id"]) > first_id and kind == "exited" and name in terminal:
            outputs[terminal[str(name)]] = _loads(event["stateExitedEventDetails"].get("output"))
    return outputs


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
