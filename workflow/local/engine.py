"""The local Step Functions engine: moto 5.2.5's ASL interpreter with our own service handlers.

`LocalEngine` runs an ASL document in-process, with no AWS account, no boto client, no HTTP and
no `mock_aws`. Task states call Python functions registered per integration::

    engine = LocalEngine()
    engine.register_service("sagemaker", "createTrainingJob", start=create, poll=describe,
                            cancel=stop)                      # .sync: poll until a dict
    engine.register_service("aws-sdk:ssm", "getParameter", start=get_parameter)
    engine.register_lambda("evaluate", evaluate)              # name, ARN, or ARN's name
    execution = engine.start_execution(definition, {"CommitId": "abc1234"}, name="run-1")
    execution.wait()
    execution.status, execution.output, execution.error, execution.cause, execution.history()

Handlers get a `TaskContext` (execution, state, task token, retry count); they fail a task by
raising `TaskFailed(error, cause)`, whose error name `Retry`/`Catch` match. Lambda functions
that raise fail like an unhandled Lambda error (error = exception class name).

A FAILED, TIMED_OUT or ABORTED execution can be redriven (`LocalEngine.redrive`), in this or in
a later process (`LocalExecution.to_record()` / `ExecutionRecord.from_dict()`); the semantics
and their limits are in `LocalEngine.redrive`.

The moto internals, the compat check and the guarded patches live in
`workflow.local.moto_patches`.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import threading
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from workflow.errors import WorkflowError
from workflow.local import moto_patches as mp
from workflow.local.moto_patches import EngineCompatError, TaskFailed, check_compat

logger = logging.getLogger(__name__)

__all__ = [
    "ABORTED",
    "FAILED",
    "RUNNING",
    "SUCCEEDED",
    "TIMED_OUT",
    "EngineCompatError",
    "EngineError",
    "EngineEvent",
    "ExecutionRecord",
    "LocalEngine",
    "LocalExecution",
    "RedriveError",
    "ServiceHandler",
    "TaskContext",
    "TaskFailed",
    "TaskTokenError",
    "UnknownResourceError",
    "WaitRecord",
    "check_compat",
    "check_execution_name",
    "history_to_json",
    "lambda_function_name",
    "normalise_event",
    "parse_service_resource",
    "plan_redrive",
]

RUNNING: Final = "RUNNING"
SUCCEEDED: Final = "SUCCEEDED"
FAILED: Final = "FAILED"
TIMED_OUT: Final = "TIMED_OUT"
ABORTED: Final = "ABORTED"
REDRIVABLE: Final = frozenset({FAILED, TIMED_OUT, ABORTED})

_DEFAULT_ACCOUNT: Final = "123456789012"
_PROGRAM_CACHE_SIZE: Final = 32


class EngineError(WorkflowError):
    """An expected error of the local engine (bad definition, missing handler, bad token)."""


class UnknownResourceError(EngineError):
    """The definition uses Task resources that have no registered local handler.

    Attributes:
        problems: One line per unresolved state.
    """

    exit_code = 2

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            "the local engine has no handler for "
            + "; ".join(problems)
            + " (register one with LocalEngine.register_service/register_lambda)"
        )


class TaskTokenError(EngineError):
    """No running task waits for this task token (unknown, already answered or timed out)."""


class RedriveError(EngineError):
    """The execution cannot be redriven (it is running, it succeeded, or its record is bad)."""


# --------------------------------------------------------------------------------------------
# Public data types
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskContext:
    """What a handler knows about the task it runs.

    Attributes:
        execution_arn: The execution ARN (`$$.Execution.Id`).
        execution_name: The execution name (`$$.Execution.Name`).
        execution_input: The execution input (`$$.Execution.Input`).
        state_name: The Task state's name (`$$.State.Name`).
        resource: The Task's resource ARN (or the Lambda function reference).
        retry_count: `$$.State.RetryCount` (0 on the first attempt).
        task_token: `$$.Task.Token` for `.waitForTaskToken` resources, else None.
    """

    execution_arn: str
    execution_name: str
    execution_input: Any
    state_name: str
    resource: str
    retry_count: int
    task_token: str | None
    _is_running: Callable[[], bool] = field(repr=False, compare=False)

    def is_cancelled(self) -> bool:
        """Return True once the task timed out or the execution stopped, failed or ended."""
        return not self._is_running()


StartFn = Callable[[dict[str, Any], TaskContext], Any]
PollFn = Callable[[Any, TaskContext], Any]
CancelFn = Callable[[Any, TaskContext], None]
LambdaFn = Callable[[Any, TaskContext], Any]


@dataclass(frozen=True)
class ServiceHandler:
    """The local implementation of one service integration `(service, action)`.

    Attributes:
        start: `start(params, ctx) -> dict`: the API call (CreateTrainingJob -> its response).
        poll: `.sync` only: `poll(submitted, ctx) -> dict | None`; None while the job runs, the
            Describe*-shaped result when done; raise `TaskFailed` when the job failed.
        cancel: `cancel(submitted, ctx)`: stop the job when the task times out or the execution
            stops while `.sync` polls.
    """

    start: StartFn
    poll: PollFn | None = None
    cancel: CancelFn | None = None


@dataclass(frozen=True)
class WaitRecord:
    """One engine-controlled sleep: a Retry backoff or a Wait state (seconds before scaling)."""

    state_name: str
    reason: str
    seconds: float


@dataclass(frozen=True)
class EngineEvent:
    """One history event, as `on_event` listeners receive it.

    Attributes:
        execution_arn: The execution the event belongs to.
        execution_name: Its name.
        event: The boto-shaped history event (`type` a str, `timestamp` a datetime).
        state_name: For `*StateEntered`/`*StateExited` events, the state's name.
        duration: Seconds since the matching `*StateEntered` for `*StateExited`, and since the
            start for the terminal execution events; else None.
    """

    execution_arn: str
    execution_name: str
    event: dict[str, Any]
    state_name: str | None
    duration: float | None


Listener = Callable[[EngineEvent], None]


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


def _copy_json(value: Any) -> Any:
    # Much cheaper than copy.deepcopy for the dict/list/str trees of history events.
    if isinstance(value, dict):
        return {key: _copy_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy_json(item) for item in value]
    return value


def normalise_event(event: Mapping[str, Any], id_offset: int = 0) -> dict[str, Any]:
    """Return a history event shaped like boto3's `get_execution_history` returns it.

    Args:
        event: An event of moto's event manager (or of a JSON record).
        id_offset: Added to `id` and to a non-zero `previousEventId` (redriven histories).

    Returns:
        A deep copy with `type` a plain str and `timestamp` a timezone-aware datetime.
    """
    out: dict[str, Any] = _copy_json(dict(event))
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


def _state_event_name(event: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """Return (name, "entered"|"exited") for state events, else (None, None)."""
    if "stateEnteredEventDetails" in event:
        return event["stateEnteredEventDetails"].get("name"), "entered"
    if "stateExitedEventDetails" in event:
        return event["stateExitedEventDetails"].get("name"), "exited"
    return None, None


# --------------------------------------------------------------------------------------------
# Definition inspection
# --------------------------------------------------------------------------------------------


def _iter_states(states: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for name, state in states.items():
        if not isinstance(state, Mapping):
            continue
        yield name, state
        if state.get("Type") == "Parallel":
            for branch in state.get("Branches") or []:
                yield from _iter_states(branch.get("States") or {})
        elif state.get("Type") == "Map":
            processor = state.get("ItemProcessor") or state.get("Iterator") or {}
            yield from _iter_states(processor.get("States") or {})


def _scope_problems(scope: Mapping[str, Any], where: str) -> list[str]:
    """Dangling StartAt/Next/Default/Catch targets, which moto only finds at run time."""
    states = scope.get("States") or {}
    problems = []
    if scope.get("StartAt") not in states:
        problems.append(f"{where}StartAt {scope.get('StartAt')!r} names no state")
    for name, state in states.items():
        if not isinstance(state, Mapping):
            continue
        targets = [state.get("Next"), state.get("Default")]
        targets += [rule.get("Next") for rule in state.get("Choices") or []]
        targets += [catcher.get("Next") for catcher in state.get("Catch") or []]
        problems += [
            f"{where}state {name!r} goes to {target!r}, which is not a state"
            for target in targets
            if target is not None and target not in states
        ]
        if state.get("Type") == "Parallel":
            for index, branch in enumerate(state.get("Branches") or []):
                problems += _scope_problems(branch, f"in {name!r} branch {index}: ")
        elif state.get("Type") == "Map":
            processor = state.get("ItemProcessor") or state.get("Iterator") or {}
            problems += _scope_problems(processor, f"in {name!r} iterator: ")
    return problems


def parse_service_resource(resource: str) -> tuple[str, str, str] | None:
    """Split an integration ARN into (service, action, pattern); None if it is not one.

    `arn:aws:states:::sagemaker:createTrainingJob.sync` -> ("sagemaker", "createTrainingJob",
    "sync"); `arn:aws:states:::aws-sdk:ssm:getParameter` -> ("aws-sdk:ssm", "getParameter", "").
    """
    parts = resource.split(":", 5)
    if (
        len(parts) < 6
        or parts[0] != "arn"
        or parts[2] != "states"
        or parts[5].startswith(("activity:", "stateMachine:"))
    ):
        return None
    name, _, pattern = parts[5].partition(".")
    pieces = name.split(":")
    if pieces[0] == "aws-sdk" and len(pieces) == 3:
        return f"aws-sdk:{pieces[1]}", pieces[2], pattern
    if len(pieces) == 2:
        return pieces[0], pieces[1], pattern
    return None


_NAME_FORBIDDEN: Final = frozenset(' <>{}[]?*"#%\\^|~`$&,;:/')


def check_execution_name(name: str) -> None:
    """Refuse an execution name AWS would refuse (1-80 characters, no special characters).

    Raises:
        EngineError: The name is empty, too long, or has a forbidden character.
    """
    bad = sorted({c for c in name if c in _NAME_FORBIDDEN or ord(c) < 32 or 127 <= ord(c) < 160})
    if not 1 <= len(name) <= 80 or bad:
        raise EngineError(
            f"execution name {name!r} is not valid on AWS ("
            + (f"characters {''.join(bad)!r} are not allowed" if bad else "1-80 characters")
            + "); use letters, digits, '-' and '_'"
        )


def lambda_function_name(reference: str) -> str:
    """Return the function name of a Lambda name, partial ARN or ARN (qualifier dropped)."""
    parts = reference.split(":")
    if reference.startswith("arn:") and len(parts) >= 7:
        return parts[6]
    if len(parts) >= 3 and parts[1] == "function":
        return parts[2]
    return parts[0]


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
class _RedrivePlan:
    start_at: str
    state_input: Any
    replays: dict[tuple[str, str, str], deque[Any]]
    prefix: list[dict[str, Any]]
    redrive_count: int


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _loads(text: Any) -> Any:
    if isinstance(text, str):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def plan_redrive(record: ExecutionRecord) -> _RedrivePlan:
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
        name, kind = _state_event_name(event)
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
    return _RedrivePlan(
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
            name, kind = _state_event_name(previous)
            if kind == "entered":
                state_name = name
            previous = by_id.get(int(previous.get("previousEventId") or 0))
        if state_name is None or parameters is None or state_name == exclude:
            continue
        key = (state_name, kind_key, _canonical(parameters))
        replays.setdefault(key, deque()).append(_loads(details.get("output")))
    return replays


# --------------------------------------------------------------------------------------------
# One run of the interpreter (the host the patched tasks call back)
# --------------------------------------------------------------------------------------------


class _Run:
    """Engine-side state of one execution attempt; implements `moto_patches.ExecutionHost`."""

    def __init__(
        self, engine: LocalEngine, arn: str, name: str, plan: _RedrivePlan | None = None
    ) -> None:
        self.engine = engine
        self.arn = arn
        self.name = name
        self.plan = plan
        self.waits: list[WaitRecord] = []
        self._lock = threading.Lock()
        self._entered: dict[str, list[dt.datetime]] = {}
        self._started: dt.datetime | None = None
        self.id_offset = len(plan.prefix) if plan else 0

    # ExecutionHost ---------------------------------------------------------------------
    @property
    def poll_interval(self) -> float:
        return self.engine.poll_interval * self.engine.time_scale

    def task_context(self, env: mp.Environment, resource_arn: str) -> TaskContext:
        data: Any = env.states.context_object.context_object_data
        task = data.get("Task") or {}
        return TaskContext(
            execution_arn=data["Execution"]["Id"],
            execution_name=data["Execution"]["Name"],
            execution_input=copy.deepcopy(data["Execution"]["Input"]),
            state_name=data["State"]["Name"],
            resource=resource_arn,
            retry_count=int(data["State"].get("RetryCount", 0)),
            task_token=task.get("Token"),
            _is_running=env.is_running,
        )

    def service_handler(self, service: str, action: str) -> ServiceHandler | None:
        return self.engine._service_handler(service, action)

    def lambda_function(self, reference: str) -> LambdaFn | None:
        return self.engine._lambda_function(reference)

    def replay(self, state_name: str, kind: str, parameters: Any) -> tuple[bool, Any]:
        if self.plan is None or not self.plan.replays:
            return False, None
        key = (state_name, kind, _canonical(parameters))
        with self._lock:
            queue = self.plan.replays.get(key)
            if not queue:
                return False, None
            return True, copy.deepcopy(queue.popleft())

    def sleep(self, env: mp.Environment, seconds: float, reason: str) -> None:
        data: Any = env.states.context_object.context_object_data
        state = str((data.get("State") or {}).get("Name"))
        with self._lock:
            self.waits.append(WaitRecord(state_name=state, reason=reason, seconds=seconds))
        deadline = mp.monotonic() + seconds * self.engine.time_scale
        while env.is_running():
            remaining = deadline - mp.monotonic()
            if remaining <= 0:
                return
            env.program_state_event.wait(remaining)

    # Events -----------------------------------------------------------------------------
    def attempt_event(self, raw_event: Mapping[str, Any]) -> dict[str, Any]:
        """Normalise an event of this attempt; a redrive's ExecutionStarted is ExecutionRedriven.

        A redriven attempt's ids continue the previous history, as on AWS.
        """
        event = normalise_event(raw_event, self.id_offset)
        if self.plan is None or event["type"] != "ExecutionStarted":
            return event
        return {
            "id": event["id"],
            "previousEventId": self.plan.prefix[-1]["id"] if self.plan.prefix else 0,
            "type": "ExecutionRedriven",
            "timestamp": event["timestamp"],
            "executionRedrivenEventDetails": {"redriveCount": self.plan.redrive_count},
        }

    def publish(self, raw_event: Mapping[str, Any]) -> None:
        if not self.engine._has_listeners():
            return
        event = self.attempt_event(raw_event)
        name, kind = _state_event_name(event)
        duration: float | None = None
        stamp = event["timestamp"]
        with self._lock:
            if event["type"] in ("ExecutionStarted", "ExecutionRedriven"):
                self._started = stamp
            elif name is not None and kind == "entered":
                self._entered.setdefault(name, []).append(stamp)
            elif name is not None and kind == "exited":
                entered = self._entered.get(name)
                if entered:
                    duration = (stamp - entered.pop()).total_seconds()
            elif event["type"].startswith("Execution") and self._started is not None:
                duration = (stamp - self._started).total_seconds()
        self.engine._dispatch(EngineEvent(self.arn, self.name, event, name, duration))


# moto's TypedDicts declare every key as required; the constructors accept any subset.
_EventDetails: Any = mp.EventDetails

_TERMINAL_EVENTS: Final = frozenset(
    {"ExecutionSucceeded", "ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut"}
)


class _ObservedEventManager(mp.EventManager):
    """moto's event manager, telling the run about each event after it is recorded.

    Once the execution stopped or timed out, threads still winding down (a task whose
    wait was interrupted) may try to record more events; AWS records none after the terminal
    one, so they are dropped.
    """

    def __init__(self, run: _Run) -> None:
        super().__init__(cloud_watch_logging_session=None)
        self._run = run
        self.root: mp.Environment | None = None
        self.closed = False

    def add_event(self, context: Any, event_type: Any, *args: Any, **kwargs: Any) -> int:
        kind = str(getattr(event_type, "value", event_type))
        with self._mutex_guard:
            if self.closed or (
                kind not in _TERMINAL_EVENTS
                and self.root is not None
                and not self.root.is_running()
                and isinstance(self.root.program_state(), (mp.ProgramStopped, mp.ProgramTimedOut))
            ):
                return 0
            if kind in _TERMINAL_EVENTS:
                self.closed = True
        event_id: int = super().add_event(context, event_type, *args, **kwargs)
        # Ids are sequential from 1 and the list is appended under the manager's mutex.
        self._run.publish(self._history_event_list[event_id - 1])
        return event_id

    @property
    def _mutex_guard(self) -> threading.Lock:
        return self._run._lock


class _EngineWorker(mp.ExecutionWorker):
    """moto's execution worker, bound to a `_Run` (dispatch, events, redrive start)."""

    def __init__(
        self, run: _Run, evaluation_details: Any, exec_comm: Any, program: Any = None
    ) -> None:
        super().__init__(
            evaluation_details=evaluation_details,
            exec_comm=exec_comm,
            cloud_watch_logging_session=None,
            activity_store={},
        )
        self.run = run
        self._program = program
        self.env_ready = threading.Event()
        self.finished = threading.Event()

    def _get_evaluation_environment(self) -> mp.Environment:
        env = super()._get_evaluation_environment()
        manager = _ObservedEventManager(self.run)
        manager.root = env
        env.event_manager = manager
        if self.run.plan is not None:
            env.states.reset(input_value=self.run.plan.state_input)
        return env

    def stop(self, stop_date: dt.datetime, error: str | None, cause: str | None) -> None:
        """Stop the execution and wake the tasks that wait for a token."""
        super().stop(stop_date=stop_date, error=error, cause=cause)
        if self.env is not None:
            mp.interrupt_callbacks(self.env)

    def _execution_logic(self) -> None:
        details = self._evaluation_details
        mp.bind_host(self.run.arn, self.run)
        try:
            failure: str | None = None
            program = self._program
            if program is None:  # the server path parses in the worker thread
                try:
                    definition = details.state_machine_details.definition
                    missing = self.run.engine.missing_handlers(definition)
                    if missing:
                        raise UnknownResourceError(missing)
                    with mp.parsing_for_engine():
                        program = mp.AmazonStateLanguageParser.parse(definition)[0]
                except Exception as exc:
                    failure = str(exc)
            self.env = self._get_evaluation_environment()
            self.env_ready.set()
            self.env.event_manager.add_event(
                context=self.env.event_history_context,
                event_type=mp.HistoryEventType.ExecutionStarted,
                event_details=_EventDetails(
                    executionStartedEventDetails=mp.ExecutionStartedEventDetails(
                        input=mp.to_json_str(details.execution_details.inpt),
                        inputDetails=mp.HistoryEventExecutionDataDetails(truncated=False),
                        roleArn=details.aws_execution_details.role_arn,
                    )
                ),
                update_source_event_id=False,
            )
            if failure is None:
                program.eval(self.env)
                mp.interrupt_callbacks(self.env)
                if isinstance(self.env.program_state(), mp.ProgramTimedOut):
                    # moto's program thread records ExecutionTimedOut only once the running
                    # state returns, which a blocked task may never do.
                    self.env.event_manager.add_event(
                        context=self.env.event_history_context,
                        event_type=mp.HistoryEventType.ExecutionTimedOut,
                        event_details=_EventDetails(executionTimedOutEventDetails={}),
                    )
            else:
                failed = mp.ExecutionFailedEventDetails(error="States.Runtime", cause=failure)
                self.env.set_error(failed)
                self.env.event_manager.add_event(
                    context=self.env.event_history_context,
                    event_type=mp.HistoryEventType.ExecutionFailed,
                    event_details=_EventDetails(executionFailedEventDetails=failed),
                )
        finally:
            mp.unbind_host(self.run.arn)
            mp.prune_threads()
            self.finished.set()
            self.env_ready.set()
            self._execution_communication.terminated()


# --------------------------------------------------------------------------------------------
# Executions and the engine
# --------------------------------------------------------------------------------------------


class _Comm(mp.ExecutionWorkerCommunication):
    def __init__(self, execution: LocalExecution) -> None:
        self._execution = execution

    def terminated(self) -> None:
        self._execution._on_terminated()


class LocalExecution:
    """One execution (attempt) of a definition in a `LocalEngine`.

    Attributes:
        name: The execution name.
        arn: The execution ARN (a redrive keeps it).
        state_machine_arn: The (local) state machine ARN.
        input: The execution input.
        status: RUNNING, SUCCEEDED, FAILED, TIMED_OUT or ABORTED.
        output: The output once SUCCEEDED.
        error: The error name once FAILED (or the stop error once ABORTED).
        cause: The cause that goes with `error`.
        start_date: When this attempt started (timezone-aware).
        stop_date: When it ended.
        redrive_count: 0 for a first attempt, n for the n-th redrive.
    """

    def __init__(
        self,
        engine: LocalEngine,
        *,
        name: str,
        state_machine_name: str,
        definition: str,
        execution_input: Any,
        start_time: str,
        plan: _RedrivePlan | None,
    ) -> None:
        region, account = engine.region, engine.account_id
        self.name = name
        self.arn = f"arn:aws:states:{region}:{account}:execution:{state_machine_name}:{name}"
        self.state_machine_name = state_machine_name
        self.state_machine_arn = (
            f"arn:aws:states:{region}:{account}:stateMachine:{state_machine_name}"
        )
        self.definition = definition
        self.input = execution_input
        self.start_time = start_time
        self.status: str = RUNNING
        self.output: Any = None
        self.error: str | None = None
        self.cause: str | None = None
        self.start_date = dt.datetime.now(tz=dt.timezone.utc)
        self.stop_date: dt.datetime | None = None
        self.redrive_count = plan.redrive_count if plan else 0
        self._plan = plan
        self._done = threading.Event()
        self._run = _Run(engine, self.arn, name, plan)
        self._worker: _EngineWorker | None = None

    # Lifecycle ---------------------------------------------------------------------------
    def _start(self, program: Any, role_arn: str) -> None:
        engine = self._run.engine
        definition = self.definition
        if self._plan is not None:  # restart at the unsuccessful step
            patched = json.loads(definition)
            patched["StartAt"] = self._plan.start_at
            definition = json.dumps(patched)
        details = mp.EvaluationDetails(
            aws_execution_details=mp.AWSExecutionDetails(
                account=engine.account_id, region=engine.region, role_arn=role_arn
            ),
            execution_details=mp.ExecutionDetails(
                arn=self.arn,
                name=self.name,
                role_arn=role_arn,
                inpt=self.input,
                start_time=self.start_time,
            ),
            state_machine_details=mp.StateMachineDetails(
                arn=self.state_machine_arn,
                name=self.state_machine_name,
                typ=mp.StateMachineType.STANDARD,
                definition=definition,
            ),
        )
        self._worker = _EngineWorker(self._run, details, _Comm(self), program=program)
        self._worker.start()  # type: ignore[no-untyped-call]

    def _on_terminated(self) -> None:
        env = self._worker.env if self._worker else None
        state = env.program_state() if env is not None else None
        self.stop_date = dt.datetime.now(tz=dt.timezone.utc)
        if isinstance(state, mp.ProgramEnded) and env is not None:
            self.status, self.output = SUCCEEDED, env.states.get_input()
        elif isinstance(state, mp.ProgramStopped):
            self.status, self.error, self.cause = ABORTED, state.error, state.cause
        elif isinstance(state, mp.ProgramTimedOut):
            self.status = TIMED_OUT
        else:
            details = (state.error if isinstance(state, mp.ProgramError) else None) or {}
            self.status = FAILED
            self.error, self.cause = details.get("error"), details.get("cause")
        self._done.set()

    @property
    def execution_arn(self) -> str:
        """The execution ARN (`arn`), under the name the SDK's `Execution` uses."""
        return self.arn

    @property
    def done(self) -> bool:
        """True once the execution is no longer RUNNING."""
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> LocalExecution:
        """Block until the execution ends or `timeout` seconds pass; return self.

        Check `status`: it is still RUNNING when the timeout passed first.
        """
        self._done.wait(timeout)
        return self

    def stop(self, error: str | None = None, cause: str | None = None) -> None:
        """Stop the execution (ABORTED); a `.sync` job it waits on is cancelled."""
        worker = self._worker
        if worker is None or self.done:
            return
        worker.env_ready.wait(30)  # a stop right after the start waits for the environment
        if worker.env is None or self.done:
            return
        worker.stop(stop_date=dt.datetime.now(tz=dt.timezone.utc), error=error, cause=cause)

    # Inspection ------------------------------------------------------------------------
    @property
    def waits(self) -> list[WaitRecord]:
        """The Retry backoffs and Wait states slept so far (seconds before `time_scale`)."""
        return list(self._run.waits)

    def history(self) -> list[dict[str, Any]]:
        """Return the execution history, shaped like boto3's `get_execution_history` events.

        A redriven execution's history holds the previous attempts' events, then an
        `ExecutionRedriven` event, then this attempt's events, as on AWS.
        """
        worker = self._worker
        env = worker.env if worker else None
        raw = env.event_manager.get_event_history() if env is not None else []
        prefix = [_copy_json(e) for e in self._plan.prefix] if self._plan else []
        return prefix + [self._run.attempt_event(event) for event in raw]

    def to_record(self) -> ExecutionRecord:
        """Return what a later redrive needs (see `LocalEngine.redrive`)."""
        return ExecutionRecord(
            name=self.name,
            arn=self.arn,
            state_machine_name=self.state_machine_name,
            definition=self.definition,
            input=copy.deepcopy(self.input),
            start_time=self.start_time,
            status=self.status,
            history=self.history(),
            redrive_count=self.redrive_count,
        )

    def describe(self) -> dict[str, Any]:
        """Return a DescribeExecution-shaped dict of this execution."""
        out: dict[str, Any] = {
            "executionArn": self.arn,
            "stateMachineArn": self.state_machine_arn,
            "name": self.name,
            "status": self.status,
            "startDate": self.start_date,
            "input": json.dumps(self.input),
            "redriveCount": self.redrive_count,
        }
        if self.stop_date is not None:
            out["stopDate"] = self.stop_date
        if self.status == SUCCEEDED:
            out["output"] = json.dumps(self.output)
        if self.error is not None:
            out["error"] = self.error
        if self.cause is not None:
            out["cause"] = self.cause
        return out

    def __repr__(self) -> str:
        return f"LocalExecution(name={self.name!r}, status={self.status!r})"


class LocalEngine:
    """Runs ASL documents in-process with moto's interpreter and registered local handlers.

    Thread-safe: registrations, executions and task-token calls may come from any thread.

    Args:
        region: Region used in ARNs and `$$` context.
        account_id: Account used in ARNs.
        role_arn: Execution role (only recorded in the history); default derived from account.
        time_scale: Multiplies every engine sleep (Retry backoff, Wait states, `.sync` poll
            interval); 1.0 is real time, tests use e.g. 0.01. Timeouts stay real.
        poll_interval: Seconds between two `poll` calls of a `.sync` task (before scaling).
    """

    def __init__(
        self,
        *,
        region: str = "us-east-1",
        account_id: str = _DEFAULT_ACCOUNT,
        role_arn: str | None = None,
        time_scale: float = 1.0,
        poll_interval: float = 0.5,
    ) -> None:
        if time_scale < 0:
            raise ValueError(f"time_scale = {time_scale!r} is negative; use 1.0 for real time")
        if poll_interval <= 0:
            raise ValueError(f"poll_interval = {poll_interval!r} must be > 0 seconds, e.g. 0.5")
        mp.apply_engine_patches()
        self.region = region
        self.account_id = account_id
        self.role_arn = role_arn or f"arn:aws:iam::{account_id}:role/local-state-machine"
        self.time_scale = time_scale
        self.poll_interval = poll_interval
        self._lock = threading.RLock()
        self._services: dict[tuple[str, str], ServiceHandler] = {}
        self._lambdas: dict[str, LambdaFn] = {}
        self._listeners: list[Listener] = []
        self._executions: list[LocalExecution] = []
        self._programs: OrderedDict[str, Any] = OrderedDict()
        self._served: list[_EngineWorker] = []  # executions started over the served HTTP API

    # Registration ------------------------------------------------------------------------
    def register_service(
        self,
        service: str,
        action: str,
        start: StartFn,
        poll: PollFn | None = None,
        cancel: CancelFn | None = None,
    ) -> None:
        """Register the local implementation of a service integration.

        Args:
            service: `sagemaker`, `sns`, `codebuild`, ... or `aws-sdk:<service>` for
                `arn:aws:states:::aws-sdk:<service>:<action>` resources.
            action: The API action as written in the resource (`createTrainingJob`).
            start: `start(params, ctx) -> dict`, the API response.
            poll: Needed for `.sync` resources; see `ServiceHandler`.
            cancel: Called when a `.sync` task times out or its execution stops.
        """
        with self._lock:
            self._services[(service, action)] = ServiceHandler(start, poll, cancel)

    def register_lambda(self, function_name_or_arn: str, fn: LambdaFn) -> None:
        """Register a Python function as a Lambda function.

        `fn(payload, ctx) -> result` is found by the exact name or ARN a definition uses, or by
        the function name of an ARN (`arn:...:function:NAME[:qualifier]`).
        """
        with self._lock:
            self._lambdas[function_name_or_arn] = fn
            self._lambdas.setdefault(lambda_function_name(function_name_or_arn), fn)

    def on_event(self, callback: Listener) -> Callable[[], None]:
        """Call `callback(EngineEvent)` for every history event of every execution, live.

        The callback runs in the engine's threads; exceptions it raises are logged and ignored.

        Returns:
            A function that unregisters the callback.
        """
        with self._lock:
            self._listeners.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._listeners:
                    self._listeners.remove(callback)

        return unsubscribe

    def _dispatch(self, event: EngineEvent) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(event)
            except Exception:
                logger.exception("an on_event listener failed on %s", event.event.get("type"))

    def _has_listeners(self) -> bool:
        return bool(self._listeners)

    def _service_handler(self, service: str, action: str) -> ServiceHandler | None:
        with self._lock:
            return self._services.get((service, action))

    def _lambda_function(self, reference: str) -> LambdaFn | None:
        with self._lock:
            return self._lambdas.get(reference) or self._lambdas.get(
                lambda_function_name(reference)
            )

    # Validation --------------------------------------------------------------------------
    def missing_handlers(self, definition: str | Mapping[str, Any]) -> list[str]:
        """List the Task states whose resource has no registered local handler.

        Lambda functions named through a path (`FunctionName.$`) are only resolved at run time.
        """
        document = json.loads(definition) if isinstance(definition, str) else definition
        problems: list[str] = []
        for name, state in _iter_states(document.get("States") or {}):
            if state.get("Type") != "Task":
                continue
            resource = str(state.get("Resource", ""))
            parsed = parse_service_resource(resource)
            if parsed is not None and parsed[0] == "lambda":
                function = (state.get("Parameters") or {}).get("FunctionName")
                if isinstance(function, str) and self._lambda_function(function) is None:
                    problems.append(f"state {name!r}: Lambda function {function!r}")
            elif parsed is not None:
                service, action, pattern = parsed
                handler = self._service_handler(service, action)
                if handler is None:
                    problems.append(f"state {name!r}: {service}:{action} ({resource})")
                elif pattern.startswith("sync") and handler.poll is None:
                    problems.append(
                        f"state {name!r}: {service}:{action} is registered without a poll "
                        f"function, which {resource} (.sync) needs"
                    )
            elif ":lambda:" in resource and ":function:" in resource:
                if self._lambda_function(resource) is None:
                    problems.append(f"state {name!r}: Lambda function {resource!r}")
            else:
                problems.append(f"state {name!r}: unsupported resource {resource!r}")
        return problems

    def parse(self, definition: str | Mapping[str, Any]) -> Any:
        """Parse and check a definition; return moto's program.

        Raises:
            EngineError: The document is not valid JSON or not valid ASL.
            UnknownResourceError: A Task resource has no local handler.
        """
        text = definition if isinstance(definition, str) else json.dumps(definition)
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise EngineError(
                f"the definition is not JSON ({exc}); pass the ASL document "
                "as a dict or its JSON text"
            ) from exc
        if not isinstance(document, dict) or "StartAt" not in document:
            raise EngineError(
                "the definition has no 'StartAt'; pass a whole ASL document "
                "({'StartAt': ..., 'States': {...}})"
            )
        dangling = _scope_problems(document, "")
        if dangling:
            raise EngineError("the definition is not valid ASL: " + "; ".join(dangling))
        missing = self.missing_handlers(document)
        if missing:
            raise UnknownResourceError(missing)
        with self._lock:
            cached = self._programs.get(text)
            if cached is not None:
                self._programs.move_to_end(text)
                return cached
        try:
            with mp.parsing_for_engine():
                program = mp.AmazonStateLanguageParser.parse(text)[0]
        except Exception as exc:
            raise EngineError(f"the definition is not valid ASL: {exc}") from exc
        # ANTLR parsing dominates the cost of short runs (~1 ms per state); the parsed program
        # holds no per-execution state (moto already evaluates one Map iterator in many
        # threads), so it is reused for the same text.
        with self._lock:
            self._programs[text] = program
            while len(self._programs) > _PROGRAM_CACHE_SIZE:
                self._programs.popitem(last=False)
        return program

    # Executions --------------------------------------------------------------------------
    def start_execution(
        self,
        definition: str | Mapping[str, Any],
        input: Any = None,
        name: str | None = None,
        *,
        state_machine_name: str = "local",
        redrive_from: LocalExecution | ExecutionRecord | None = None,
    ) -> LocalExecution:
        """Start an execution and return it at once (it runs in background threads).

        Args:
            definition: The ASL document, as a dict or JSON text.
            input: The execution input (JSON-serialisable); default `{}`.
            name: The execution name; default a UUID.
            state_machine_name: Used in the ARNs and `$$.StateMachine.Name`.
            redrive_from: Redrive this execution instead (see `redrive`); the other arguments
                must then be left out or equal the record's.

        Raises:
            UnknownResourceError: A Task resource has no registered handler.
            EngineError: The definition is not valid ASL or the input is not JSON.
        """
        if redrive_from is not None:
            return self.redrive(redrive_from)
        if name is not None:
            check_execution_name(name)
        text = definition if isinstance(definition, str) else json.dumps(definition)
        execution_input = {} if input is None else input
        try:
            json.dumps(execution_input)
        except (TypeError, ValueError) as exc:
            raise EngineError(
                f"the execution input is not JSON-serialisable ({exc}); "
                "pass dicts, lists, strings, numbers, booleans or None"
            ) from exc
        program = self.parse(text)
        start_time = mp.aws_timestamp(dt.datetime.now(tz=dt.timezone.utc))
        execution = LocalExecution(
            self,
            name=name or str(uuid.uuid4()),
            state_machine_name=state_machine_name,
            definition=text,
            execution_input=copy.deepcopy(execution_input),
            start_time=start_time,
            plan=None,
        )
        with self._lock:
            if any(e.arn == execution.arn and not e.done for e in self._executions):
                raise EngineError(
                    f"an execution named {execution.name!r} is already running; "
                    "pick another name or leave name out"
                )
            self._executions.append(execution)
        execution._start(program, self.role_arn)
        return execution

    def redrive(self, execution: LocalExecution | ExecutionRecord) -> LocalExecution:
        """Resume a FAILED, TIMED_OUT or ABORTED execution from its unsuccessful step.

        AWS RedriveExecution semantics, as far as a re-run can give them: the states that
        succeeded are not run again; the top-level state that did not finish restarts with
        the input it had; inside it (a Map or Parallel), Task invocations that succeeded are
        replayed from the history (same state and parameters), so only failed iterations and
        branches call their handlers again. The redrive keeps the name, ARN, input and
        `$$.Execution.StartTime`; its history continues the previous one after an
        `ExecutionRedriven` event.

        Limits: Pass, Choice and Wait states inside a restarted Map or Parallel run again (a
        Wait sleeps again); intrinsic functions such as `States.UUID()` in task parameters
        produce new values, so such invocations are not replayed.

        Args:
            execution: A finished execution of this process, or a record saved by an earlier
                one (`LocalExecution.to_record()`, `ExecutionRecord.from_dict()`).

        Raises:
            RedriveError: The execution is not FAILED, TIMED_OUT or ABORTED.
        """
        record = execution.to_record() if isinstance(execution, LocalExecution) else execution
        plan = plan_redrive(record)
        program = self.parse(
            json.dumps({**json.loads(record.definition), "StartAt": plan.start_at})
        )
        redriven = LocalExecution(
            self,
            name=record.name,
            state_machine_name=record.state_machine_name,
            definition=record.definition,
            execution_input=copy.deepcopy(record.input),
            start_time=record.start_time,
            plan=plan,
        )
        with self._lock:
            if any(e.arn == redriven.arn and not e.done for e in self._executions):
                raise RedriveError(
                    f"execution {record.name!r} is running again already; "
                    "wait for it to end before redriving it"
                )
            self._executions.append(redriven)
        redriven._start(program, self.role_arn)
        return redriven

    @property
    def executions(self) -> list[LocalExecution]:
        """Every execution started by this engine, oldest first."""
        with self._lock:
            return list(self._executions)

    # Task tokens ------------------------------------------------------------------------
    def _notify(self, token: str, deliver: Callable[[Any], bool]) -> None:
        with self._lock:
            workers = [e._worker for e in self._executions if not e.done]
            self._served = [w for w in self._served if not w.finished.is_set()]
            workers += self._served
        for worker in workers:
            if worker is None or worker.env is None:
                continue
            try:
                if deliver(worker.env.callback_pool_manager):
                    return
            except mp.CallbackNotifyConsumerError as exc:
                timed_out = isinstance(exc.callback_consumer_error, mp.CallbackConsumerTimeout)
                raise TaskTokenError(
                    f"the task waiting for token {token[:12]}... "
                    + ("timed out" if timed_out else "is no longer waiting")
                ) from exc
        raise TaskTokenError(
            f"no running task waits for token {token[:12]}...; it was already answered, "
            "timed out, or its execution ended"
        )

    def send_task_success(self, token: str, output: Any) -> None:
        """Complete the `.waitForTaskToken` task waiting on `token` with `output` (JSON value).

        Raises:
            TaskTokenError: No running task waits for this token.
        """
        outcome = mp.CallbackOutcomeSuccess(callback_id=token, output=json.dumps(output))
        self._notify(token, lambda pool: pool.notify(callback_id=token, outcome=outcome))

    def send_task_failure(
        self, token: str, error: str | None = None, cause: str | None = None
    ) -> None:
        """Fail the task waiting on `token` with `error` (catchable by name) and `cause`.

        Raises:
            TaskTokenError: No running task waits for this token.
        """
        outcome = mp.CallbackOutcomeFailure(callback_id=token, error=error, cause=cause)
        self._notify(token, lambda pool: pool.notify(callback_id=token, outcome=outcome))

    def send_task_heartbeat(self, token: str) -> None:
        """Report that the task waiting on `token` is alive (resets `HeartbeatSeconds`).

        Raises:
            TaskTokenError: No running task waits for this token.
        """
        self._notify(token, lambda pool: pool.heartbeat(callback_id=token))

    # The notebook server path ------------------------------------------------------------
    def _backend_worker(self, evaluation_details: Any, exec_comm: Any) -> _EngineWorker:
        """Build the worker moto's backend uses for an execution served over HTTP."""
        execution = evaluation_details.execution_details
        worker = _EngineWorker(
            _Run(self, execution.arn, execution.name), evaluation_details, exec_comm
        )
        with self._lock:
            self._served.append(worker)
        return worker
