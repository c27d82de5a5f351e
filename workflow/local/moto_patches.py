"""Everything that touches moto 5.2.5's private ASL interpreter API, guarded.

The local engine (`workflow.local.engine`) drives `moto.stepfunctions.parser` (a port of
LocalStack's ASL interpreter) in-process. moto has no public hook for this, so this module owns
every private name the engine uses:

1. **Compat check at import.** `check_compat()` verifies the moto version (pinned to
   `MOTO_VERSION`) and that every private module attribute used below still exists; on failure
   the import raises `EngineCompatError` naming what moved.
2. **Light import.** `moto.batch.utils` (only used by moto's AWS Batch integration, which the
   local engine never runs) pulls in `moto.ec2` (~1 s, ~100 MB). It is stubbed in `sys.modules`
   while the interpreter is imported, then removed.
3. **Guarded patches**, applied once and idempotently by `apply_engine_patches()` (called by the
   engine, never at import). Each one checks the identity of its target first:

   - `factory`: Task states go to `LocalServiceTask` (our handlers) for executions that run
     through a `LocalEngine`; other moto users in the process are unaffected.
   - `lambda`: `lambda:invoke` and `arn:aws:lambda:...:function:NAME` resources call the
     engine's registered Python functions.
   - `nested-states-errors` (moto bug 1): `States.*` errors raised inside a Map iteration or a
     Parallel branch stay catchable by name on the parent; a Fail state whose `Error` (or
     `ErrorPath`) is a `States.*` name, e.g. re-raising a caught `States.TaskFailed`, and
     `SendTaskFailure` with such a name fail with that error instead of `States.Runtime`.
   - `states-all` (bug 2): `States.ALL` does not catch `States.Runtime` or
     `States.DataLimitExceeded`, as AWS documents.
   - `choice-no-match` (bug 3): a Choice with no match and no Default fails with
     `States.NoChoiceMatched`.
   - `sticky-terminal-state`: an error raised while a stopped or timed-out execution winds
     down does not turn ABORTED or TIMED_OUT into FAILED.
   - `retry-sleep`, `wait-sleep`: Retry backoff and Wait states sleep through the engine, so a
     test can scale time and a stopped execution stops sleeping at once.

   `apply_backend_patches()` adds what is needed only when moto's own Step Functions backend
   runs executions (the HTTP server for notebooks): `start-time` (bug 4, a `datetime` leaking
   into `$$.Execution.StartTime`), `unnamed-execution` (bug 5, `StartExecution` without a name)
   and `backend-worker` (served executions run through the engine's worker).
4. **Interruptions.** `LocalServiceTask` polls `.sync` handlers itself and calls the handler's
   `cancel` when the task times out or the execution stops (moto only stops polling, leaving
   the job running); `interrupt_callbacks()` wakes `.waitForTaskToken` waits on stop and on
   the execution timeout (moto keeps them waiting, and the execution RUNNING, forever).

Upgrading moto: change `MOTO_VERSION` and the pins, run `tests/unit/engine` (compat check,
patch guards) and `tests/integration/engine` (the ASL contract suite, which also pins the
unpatched divergences), and fix or drop each patch whose target changed.

Bugs 6-8 of the research (a `$$` path in a `*Path` Choice comparator, escapes inside intrinsic
string literals, `States.Format` rendering of objects) are not patched; see README.
"""

# This module replaces attributes of moto's untyped private modules on purpose.
# mypy: disable-error-code="method-assign,attr-defined,typeddict-item,assignment,no-untyped-call,arg-type,override,unused-ignore,index,dict-item,no-any-return"

from __future__ import annotations

import contextlib
import copy
import json
import logging
import sys
import threading
import time
import types
import uuid
from collections.abc import Callable, Iterator
from typing import Any, Final, Protocol

from workflow.errors import WorkflowError
from workflow.local.interpreter import jsonata

logger = logging.getLogger(__name__)

MOTO_VERSION: Final[str] = "5.2.5"
_PIN_HINT: Final[str] = "pin it with: pip install 'moto[stepfunctions,server]==5.2.5'"
_MOTO_LOGGER: Final[str] = "moto.stepfunctions.parser"


class EngineCompatError(WorkflowError):
    """The installed moto does not provide the private ASL interpreter API the engine uses."""

    exit_code = 2


class TaskFailed(Exception):
    """Raise from a service handler or Lambda function to fail the Task with an ASL error.

    The error name is what `Retry`/`Catch` match on (`States.TaskFailed`, `SageMaker.X`, ...).

    Args:
        error: The ASL error name, e.g. ``"SageMaker.ResourceNotFound"``.
        cause: The error cause (AWS puts the Describe* JSON here for failed `.sync` jobs).
    """

    def __init__(self, error: str, cause: str = "") -> None:
        super().__init__(f"{error}: {cause}" if cause else error)
        self.error = error
        self.cause = cause


# --------------------------------------------------------------------------------------------
# 1 + 2. Light import of the interpreter and the compat check
# --------------------------------------------------------------------------------------------


class _BatchJobStatus:
    """Stand-in for `moto.batch.utils.JobStatus` (only read by moto's Batch integration)."""

    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


@contextlib.contextmanager
def _light_import() -> Iterator[None]:
    name = "moto.batch.utils"
    if name in sys.modules:
        yield
        return
    stub = types.ModuleType(name)
    stub.JobStatus = _BatchJobStatus  # type: ignore[attr-defined]
    sys.modules[name] = stub
    try:
        yield
    finally:
        if sys.modules.get(name) is stub:
            del sys.modules[name]


with _light_import():
    try:
        import moto
        from botocore.exceptions import ClientError
        from moto.stepfunctions.parser import utils as moto_utils
        from moto.stepfunctions.parser.api import (
            ExecutionFailedEventDetails,
            ExecutionStartedEventDetails,
            HistoryEventExecutionDataDetails,
            HistoryEventType,
            StateMachineType,
            TaskFailedEventDetails,
            TaskSubmittedEventDetails,
        )
        from moto.stepfunctions.parser.asl.component.common.error_name import (
            error_equals_decl,
        )
        from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import (
            CustomErrorName,
        )
        from moto.stepfunctions.parser.asl.component.common.error_name.error_name import (
            ErrorName,
        )
        from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
            FailureEvent,
            FailureEventException,
        )
        from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
            StatesErrorName,
        )
        from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
            StatesErrorNameType,
        )
        from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
        from moto.stepfunctions.parser.asl.component.state.choice import state_choice
        from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import (
            iteration_worker,
        )
        from moto.stepfunctions.parser.asl.component.state.exec.state_parallel import (
            branches_decl,
        )
        from moto.stepfunctions.parser.asl.component.state.exec.state_task import (
            lambda_eval_utils,
            state_task_factory,
        )
        from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import (
            ResourceCondition,
        )
        from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (
            StateTaskService,
        )
        from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
            StateTaskServiceCallback,
        )
        from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_lambda import (
            StateTaskServiceLambda,
        )
        from moto.stepfunctions.parser.asl.component.state.wait.wait_function import (
            wait_function,
        )
        from moto.stepfunctions.parser.asl.eval.callback.callback import (
            CallbackConsumerTimeout,
            CallbackNotifyConsumerError,
            CallbackOutcomeFailure,
            CallbackOutcomeSuccess,
            CallbackPoolManager,
        )
        from moto.stepfunctions.parser.asl.eval.environment import Environment
        from moto.stepfunctions.parser.asl.eval.evaluation_details import (
            AWSExecutionDetails,
            EvaluationDetails,
            ExecutionDetails,
            StateMachineDetails,
        )
        from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
        from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager
        from moto.stepfunctions.parser.asl.eval.program_state import (
            ProgramEnded,
            ProgramError,
            ProgramStopped,
            ProgramTimedOut,
        )
        from moto.stepfunctions.parser.asl.parse.asl_parser import (
            AmazonStateLanguageParser,
            ASLParserException,
        )
        from moto.stepfunctions.parser.asl.utils.encoding import to_json_str
        from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
        from moto.stepfunctions.parser.backend.execution_worker_comm import (
            ExecutionWorkerCommunication,
        )
    except ImportError as _exc:  # pragma: no cover - exercised only with another moto
        raise EngineCompatError(
            f"the local ASL engine cannot import moto's interpreter ({_exc}); it needs "
            f"moto=={MOTO_VERSION} exactly: {_PIN_HINT}"
        ) from _exc

# (owner, attribute) pairs the engine reads or replaces; checked by check_compat().
_PRIVATE_SURFACE: Final[tuple[tuple[object, str], ...]] = (
    (state_task_factory, "state_task_service_for"),
    (lambda_eval_utils, "execute_lambda_function_integration"),
    (lambda_eval_utils, "LambdaFunctionErrorException"),
    (branches_decl, "CustomErrorName"),
    (iteration_worker, "CustomErrorName"),
    (error_equals_decl.ErrorEqualsDecl, "_eval_body"),
    (error_equals_decl.ErrorEqualsDecl, "_STATE_ALL_ERROR"),
    (state_choice.StateChoice, "_eval_state"),
    (retrier_decl.RetrierDecl, "_eval_body"),
    (wait_function.WaitFunction, "_wait_interval"),
    (moto_utils, "TMP_THREADS"),
    (StateTaskServiceCallback, "_eval_service_task"),
    (StateTaskServiceCallback, "_build_sync_resolver"),
    (StateTaskServiceCallback, "_eval_sync"),
    (StateTaskServiceCallback, "_from_error"),
    (StateTaskServiceCallback, "_get_sfn_resource"),
    (StateTaskServiceCallback, "_get_sfn_resource_type"),
    (StateTaskServiceCallback, "_after_eval_execution"),
    (StateTaskServiceCallback, "_eval_integration_pattern"),
    (StateTaskServiceCallback, "_is_integration_pattern"),
    (StateTaskService, "_get_supported_parameters"),
    (StateTaskService, "_after_eval_execution"),
    (ExecutionWorker, "_execution_logic"),
    (ExecutionWorker, "_get_evaluation_environment"),
    (ExecutionWorker, "stop"),
    (Environment, "program_state"),
    (Environment, "is_running"),
    (Environment, "set_error"),
    (EventManager, "add_event"),
    (EventManager, "get_event_history"),
    (StatesErrorNameType, "StatesNoChoiceMatched"),
    (StatesErrorNameType, "StatesRuntime"),
    (StatesErrorNameType, "StatesStatesDataLimitExceeded"),
    (AmazonStateLanguageParser, "parse"),
)


def _instance_attributes() -> list[str]:
    problems = []
    if not hasattr(CallbackPoolManager(activity_store={}), "_pool"):
        problems.append("CallbackPoolManager._pool is missing")
    if not hasattr(EventManager(), "_history_event_list"):
        problems.append("EventManager._history_event_list is missing")
    return problems


def check_compat() -> None:
    """Verify that the installed moto provides the private interpreter API the engine uses.

    Raises:
        EngineCompatError: The moto version is not `MOTO_VERSION`, or a private name moved.
    """
    problems: list[str] = []
    if moto.__version__ != MOTO_VERSION:
        problems.append(f"moto is {moto.__version__}, the engine is tested with {MOTO_VERSION}")
    for owner, attribute in _PRIVATE_SURFACE:
        if not hasattr(owner, attribute):
            owner_name = getattr(owner, "__name__", repr(owner))
            problems.append(f"{owner_name}.{attribute} is missing")
    problems += _instance_attributes()
    if problems:
        raise EngineCompatError(
            "the local ASL engine relies on private moto internals that changed ("
            + "; ".join(problems)
            + f"); {_PIN_HINT}, and run tests/integration/engine before upgrading"
        )


check_compat()


# --------------------------------------------------------------------------------------------
# The host interface: what the patched interpreter asks of the engine for one execution
# --------------------------------------------------------------------------------------------


class ServiceHandlerLike(Protocol):
    """A registered service integration (see `workflow.local.engine.ServiceHandler`)."""

    @property
    def start(self) -> Callable[[dict[str, Any], Any], Any]:
        """`start(params, ctx)`."""

    @property
    def poll(self) -> Callable[[Any, Any], Any] | None:
        """`poll(submitted, ctx)` for `.sync`."""

    @property
    def cancel(self) -> Callable[[Any, Any], None] | None:
        """`cancel(submitted, ctx)`."""


class ExecutionHost(Protocol):
    """The engine side of one running execution, looked up by execution ARN."""

    def task_context(self, env: Environment, resource_arn: str) -> Any:
        """Return the `TaskContext` handed to handlers for the task now running in `env`."""

    def service_handler(self, service: str, action: str) -> ServiceHandlerLike | None:
        """Return the handler registered for (service, action), or None."""

    def lambda_function(self, reference: str) -> Callable[[Any, Any], Any] | None:
        """Return the Python function registered for a Lambda name or ARN, or None."""

    def replay(self, state_name: str, kind: str, parameters: Any) -> tuple[bool, Any]:
        """Return (True, recorded output) when a redrive replays this task invocation.

        `kind` is ``"task"`` (TaskScheduled parameters) or ``"lambda"`` (a Lambda function ARN
        used as the resource: LambdaFunctionScheduled input).
        """

    def sleep(self, env: Environment, seconds: float, reason: str) -> None:
        """Sleep for a Retry backoff or Wait state, interruptibly, with the engine's scale."""

    @property
    def poll_interval(self) -> float:
        """Seconds between two `poll` calls of a `.sync` task (scaled)."""


_HOSTS: dict[str, ExecutionHost] = {}
_HOSTS_LOCK = threading.Lock()
_PARSING = threading.local()


def bind_host(execution_arn: str, host: ExecutionHost) -> None:
    """Route the Task states of the execution `execution_arn` to `host`."""
    with _HOSTS_LOCK:
        _HOSTS[execution_arn] = host


def unbind_host(execution_arn: str) -> None:
    """Forget the host of a finished execution."""
    with _HOSTS_LOCK:
        _HOSTS.pop(execution_arn, None)


def host_for(env: Environment) -> ExecutionHost | None:
    """Return the host of the execution `env` belongs to (None: not a local-engine run)."""
    arn = env.states.context_object.context_object_data["Execution"]["Id"]
    with _HOSTS_LOCK:
        return _HOSTS.get(arn)


@contextlib.contextmanager
def parsing_for_engine() -> Iterator[None]:
    """Mark the current thread as parsing a definition for a local-engine execution."""
    previous = getattr(_PARSING, "active", False)
    _PARSING.active = True
    try:
        yield
    finally:
        _PARSING.active = previous


def prune_threads() -> None:
    """Drop finished threads from moto's `TMP_THREADS` list, which moto never clears."""
    threads = moto_utils.TMP_THREADS
    threads[:] = [thread for thread in threads if thread.is_alive()]


def interrupt_callbacks(env: Environment) -> None:
    """Wake every task of the execution that waits for a task token or a heartbeat.

    moto's token wait ignores StopExecution and the execution timeout (it waits up to
    99999999 s), which leaves the execution RUNNING forever; woken, the wait ends as a timeout
    that the stopped execution no longer records.
    """
    for endpoint in list(env.callback_pool_manager._pool.values()):
        endpoint.interrupt_all()


def silence_moto_logs() -> None:
    """Stop moto logging every ASL failure at ERROR with a full component repr."""
    logging.getLogger(_MOTO_LOGGER).setLevel(logging.CRITICAL)


# --------------------------------------------------------------------------------------------
# Error naming
# --------------------------------------------------------------------------------------------


def error_name_for(error_name: Any) -> ErrorName:
    """Return moto's ErrorName for an error string, keeping `States.*` names catchable.

    moto wraps every name in `CustomErrorName`, which raises `ValueError` for names that start
    with `States.` (bug 1); known `States.*` names become `StatesErrorName`, other names a plain
    `ErrorName`.
    """
    if isinstance(error_name, str) and error_name.startswith("States."):
        try:
            return StatesErrorName.from_name(error_name)
        except ValueError:
            return ErrorName(error_name=error_name)
    return CustomErrorName(error_name=error_name)


_SDK_ERROR_PREFIXES: Final[dict[str, str]] = {
    "sagemaker": "SageMaker",
    "ssm": "Ssm",
    "s3": "S3",
    "sns": "Sns",
    "sqs": "Sqs",
    "codebuild": "CodeBuild",
    "lambda": "Lambda",
    "ecr": "Ecr",
    "dynamodb": "DynamoDb",
    "sfn": "Sfn",
    "secretsmanager": "SecretsManager",
    "cloudwatch": "CloudWatch",
}


def client_error_name(service: str, code: str, *, sdk: bool) -> str:
    """Name a botocore `ClientError` the way Step Functions does.

    Args:
        service: The API name (`sagemaker`, `ssm`, ...).
        code: The error code of the response (`ResourceNotFound`, `ValidationException`).
        sdk: True for `aws-sdk:*` integrations, whose names end in `Exception`.

    Returns:
        For example `SageMaker.ResourceNotFound` or `Ssm.ParameterNotFoundException`.
    """
    prefix = _SDK_ERROR_PREFIXES.get(service.lower(), service[:1].upper() + service[1:])
    name = f"{prefix}.{code}"
    if sdk and not name.endswith("Exception"):
        name += "Exception"
    return name


# --------------------------------------------------------------------------------------------
# The Task state that runs local handlers
# --------------------------------------------------------------------------------------------


class _Replayed:
    """Marker pushed on the stack for a task invocation replayed by a redrive."""

    def __init__(self, output: Any) -> None:
        self.output = output


def service_key(resource: Any) -> tuple[str, str]:
    """Return the registry key (service, action) of a moto `ServiceResource`."""
    if resource.service_name == "aws-sdk":
        return f"aws-sdk:{resource.api_name}", resource.api_action
    return resource.service_name, resource.api_action


def _state_name(env: Environment) -> str:
    return str(env.states.context_object.context_object_data["State"]["Name"])


def _lambda_parameters_key(parameters: dict[str, Any]) -> dict[str, Any]:
    # The TaskScheduled event records the Payload as JSON; the normalised request holds bytes.
    key = dict(parameters)
    payload = key.get("Payload")
    if isinstance(payload, bytes):
        key["Payload"] = json.loads(payload) if payload else None
    return key


class _TaskCompletion:
    """The end of a Task evaluation: replayed results, and no success after an interruption.

    This is moto's `StateTaskServiceCallback._after_eval_execution` with two changes: a result
    replayed by a redrive skips the integration pattern, and when the integration pattern was
    interrupted (the task timed out, or the execution stopped or timed out) no `TaskSucceeded`
    event is recorded for the `None` moto's wait returns.
    """

    def _after_eval_execution(
        self,
        env: Environment,
        resource_runtime_part: Any,
        normalised_parameters: dict[str, Any],
        state_credentials: Any,
    ) -> None:
        task: Any = self
        output = env.stack[-1]
        if isinstance(output, _Replayed):
            env.stack[-1] = output.output
        elif task._is_integration_pattern():
            env.event_manager.add_event(
                context=env.event_history_context,
                event_type=HistoryEventType.TaskSubmitted,
                event_details=EventDetails(
                    taskSubmittedEventDetails=TaskSubmittedEventDetails(
                        resource=task._get_sfn_resource(),
                        resourceType=task._get_sfn_resource_type(),
                        output=to_json_str(output),
                        outputDetails=HistoryEventExecutionDataDetails(truncated=False),
                    )
                ),
            )
            task._eval_integration_pattern(
                env=env,
                resource_runtime_part=resource_runtime_part,
                normalised_parameters=normalised_parameters,
                state_credentials=state_credentials,
            )
            if not env.is_running():
                return
        StateTaskService._after_eval_execution(
            task, env, resource_runtime_part, normalised_parameters, state_credentials
        )


class LocalLambdaTask(_TaskCompletion, StateTaskServiceLambda):  # type: ignore[misc]
    """`lambda:invoke[.waitForTaskToken]`: moto's integration, replayable by a redrive.

    The invocation itself goes through the patched `execute_lambda_function_integration`.
    """

    def _eval_service_task(
        self,
        env: Environment,
        resource_runtime_part: Any,
        normalised_parameters: dict[str, Any],
        state_credentials: Any,
    ) -> None:
        host = host_for(env)
        if host is not None:
            key = _lambda_parameters_key(normalised_parameters)
            replayed, output = host.replay(_state_name(env), "task", key)
            if replayed:
                env.stack.append(_Replayed(output))
                return
        super()._eval_service_task(
            env, resource_runtime_part, normalised_parameters, state_credentials
        )


class LocalServiceTask(_TaskCompletion, StateTaskServiceCallback):  # type: ignore[misc]
    """An optimized or `aws-sdk` integration that calls the engine's registered handler.

    Plain resources return `start(params, ctx)`. `.sync` resources then call
    `poll(submitted, ctx)` until it returns a dict (or raises `TaskFailed`), and call
    `cancel(submitted, ctx)` if the task times out or the execution stops first.
    `.waitForTaskToken` resources call `start` and wait for the token.
    """

    def __init__(self) -> None:
        super().__init__(
            supported_integration_patterns={
                ResourceCondition.WaitForTaskToken,
                ResourceCondition.Sync,
            }
        )

    def _get_supported_parameters(self) -> set[str]:
        # Not None means "accepted at parse time"; the handler validates its own parameters.
        return set()

    def _get_sfn_resource_type(self) -> str:
        if self.resource.service_name == "aws-sdk":
            return f"aws-sdk:{self.resource.api_name}"
        return str(self.resource.service_name)

    def _host_and_handler(self, env: Environment) -> tuple[ExecutionHost, ServiceHandlerLike]:
        host = host_for(env)
        if host is None:
            raise TaskFailed(
                "States.Runtime",
                f"no local engine runs execution {env.states.context_object.context_object_data['Execution']['Id']}",
            )
        service, action = service_key(self.resource)
        handler = host.service_handler(service, action)
        if handler is None:
            raise TaskFailed(
                "States.Runtime",
                f"no local handler is registered for {service}:{action} "
                f"(resource {self.resource.resource_arn})",
            )
        return host, handler

    def _eval_service_task(
        self,
        env: Environment,
        resource_runtime_part: Any,
        normalised_parameters: dict[str, Any],
        state_credentials: Any,
    ) -> None:
        host, handler = self._host_and_handler(env)
        replayed, output = host.replay(_state_name(env), "task", normalised_parameters)
        if replayed:
            env.stack.append(_Replayed(output))
            return
        ctx = host.task_context(env, self.resource.resource_arn)
        result = _call_handler(handler.start, normalised_parameters, ctx)
        env.stack.append({} if result is None else result)

    def _build_sync_resolver(
        self,
        env: Environment,
        resource_runtime_part: Any,
        normalised_parameters: dict[str, Any],
        state_credentials: Any,
    ) -> Callable[[], Any]:
        submitted = env.stack.pop()
        host, handler = self._host_and_handler(env)
        ctx = host.task_context(env, self.resource.resource_arn)
        poll = handler.poll
        if poll is None:
            raise TaskFailed(
                "States.Runtime",
                f"the local handler for {self.resource.resource_arn} has no poll function, "
                "so it cannot run as .sync",
            )

        def resolve() -> Any:
            return _call_handler(poll, submitted, ctx)

        def cancel() -> None:
            if handler.cancel is not None:
                handler.cancel(submitted, ctx)

        resolve.cancel = cancel  # type: ignore[attr-defined]
        resolve.interval = host.poll_interval  # type: ignore[attr-defined]
        return resolve

    def _eval_sync(
        self,
        env: Environment,
        sync_resolver: Callable[[], Any],
        timeout_seconds: int | None,
        callback_endpoint: Any,
        heartbeat_endpoint: Any,
    ) -> Any:
        # Same loop as moto's, but the interval is the engine's, the wait is interruptible,
        # and a job still running when the task times out or the execution stops is cancelled
        # (moto only stops polling, leaving the job running).
        interval: float = getattr(sync_resolver, "interval", 0.5)
        result: Any = None
        while env.is_running():
            result = sync_resolver()
            if result:
                return result
            env.program_state_event.wait(interval)
        cancel = getattr(sync_resolver, "cancel", None)
        if cancel is not None:
            try:
                cancel()
            except Exception:
                logger.exception("cancelling the local job of %s failed", self.resource)
        return result

    def _from_error(self, env: Environment, ex: Exception) -> FailureEvent:
        if isinstance(ex, TaskFailed):
            return _task_failed_event(self, env, ex.error, ex.cause)
        if isinstance(ex, ClientError):
            error = ex.response.get("Error", {})
            name = client_error_name(
                self.resource.api_name,
                str(error.get("Code", "Exception")),
                sdk=self.resource.service_name == "aws-sdk",
            )
            return _task_failed_event(self, env, name, str(error.get("Message", ex)))
        return super()._from_error(env=env, ex=ex)


def _call_handler(fn: Callable[[Any, Any], Any], argument: Any, ctx: Any) -> Any:
    try:
        return fn(argument, ctx)
    except (TaskFailed, ClientError):
        raise
    except Exception as exc:
        logger.debug("local handler %r raised", fn, exc_info=True)
        raise TaskFailed("States.TaskFailed", f"{type(exc).__name__}: {exc}") from exc


def _task_failed_event(task: Any, env: Environment, error: str, cause: str) -> FailureEvent:
    return FailureEvent(
        env=env,
        error_name=error_name_for(error),
        event_type=HistoryEventType.TaskFailed,
        event_details=EventDetails(
            taskFailedEventDetails=TaskFailedEventDetails(
                error=error,
                cause=cause,
                resource=task._get_sfn_resource(),
                resourceType=task._get_sfn_resource_type(),
            )
        ),
    )


# --------------------------------------------------------------------------------------------
# 3. The guarded patches
# --------------------------------------------------------------------------------------------

_ORIGINALS: dict[str, Any] = {}
_APPLIED: set[str] = set()
_APPLY_LOCK = threading.Lock()


def _expect(condition: bool, target: str) -> None:
    if not condition:
        raise EngineCompatError(
            f"cannot patch moto's {target}: it is not the function moto {MOTO_VERSION} ships "
            f"(another patch or another moto version); {_PIN_HINT}"
        )


def _patch_factory() -> None:
    original = state_task_factory.state_task_service_for
    _expect(
        getattr(original, "__module__", "").endswith("state_task_service_factory"),
        "state_task_factory.state_task_service_for",
    )
    _ORIGINALS["factory"] = original

    def state_task_service_for(service_name: str) -> Any:
        # Executions driven by a LocalEngine are parsed with the thread flag set.
        if getattr(_PARSING, "active", False):
            return LocalLambdaTask() if service_name == "lambda" else LocalServiceTask()
        return original(service_name=service_name)

    state_task_factory.state_task_service_for = state_task_service_for


def _patch_lambda() -> None:
    original = lambda_eval_utils.execute_lambda_function_integration
    _expect(
        original.__module__ == lambda_eval_utils.__name__,
        "lambda_eval_utils.execute_lambda_function_integration",
    )
    _ORIGINALS["lambda"] = original

    def execute_lambda_function_integration(
        env: Environment, parameters: dict[str, Any], region: str, state_credentials: Any
    ) -> None:
        host = host_for(env)
        if host is None:
            original(
                env=env, parameters=parameters, region=region, state_credentials=state_credentials
            )
            return
        _invoke_local_lambda(host, env, parameters)

    lambda_eval_utils.execute_lambda_function_integration = execute_lambda_function_integration


def _invoke_local_lambda(host: ExecutionHost, env: Environment, parameters: dict[str, Any]) -> None:
    reference = str(parameters.get("FunctionName", ""))
    raw = parameters.get("Payload")
    payload = json.loads(raw) if raw else {}
    replayed, output = host.replay(
        _state_name(env), "lambda", {"FunctionName": reference, "Payload": payload}
    )
    if replayed:
        output = {"Payload": output, "StatusCode": 200}
    else:
        fn = host.lambda_function(reference)
        if fn is None:
            raise ClientError(
                {
                    "Error": {
                        "Code": "ResourceNotFoundException",
                        "Message": f"Function not found: {reference} (no local function is "
                        "registered under this name or ARN)",
                    },
                    "ResponseMetadata": {"HTTPStatusCode": 404, "RequestId": str(uuid.uuid4())},
                },
                "Invoke",
            )
        ctx = host.task_context(env, reference)
        try:
            result = fn(copy.deepcopy(payload), ctx)
        except TaskFailed as exc:
            body = {"errorType": exc.error, "errorMessage": exc.cause}
            raise lambda_eval_utils.LambdaFunctionErrorException(
                "Unhandled", json.dumps(body)
            ) from exc
        except Exception as exc:
            import traceback

            body = {
                "errorMessage": str(exc),
                "errorType": type(exc).__name__,
                "stackTrace": traceback.format_tb(exc.__traceback__),
            }
            raise lambda_eval_utils.LambdaFunctionErrorException(
                "Unhandled", json.dumps(body)
            ) from exc
        # Round-trip through JSON, as the Lambda service does with the returned value.
        try:
            returned = json.loads(json.dumps(result))
        except (TypeError, ValueError) as exc:
            body = {
                "errorMessage": f"Unable to marshal response: {exc}",
                "errorType": "Runtime.MarshalError",
            }
            raise lambda_eval_utils.LambdaFunctionErrorException(
                "Unhandled", json.dumps(body)
            ) from exc
        output = {
            "ExecutedVersion": "$LATEST",
            "Payload": returned,
            "SdkHttpMetadata": {
                "HttpHeaders": {"X-Amz-Executed-Version": "$LATEST"},
                "HttpStatusCode": 200,
            },
            "SdkResponseMetadata": {"RequestId": str(uuid.uuid4())},
            "StatusCode": 200,
        }
    env.stack.append(output)


def _patch_nested_states_errors() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_callback,
    )
    from moto.stepfunctions.parser.asl.component.state.fail import state_fail

    modules = (branches_decl, iteration_worker, state_fail, state_task_service_callback)
    for module in modules:
        _expect(module.CustomErrorName is CustomErrorName, f"{module.__name__}.CustomErrorName")
    for module in modules:
        module.CustomErrorName = error_name_for


def _patch_states_all() -> None:
    cls = error_equals_decl.ErrorEqualsDecl
    original = cls._eval_body
    _expect(original.__module__ == error_equals_decl.__name__, "ErrorEqualsDecl._eval_body")
    terminal = {
        StatesErrorNameType.StatesRuntime,
        StatesErrorNameType.StatesStatesDataLimitExceeded,
    }

    def _eval_body(self: Any, env: Environment) -> None:
        # AWS: States.ALL "cannot catch the States.DataLimitExceeded terminal error or Runtime
        # error types"; an explicit ErrorEquals ["States.Runtime"] still matches.
        error_name = env.stack[-1]
        if (
            isinstance(error_name, StatesErrorName)
            and error_name.typ in terminal
            and cls._STATE_ALL_ERROR in self.error_names
        ):
            env.stack.pop()
            env.stack.append(False)
            return
        original(self, env)

    cls._eval_body = _eval_body


def _patch_choice_no_match() -> None:
    cls = state_choice.StateChoice
    original = cls._eval_state
    _expect(original.__module__ == state_choice.__name__, "StateChoice._eval_state")

    def _eval_state(self: Any, env: Environment) -> None:
        try:
            original(self, env)
        except RuntimeError as exc:
            if not (exc.args and str(exc.args[0]).startswith("No branching option")):
                raise
            raise FailureEventException(
                FailureEvent(
                    env=env,
                    error_name=StatesErrorName(typ=StatesErrorNameType.StatesNoChoiceMatched),
                    event_type=HistoryEventType.ExecutionFailed,
                    event_details=EventDetails(
                        executionFailedEventDetails=ExecutionFailedEventDetails(
                            error="States.NoChoiceMatched",
                            cause=f"No Choice Rule matched and no Default in state '{self.name}'.",
                        )
                    ),
                )
            ) from exc

    cls._eval_state = _eval_state


def _patch_sticky_terminal_state() -> None:
    original = Environment.set_error
    _expect(original.__module__ == Environment.__module__, "Environment.set_error")

    def set_error(self: Any, error: Any) -> None:
        # An error raised while a stopped or timed-out execution winds down (e.g. a result
        # selector applied to the None an interrupted wait returns) must not turn ABORTED or
        # TIMED_OUT into FAILED.
        if isinstance(self._program_state, (ProgramStopped, ProgramTimedOut)) and (
            host_for(self) is not None
        ):
            return
        original(self, error)

    Environment.set_error = set_error


def _patch_retry_sleep() -> None:
    cls = retrier_decl.RetrierDecl
    original = cls._eval_body
    _expect(original.__module__ == retrier_decl.__name__, "RetrierDecl._eval_body")
    outcome = retrier_decl.RetrierOutcome
    exhausted = retrier_decl.MaxAttemptsOutcome.EXHAUSTED

    def _eval_body(self: Any, env: Environment) -> None:
        host = host_for(env)
        if host is None:
            original(self, env)
            return
        # moto's logic, with the sleep going through the engine (scaled, interruptible).
        self.error_equals.eval(env)
        if not env.stack.pop():
            env.stack.append(outcome.Skipped)
            return
        self.max_attempts.eval(env=env)
        if env.stack.pop() == exhausted:
            env.stack.append(outcome.Failed)
            return
        self.interval_seconds.eval(env=env)
        self.backoff_rate.eval(env=env)
        self.max_delay_seconds.eval(env=env)
        self.jitter_strategy.eval(env=env)
        interval_seconds: float = env.stack.pop()
        host.sleep(env, float(interval_seconds), "retry")
        env.stack.append(outcome.Executed)

    cls._eval_body = _eval_body


def _patch_wait_sleep() -> None:
    cls = wait_function.WaitFunction
    original = cls._wait_interval
    _expect(original.__module__ == wait_function.__name__, "WaitFunction._wait_interval")

    def _wait_interval(self: Any, env: Environment, wait_seconds: int) -> None:
        host = host_for(env)
        if host is None:
            original(self, env, wait_seconds)
            return
        host.sleep(env, float(wait_seconds), "wait")

    cls._wait_interval = _wait_interval


def _patch_backend_start_time() -> None:
    from moto.stepfunctions.parser.backend import execution as backend_execution

    cls = backend_execution.Execution
    original = cls.get_start_execution_details
    _expect(
        original.__module__ == backend_execution.__name__, "Execution.get_start_execution_details"
    )

    def get_start_execution_details(self: Any) -> ExecutionDetails:
        details = original(self)
        start = details.start_time
        if hasattr(start, "strftime"):
            start = aws_timestamp(start)
        return ExecutionDetails(
            arn=details.arn,
            name=details.name,
            role_arn=details.role_arn,
            inpt=details.inpt,
            start_time=start,
        )

    cls.get_start_execution_details = get_start_execution_details


def _patch_unnamed_execution() -> None:
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    original = StepFunctionsParserBackend.start_execution
    _expect(
        original.__module__ == "moto.stepfunctions.parser.models",
        "StepFunctionsParserBackend.start_execution",
    )

    def start_execution(
        self: Any,
        state_machine_arn: str,
        name: str | None = None,
        execution_input: str | None = None,
        trace_header: str | None = None,
    ) -> Any:
        return original(
            self, state_machine_arn, name or str(uuid.uuid4()), execution_input, trace_header
        )

    StepFunctionsParserBackend.start_execution = start_execution


_BACKEND_WORKER_FACTORY: list[Callable[[Any, Any], Any]] = []


def set_backend_worker_factory(factory: Callable[[Any, Any], Any] | None) -> None:
    """Make moto's backend build execution workers with `factory(details, comm)` (None: moto's).

    Used by `workflow.local.server` so that executions started over HTTP run through a
    `LocalEngine`.
    """
    with _APPLY_LOCK:
        _BACKEND_WORKER_FACTORY.clear()
        if factory is not None:
            _BACKEND_WORKER_FACTORY.append(factory)


def _patch_backend_worker() -> None:
    from moto.stepfunctions.parser.backend import execution as backend_execution

    cls = backend_execution.Execution
    original = cls._get_start_execution_worker
    _expect(
        original.__module__ == backend_execution.__name__, "Execution._get_start_execution_worker"
    )

    def _get_start_execution_worker(self: Any) -> Any:
        factories = list(_BACKEND_WORKER_FACTORY)
        if not factories:
            return original(self)
        details = EvaluationDetails(
            aws_execution_details=self._get_start_aws_execution_details(),
            execution_details=self.get_start_execution_details(),
            state_machine_details=self.get_start_state_machine_details(),
        )
        return factories[0](details, self._get_start_execution_worker_comm())

    cls._get_start_execution_worker = _get_start_execution_worker


_ENGINE_PATCHES: Final[tuple[tuple[str, Callable[[], None]], ...]] = (
    ("factory", _patch_factory),
    ("lambda", _patch_lambda),
    ("nested-states-errors", _patch_nested_states_errors),
    ("states-all", _patch_states_all),
    ("choice-no-match", _patch_choice_no_match),
    ("sticky-terminal-state", _patch_sticky_terminal_state),
    ("retry-sleep", _patch_retry_sleep),
    ("wait-sleep", _patch_wait_sleep),
    ("jsonata", jsonata.install),  # JSONata + variables: workflow.local.interpreter.jsonata
)
_BACKEND_PATCHES: Final[tuple[tuple[str, Callable[[], None]], ...]] = (
    ("start-time", _patch_backend_start_time),
    ("unnamed-execution", _patch_unnamed_execution),
    ("backend-worker", _patch_backend_worker),
)


def _apply(patches: tuple[tuple[str, Callable[[], None]], ...]) -> None:
    with _APPLY_LOCK:
        for name, patch in patches:
            if name not in _APPLIED:
                patch()
                _APPLIED.add(name)


def apply_engine_patches() -> None:
    """Apply the interpreter patches the engine needs (once; later calls do nothing)."""
    _apply(_ENGINE_PATCHES)
    silence_moto_logs()


def apply_backend_patches() -> None:
    """Apply the fixes for moto's own Step Functions backend (the notebook server path)."""
    apply_engine_patches()
    _apply(_BACKEND_PATCHES)


def applied_patches() -> frozenset[str]:
    """Return the names of the patches applied so far in this process."""
    with _APPLY_LOCK:
        return frozenset(_APPLIED)


def aws_timestamp(moment: Any) -> str:
    """Render a datetime as AWS renders `$$.Execution.StartTime`: `2026-11-21T19:30:00.123Z`."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def monotonic() -> float:
    """Return a monotonic clock reading (seconds); the engine's sleeps use it."""
    return time.monotonic()


__all__ = [
    "MOTO_VERSION",
    "ASLParserException",
    "AWSExecutionDetails",
    "AmazonStateLanguageParser",
    "CallbackConsumerTimeout",
    "CallbackNotifyConsumerError",
    "CallbackOutcomeFailure",
    "CallbackOutcomeSuccess",
    "EngineCompatError",
    "Environment",
    "EvaluationDetails",
    "EventDetails",
    "EventManager",
    "ExecutionDetails",
    "ExecutionFailedEventDetails",
    "ExecutionHost",
    "ExecutionStartedEventDetails",
    "ExecutionWorker",
    "ExecutionWorkerCommunication",
    "HistoryEventExecutionDataDetails",
    "HistoryEventType",
    "LocalLambdaTask",
    "LocalServiceTask",
    "ProgramEnded",
    "ProgramError",
    "ProgramStopped",
    "ProgramTimedOut",
    "StateMachineDetails",
    "StateMachineType",
    "TaskFailed",
    "applied_patches",
    "apply_backend_patches",
    "apply_engine_patches",
    "aws_timestamp",
    "bind_host",
    "check_compat",
    "client_error_name",
    "error_name_for",
    "host_for",
    "interrupt_callbacks",
    "parsing_for_engine",
    "prune_threads",
    "set_backend_worker_factory",
    "to_json_str",
    "unbind_host",
]
