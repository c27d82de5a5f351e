"""What the patched interpreter asks of the engine, and how it finds the engine for an `env`.

The worker gives each execution its own event manager (shared by every Map iteration and
Parallel branch frame), and that manager carries the execution's `ExecutionHost`: finding the
engine for an `Environment` is one attribute lookup, with no global registry keyed by ARN.
"""

# mypy: disable-error-code="no-any-return,attr-defined,return-value"

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any, Final, Protocol

from workflow.local.interpreter.moto_api import (
    CustomErrorName,
    Environment,
    ErrorName,
    StatesErrorName,
    moto_utils,
)

_MOTO_LOGGER: Final[str] = "moto.stepfunctions.parser"


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


class MockedResponse(Protocol):
    """One mocked response: `Return` a value, or `Throw` an error (see `workflow.local.mocks`)."""

    @property
    def result(self) -> Any:
        """The value returned (`Return`), or None."""

    @property
    def error(self) -> str | None:
        """The error thrown (`Throw.Error`), or None for a `Return`."""

    @property
    def cause(self) -> str:
        """The cause thrown (`Throw.Cause`)."""


class ExecutionHost(Protocol):
    """The engine side of one running execution."""

    def task_context(
        self, context: dict[str, Any], resource: str, is_running: Callable[[], bool]
    ) -> Any:
        """Return the `TaskContext` handed to handlers for the task described by `context`."""

    def service_handler(self, service: str, action: str) -> ServiceHandlerLike | None:
        """Return the handler registered for (service, action), or None."""

    def lambda_function(self, reference: str) -> Callable[[Any, Any], Any] | None:
        """Return the Python function registered for a Lambda name or ARN, or None."""

    def mocked_response(self, state_name: str, attempt: int) -> MockedResponse | None:
        """Return the mocked response of this Task state's attempt, or None (not mocked)."""

    def replay(self, state_name: str, kind: str, parameters: Any) -> tuple[bool, Any]:
        """Return (True, recorded output) when a redrive replays this task invocation.

        `kind` is ``"task"`` (TaskScheduled parameters) or ``"lambda"`` (a Lambda function ARN
        used as the resource: LambdaFunctionScheduled input).
        """

    def redriven_iteration(self, map_name: str, index: int) -> tuple[bool, Any]:
        """Return (True, output) when a redrive keeps this Map iteration's earlier success."""

    def resumed_iteration(self, map_name: str, index: int) -> tuple[str, Any] | None:
        """Return (state, input) where a failed iteration of a redriven Map continues."""

    def resumed_branch(self, start_at: str) -> tuple[str, Any] | None:
        """Return (state, input) where a failed branch of a redriven Parallel continues."""

    def redriven_branch(self, start_at: str) -> tuple[bool, Any]:
        """Return (True, output) when a redrive keeps this Parallel branch's earlier success."""

    def sleep(
        self,
        state_name: str,
        seconds: float,
        reason: str,
        is_running: Callable[[], bool],
        wait: Callable[[float], object],
    ) -> None:
        """Sleep for a Retry backoff or Wait state, interruptibly, with the engine's scale."""

    def publish(self, raw_event: dict[str, Any]) -> None:
        """Tell the engine about a history event, once it is recorded."""

    def prepare(self, definition: str) -> None:
        """Check a definition parsed in the worker (the served API path); raise if invalid."""

    def start_child(self, definition: str, child_input: Any, state_machine_name: str) -> Any:
        """Start a Distributed Map child execution; return it (`done`, `wait`, `stop`, ...)."""

    @property
    def s3(self) -> Any:
        """The engine's S3 client on the local store (`get_object`, ...), or None."""

    @property
    def activity_store(self) -> Any:
        """The engine's activities: `get(arn)` returns one (`add_task(task)`) or None."""

    @property
    def restart_input(self) -> tuple[bool, Any]:
        """(True, input) when a redrive restarts a state with its recorded input."""

    @property
    def poll_interval(self) -> float:
        """Seconds between two `poll` calls of a `.sync` task (scaled)."""


_PARSING = threading.local()


def host_for(env: Environment) -> ExecutionHost | None:
    """Return the host of the execution `env` belongs to (None: not a local-engine run)."""
    return getattr(env.event_manager, "host", None)


@contextlib.contextmanager
def parsing_for_engine() -> Iterator[None]:
    """Mark the current thread as parsing a definition for a local-engine execution."""
    previous = getattr(_PARSING, "active", False)
    _PARSING.active = True
    try:
        yield
    finally:
        _PARSING.active = previous


def is_parsing_for_engine() -> bool:
    """Return True inside `parsing_for_engine()` on this thread."""
    return bool(getattr(_PARSING, "active", False))


def context_data(env: Environment) -> dict[str, Any]:
    """Return the context object (`$$`) of `env`."""
    return env.states.context_object.context_object_data


def state_name(env: Environment) -> str:
    """Return the name of the state `env` evaluates."""
    return str(context_data(env)["State"]["Name"])


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


def error_name_for(error_name: Any) -> ErrorName:
    """Return moto's ErrorName for an error string, keeping `States.*` names catchable.

    moto wraps every name in `CustomErrorName`, which raises `ValueError` for names that start
    with `States.`; known `States.*` names become `StatesErrorName`, other names a plain
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
    "secretsmanager": "SecretsManager",  # pragma: allowlist secret
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
