"""The engine's public data types: statuses, task context, handlers, events, resource names.

Nothing here imports moto; the engine and its callers share these types.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from workflow.local.errors import EngineError

RUNNING: Final = "RUNNING"
SUCCEEDED: Final = "SUCCEEDED"
FAILED: Final = "FAILED"
TIMED_OUT: Final = "TIMED_OUT"
ABORTED: Final = "ABORTED"
REDRIVABLE: Final = frozenset({FAILED, TIMED_OUT, ABORTED})

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


def aws_timestamp(moment: dt.datetime) -> str:
    """Render a datetime as AWS renders context timestamps: `2026-11-21T19:30:00.123Z`."""
    moment = moment.astimezone(dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
