"""ASL contract suite: the semantics the kit relies on, through the local engine.

This suite must pass before any moto upgrade (moto is pinned exactly; see
workflow/local/interpreter/). Each test states the AWS behaviour it pins. Time is scaled
down 100x (Retry backoff, Wait, .sync polling); timeouts stay real, so they are kept at 1-2 s.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from asl_builders import ConcurrencyProbe

from workflow.local.engine import (
    ABORTED,
    FAILED,
    SUCCEEDED,
    TIMED_OUT,
    LocalEngine,
    TaskFailed,
)

pytestmark = pytest.mark.integration

LAMBDA = "arn:aws:states:::lambda:invoke"
LAMBDA_TOKEN = "arn:aws:states:::lambda:invoke.waitForTaskToken"
TRAIN_SYNC = "arn:aws:states:::sagemaker:createTrainingJob.sync"
BUILD_SYNC = "arn:aws:states:::codebuild:startBuild.sync"


def task(resource: str, parameters: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    state: dict[str, Any] = {"Type": "Task", "Resource": resource}
    if parameters is not None:
        state["Parameters"] = parameters
    state.update(fields)
    if "Next" not in state:
        state["End"] = True
    return state


def machine(states: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"StartAt": next(iter(states)), "States": states, **top}


def echo(payload: Any, ctx: Any) -> Any:
    return payload


class Job:
    """A fake long-running job for .sync handlers: done after `polls` polls, or never."""

    def __init__(self, polls: int | None = 2, fail: TaskFailed | None = None) -> None:
        self.polls = polls
        self.fail = fail
        self.poll_count = 0
        self.cancelled = threading.Event()
        self.started: list[dict[str, Any]] = []

    def start(self, params: dict[str, Any], ctx: Any) -> dict[str, Any]:
        self.started.append(params)
        return {"JobArn": f"arn:local:job/{ctx.state_name}"}

    def poll(self, submitted: dict[str, Any], ctx: Any) -> dict[str, Any] | None:
        self.poll_count += 1
        if self.polls is None or self.poll_count < self.polls:
            return None
        if self.fail is not None:
            raise self.fail
        return {"JobArn": submitted["JobArn"], "Status": "Completed"}

    def cancel(self, submitted: dict[str, Any], ctx: Any) -> None:
        self.cancelled.set()


# ------------------------------------------------------------------------------------------
# Pass, paths, context object, intrinsic functions
# ------------------------------------------------------------------------------------------


def test_pass_parameters_result_path_output_path(run):
    definition = machine(
        {
            "A": {
                "Type": "Pass",
                "InputPath": "$.in",
                "Parameters": {"x.$": "$.b", "k": 1},
                "ResultPath": "$.res",
                "OutputPath": "$.res",
                "Next": "B",
            },
            "B": {"Type": "Pass", "Result": {"r": 2}, "ResultPath": None, "Next": "C"},
            "C": {"Type": "Pass", "Result": "ignored", "OutputPath": None, "End": True},
        }
    )
    execution = run(definition, {"in": {"b": 7}})
    assert execution.status == SUCCEEDED
    # OutputPath null yields {}; ResultPath null kept B's input; InputPath/Parameters built {x, k}
    assert execution.output == {}
    entered = [e for e in execution.history() if e["type"] == "PassStateEntered"]
    assert json.loads(entered[1]["stateEnteredEventDetails"]["input"]) == {"x": 7, "k": 1}
    assert json.loads(entered[2]["stateEnteredEventDetails"]["input"]) == {"x": 7, "k": 1}


def test_result_path_merges_into_input(run):
    definition = machine(
        {"A": {"Type": "Pass", "Result": {"v": 1}, "ResultPath": "$.a.b", "End": True}}
    )
    assert run(definition, {"keep": True}).output == {"keep": True, "a": {"b": {"v": 1}}}


def test_missing_path_is_states_runtime_not_caught_by_states_all(run):
    definition = machine(
        {
            "A": {"Type": "Pass", "Parameters": {"x.$": "$.missing"}, "Next": "Done"},
            "Done": {"Type": "Succeed"},
        }
    )
    execution = run(definition, {"a": 1})
    assert (execution.status, execution.error) == (FAILED, "States.Runtime")
    # AWS: States.ALL does not catch States.Runtime (moto bug 2, patched)
    caught = machine(
        {
            "T": task(
                LAMBDA,
                {"FunctionName": "echo", "Payload.$": "$.missing"},
                Catch=[{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
            ),
            "Caught": {"Type": "Succeed"},
        }
    )
    execution = run(caught, {"a": 1})
    assert (execution.status, execution.error) == (FAILED, "States.Runtime")


@pytest.fixture(autouse=True)
def _echo_lambda(engine: LocalEngine) -> None:
    engine.register_lambda("echo", echo)


def test_context_object(run):
    definition = machine(
        {
            "P": {
                "Type": "Pass",
                "Parameters": {
                    "name.$": "$$.Execution.Name",
                    "id.$": "$$.Execution.Id",
                    "in.$": "$$.Execution.Input.a",
                    "start.$": "$$.Execution.StartTime",
                    "state.$": "$$.State.Name",
                    "machine.$": "$$.StateMachine.Name",
                    "bracket.$": "$$.Execution.Input['a']",
                },
                "End": True,
            }
        }
    )
    execution = run(definition, {"a": 5}, name="ctx-1", state_machine_name="sm")
    out = execution.output
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert out["name"] == "ctx-1" and out["id"] == execution.arn and out["id"].endswith(":sm:ctx-1")
    assert out["in"] == 5 and out["bracket"] == 5
    assert out["state"] == "P" and out["machine"] == "sm"
    assert out["start"].endswith("Z") and out["start"] == execution.start_time


def test_intrinsic_functions(run):
    definition = machine(
        {
            "P": {
                "Type": "Pass",
                "Parameters": {
                    "format.$": "States.Format('job-{}-{}', $.n, $.s)",
                    "j2s.$": "States.JsonToString($.obj)",
                    "s2j.$": "States.StringToJson($.js)",
                    "merge.$": "States.JsonMerge($.obj, $.obj2, false)",
                    "item.$": "States.ArrayGetItem($.list, 1)",
                    "array.$": "States.Array(1, 'two', $.n)",
                    "length.$": "States.ArrayLength($.list)",
                    "add.$": "States.MathAdd($.n, -3)",
                    "split.$": "States.StringSplit($.csv, ',')",
                    "b64.$": "States.Base64Encode($.s)",
                    "uuid.$": "States.UUID()",
                },
                "End": True,
            }
        }
    )
    payload = {
        "n": 5,
        "s": "x",
        "obj": {"a": 1, "c": {"x": 1}},
        "obj2": {"b": 2, "c": {"y": 2}},
        "js": '{"k": [1]}',
        "list": [1, 2, 3],
        "csv": "a,b",
    }
    out = run(definition, payload).output
    assert out["format"] == "job-5-x"
    assert json.loads(out["j2s"]) == {"a": 1, "c": {"x": 1}}
    assert out["s2j"] == {"k": [1]}
    assert out["merge"] == {"a": 1, "b": 2, "c": {"y": 2}}  # shallow merge
    assert out["item"] == 2 and out["array"] == [1, "two", 5] and out["length"] == 3
    assert out["add"] == 2 and out["split"] == ["a", "b"] and out["b64"] == "eA=="
    assert len(out["uuid"]) == 36


# ------------------------------------------------------------------------------------------
# Choice, Parallel, Map, Wait
# ------------------------------------------------------------------------------------------


def _choice_machine(default: bool) -> dict[str, Any]:
    # Without a Default, "Other" would be unreachable, which AWS refuses (InvalidDefinition).
    choice: dict[str, Any] = {
        "Type": "Choice",
        "Choices": [
            {
                "And": [
                    {"Variable": "$.v", "IsPresent": True},
                    {"Not": {"Variable": "$.v", "NumericLessThan": 0}},
                    {"Variable": "$.v", "NumericGreaterThanPath": "$.t"},
                ],
                "Next": "Big",
            },
            {"Variable": "$.s", "StringMatches": "ok*", "Next": "Ok"},
        ],
    }
    states = {
        "C": choice,
        "Big": {"Type": "Pass", "Result": "big", "End": True},
        "Ok": {"Type": "Pass", "Result": "ok", "End": True},
    }
    if default:
        choice["Default"] = "Other"
        states["Other"] = {"Type": "Pass", "Result": "other", "End": True}
    return machine(states)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"v": 3, "t": 2}, "big"),
        ({"v": 1, "t": 2, "s": "okay"}, "ok"),
        ({"s": "no"}, "other"),
    ],
)
def test_choice_rules_and_default(run, payload, expected):
    assert run(_choice_machine(default=True), payload).output == expected


def test_choice_without_match_fails_with_no_choice_matched(run):
    execution = run(_choice_machine(default=False), {"s": "no"})
    assert (execution.status, execution.error) == (FAILED, "States.NoChoiceMatched")


def test_parallel_output_is_ordered_array(run):
    branch = lambda value, seconds: {  # noqa: E731
        "StartAt": "W",
        "States": {
            "W": {"Type": "Wait", "Seconds": seconds, "Next": "P"},
            "P": {"Type": "Pass", "Result": value, "End": True},
        },
    }
    definition = machine(
        {"Par": {"Type": "Parallel", "Branches": [branch(1, 20), branch(2, 1)], "End": True}}
    )
    assert run(definition).output == [1, 2]


def test_map_max_concurrency_order_and_item_context(engine, run):
    probe = ConcurrencyProbe()
    engine.register_lambda("work", probe)
    definition = machine(
        {
            "M": {
                "Type": "Map",
                "ItemsPath": "$.xs",
                "MaxConcurrency": 2,
                "ResultPath": "$.r",
                "Parameters": {
                    "v.$": "$$.Map.Item.Value",
                    "i.$": "$$.Map.Item.Index",
                    "k.$": "$.k",
                },
                "Iterator": {
                    "StartAt": "T",
                    "States": {
                        "T": task(
                            LAMBDA,
                            {"FunctionName": "work", "Payload.$": "$"},
                            OutputPath="$.Payload",
                        )
                    },
                },
                "End": True,
            }
        }
    )
    execution = run(definition, {"xs": ["a", "b", "c", "d", "e"], "k": 9})
    assert execution.status == SUCCEEDED
    assert execution.output["r"] == [{"v": v, "i": i, "k": 9} for i, v in enumerate("abcde")]
    assert 1 <= probe.peak <= 2


def test_wait_seconds_and_seconds_path_are_scaled(run):
    definition = machine(
        {
            "W1": {"Type": "Wait", "Seconds": 30, "Next": "W2"},
            "W2": {"Type": "Wait", "SecondsPath": "$.s", "End": True},
        }
    )
    execution = run(definition, {"s": 7})
    assert execution.status == SUCCEEDED
    assert [(w.state_name, w.reason, w.seconds) for w in execution.waits] == [
        ("W1", "wait", 30.0),
        ("W2", "wait", 7.0),
    ]


# ------------------------------------------------------------------------------------------
# Retry and Catch
# ------------------------------------------------------------------------------------------


def test_retry_backoff_count_and_interval_growth(engine, run):
    calls: list[int] = []

    def flaky(payload: Any, ctx: Any) -> Any:
        calls.append(ctx.retry_count)
        if len(calls) <= 3:
            raise ConnectionError(f"transient #{len(calls)}")
        return {"attempt": len(calls)}

    engine.register_lambda("flaky", flaky)
    definition = machine(
        {
            "T": task(
                LAMBDA,
                {"FunctionName": "flaky"},
                Retry=[
                    {
                        "ErrorEquals": ["ConnectionError"],
                        "IntervalSeconds": 1,
                        "BackoffRate": 2.0,
                        "MaxAttempts": 3,
                    }
                ],
                ResultSelector={"a.$": "$.Payload.attempt"},
            )
        }
    )
    execution = run(definition)
    assert execution.status == SUCCEEDED and execution.output == {"a": 4}
    assert calls == [0, 1, 2, 3]  # $$.State.RetryCount as the handler sees it
    assert [w.seconds for w in execution.waits if w.reason == "retry"] == [1.0, 2.0, 4.0]


def test_retry_exhausted_fails_with_last_error(engine, run):
    engine.register_lambda("bad", lambda p, c: (_ for _ in ()).throw(ValueError("bad data")))
    definition = machine(
        {
            "T": task(
                LAMBDA,
                {"FunctionName": "bad"},
                Retry=[
                    {
                        "ErrorEquals": ["States.ALL"],
                        "IntervalSeconds": 2,
                        "MaxAttempts": 2,
                        "BackoffRate": 1.0,
                    }
                ],
            )
        }
    )
    execution = run(definition)
    assert (execution.status, execution.error) == (FAILED, "ValueError")
    cause = json.loads(execution.cause)
    assert cause["errorType"] == "ValueError" and cause["errorMessage"] == "bad data"
    assert [w.seconds for w in execution.waits] == [2.0, 2.0]


def test_catch_lambda_error_by_type_with_result_path(engine, run):
    engine.register_lambda("boom", lambda p, c: (_ for _ in ()).throw(KeyError("k")))
    definition = machine(
        {
            "T": task(
                LAMBDA,
                {"FunctionName": "boom"},
                Catch=[{"ErrorEquals": ["KeyError"], "ResultPath": "$.err", "Next": "Caught"}],
            ),
            "Caught": {"Type": "Pass", "End": True},
        }
    )
    execution = run(definition, {"x": 1})
    assert execution.status == SUCCEEDED
    assert execution.output["x"] == 1 and execution.output["err"]["Error"] == "KeyError"
    assert json.loads(execution.output["err"]["Cause"])["errorType"] == "KeyError"


@pytest.mark.parametrize(
    ("container", "error"),
    [
        ("Map", "States.TaskFailed"),
        ("Parallel", "States.TaskFailed"),
        ("Map", "Custom.Error"),
        ("Parallel", "States.Timeout"),
    ],
)
def test_catch_errors_from_inside_map_and_parallel(engine, run, container, error):
    failing = Job(polls=1, fail=TaskFailed(error, "inner cause"))
    engine.register_service("sagemaker", "createTrainingJob", failing.start, failing.poll)
    hanging = Job(polls=None)
    engine.register_service("codebuild", "startBuild", hanging.start, hanging.poll, hanging.cancel)
    inner = (
        task(BUILD_SYNC, {"ProjectName": "p"}, TimeoutSeconds=1)
        if error == "States.Timeout"
        else task(TRAIN_SYNC, {"TrainingJobName": "j"})
    )
    state: dict[str, Any] = {
        "Type": container,
        "End": True,
        "Catch": [{"ErrorEquals": [error], "ResultPath": "$.e", "Next": "Caught"}],
    }
    processor = {"StartAt": "Inner", "States": {"Inner": inner}}
    if container == "Map":
        state.update(ItemsPath="$.xs", Iterator=processor)
    else:
        state["Branches"] = [processor]
    definition = machine({"Outer": state, "Caught": {"Type": "Pass", "End": True}})
    execution = run(definition, {"xs": [1]})
    assert execution.status == SUCCEEDED, (execution.error, execution.cause)
    assert execution.output["e"]["Error"] == error
    if error == "States.Timeout":
        assert hanging.cancelled.wait(10), "the timed-out .sync job was not cancelled"


# ------------------------------------------------------------------------------------------
# Service integrations: .sync, .waitForTaskToken, aws-sdk, timeouts, heartbeats, stop
# ------------------------------------------------------------------------------------------


def test_sync_polls_until_result(engine, run):
    job = Job(polls=3)
    engine.register_service("sagemaker", "createTrainingJob", job.start, job.poll, job.cancel)
    definition = machine(
        {
            "Train": task(
                TRAIN_SYNC, {"TrainingJobName.$": "$.name"}, ResultSelector={"s.$": "$.Status"}
            )
        }
    )
    execution = run(definition, {"name": "tj-1"})
    assert execution.status == SUCCEEDED and execution.output == {"s": "Completed"}
    assert job.started == [{"TrainingJobName": "tj-1"}] and job.poll_count == 3
    assert not job.cancelled.is_set()
    types = [e["type"] for e in execution.history()]
    assert types.index("TaskSubmitted") < types.index("TaskSucceeded")


def test_sync_failure_is_catchable_by_name_and_by_task_failed(engine, run):
    job = Job(polls=1, fail=TaskFailed("SageMaker.AmazonSageMakerException", '{"x": 1}'))
    engine.register_service("sagemaker", "createTrainingJob", job.start, job.poll)
    for catch_on in ("SageMaker.AmazonSageMakerException", "States.TaskFailed"):
        definition = machine(
            {
                "Train": task(
                    TRAIN_SYNC,
                    {"TrainingJobName": "j"},
                    Catch=[{"ErrorEquals": [catch_on], "ResultPath": "$.e", "Next": "Caught"}],
                ),
                "Caught": {"Type": "Pass", "End": True},
            }
        )
        execution = run(definition)
        assert execution.status == SUCCEEDED
        assert execution.output["e"] == {
            "Error": "SageMaker.AmazonSageMakerException",
            "Cause": '{"x": 1}',
        }


def test_handler_crash_is_states_task_failed(engine, run):
    def crash(params: Any, ctx: Any) -> Any:
        raise RuntimeError("disk full")

    engine.register_service("sns", "publish", crash)
    execution = run(machine({"N": task("arn:aws:states:::sns:publish", {"Message": "m"})}))
    assert (execution.status, execution.error) == (FAILED, "States.TaskFailed")
    assert execution.cause == "RuntimeError: disk full"


def test_aws_sdk_resources_dispatch_and_name_errors(engine, run):
    from botocore.exceptions import ClientError

    def describe_endpoint(params: dict[str, Any], ctx: Any) -> dict[str, Any]:
        if params["EndpointName"] == "missing":
            raise TaskFailed("SageMaker.ResourceNotFound", "Could not find endpoint")
        return {"EndpointName": params["EndpointName"], "EndpointStatus": "InService"}

    def get_parameter(params: dict[str, Any], ctx: Any) -> dict[str, Any]:
        raise ClientError(
            {"Error": {"Code": "ParameterNotFound", "Message": "no such"}}, "GetParameter"
        )

    engine.register_service("aws-sdk:sagemaker", "describeEndpoint", describe_endpoint)
    engine.register_service("aws-sdk:ssm", "getParameter", get_parameter)
    describe = "arn:aws:states:::aws-sdk:sagemaker:describeEndpoint"
    ok = run(machine({"D": task(describe, {"EndpointName": "ep"})}))
    assert ok.output == {"EndpointName": "ep", "EndpointStatus": "InService"}
    scheduled = next(e for e in ok.history() if e["type"] == "TaskScheduled")
    assert scheduled["taskScheduledEventDetails"]["resourceType"] == "aws-sdk:sagemaker"
    caught = run(
        machine(
            {
                "D": task(
                    describe,
                    {"EndpointName": "missing"},
                    Catch=[
                        {
                            "ErrorEquals": ["SageMaker.ResourceNotFound"],
                            "ResultPath": "$.e",
                            "Next": "P",
                        }
                    ],
                ),
                "P": task(
                    "arn:aws:states:::aws-sdk:ssm:getParameter",
                    {"Name": "hp"},
                    Catch=[
                        {
                            "ErrorEquals": ["Ssm.ParameterNotFoundException"],
                            "ResultPath": "$.f",
                            "Next": "Done",
                        }
                    ],
                ),
                "Done": {"Type": "Succeed"},
            }
        )
    )
    assert caught.status == SUCCEEDED
    assert caught.output["e"]["Error"] == "SageMaker.ResourceNotFound"
    assert caught.output["f"] == {"Error": "Ssm.ParameterNotFoundException", "Cause": "no such"}


def test_wait_for_task_token_success_and_context(engine, run, inbox):
    seen: list[Any] = []

    def ask(payload: Any, ctx: Any) -> Any:
        seen.append((payload["token"], ctx.task_token, ctx.state_name))
        inbox.put(payload["token"])
        return {"asked": True}

    engine.register_lambda("ask", ask)
    definition = machine(
        {
            "Approve": task(
                LAMBDA_TOKEN,
                {"FunctionName": "ask", "Payload": {"token.$": "$$.Task.Token"}},
                TimeoutSeconds=30,
                ResultPath="$.approval",
            )
        }
    )
    execution = engine.start_execution(definition, {"x": 1})
    token = inbox.take()
    engine.send_task_success(token, {"decision": "approve"})
    execution.wait(30)
    assert execution.status == SUCCEEDED
    assert execution.output == {"x": 1, "approval": {"decision": "approve"}}
    assert seen == [(token, token, "Approve")]


def test_wait_for_task_token_failure_with_custom_error(engine, inbox):
    engine.register_lambda("ask", lambda p, c: inbox.put(p["token"]) or {})
    definition = machine(
        {
            "Approve": task(
                LAMBDA_TOKEN, {"FunctionName": "ask", "Payload": {"token.$": "$$.Task.Token"}}
            )
        }
    )
    execution = engine.start_execution(definition)
    engine.send_task_failure(inbox.take(), error="Rejected", cause="not good enough")
    execution.wait(30)
    assert (execution.status, execution.error, execution.cause) == (
        FAILED,
        "Rejected",
        "not good enough",
    )


def test_wait_for_task_token_timeout(engine, run, inbox):
    engine.register_lambda("ask", lambda p, c: inbox.put(p["token"]) or {})
    definition = machine(
        {
            "Approve": task(
                LAMBDA_TOKEN,
                {"FunctionName": "ask", "Payload": {"token.$": "$$.Task.Token"}},
                TimeoutSeconds=1,
            )
        }
    )
    execution = run(definition)
    assert (execution.status, execution.error) == (FAILED, "States.Timeout")
    from workflow.local.engine import TaskTokenError

    with pytest.raises(TaskTokenError, match="no running task waits"):
        engine.send_task_success(inbox.take(), {})


def test_service_wait_for_task_token(engine, inbox):
    engine.register_service("sns", "publish", lambda p, c: inbox.put(c.task_token) or {"Id": 1})
    execution = engine.start_execution(
        machine(
            {
                "N": task(
                    "arn:aws:states:::sns:publish.waitForTaskToken", {"Message.$": "$$.Task.Token"}
                )
            }
        )
    )
    engine.send_task_success(inbox.take(), "done")
    assert execution.wait(30).output == "done"


def test_task_timeout_cancels_sync_job(engine, run):
    job = Job(polls=None)
    engine.register_service("sagemaker", "createTrainingJob", job.start, job.poll, job.cancel)
    definition = machine(
        {
            "Train": task(
                TRAIN_SYNC,
                {"TrainingJobName": "j"},
                TimeoutSeconds=1,
                Catch=[{"ErrorEquals": ["States.Timeout"], "ResultPath": "$.e", "Next": "Caught"}],
            ),
            "Caught": {"Type": "Pass", "End": True},
        }
    )
    execution = run(definition)
    assert execution.status == SUCCEEDED and execution.output["e"]["Error"] == "States.Timeout"
    assert job.cancelled.wait(10)
    assert "TaskTimedOut" in [e["type"] for e in execution.history()]


def test_heartbeats_keep_task_alive_and_missing_heartbeat_times_out(engine, inbox):
    engine.register_lambda("ask", lambda p, c: inbox.put(p["token"]) or {})
    definition = machine(
        {
            "Approve": task(
                LAMBDA_TOKEN,
                {"FunctionName": "ask", "Payload": {"token.$": "$$.Task.Token"}},
                HeartbeatSeconds=2,
                TimeoutSeconds=60,
            )
        }
    )
    execution = engine.start_execution(definition)
    token = inbox.take()
    for _ in range(5):  # 2.5 s in all: longer than one heartbeat period
        time.sleep(0.5)
        engine.send_task_heartbeat(token)
    engine.send_task_success(token, {"ok": 1})
    assert execution.wait(30).status == SUCCEEDED
    silent = engine.start_execution(definition).wait(30)
    inbox.take()
    # A missed heartbeat fails with States.Timeout; States.HeartbeatTimeout matches it only in
    # Catch and Retry (https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html).
    assert (silent.status, silent.error) == (FAILED, "States.Timeout")
    definition["States"]["Approve"]["Catch"] = [
        {"ErrorEquals": ["States.HeartbeatTimeout"], "Next": "Caught"}
    ]
    definition["States"]["Caught"] = {"Type": "Pass", "End": True}
    caught = engine.start_execution(definition).wait(30)
    inbox.take()
    assert caught.status == SUCCEEDED and caught.output["Error"] == "States.Timeout"


def test_stop_aborts_and_cancels_sync_job(engine):
    job = Job(polls=None)
    engine.register_service("sagemaker", "createTrainingJob", job.start, job.poll, job.cancel)
    execution = engine.start_execution(
        machine({"Train": task(TRAIN_SYNC, {"TrainingJobName": "j"})})
    )
    deadline = time.monotonic() + 30
    while job.poll_count == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    execution.stop(error="User.Stop", cause="enough")
    execution.wait(30)
    assert (execution.status, execution.error, execution.cause) == (ABORTED, "User.Stop", "enough")
    assert job.cancelled.wait(10)
    assert execution.history()[-1]["type"] == "ExecutionAborted"


def test_execution_timeout(engine, run):
    job = Job(polls=None)
    engine.register_service("sagemaker", "createTrainingJob", job.start, job.poll, job.cancel)
    definition = machine({"Train": task(TRAIN_SYNC, {"TrainingJobName": "j"})}, TimeoutSeconds=1)
    execution = run(definition)
    assert execution.status == TIMED_OUT
    assert execution.history()[-1]["type"] == "ExecutionTimedOut"
    assert job.cancelled.wait(10)


# ------------------------------------------------------------------------------------------
# Definition checks, isolation, the SDK's own output
# ------------------------------------------------------------------------------------------


def test_unregistered_handlers_fail_when_reached_not_up_front(engine, run):
    # AWS accepts a definition whose Lambda function does not exist; the Task fails when it
    # runs with Lambda.ResourceNotFoundException, catchable like any task error:
    # https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html
    definition = machine(
        {
            "Choose": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.train", "BooleanEquals": True, "Next": "Train"}],
                "Default": "Eval",
            },
            "Train": task(TRAIN_SYNC, {"TrainingJobName": "j"}, Next="Eval"),
            "Eval": task(
                LAMBDA,
                {"FunctionName": "evaluate"},
                Catch=[{"ErrorEquals": ["Lambda.ResourceNotFoundException"], "Next": "Gone"}],
            ),
            "Gone": {"Type": "Pass", "End": True},
        }
    )
    assert engine.missing_handlers(definition) == [
        "state 'Train': sagemaker:createTrainingJob (arn:aws:states:::sagemaker:createTrainingJob.sync)",
        "state 'Eval': Lambda function 'evaluate'",
    ]
    caught = run(definition, {"train": False})
    assert caught.status == SUCCEEDED
    assert caught.output["Error"] == "Lambda.ResourceNotFoundException"
    assert "Function not found: evaluate" in caught.output["Cause"]
    # An integration the runtime cannot emulate fails its task with a sentence naming it.
    failed = run(definition, {"train": True})
    assert (failed.status, failed.error) == (FAILED, "States.Runtime")
    assert "cannot emulate the integration sagemaker:createTrainingJob" in failed.cause
    assert "--mock-config" in failed.cause


def test_no_socket_and_no_boto_client_while_running(engine, run, monkeypatch):
    import socket

    import botocore.session

    connects: list[Any] = []
    clients: list[Any] = []
    real_create_client = botocore.session.Session.create_client

    def spy_connect(self: Any, address: Any) -> None:
        connects.append(address)
        raise ConnectionRefusedError("the engine must not open sockets")

    def spy_create_client(self: Any, *args: Any, **kwargs: Any) -> Any:
        clients.append(args)
        return real_create_client(self, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", spy_connect)
    monkeypatch.setattr(botocore.session.Session, "create_client", spy_create_client)
    job = Job(polls=2)
    engine.register_service("sagemaker", "createTrainingJob", job.start, job.poll)
    engine.register_service("aws-sdk:ssm", "getParameter", lambda p, c: {"Parameter": {}})
    definition = machine(
        {
            "T": task(TRAIN_SYNC, {"TrainingJobName": "j"}, Next="S"),
            "S": task("arn:aws:states:::aws-sdk:ssm:getParameter", {"Name": "n"}, Next="L"),
            "L": task(LAMBDA, {"FunctionName": "echo", "Payload": {"a": 1}}, Next="F"),
            "F": task("arn:aws:lambda:us-east-1:123456789012:function:echo", End=True),
        }
    )
    execution = run(definition)
    assert execution.status == SUCCEEDED, (execution.error, execution.cause)
    assert connects == [] and clients == []


def test_direct_lambda_arn_resource_and_name_matching(engine, run):
    engine.register_lambda("arn:aws:lambda:us-east-1:123456789012:function:exact", echo)
    definition = machine(
        {
            "A": task(
                "arn:aws:lambda:us-east-1:123456789012:function:echo:$LATEST",
                ResultPath="$.a",
                Next="B",
            ),
            "B": task(
                LAMBDA,
                {"FunctionName": "123456789012:function:exact", "Payload.$": "$"},
                ResultSelector={"p.$": "$.Payload.v"},
                ResultPath="$.b",
                Next="C",
            ),
            "C": task(
                LAMBDA,
                {"FunctionName.$": "$.fn"},
                Catch=[
                    {
                        "ErrorEquals": ["Lambda.ResourceNotFoundException"],
                        "ResultPath": "$.c",
                        "Next": "Done",
                    }
                ],
            ),
            "Done": {"Type": "Succeed"},
        }
    )
    execution = run(definition, {"v": 3, "fn": "not-registered"})
    assert execution.status == SUCCEEDED
    assert execution.output["a"] == {"v": 3, "fn": "not-registered"}
    assert execution.output["b"] == {"p": 3}
    assert execution.output["c"]["Error"] == "Lambda.ResourceNotFoundException"


def test_concurrent_executions_are_isolated(engine):
    engine.register_lambda(
        "slow", lambda p, c: time.sleep(0.05) or {"i": p["i"], "name": c.execution_name}
    )
    definition = machine(
        {"T": task(LAMBDA, {"FunctionName": "slow", "Payload.$": "$"}, OutputPath="$.Payload")}
    )
    executions = [engine.start_execution(definition, {"i": i}, name=f"e{i}") for i in range(8)]
    for i, execution in enumerate(executions):
        assert execution.wait(60).output == {"i": i, "name": f"e{i}"}


def test_listener_sees_states_with_durations(engine, run):
    events: list[Any] = []
    engine.on_event(events.append)
    engine.on_event(lambda event: 1 / 0)  # a broken listener must not break the run
    execution = run(
        machine(
            {"A": {"Type": "Wait", "Seconds": 1, "Next": "B"}, "B": {"Type": "Pass", "End": True}}
        )
    )
    assert execution.status == SUCCEEDED
    exited = [(e.state_name, e.duration) for e in events if e.event["type"].endswith("Exited")]
    assert [name for name, _ in exited] == ["A", "B"]
    assert all(duration is not None and duration >= 0 for _, duration in exited)
    assert events[-1].event["type"] == "ExecutionSucceeded" and events[-1].duration is not None
    assert [e.event["id"] for e in events] == [e["id"] for e in execution.history()]


def test_threads_are_pruned_after_executions(run):
    from moto.stepfunctions.parser.utils import TMP_THREADS

    for _ in range(5):
        assert run(machine({"P": {"Type": "Pass", "End": True}})).status == SUCCEEDED
    time.sleep(0.1)
    dead = [thread for thread in TMP_THREADS if not thread.is_alive()]
    assert len(dead) <= 3  # only the last execution's threads, not every execution's


@pytest.mark.slow
def test_definition_built_by_the_stepfunctions_sdk_runs(engine, inbox):
    from stepfunctions.steps import (
        Catch,
        Chain,
        Choice,
        ChoiceRule,
        Fail,
        LambdaStep,
        Map,
        Parallel,
        Pass,
        Retry,
        Succeed,
        Task,
        Wait,
    )
    from stepfunctions.workflow import Workflow

    job = Job(polls=2)
    engine.register_service("codebuild", "startBuild", job.start, job.poll, job.cancel)
    engine.register_lambda("prepare", lambda p, c: {"rows": 10, "job": p["job"]})
    engine.register_lambda("approve", lambda p, c: inbox.put(p["token"]) or {})
    fail = Fail("Failed", error="PipelineFailed")
    prepare = LambdaStep(
        "Prepare",
        parameters={
            "FunctionName": "prepare",
            "Payload": {"job.$": "$$.Execution.Input['JobName']"},
        },
        result_path="$.prepare",
    )
    prepare.add_retry(
        Retry(
            error_equals=["States.TaskFailed"], interval_seconds=1, max_attempts=2, backoff_rate=2.0
        )
    )
    build = Task(
        "Build", resource=BUILD_SYNC, parameters={"ProjectName": "p"}, result_path="$.build"
    )
    build.add_catch(Catch(error_equals=["States.ALL"], next_step=fail))
    approval = LambdaStep(
        "Approval",
        wait_for_callback=True,
        parameters={"FunctionName": "approve", "Payload": {"token.$": "$$.Task.Token"}},
        timeout_seconds=60,
        result_path="$.approval",
    )
    branches = Parallel("Checks", result_path="$.checks")
    branches.add_branch(Pass("One", result=1))
    branches.add_branch(Wait("Pause", seconds=5))
    mapped = Map(
        "Each", items_path="$.items", iterator=Pass("Item"), max_concurrency=2, result_path="$.each"
    )
    gate = Choice("Gate")
    gate.add_choice(ChoiceRule.StringEquals("$.approval.decision", "approve"), Succeed("Done"))
    gate.default_choice(fail)
    workflow = Workflow(
        "sdk-local",
        Chain([prepare, build, approval, branches, mapped, gate]),
        role="arn:aws:iam::123456789012:role/sfn",
    )
    execution = engine.start_execution(
        workflow.definition.to_json(), {"JobName": "job-1", "items": [1, 2, 3]}
    )
    engine.send_task_success(inbox.take(), {"decision": "approve"})
    execution.wait(60)
    assert execution.status == SUCCEEDED, (execution.error, execution.cause)
    assert execution.output["prepare"]["Payload"] == {"rows": 10, "job": "job-1"}
    assert execution.output["each"] == [1, 2, 3]
    assert execution.output["checks"][0] == 1


@pytest.mark.parametrize("resource", [TRAIN_SYNC, LAMBDA_TOKEN])
def test_stop_while_waiting_stays_aborted_with_no_event_after(engine, inbox, resource):
    job = Job(polls=None)
    engine.register_service("sagemaker", "createTrainingJob", job.start, job.poll, job.cancel)
    engine.register_lambda("ask", lambda p, c: inbox.put(p["token"]) or {})
    definition = machine(
        {
            "T": task(
                resource,
                {
                    "TrainingJobName": "j",
                    "FunctionName": "ask",
                    "Payload": {"token.$": "$$.Task.Token"},
                },
                ResultSelector={"s.$": "$.Status"},
                Retry=[{"ErrorEquals": ["States.ALL"]}],
            )
        }
    )
    if resource == TRAIN_SYNC:
        del definition["States"]["T"]["Parameters"]["Payload"]
    execution = engine.start_execution(definition)
    if resource == LAMBDA_TOKEN:
        inbox.take()
    else:
        deadline = time.monotonic() + 30
        while job.poll_count == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
    execution.stop()
    execution.wait(30)
    time.sleep(0.3)  # let the interrupted task thread wind down
    assert execution.status == ABORTED
    types = [e["type"] for e in execution.history()]
    assert types[-1] == "ExecutionAborted" and "TaskSucceeded" not in types


def test_stop_right_after_start(engine):
    execution = engine.start_execution(
        machine({"W": {"Type": "Wait", "Seconds": 3600, "End": True}})
    )
    execution.stop(error="Early")
    assert execution.wait(30).status == ABORTED


def test_lambda_result_that_is_not_json_is_a_marshal_error(engine, run):
    engine.register_lambda("odd", lambda p, c: {"value": object()})
    execution = run(machine({"T": task(LAMBDA, {"FunctionName": "odd"})}))
    assert (execution.status, execution.error) == (FAILED, "Runtime.MarshalError")
    assert "Unable to marshal response" in json.loads(execution.cause)["errorMessage"]


def test_fail_state_can_rethrow_a_states_error(engine, run):
    job = Job(polls=1, fail=TaskFailed("States.TaskFailed", "job failed"))
    engine.register_service("sagemaker", "createTrainingJob", job.start, job.poll)
    branch = {
        "StartAt": "Train",
        "States": {
            "Train": task(
                TRAIN_SYNC,
                {},
                Catch=[{"ErrorEquals": ["States.ALL"], "ResultPath": "$.e", "Next": "Rethrow"}],
            ),
            "Rethrow": {"Type": "Fail", "ErrorPath": "$.e.Error", "CausePath": "$.e.Cause"},
        },
    }
    definition = machine(
        {
            "Par": {
                "Type": "Parallel",
                "Branches": [branch],
                "Catch": [
                    {"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.outer", "Next": "Again"}
                ],
                "End": True,
            },
            "Again": {"Type": "Fail", "Error": "States.TaskFailed", "Cause": "still failed"},
        }
    )
    execution = run(definition)
    assert (execution.status, execution.error, execution.cause) == (
        FAILED,
        "States.TaskFailed",
        "still failed",
    )
