"""Errors, Retry timing and Map/Parallel failure semantics, as the AWS documentation gives them.

Retry timing is read from the engine's record of its sleeps (`LocalExecution.waits`, seconds
before `time_scale`); the engine runs with `time_scale=0`, so nothing really sleeps.
"""

from __future__ import annotations

from typing import Any

import pytest
from asl_builders import lambda_task, machine, pass_state

from workflow.local.engine import FAILED, SUCCEEDED, TaskFailed

pytestmark = pytest.mark.integration

ERRORS = "https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html"
PARALLEL = "https://docs.aws.amazon.com/step-functions/latest/dg/state-parallel.html"
MAP = "https://docs.aws.amazon.com/step-functions/latest/dg/state-map-inline.html"
FAIL = "https://docs.aws.amazon.com/step-functions/latest/dg/state-fail.html"


def _failing(error: str = "Boom", times: int | None = None) -> Any:
    calls = {"n": 0}

    def fn(payload: Any, ctx: Any) -> Any:
        calls["n"] += 1
        if times is None or calls["n"] <= times:
            raise TaskFailed(error, f"attempt {calls['n']}")
        return {"attempts": calls["n"]}

    fn.calls = calls  # type: ignore[attr-defined]
    return fn


@pytest.fixture
def instant(make_engine):
    return make_engine(time_scale=0.0)


def _run(engine, definition, payload=None):
    execution = engine.start_execution(definition, payload or {})
    execution.wait(60)
    assert execution.done
    return execution


def _retry(**retrier: Any) -> dict[str, Any]:
    return machine({"T": lambda_task("f", Retry=[{"ErrorEquals": ["Boom"], **retrier}])})


def test_backoff_rate_multiplies_the_interval(instant):
    # IntervalSeconds 3, BackoffRate 2, MaxAttempts 3: waits of 3, 6 and 12 s, then the error
    # surfaces. ERRORS ("Retrying after an error")
    instant.register_lambda("f", _failing())
    execution = _run(instant, _retry(IntervalSeconds=3, BackoffRate=2, MaxAttempts=3))
    assert [w.seconds for w in execution.waits] == [3, 6, 12]
    assert (execution.status, execution.error) == (FAILED, "Boom")


def test_defaults_interval_1_backoff_2_attempts_3(instant):
    # Defaults: IntervalSeconds 1, BackoffRate 2.0, MaxAttempts 3. ERRORS
    instant.register_lambda("f", _failing())
    assert [w.seconds for w in _run(instant, _retry()).waits] == [1, 2, 4]


def test_max_delay_seconds_caps_the_interval(instant):
    # MaxDelaySeconds caps each retry interval. ERRORS
    instant.register_lambda("f", _failing())
    execution = _run(
        instant, _retry(IntervalSeconds=2, BackoffRate=5, MaxAttempts=3, MaxDelaySeconds=10)
    )
    assert [w.seconds for w in execution.waits] == [2, 10, 10]


def test_full_jitter_waits_at_most_the_interval(instant):
    # JitterStrategy FULL randomises each interval between 0 and the computed one. ERRORS
    instant.register_lambda("f", _failing())
    execution = _run(
        instant, _retry(IntervalSeconds=4, BackoffRate=2, MaxAttempts=3, JitterStrategy="FULL")
    )
    waits = [w.seconds for w in execution.waits]
    assert len(waits) == 3
    assert all(0 <= wait <= cap for wait, cap in zip(waits, [4, 8, 16], strict=True))


def test_max_attempts_zero_never_retries(instant):
    # MaxAttempts 0: the error is never retried. ERRORS
    fn = _failing()
    instant.register_lambda("f", fn)
    execution = _run(instant, _retry(MaxAttempts=0))
    assert execution.waits == [] and fn.calls["n"] == 1


def test_retry_succeeds_and_reports_the_attempt(instant):
    instant.register_lambda("f", _failing(times=2))
    execution = _run(instant, _retry(IntervalSeconds=1, MaxAttempts=3))
    assert execution.status == SUCCEEDED
    assert execution.output["Payload"] == {"attempts": 3}  # ERRORS: retried until it worked


def test_catch_error_output_and_result_path(instant):
    # A catcher passes {"Error", "Cause"} to its Next state at ResultPath. ERRORS
    instant.register_lambda("f", _failing("Custom.Error"))
    definition = machine(
        {
            "T": lambda_task(
                "f",
                Catch=[
                    {"ErrorEquals": ["Custom.Error"], "ResultPath": "$.error", "Next": "Handle"}
                ],
            ),
            "Handle": pass_state(),
        }
    )
    output = _run(instant, definition, {"keep": 1}).output
    assert output["keep"] == 1 and output["error"]["Error"] == "Custom.Error"
    assert "attempt 1" in output["error"]["Cause"]


def test_states_all_catches_task_errors_but_not_runtime(instant):
    # States.ALL matches any error name except States.Runtime and States.DataLimitExceeded.
    # ERRORS
    instant.register_lambda("f", _failing("Anything"))
    catch_all = [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}]
    caught = _run(
        instant,
        machine({"T": lambda_task("f", Catch=catch_all), "Caught": pass_state()}),
    )
    assert caught.status == SUCCEEDED
    # A path that selects nothing in a Task's Parameters is States.Runtime: not caught.
    runtime = machine({"T": lambda_task("f", Catch=catch_all), "Caught": pass_state()})
    runtime["States"]["T"]["Parameters"] = {"FunctionName": "f", "Payload.$": "$.missing"}
    failed = _run(instant, runtime)
    assert (failed.status, failed.error) == (FAILED, "States.Runtime")


def test_fail_state_error_and_cause(instant):
    # A Fail state ends the execution with its Error and Cause. FAIL
    definition = machine({"F": {"Type": "Fail", "Error": "Rejected", "Cause": "masks are bad"}})
    execution = _run(instant, definition)
    assert (execution.status, execution.error, execution.cause) == (
        FAILED,
        "Rejected",
        "masks are bad",
    )


def test_fail_state_error_path_and_cause_path(instant):
    # ErrorPath and CausePath read the error and cause from the input. FAIL
    definition = machine({"F": {"Type": "Fail", "ErrorPath": "$.e", "CausePath": "$.c"}})
    execution = _run(instant, definition, {"e": "Dyn.Error", "c": "from input"})
    assert (execution.error, execution.cause) == ("Dyn.Error", "from input")


def test_parallel_fails_when_one_branch_fails(instant):
    # "If any branch fails ... the entire Parallel state fails"; its error is the branch's,
    # catchable by name. PARALLEL
    instant.register_lambda("f", _failing("Branch.Error"))
    ok = {"StartAt": "Ok", "States": {"Ok": pass_state()}}
    bad = {"StartAt": "Bad", "States": {"Bad": lambda_task("f")}}
    definition = machine(
        {
            "Par": {
                "Type": "Parallel",
                "Branches": [ok, bad],
                "Catch": [{"ErrorEquals": ["Branch.Error"], "Next": "Caught"}],
                "End": True,
            },
            "Caught": pass_state(),
        }
    )
    output = _run(instant, definition).output
    assert output["Error"] == "Branch.Error"


def test_map_fails_when_one_iteration_fails(instant):
    # An iteration's unhandled error fails the whole Map state with that error. MAP
    def fn(payload: Any, ctx: Any) -> Any:
        if payload == 2:
            raise TaskFailed("Item.Error", "item 2")
        return payload

    instant.register_lambda("f", fn)
    definition = machine(
        {
            "M": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemProcessor": {"StartAt": "Call", "States": {"Call": lambda_task("f")}},
                "End": True,
            }
        }
    )
    execution = _run(instant, definition, {"items": [1, 2, 3]})
    assert (execution.status, execution.error) == (FAILED, "Item.Error")


def test_task_timeout_is_states_timeout(make_engine, inbox):
    # A task that runs longer than TimeoutSeconds fails with States.Timeout. ERRORS
    engine = make_engine()
    engine.register_lambda("wait", lambda payload, ctx: inbox.put(ctx.task_token))
    definition = machine(
        {
            "T": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                "Parameters": {"FunctionName": "wait", "Payload": {"t.$": "$$.Task.Token"}},
                "TimeoutSeconds": 1,
                "End": True,
            }
        }
    )
    execution = _run(engine, definition)
    assert (execution.status, execution.error) == (FAILED, "States.Timeout")
