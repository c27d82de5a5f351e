"""Activity Task states of engine executions: moto's `StateTaskActivity`, corrected and mockable.

An activity Task schedules a task on its activity, waits for a worker to take it
(``GetActivityTask``: ``ActivityStarted`` with the ``workerName``), then for the worker's answer
to the task token (https://docs.aws.amazon.com/step-functions/latest/dg/concepts-activities.html).
`LocalActivityTask` keeps moto's parameters, timeout and event shapes and corrects
`StateTaskActivity._eval_execution` and `_from_error` (moto 5.2.5):

- `activity-start-wait`: `ActivityTaskStartEndpoint.__init__` never sets `_outcome`, so a task no
  worker took before `TimeoutSeconds` failed with an `AttributeError` (`States.Runtime`) instead
  of `States.Timeout`; and the wait ignored StopExecution (it waits up to 99999999 s).
- `activity-heartbeat`: `HeartbeatTimeoutError` is a `TimeoutError`, so a missed heartbeat
  became plain `States.Timeout`; it is caught by `States.HeartbeatTimeout` too, as for other
  tasks (`tasks.py`). The heartbeat clock starts at `ActivityStarted`, and a heartbeat is
  accepted even without `HeartbeatSeconds` (moto answered it as an unknown token).
- `activity-errors`: `SendTaskFailure` with a `States.*` error became `States.Runtime`
  (`CustomErrorName`); the name is kept, as for `.waitForTaskToken` tasks.
- `activity-missing`: an activity that does not exist failed the execution with the literal
  cause "The activity activity_arn does not exist." (moto's `CallbackPoolManager` raises
  `ActivityDoesNotExist()` without its required message, a `TypeError`); it records
  ``ActivityScheduleFailed`` (an event of AWS's history,
  https://docs.aws.amazon.com/step-functions/latest/apireference/API_HistoryEvent.html) and
  fails the execution with `States.Runtime` naming the ARN.
- A token answered after its task timed out or the execution ended is refused (the worker's
  `SendTaskSuccess` gets `TaskTimedOut`), not silently accepted.

A state the host mocks (AWS Step Functions Local's `MockedResponses`) is answered by the mock
as if a worker had taken it, so `exec --mock-config` runs activity tasks offline.
"""

# This module subclasses moto's untyped private classes on purpose.
# mypy: disable-error-code="misc,no-any-return,attr-defined,no-untyped-call,typeddict-item,override,arg-type,union-attr"

from __future__ import annotations

import json
import time
from typing import Any, Final

from workflow.local.interpreter.host import context_data, error_name_for, host_for, state_name
from workflow.local.interpreter.moto_api import (
    ActivityFailedEventDetails,
    ActivityScheduledEventDetails,
    ActivityScheduleFailedEventDetails,
    ActivityStartedEventDetails,
    ActivitySucceededEventDetails,
    ActivityTimedOutEventDetails,
    CallbackConsumerTimeout,
    CallbackOutcomeFailure,
    CallbackOutcomeFailureError,
    CallbackOutcomeSuccess,
    Environment,
    EventDetails,
    FailureEvent,
    HeartbeatTimeoutError,
    HistoryEventExecutionDataDetails,
    HistoryEventType,
    StatesErrorName,
    StatesErrorNameType,
    StateTaskActivity,
    to_json_str,
)

_SLICE: Final = 0.05  # seconds between two checks of a wait (stop, timeout, heartbeat)
_NO_TIMEOUT: Final = 99999999  # moto's TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS


class ActivityMissingError(RuntimeError):
    """The activity of a Task state does not exist when the state schedules its task."""


class _Interrupted(RuntimeError):
    """The task stopped waiting: it timed out, or the execution stopped or timed out."""


def _add(env: Environment, event_type: Any, **details: Any) -> None:
    env.event_manager.add_event(
        context=env.event_history_context,
        event_type=event_type,
        event_details=EventDetails(**details),
    )


class LocalActivityTask(StateTaskActivity):
    """An activity Task of an engine execution (see the module docstring)."""

    def _eval_execution(self, env: Environment) -> None:
        host = host_for(env)
        if host is None:
            super()._eval_execution(env)
            return
        arn = self.resource.resource_arn
        parameters: Any = self._eval_parameters(env=env)
        task_input = (  # compact, as in the state events
            parameters if isinstance(parameters, str) else to_json_str(parameters, (",", ":"))
        )
        timeout_seconds: int = _NO_TIMEOUT
        if not self.timeout.is_default_value():
            self.timeout.eval(env=env)
            timeout_seconds = env.stack.pop()
        heartbeat_seconds: int | None = None
        if self.heartbeat:
            self.heartbeat.eval(env=env)
            heartbeat_seconds = env.stack.pop()
        retry_count = int(context_data(env)["State"].get("RetryCount", 0))
        mock = host.mocked_response(state_name(env), retry_count)
        token = env.states.context_object.update_task_token()
        endpoint = None
        if mock is None:
            # moto raises `ActivityDoesNotExist()` without its required message (a TypeError).
            if host.activity_store.get(arn) is None:
                raise ActivityMissingError(
                    f"Activity Does Not Exist: '{arn}'; create it (CreateActivity) before an "
                    "execution reaches this state, or mock the state (exec --mock-config)"
                )
            endpoint = env.callback_pool_manager.add_activity_task(
                callback_id=token, activity_arn=arn, activity_input=task_input
            )
        scheduled = ActivityScheduledEventDetails(
            resource=arn,
            input=task_input,
            inputDetails=HistoryEventExecutionDataDetails(truncated=False),
        )
        if timeout_seconds != _NO_TIMEOUT:
            scheduled["timeoutInSeconds"] = timeout_seconds
        if heartbeat_seconds is not None:
            scheduled["heartbeatInSeconds"] = heartbeat_seconds
        _add(env, HistoryEventType.ActivityScheduled, activityScheduledEventDetails=scheduled)
        if mock is not None:  # answered as if a worker took the task
            _add(env, HistoryEventType.ActivityStarted, activityStartedEventDetails={})
            if mock.error is not None:
                raise CallbackOutcomeFailureError(
                    CallbackOutcomeFailure(callback_id=token, error=mock.error, cause=mock.cause)
                )
            outcome: Any = CallbackOutcomeSuccess(
                callback_id=token, output=to_json_str(mock.result)
            )
        else:
            try:
                worker = self._wait_started(env, endpoint)
                started = ActivityStartedEventDetails()
                if worker is not None:
                    started["workerName"] = worker
                _add(env, HistoryEventType.ActivityStarted, activityStartedEventDetails=started)
                outcome = self._wait_outcome(env, endpoint, heartbeat_seconds)
            finally:
                if endpoint.get_outcome() is None:  # a later answer gets TaskTimedOut
                    endpoint.report(CallbackConsumerTimeout())
        if isinstance(outcome, CallbackOutcomeFailure):
            raise CallbackOutcomeFailureError(callback_outcome_failure=outcome)
        env.stack.append(json.loads(outcome.output))
        _add(
            env,
            HistoryEventType.ActivitySucceeded,
            activitySucceededEventDetails=ActivitySucceededEventDetails(
                output=outcome.output,
                outputDetails=HistoryEventExecutionDataDetails(truncated=False),
            ),
        )

    @staticmethod
    def _wait_started(env: Environment, endpoint: Any) -> str | None:
        start = endpoint.get_activity_task_start_endpoint()
        if not hasattr(start, "_outcome"):
            start._outcome = None  # moto never initialises it
        while env.is_running():
            outcome = start.wait(timeout_seconds=_SLICE)
            if outcome is not None:
                return outcome.worker_name
        raise _Interrupted("the activity task stopped waiting for a worker")

    @staticmethod
    def _wait_outcome(env: Environment, endpoint: Any, heartbeat_seconds: int | None) -> Any:
        beats = endpoint.setup_heartbeat_endpoint(heartbeat_seconds=_SLICE)
        deadline = None if heartbeat_seconds is None else time.monotonic() + heartbeat_seconds
        while env.is_running():
            outcome = endpoint.get_outcome()
            if outcome is not None:
                return outcome
            if beats.clear_and_wait():
                outcome = endpoint.get_outcome()
                if outcome is not None:
                    return outcome
                if heartbeat_seconds is not None:
                    deadline = time.monotonic() + heartbeat_seconds
            elif deadline is not None and time.monotonic() > deadline and env.is_running():
                raise HeartbeatTimeoutError()
        raise _Interrupted("the activity task stopped waiting for its answer")

    def _from_error(self, env: Environment, ex: Exception) -> FailureEvent:
        if isinstance(ex, ActivityMissingError):
            return FailureEvent(
                env=env,
                error_name=StatesErrorName(typ=StatesErrorNameType.StatesRuntime),
                event_type=HistoryEventType.ActivityScheduleFailed,
                event_details=EventDetails(
                    activityScheduleFailedEventDetails=ActivityScheduleFailedEventDetails(
                        error="States.Runtime", cause=str(ex)
                    )
                ),
            )
        if isinstance(ex, HeartbeatTimeoutError):
            return FailureEvent(
                env=env,
                error_name=StatesErrorName(typ=StatesErrorNameType.StatesHeartbeatTimeout),
                event_type=HistoryEventType.ActivityTimedOut,
                event_details=EventDetails(
                    activityTimedOutEventDetails=ActivityTimedOutEventDetails(
                        error="States.Timeout",
                        cause="the activity worker sent no heartbeat within HeartbeatSeconds",
                    )
                ),
            )
        if isinstance(ex, CallbackOutcomeFailureError):
            failure = ex.callback_outcome_failure
            details = ActivityFailedEventDetails()
            if failure.error is not None:
                details["error"] = failure.error
            if failure.cause is not None:
                details["cause"] = failure.cause
            return FailureEvent(
                env=env,
                error_name=error_name_for(failure.error or ""),
                event_type=HistoryEventType.ActivityFailed,
                event_details=EventDetails(activityFailedEventDetails=details),
            )
        return super()._from_error(env=env, ex=ex)
