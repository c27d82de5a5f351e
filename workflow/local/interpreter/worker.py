"""Runs one execution on moto's interpreter for the engine: the worker, events, tokens.

The engine never touches a moto object: it parses with `parse_program`, starts an execution
with `start_worker(host, ...)`, reads `EngineWorker.outcome()` and `raw_history()`, answers
task tokens with `notify_*`, and stops with `stop()`. The worker's event manager carries the
host, which is how the patched interpreter finds the engine (`host.host_for`).
"""

# This module subclasses moto's untyped private classes on purpose.
# mypy: disable-error-code="misc,attr-defined,no-untyped-call,typeddict-item,no-any-return,arg-type,return-value"

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any, Final, NamedTuple

from workflow.local.errors import TaskTokenError
from workflow.local.interpreter.distributed_parse import parse_with_distributed_maps
from workflow.local.interpreter.host import (
    ExecutionHost,
    interrupt_callbacks,
    parsing_for_engine,
    prune_threads,
)
from workflow.local.interpreter.moto_api import (
    ActivityCallbackEndpoint,
    AmazonStateLanguageParser,
    AWSExecutionDetails,
    CallbackConsumerTimeout,
    CallbackNotifyConsumerError,
    CallbackOutcomeFailure,
    CallbackOutcomeSuccess,
    Environment,
    EvaluationDetails,
    EventDetails,
    EventManager,
    ExecutionDetails,
    ExecutionFailedEventDetails,
    ExecutionStartedEventDetails,
    ExecutionWorker,
    ExecutionWorkerCommunication,
    HistoryEventExecutionDataDetails,
    HistoryEventType,
    ProgramEnded,
    ProgramError,
    ProgramStopped,
    ProgramTimedOut,
    StateMachineDetails,
    StateMachineType,
    to_json_str,
)

# moto's TypedDicts declare every key as required; the constructors accept any subset.
_EventDetails: Any = EventDetails

_TERMINAL_EVENTS: Final = frozenset(
    {"ExecutionSucceeded", "ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut"}
)


class Outcome(NamedTuple):
    """How an execution ended: status (SUCCEEDED, FAILED, ...), output, error, cause."""

    status: str
    output: Any
    error: str | None
    cause: str | None


def parse_program(definition: str) -> Any:
    """Parse an ASL document into moto's program, with the engine's Task classes.

    Raises:
        Exception: moto's parser error (ANTLR or ASL), for the engine to reword.
    """
    with parsing_for_engine():
        if '"DISTRIBUTED"' in definition:
            return parse_with_distributed_maps(definition)
        return AmazonStateLanguageParser.parse(definition)[0]


class _ObservedEventManager(EventManager):
    """moto's event manager, carrying the host and telling it about each recorded event.

    Once the execution stopped or timed out, threads still winding down (a task whose wait was
    interrupted) may try to record more events; AWS records none after the terminal one, so
    they are dropped.
    """

    def __init__(self, host: ExecutionHost, lock: threading.Lock) -> None:
        super().__init__(cloud_watch_logging_session=None)
        self.host = host
        self._lock = lock
        self.root: Environment | None = None
        self.closed = False

    def add_event(self, context: Any, event_type: Any, *args: Any, **kwargs: Any) -> int:
        kind = str(getattr(event_type, "value", event_type))
        with self._lock:
            if self.closed or (
                kind not in _TERMINAL_EVENTS
                and self.root is not None
                and not self.root.is_running()
                and isinstance(self.root.program_state(), (ProgramStopped, ProgramTimedOut))
            ):
                return 0
            if kind in _TERMINAL_EVENTS:
                self.closed = True
            event_id: int = super().add_event(context, event_type, *args, **kwargs)
            # Ids are sequential from 1 and the list is appended under the manager's mutex.
            event = self._history_event_list[event_id - 1]
        self.host.publish(event)
        return event_id


class _Comm(ExecutionWorkerCommunication):
    def __init__(self, on_terminated: Callable[[], None]) -> None:
        self._on_terminated = on_terminated

    def terminated(self) -> None:
        self._on_terminated()


class EngineWorker(ExecutionWorker):
    """moto's execution worker, bound to an `ExecutionHost` (dispatch, events, redrive)."""

    def __init__(
        self, host: ExecutionHost, evaluation_details: Any, exec_comm: Any, program: Any = None
    ) -> None:
        super().__init__(
            evaluation_details=evaluation_details,
            exec_comm=exec_comm,
            cloud_watch_logging_session=None,
            activity_store=host.activity_store,
        )
        self.host = host
        self._program = program
        self._events_lock = threading.Lock()
        self.env_ready = threading.Event()
        self.finished = threading.Event()

    def _get_evaluation_environment(self) -> Environment:
        env = super()._get_evaluation_environment()
        manager = _ObservedEventManager(self.host, self._events_lock)
        manager.root = env
        env.event_manager = manager
        restart, state_input = self.host.restart_input
        if restart:
            env.states.reset(input_value=state_input)
        return env

    def stop(self, stop_date: dt.datetime, error: str | None, cause: str | None) -> None:
        """Stop the execution and wake the tasks that wait for a token."""
        super().stop(stop_date=stop_date, error=error, cause=cause)
        if self.env is not None:
            interrupt_callbacks(self.env)

    def _execution_logic(self) -> None:
        details = self._evaluation_details
        try:
            failure: str | None = None
            program = self._program
            if program is None:  # the server path parses in the worker thread
                try:
                    definition = details.state_machine_details.definition
                    self.host.prepare(definition)
                    program = parse_program(definition)
                except Exception as exc:
                    failure = str(exc)
            self.env = self._get_evaluation_environment()
            self.env_ready.set()
            self.env.event_manager.add_event(
                context=self.env.event_history_context,
                event_type=HistoryEventType.ExecutionStarted,
                event_details=_EventDetails(
                    executionStartedEventDetails=ExecutionStartedEventDetails(
                        input=to_json_str(details.execution_details.inpt),
                        inputDetails=HistoryEventExecutionDataDetails(truncated=False),
                        roleArn=details.aws_execution_details.role_arn,
                    )
                ),
                update_source_event_id=False,
            )
            if failure is None:
                program.eval(self.env)
                interrupt_callbacks(self.env)
                state = self.env.program_state()
                if isinstance(state, ProgramStopped):
                    # moto records ExecutionAborted only when the stop lands while a state
                    # runs; a stop between ExecutionStarted and the first state would leave
                    # none. The manager drops it when moto already recorded one.
                    self.env.event_history_context.source_event_id = 0  # as moto's
                    self.env.event_manager.add_event(
                        context=self.env.event_history_context,
                        event_type=HistoryEventType.ExecutionAborted,
                        event_details=_EventDetails(
                            executionAbortedEventDetails={
                                "error": state.error,
                                "cause": state.cause,
                            }
                        ),
                    )
                if isinstance(state, ProgramTimedOut):
                    # moto's program thread records ExecutionTimedOut only once the running
                    # state returns, which a blocked task may never do.
                    self.env.event_manager.add_event(
                        context=self.env.event_history_context,
                        event_type=HistoryEventType.ExecutionTimedOut,
                        event_details=_EventDetails(executionTimedOutEventDetails={}),
                    )
            else:
                failed = ExecutionFailedEventDetails(error="States.Runtime", cause=failure)
                self.env.set_error(failed)
                self.env.event_manager.add_event(
                    context=self.env.event_history_context,
                    event_type=HistoryEventType.ExecutionFailed,
                    event_details=_EventDetails(executionFailedEventDetails=failed),
                )
        finally:
            prune_threads()
            self.finished.set()
            self.env_ready.set()
            self._execution_communication.terminated()

    # What the engine reads ----------------------------------------------------------------
    def outcome(self) -> Outcome:
        """Return how the execution ended (call once `finished` is set)."""
        env = self.env
        state = env.program_state() if env is not None else None
        if isinstance(state, ProgramEnded) and env is not None:
            return Outcome("SUCCEEDED", env.states.get_input(), None, None)
        if isinstance(state, ProgramStopped):
            return Outcome("ABORTED", None, state.error, state.cause)
        if isinstance(state, ProgramTimedOut):
            return Outcome("TIMED_OUT", None, None, None)
        details = (state.error if isinstance(state, ProgramError) else None) or {}
        return Outcome("FAILED", None, details.get("error"), details.get("cause"))

    def raw_history(self) -> list[dict[str, Any]]:
        """Return moto's history events recorded so far."""
        return self.env.event_manager.get_event_history() if self.env is not None else []

    def is_waiting_for(self, deliver: Callable[[Any], bool]) -> bool:
        """Deliver a token answer through `deliver(pool)`; True if a task waited for it.

        Raises:
            TaskTokenError: The task waiting for the token timed out or stopped waiting.
        """
        if self.env is None:
            return False
        try:
            return bool(deliver(self.env.callback_pool_manager))
        except CallbackNotifyConsumerError as exc:
            timed_out = isinstance(exc.callback_consumer_error, CallbackConsumerTimeout)
            raise TaskTokenError(
                "the task waiting for this token "
                + ("timed out" if timed_out else "is no longer waiting")
            ) from exc


def success_delivery(token: str, output_json: str) -> Callable[[Any], bool]:
    """Return the delivery of `SendTaskSuccess` for `is_waiting_for`."""
    outcome = CallbackOutcomeSuccess(callback_id=token, output=output_json)
    return lambda pool: pool.notify(callback_id=token, outcome=outcome)


def failure_delivery(token: str, error: str | None, cause: str | None) -> Callable[[Any], bool]:
    """Return the delivery of `SendTaskFailure` for `is_waiting_for`."""
    outcome = CallbackOutcomeFailure(callback_id=token, error=error, cause=cause)
    return lambda pool: pool.notify(callback_id=token, outcome=outcome)


def activity_start_delivery(token: str, worker_name: str | None) -> Callable[[Any], bool]:
    """Return the delivery of "a worker took this activity task" (GetActivityTask)."""

    def deliver(pool: Any) -> bool:
        endpoint = pool.get(token)
        if not isinstance(endpoint, ActivityCallbackEndpoint) or endpoint.consumer_error:
            return False
        endpoint.notify_activity_task_start(worker_name=worker_name)
        return True

    return deliver


def heartbeat_delivery(token: str) -> Callable[[Any], bool]:
    """Return the delivery of `SendTaskHeartbeat` for `is_waiting_for`."""
    return lambda pool: pool.heartbeat(callback_id=token)


def build_worker(
    host: ExecutionHost,
    *,
    account: str,
    region: str,
    role_arn: str,
    arn: str,
    name: str,
    execution_input: Any,
    start_time: str,
    state_machine_arn: str,
    state_machine_name: str,
    definition: str,
    program: Any,
    on_terminated: Callable[[], None],
) -> EngineWorker:
    """Build the worker of a STANDARD execution of `program`; `worker.start()` runs it."""
    details = EvaluationDetails(
        aws_execution_details=AWSExecutionDetails(
            account=account, region=region, role_arn=role_arn
        ),
        execution_details=ExecutionDetails(
            arn=arn, name=name, role_arn=role_arn, inpt=execution_input, start_time=start_time
        ),
        state_machine_details=StateMachineDetails(
            arn=state_machine_arn,
            name=state_machine_name,
            typ=StateMachineType.STANDARD,
            definition=definition,
        ),
    )
    return EngineWorker(host, details, _Comm(on_terminated), program=program)
