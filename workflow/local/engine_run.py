"""One execution of a `LocalEngine`: `LocalExecution`, and `ExecutionRun`, the engine side of it.

`ExecutionRun` is the `ExecutionHost` the interpreter seam calls back for one execution
attempt: the handler and mock lookups, redrive replays, the engine's sleeps and the history
events. It imports no moto name.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from workflow.local.engine_records import (
    ExecutionRecord,
    RedrivePlan,
    canonical,
    copy_json,
    normalise_event,
    state_event_name,
)
from workflow.local.engine_types import (
    ABORTED,
    RUNNING,
    SUCCEEDED,
    EngineEvent,
    LambdaFn,
    ServiceHandler,
    TaskContext,
    WaitRecord,
)

if TYPE_CHECKING:
    from workflow.local.engine import LocalEngine
    from workflow.local.interpreter.worker import EngineWorker
    from workflow.local.mocks import MockedResponse, MockTestCase


class ExecutionRun:
    """Engine-side state of one execution attempt; the seam's `ExecutionHost`."""

    def __init__(
        self,
        engine: LocalEngine,
        arn: str,
        name: str,
        plan: RedrivePlan | None = None,
        mocks: MockTestCase | None = None,
    ) -> None:
        self.engine = engine
        self.arn = arn
        self.name = name
        self.plan = plan
        self.mocks = mocks
        self.waits: list[WaitRecord] = []
        self._lock = threading.Lock()
        self._entered: dict[str, list[dt.datetime]] = {}
        self._started: dt.datetime | None = None
        self.id_offset = len(plan.prefix) if plan else 0

    # ExecutionHost ---------------------------------------------------------------------
    @property
    def poll_interval(self) -> float:
        """Seconds between two `poll` calls of a `.sync` task (scaled)."""
        return self.engine.poll_interval * self.engine.time_scale

    @property
    def activity_store(self) -> Any:
        """The engine's activities (where activity Task states schedule their tasks)."""
        return self.engine.activities

    @property
    def restart_input(self) -> tuple[bool, Any]:
        """(True, input) when this attempt is a redrive restarting a state."""
        return (True, self.plan.state_input) if self.plan is not None else (False, None)

    def task_context(
        self, context: dict[str, Any], resource: str, is_running: Callable[[], bool]
    ) -> TaskContext:
        """Return the `TaskContext` of the task the context object describes."""
        task = context.get("Task") or {}
        return TaskContext(
            execution_arn=context["Execution"]["Id"],
            execution_name=context["Execution"]["Name"],
            execution_input=copy.deepcopy(context["Execution"]["Input"]),
            state_name=context["State"]["Name"],
            resource=resource,
            retry_count=int(context["State"].get("RetryCount", 0)),
            task_token=task.get("Token"),
            _is_running=is_running,
        )

    def service_handler(self, service: str, action: str) -> ServiceHandler | None:
        """Return the engine's handler of (service, action)."""
        return self.engine.service_handler(service, action)

    def lambda_function(self, reference: str) -> LambdaFn | None:
        """Return the engine's function for a Lambda name or ARN."""
        return self.engine.lambda_function(reference)

    def mocked_response(self, state_name: str, attempt: int) -> MockedResponse | None:
        """Return the mocked response of this state's attempt, if a test case mocks it."""
        return self.mocks.response(state_name, attempt) if self.mocks is not None else None

    def start_child(
        self, definition: str, child_input: Any, state_machine_name: str
    ) -> LocalExecution:
        """Start a Distributed Map child execution (same engine and mocks)."""
        return self.engine.start_execution(
            definition, child_input, state_machine_name=state_machine_name, mocks=self.mocks
        )

    @property
    def s3(self) -> Any:
        """The engine's S3 client on the local store, or None."""
        return self.engine.s3

    def prepare(self, definition: str) -> None:
        """Refuse, before it runs, a definition AWS would refuse (served API path)."""
        self.engine.check_definition(definition)

    def replay(self, state_name: str, kind: str, parameters: Any) -> tuple[bool, Any]:
        """Return (True, output) when a redrive replays this successful invocation."""
        if self.plan is None or not self.plan.replays:
            return False, None
        key = (state_name, kind, canonical(parameters))
        with self._lock:
            queue = self.plan.replays.get(key)
            if not queue:
                return False, None
            return True, copy.deepcopy(queue.popleft())

    def redriven_iteration(self, map_name: str, index: int) -> tuple[bool, Any]:
        """Return (True, output) for an iteration of the redriven Map that succeeded before."""
        plan = self.plan
        if plan is None or map_name != plan.start_at or index not in plan.iterations:
            return False, None
        return True, copy.deepcopy(plan.iterations[index])

    def resumed_iteration(self, map_name: str, index: int) -> tuple[str, Any] | None:
        """Return (state, input) where a failed iteration of the redriven Map continues."""
        plan = self.plan
        if plan is None or map_name != plan.start_at:
            return None
        point = plan.iteration_resumes.get(index)
        return None if point is None else (point[0], copy.deepcopy(point[1]))

    def resumed_branch(self, start_at: str) -> tuple[str, Any] | None:
        """Return (state, input) where a failed branch of the redriven Parallel continues."""
        point = self.plan.branch_resumes.get(start_at) if self.plan is not None else None
        return None if point is None else (point[0], copy.deepcopy(point[1]))

    def redriven_branch(self, start_at: str) -> tuple[bool, Any]:
        """Return (True, output) for a branch of the redriven Parallel that succeeded before."""
        plan = self.plan
        if plan is None or start_at not in plan.branches:
            return False, None
        return True, copy.deepcopy(plan.branches[start_at])

    def sleep(
        self,
        state_name: str,
        seconds: float,
        reason: str,
        is_running: Callable[[], bool],
        wait: Callable[[float], object],
    ) -> None:
        """Record and sleep a Retry backoff or Wait state, scaled, until the run stops."""
        with self._lock:
            self.waits.append(WaitRecord(state_name=state_name, reason=reason, seconds=seconds))
        deadline = time.monotonic() + seconds * self.engine.time_scale
        while is_running():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            wait(remaining)

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
        """Hand a recorded event to the engine's listeners, with state durations."""
        if not self.engine.has_listeners():
            return
        event = self.attempt_event(raw_event)
        name, kind = state_event_name(event)
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
        self.engine.dispatch(EngineEvent(self.arn, self.name, event, name, duration))


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
        plan: RedrivePlan | None,
        mocks: MockTestCase | None = None,
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
        # When StopExecution was asked: an ABORTED execution's stopDate, however long the
        # worker takes to wind down (StopExecution and DescribeExecution give one stopDate).
        self.stop_requested: dt.datetime | None = None
        self.redrive_count = plan.redrive_count if plan else 0
        self._plan = plan
        self._done = threading.Event()
        self.run = ExecutionRun(engine, self.arn, name, plan, mocks)
        self.worker: EngineWorker | None = None

    # Lifecycle ---------------------------------------------------------------------------
    def start(self, program: Any) -> None:
        """Start running `program` (the parsed definition) in background threads."""
        from workflow.local.interpreter import worker

        engine = self.run.engine
        definition = self.definition
        if self._plan is not None:  # restart at the unsuccessful step
            patched = json.loads(definition)
            patched["StartAt"] = self._plan.start_at
            definition = json.dumps(patched)
        self.worker = worker.build_worker(
            self.run,
            account=engine.account_id,
            region=engine.region,
            role_arn=engine.role_arn,
            arn=self.arn,
            name=self.name,
            execution_input=self.input,
            start_time=self.start_time,
            state_machine_arn=self.state_machine_arn,
            state_machine_name=self.state_machine_name,
            definition=definition,
            program=program,
            on_terminated=self._on_terminated,
        )
        self.worker.start()  # type: ignore[no-untyped-call]

    def _on_terminated(self) -> None:
        stop_date = dt.datetime.now(tz=dt.timezone.utc)
        if self.worker is not None:
            self.status, output, self.error, self.cause = self.worker.outcome()
            if self.status == SUCCEEDED:
                self.output = output
        if self.status == ABORTED and self.stop_requested is not None:
            stop_date = self.stop_requested
        self.stop_date = stop_date
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
        worker = self.worker
        if worker is None or self.done:
            return
        worker.env_ready.wait(30)  # a stop right after the start waits for the environment
        if worker.env is None or self.done:
            return
        self.stop_requested = dt.datetime.now(tz=dt.timezone.utc)
        worker.stop(stop_date=self.stop_requested, error=error, cause=cause)

    # Inspection ------------------------------------------------------------------------
    @property
    def waits(self) -> list[WaitRecord]:
        """The Retry backoffs and Wait states slept so far (seconds before `time_scale`)."""
        return list(self.run.waits)

    def history(self) -> list[dict[str, Any]]:
        """Return the execution history, shaped like boto3's `get_execution_history` events.

        A redriven execution's history holds the previous attempts' events, then an
        `ExecutionRedriven` event, then this attempt's events, as on AWS.
        """
        raw = self.worker.raw_history() if self.worker is not None else []
        prefix = [copy_json(e) for e in self._plan.prefix] if self._plan else []
        return prefix + [self.run.attempt_event(event) for event in raw]

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


__all__ = ["ExecutionRun", "LocalExecution"]
