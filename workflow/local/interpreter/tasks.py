"""The Task state classes that run the engine's handlers, mocks and redrive replays.

- `LocalServiceTask`: an optimized or `aws-sdk` integration. Plain resources return
  `start(params, ctx)`; `.sync` resources then call `poll(submitted, ctx)` until it returns a
  dict (or raises `TaskFailed`) and call `cancel(submitted, ctx)` if the task times out or the
  execution stops first (moto only stops polling, leaving the job running);
  `.waitForTaskToken` resources call `start` and wait for the token.
- `LocalLambdaTask`: `lambda:invoke[.waitForTaskToken]`, moto's integration, whose invocation
  goes through `lambda_invoke.invoke_local_lambda` (also for `arn:aws:lambda:...:function:X`).

A state the host mocks (AWS Step Functions Local's `MockedResponses`) returns or throws the
mocked response instead of calling anything, as Step Functions Local does.

Fix `heartbeat-timeout` (moto's `HeartbeatTimeoutError` is a `TimeoutError`, which
`StateTask._from_error` names plain `States.Timeout`): a task that misses its heartbeat fails
with `States.Timeout` that a Retry or Catch on `States.HeartbeatTimeout` also matches, as AWS
documents (https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html:
`States.Timeout` covers a missed heartbeat; `States.HeartbeatTimeout` "is only available inside
the Catch and Retry fields"). The matching is in `fixes.fix_states_all`.
"""

# This module subclasses moto's untyped private classes on purpose.
# mypy: disable-error-code="misc,no-any-return,attr-defined,no-untyped-call,typeddict-item,override,dict-item,arg-type"

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable
from typing import Any

from workflow.local.errors import TaskFailed
from workflow.local.interpreter.host import (
    ExecutionHost,
    ServiceHandlerLike,
    client_error_name,
    context_data,
    error_name_for,
    host_for,
    state_name,
)
from workflow.local.interpreter.moto_api import (
    ClientError,
    Environment,
    EventDetails,
    FailureEvent,
    FailureEventException,
    HeartbeatTimeoutError,
    HistoryEventExecutionDataDetails,
    HistoryEventType,
    ResourceCondition,
    StatesErrorName,
    StatesErrorNameType,
    StateTaskService,
    StateTaskServiceCallback,
    StateTaskServiceLambda,
    TaskFailedEventDetails,
    TaskSubmittedEventDetails,
    TaskTimedOutEventDetails,
    to_json_str,
)

logger = logging.getLogger(__name__)

MOCK_HINT = (
    "register a local handler (LocalEngine.register_service, or `exec --lambda NAME=module:fn` "
    "for a Lambda function) or mock the state's response (`exec --mock-config FILE "
    "--test-case CASE`, AWS Step Functions Local's MockedResponses format)"
)


class _Replayed:
    """Marker pushed on the stack for a result that skips the integration pattern."""

    def __init__(self, output: Any) -> None:
        self.output = output


def _retry_count(env: Environment) -> int:
    return int(context_data(env)["State"].get("RetryCount", 0))


def mocked_result(host: ExecutionHost, env: Environment, resource: str) -> _Replayed | None:
    """Return the mocked result of this attempt, raise its mocked error, or None."""
    mock = host.mocked_response(state_name(env), _retry_count(env))
    if mock is None:
        return None
    if mock.error is not None:
        raise FailureEventException(_failed_event(env, mock.error, mock.cause, resource, ""))
    return _Replayed(copy.deepcopy(mock.result))


def service_key(resource: Any) -> tuple[str, str]:
    """Return the registry key (service, action) of a moto `ServiceResource`."""
    if resource.service_name == "aws-sdk":
        return f"aws-sdk:{resource.api_name}", resource.api_action
    return resource.service_name, resource.api_action


def _lambda_parameters_key(parameters: dict[str, Any]) -> dict[str, Any]:
    # The TaskScheduled event records the Payload as JSON; the normalised request holds bytes.
    key = dict(parameters)
    payload = key.get("Payload")
    if isinstance(payload, bytes):
        key["Payload"] = json.loads(payload) if payload else None
    return key


class _TaskCompletion:
    """The end of a Task evaluation: replayed and mocked results, no success after interruption.

    This is moto's `StateTaskServiceCallback._after_eval_execution` with two changes: a result
    replayed by a redrive (or mocked) skips the integration pattern, and when the integration
    pattern was interrupted (the task timed out, or the execution stopped or timed out) no
    `TaskSucceeded` event is recorded for the `None` moto's wait returns.
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


def _heartbeat_timed_out(env: Environment) -> FailureEvent:
    return FailureEvent(
        env=env,
        error_name=StatesErrorName(typ=StatesErrorNameType.StatesHeartbeatTimeout),
        event_type=HistoryEventType.TaskTimedOut,
        event_details=EventDetails(
            taskTimedOutEventDetails=TaskTimedOutEventDetails(
                error="States.Timeout",
                cause="the task sent no heartbeat within HeartbeatSeconds",
            )
        ),
    )


class LocalLambdaTask(_TaskCompletion, StateTaskServiceLambda):
    """`lambda:invoke[.waitForTaskToken]`: moto's integration, mockable and replayable."""

    def _from_error(self, env: Environment, ex: Exception) -> FailureEvent:
        if isinstance(ex, HeartbeatTimeoutError):
            return _heartbeat_timed_out(env)
        return super()._from_error(env=env, ex=ex)

    def _eval_service_task(
        self,
        env: Environment,
        resource_runtime_part: Any,
        normalised_parameters: dict[str, Any],
        state_credentials: Any,
    ) -> None:
        host = host_for(env)
        if host is not None:
            mocked = mocked_result(host, env, self.resource.resource_arn)
            if mocked is not None:
                env.stack.append(mocked)
                return
            key = _lambda_parameters_key(normalised_parameters)
            replayed, output = host.replay(state_name(env), "task", key)
            if replayed:
                env.stack.append(_Replayed(output))
                return
        super()._eval_service_task(
            env, resource_runtime_part, normalised_parameters, state_credentials
        )


class LocalServiceTask(_TaskCompletion, StateTaskServiceCallback):
    """An optimized or `aws-sdk` integration that calls the engine's registered handler."""

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

    def _host(self, env: Environment) -> ExecutionHost:
        host = host_for(env)
        if host is None:
            raise TaskFailed(
                "States.Runtime",
                f"no local engine runs execution {context_data(env)['Execution']['Id']}",
            )
        return host

    def _handler(self, env: Environment, host: ExecutionHost) -> ServiceHandlerLike:
        service, action = service_key(self.resource)
        handler = host.service_handler(service, action)
        if handler is None:
            raise TaskFailed(
                "States.Runtime",
                f"the local runtime cannot emulate the integration {service}:{action} "
                f"(resource {self.resource.resource_arn}, state '{state_name(env)}'); "
                f"{MOCK_HINT}",
            )
        return handler

    def _eval_service_task(
        self,
        env: Environment,
        resource_runtime_part: Any,
        normalised_parameters: dict[str, Any],
        state_credentials: Any,
    ) -> None:
        host = self._host(env)
        mocked = mocked_result(host, env, self.resource.resource_arn)
        if mocked is not None:
            env.stack.append(mocked)
            return
        handler = self._handler(env, host)
        replayed, output = host.replay(state_name(env), "task", normalised_parameters)
        if replayed:
            env.stack.append(_Replayed(output))
            return
        ctx = host.task_context(context_data(env), self.resource.resource_arn, env.is_running)
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
        host = self._host(env)
        handler = self._handler(env, host)
        ctx = host.task_context(context_data(env), self.resource.resource_arn, env.is_running)
        poll = handler.poll
        if poll is None:
            raise TaskFailed(
                "States.Runtime",
                f"the local handler for {self.resource.resource_arn} has no poll function, "
                "so it cannot run as .sync; register it with poll=...",
            )

        def resolve() -> Any:
            return _call_handler(poll, submitted, ctx)

        def cancel() -> None:
            if handler.cancel is not None:
                handler.cancel(submitted, ctx)

        resolve.cancel = cancel
        resolve.interval = host.poll_interval
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
        resource, kind = self._get_sfn_resource(), self._get_sfn_resource_type()
        if isinstance(ex, HeartbeatTimeoutError):
            return _heartbeat_timed_out(env)
        if isinstance(ex, TaskFailed):
            return _failed_event(env, ex.error, ex.cause, resource, kind)
        if isinstance(ex, ClientError):
            error = ex.response.get("Error", {})
            name = client_error_name(
                self.resource.api_name,
                str(error.get("Code", "Exception")),
                sdk=self.resource.service_name == "aws-sdk",
            )
            return _failed_event(env, name, str(error.get("Message", ex)), resource, kind)
        return super()._from_error(env=env, ex=ex)


def _call_handler(fn: Callable[[Any, Any], Any], argument: Any, ctx: Any) -> Any:
    try:
        return fn(argument, ctx)
    except (TaskFailed, ClientError):
        raise
    except Exception as exc:
        logger.debug("local handler %r raised", fn, exc_info=True)
        raise TaskFailed("States.TaskFailed", f"{type(exc).__name__}: {exc}") from exc


def _failed_event(
    env: Environment, error: str, cause: str, resource: str, resource_type: str
) -> FailureEvent:
    return FailureEvent(
        env=env,
        error_name=error_name_for(error),
        event_type=HistoryEventType.TaskFailed,
        event_details=EventDetails(
            taskFailedEventDetails=TaskFailedEventDetails(
                error=error, cause=cause, resource=resource, resourceType=resource_type
            )
        ),
    )
