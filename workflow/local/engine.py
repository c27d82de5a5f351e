"""The local Step Functions engine: run an ASL document in-process with local service handlers.

`LocalEngine` runs an ASL document with no AWS account, no boto client, no HTTP and no
`mock_aws`. Task states call Python functions registered per integration::

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
that raise fail like an unhandled Lambda error (error = exception class name); a Lambda
function nobody registered fails its task with `Lambda.ResourceNotFoundException`, as on AWS.
Task states can also be mocked per test case (`workflow.local.mocks`).

A document AWS would refuse (`InvalidDefinition`) is refused before anything runs
(`InvalidDefinitionError`). A FAILED, TIMED_OUT or ABORTED execution can be redriven
(`LocalEngine.redrive`), in this or in a later process (`LocalExecution.to_record()` /
`ExecutionRecord.from_dict()`).

The interpreter is moto 5.2.5's, behind the seam `workflow.local.interpreter` (the only code
that imports moto); its compat check runs when an engine is created.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from workflow.asl_structure import structure_problems
from workflow.local.activities import ActivityStore, ActivityTask
from workflow.local.engine_records import (
    ExecutionRecord,
    history_to_json,
    normalise_event,
    plan_redrive,
)
from workflow.local.engine_registry import HandlerRegistry
from workflow.local.engine_run import LocalExecution
from workflow.local.engine_types import (
    ABORTED,
    FAILED,
    RUNNING,
    SUCCEEDED,
    TIMED_OUT,
    EngineEvent,
    ServiceHandler,
    TaskContext,
    WaitRecord,
    aws_timestamp,
    check_execution_name,
    lambda_function_name,
    parse_service_resource,
)
from workflow.local.errors import (
    EngineCompatError,
    EngineError,
    InvalidDefinitionError,
    RedriveError,
    TaskFailed,
    TaskTokenError,
    UnknownResourceError,
)

if TYPE_CHECKING:
    from workflow.local.mocks import MockTestCase

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
    "InvalidDefinitionError",
    "LocalEngine",
    "LocalExecution",
    "RedriveError",
    "ServiceHandler",
    "TaskContext",
    "TaskFailed",
    "TaskTokenError",
    "UnknownResourceError",
    "WaitRecord",
    "check_execution_name",
    "history_to_json",
    "lambda_function_name",
    "normalise_event",
    "parse_service_resource",
    "plan_redrive",
]

_DEFAULT_ACCOUNT: Final = "123456789012"
_PROGRAM_CACHE_SIZE: Final = 32


class LocalEngine(HandlerRegistry):
    """Runs ASL documents in-process with moto's interpreter and registered local handlers.

    Thread-safe: registrations, executions and task-token calls may come from any thread.

    Args:
        region: Region used in ARNs and `$$` context.
        account_id: Account used in ARNs.
        role_arn: Execution role (only recorded in the history); default derived from account.
        time_scale: Multiplies every engine sleep (Retry backoff, Wait states, `.sync` poll
            interval); 1.0 is real time, tests use e.g. 0.01. Timeouts stay real.
        poll_interval: Seconds between two `poll` calls of a `.sync` task (before scaling).
        s3: The S3 client of the local store (`workflow.local.clients.LocalS3`) a Distributed
            Map's `ItemReader` and `ResultWriter` use; None: such a Map fails when it reads.
    """

    def __init__(
        self,
        *,
        region: str = "us-east-1",
        account_id: str = _DEFAULT_ACCOUNT,
        role_arn: str | None = None,
        time_scale: float = 1.0,
        poll_interval: float = 0.5,
        s3: Any = None,
    ) -> None:
        if time_scale < 0:
            raise ValueError(f"time_scale = {time_scale!r} is negative; use 1.0 for real time")
        if poll_interval <= 0:
            raise ValueError(f"poll_interval = {poll_interval!r} must be > 0 seconds, e.g. 0.5")
        from workflow.local.interpreter.moto_api import check_compat
        from workflow.local.interpreter.patches import apply_engine_patches

        check_compat()
        apply_engine_patches()
        self.region = region
        self.account_id = account_id
        self.role_arn = role_arn or f"arn:aws:iam::{account_id}:role/local-state-machine"
        self.time_scale = time_scale
        self.poll_interval = poll_interval
        self.s3 = s3
        super().__init__()
        self._executions: list[LocalExecution] = []
        self.activities = ActivityStore(region, account_id)
        self._programs: OrderedDict[str, Any] = OrderedDict()

    def check_definition(self, definition: str | Mapping[str, Any]) -> dict[str, Any]:
        """Refuse a document AWS would refuse with `InvalidDefinition`; return it parsed.

        Raises:
            InvalidDefinitionError: The document is not JSON, not an ASL document, or breaks
                the States Language (one sentence per problem, naming the state and field).
        """
        if isinstance(definition, str):
            try:
                document = json.loads(definition)
            except ValueError as exc:
                raise InvalidDefinitionError(
                    [f"the definition is not JSON ({exc}); pass the ASL document as JSON text"]
                ) from exc
        else:
            document = dict(definition)
        if not isinstance(document, dict) or "StartAt" not in document:
            raise InvalidDefinitionError(
                [
                    "the definition has no 'StartAt'; pass a whole ASL document "
                    "({'StartAt': ..., 'States': {...}})"
                ]
            )
        problems = structure_problems(document)
        if problems:
            raise InvalidDefinitionError(problems)
        return document

    def parse(self, definition: str | Mapping[str, Any]) -> Any:
        """Check a definition as AWS does at creation and parse it; return the program.

        A Task resource with no local handler is not refused here: like a missing Lambda
        function on AWS, it fails its task when (and only if) the execution reaches it.

        Raises:
            InvalidDefinitionError: The document is not valid ASL.
        """
        text = definition if isinstance(definition, str) else json.dumps(definition)
        self.check_definition(text)
        return self._program(text)

    def _program(self, text: str) -> Any:
        from workflow.local.interpreter.worker import parse_program

        with self._lock:
            cached = self._programs.get(text)
            if cached is not None:
                self._programs.move_to_end(text)
                return cached
        try:
            program = parse_program(text)
        except Exception as exc:
            raise InvalidDefinitionError([f"the interpreter cannot parse it: {exc}"]) from exc
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
        mocks: MockTestCase | None = None,
    ) -> LocalExecution:
        """Start an execution and return it at once (it runs in background threads).

        Args:
            definition: The ASL document, as a dict or JSON text.
            input: The execution input (JSON-serialisable); default `{}`.
            name: The execution name; default a UUID.
            state_machine_name: Used in the ARNs and `$$.StateMachine.Name`.
            redrive_from: Redrive this execution instead (see `redrive`); the other arguments
                must then be left out or equal the record's.
            mocks: Mocked Task responses of one test case (`workflow.local.mocks`).

        Raises:
            InvalidDefinitionError: The definition is not valid ASL.
            EngineError: The name is not valid, or the input is not JSON.
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
        start_time = aws_timestamp(dt.datetime.now(tz=dt.timezone.utc))
        execution = LocalExecution(
            self,
            name=name or str(uuid.uuid4()),
            state_machine_name=state_machine_name,
            definition=text,
            execution_input=copy.deepcopy(execution_input),
            start_time=start_time,
            plan=None,
            mocks=mocks,
        )
        with self._lock:
            if any(e.arn == execution.arn and not e.done for e in self._executions):
                raise EngineError(
                    f"an execution named {execution.name!r} is already running; "
                    "pick another name or leave name out"
                )
            self._executions.append(execution)
        execution.start(program)
        return execution

    def redrive(self, execution: LocalExecution | ExecutionRecord) -> LocalExecution:
        """Resume a FAILED, TIMED_OUT or ABORTED execution from its unsuccessful step.

        AWS RedriveExecution semantics: the states that succeeded are not run again; the
        top-level state that did not finish restarts with the input it had. If it is a Map or
        Parallel, only its iterations and branches that failed (or never started) run again,
        each from the state it did not finish, with that state's input; the others keep their
        recorded outputs and add no events. Task invocations that succeeded inside a restarted
        state nested deeper (a Map in a Map) are replayed from the history (same state and
        parameters). The redrive keeps the name, ARN, input and `$$.Execution.StartTime`; its
        history continues the previous one after an `ExecutionRedriven` event.

        Args:
            execution: A finished execution of this process, or a record saved by an earlier
                one (`LocalExecution.to_record()`, `ExecutionRecord.from_dict()`).

        Raises:
            RedriveError: The execution is not FAILED, TIMED_OUT or ABORTED.
        """
        record = execution.to_record() if isinstance(execution, LocalExecution) else execution
        plan = plan_redrive(record)
        # AWS checks the document as deployed; the restart point is ours.
        self.check_definition(record.definition)
        program = self._program(
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
        redriven.start(program)
        return redriven

    @property
    def executions(self) -> list[LocalExecution]:
        """Every execution started by this engine, oldest first."""
        with self._lock:
            return list(self._executions)

    # Task tokens ------------------------------------------------------------------------
    def _notify(self, token: str, deliver: Callable[[Any], bool]) -> None:
        with self._lock:
            workers = [e.worker for e in self._executions if not e.done]
        for worker in workers:
            if worker is None:
                continue
            try:
                if worker.is_waiting_for(deliver):
                    return
            except TaskTokenError as exc:
                raise TaskTokenError(f"token {token[:12]}...: {exc}") from exc
        raise TaskTokenError(
            f"no running task waits for token {token[:12]}...; it was already answered, "
            "timed out, or its execution ended"
        )

    def send_task_success(self, token: str, output: Any) -> None:
        """Complete the `.waitForTaskToken` task waiting on `token` with `output` (JSON value).

        Raises:
            TaskTokenError: No running task waits for this token.
        """
        from workflow.local.interpreter.worker import success_delivery

        self._notify(token, success_delivery(token, json.dumps(output)))

    def send_task_failure(
        self, token: str, error: str | None = None, cause: str | None = None
    ) -> None:
        """Fail the task waiting on `token` with `error` (catchable by name) and `cause`.

        Raises:
            TaskTokenError: No running task waits for this token.
        """
        from workflow.local.interpreter.worker import failure_delivery

        self._notify(token, failure_delivery(token, error, cause))

    def get_activity_task(
        self, activity_arn: str, worker_name: str | None = None, timeout: float = 60.0
    ) -> ActivityTask | None:
        """Hand a worker the oldest task of an activity (GetActivityTask), waiting up to `timeout`.

        Returns:
            The task (its token and its JSON input), or None when no task came in time.
        Raises:
            ActivityError: `activity_arn` is not an activity ARN, or no such activity exists.
        """
        from workflow.local.interpreter.worker import activity_start_delivery

        def start(task: ActivityTask) -> bool:
            try:
                self._notify(task.token, activity_start_delivery(task.token, worker_name))
            except TaskTokenError:
                return False  # its task timed out or its execution ended: take the next one
            return True

        return self.activities.poll(activity_arn, start, timeout)

    def send_task_heartbeat(self, token: str) -> None:
        """Report that the task waiting on `token` is alive (resets `HeartbeatSeconds`).

        Raises:
            TaskTokenError: No running task waits for this token.
        """
        from workflow.local.interpreter.worker import heartbeat_delivery

        self._notify(token, heartbeat_delivery(token))
