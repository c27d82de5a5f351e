"""Paths and data flow through the local engine, as the AWS documentation specifies them.

Each expected value cites the AWS page it comes from.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from asl_builders import lambda_task, machine, one_pass, pass_state

from workflow.local.engine import FAILED, SUCCEEDED

pytestmark = pytest.mark.integration

PATHS = "https://docs.aws.amazon.com/step-functions/latest/dg/amazon-states-language-paths.html"
PARAMS = "https://docs.aws.amazon.com/step-functions/latest/dg/input-output-inputpath-params.html"
RESULT_PATH = "https://docs.aws.amazon.com/step-functions/latest/dg/input-output-resultpath.html"
OUTPUT_PATH = "https://docs.aws.amazon.com/step-functions/latest/dg/input-output-example.html"
CONTEXT = "https://docs.aws.amazon.com/step-functions/latest/dg/input-output-contextobject.html"
CHOICE = "https://docs.aws.amazon.com/step-functions/latest/dg/state-choice.html"
MAP = "https://docs.aws.amazon.com/step-functions/latest/dg/state-map-inline.html"

DATA = {
    "a": [{"b": 1}, {"b": 2}],
    "Payload": {"metrics": [{"Name": "validation:error", "Value": 0.05}]},
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        # A reference path selects one node: a definite path gives that value (PATHS).
        ("$.a[0].b", 1),
        ("$.a[1].b", 2),
        ("$['Payload']['metrics'][0]['Value']", 0.05),
        ("$.Payload.metrics[0].Name", "validation:error"),
        ("$.a[1]", {"b": 2}),
        # Wildcards select several nodes: a list (PATHS).
        ("$.a[*].b", [1, 2]),
    ],
)
def test_definite_paths_give_the_value(run, path, expected):
    # moto 5.2.5's extract_json returned [1] for "$.a[0].b" (a silent divergence). PATHS
    assert run(one_pass({"v.$": path}), DATA).output == {"v": expected}


def test_root_array_index_then_field(run):
    # "$[1].x" on an array input selects the field of the second item. PATHS
    assert run(one_pass({"v.$": "$[1].x"}), [{"x": "a"}, {"x": "b"}]).output == {"v": "b"}


def test_numeric_choice_on_an_indexed_path_takes_the_right_branch(run):
    # NumericLessThan compares the selected number (CHOICE); the SDK's retraining example
    # relies on it to deploy when the validation error is below 0.1.
    definition = machine(
        {
            "Gate": {
                "Type": "Choice",
                "Choices": [
                    {
                        "Variable": "$['Payload']['metrics'][0]['Value']",
                        "NumericLessThan": 0.1,
                        "Next": "Deploy",
                    }
                ],
                "Default": "TooLow",
            },
            "Deploy": {"Type": "Succeed"},
            "TooLow": {"Type": "Fail", "Error": "AccuracyTooLow"},
        }
    )
    assert run(definition, DATA).status == SUCCEEDED


def test_input_path_with_index_then_field(run):
    # InputPath selects part of the input as the state's input. PARAMS
    assert run(machine({"P": pass_state(InputPath="$.a[1].b")}), DATA).output == 2


def test_missing_definite_path_is_states_runtime(run):
    # A path that selects nothing fails the state with States.Runtime. PATHS
    execution = run(one_pass({"v.$": "$.a[5].b"}), DATA)
    assert (execution.status, execution.error) == (FAILED, "States.Runtime")


def test_result_path_replace_merge_discard(run):
    # ResultPath "$" replaces the input, "$.x" adds the result, null discards it. RESULT_PATH
    states = {
        "Replace": pass_state(Result={"r": 1}, ResultPath="$", Next="Merge"),
        "Merge": pass_state(Result="two", ResultPath="$.more", Next="Discard"),
        "Discard": pass_state(Result="gone", ResultPath=None),
    }
    assert run(machine(states), {"in": 0}).output == {"r": 1, "more": "two"}


def test_task_result_selector_result_path_output_path(engine, run):
    # ResultSelector shapes the task result, ResultPath places it, OutputPath filters the
    # state output. OUTPUT_PATH
    engine.register_lambda("double", lambda payload, ctx: {"value": payload["n"] * 2})
    definition = machine(
        {
            "T": lambda_task(
                "double",
                ResultSelector={"doubled.$": "$.Payload.value", "status.$": "$.StatusCode"},
                ResultPath="$.result",
                OutputPath="$.result",
            )
        }
    )
    assert run(definition, {"n": 21}).output == {"doubled": 42, "status": 200}


def test_parallel_input_path_parameters_result_selector(run):
    # Parallel accepts InputPath, Parameters and ResultSelector; its result is the array of
    # the branches' outputs, in branch order. PARAMS
    branch = {"StartAt": "B", "States": {"B": pass_state()}}
    definition = machine(
        {
            "Par": {
                "Type": "Parallel",
                "InputPath": "$.inner",
                "Parameters": {"k.$": "$.k"},
                "Branches": [branch, branch],
                "ResultSelector": {"first.$": "$[0].k", "count.$": "States.ArrayLength($)"},
                "End": True,
            }
        }
    )
    assert run(definition, {"inner": {"k": "v", "drop": 1}}).output == {"first": "v", "count": 2}


def test_map_items_path_item_selector_and_context(run):
    # ItemsPath picks the array; ItemSelector builds each item's input from $$.Map.Item.Index
    # and $$.Map.Item.Value. MAP / CONTEXT
    definition = machine(
        {
            "M": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemSelector": {
                    "index.$": "$$.Map.Item.Index",
                    "value.$": "$$.Map.Item.Value",
                    "tag.$": "$.tag",
                },
                "ItemProcessor": {"StartAt": "I", "States": {"I": pass_state()}},
                "ResultPath": "$.out",
                "End": True,
            }
        }
    )
    output = run(definition, {"items": ["x", "y"], "tag": "t"}).output
    assert output["out"] == [
        {"index": 0, "value": "x", "tag": "t"},
        {"index": 1, "value": "y", "tag": "t"},
    ]


_AWS_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def test_context_state_in_a_pass_state(run):
    # $$.State holds EnteredTime, Name and RetryCount; timestamps look like
    # "2019-03-26T20:14:13.192Z". CONTEXT
    output = run(
        one_pass(
            {
                "entered.$": "$$.State.EnteredTime",
                "name.$": "$$.State.Name",
                "retries.$": "$$.State.RetryCount",
                "start.$": "$$.Execution.StartTime",
            }
        )
    ).output
    assert _AWS_TIME.match(output["entered"]) and _AWS_TIME.match(output["start"])
    assert (output["name"], output["retries"]) == ("P", 0)


def test_context_retry_count_in_a_choice_state(run):
    # A Choice rule's Variable may read the context object. CONTEXT
    definition = machine(
        {
            "C": {
                "Type": "Choice",
                "Choices": [{"Variable": "$$.State.RetryCount", "NumericEquals": 0, "Next": "Yes"}],
                "Default": "No",
            },
            "Yes": {"Type": "Succeed"},
            "No": {"Type": "Fail", "Error": "NoRetryCount"},
        }
    )
    assert run(definition).status == SUCCEEDED


def _flaky(failures: int) -> Any:
    calls = {"n": 0}

    def fn(payload: Any, ctx: Any) -> Any:
        calls["n"] += 1
        if calls["n"] <= failures:
            raise RuntimeError("transient")
        return {"ok": True}

    return fn


@pytest.mark.parametrize("kind", ["Parallel", "Map"])
def test_retry_count_counts_retries_of_parallel_and_map(engine, run, kind):
    # Retry applies to Parallel and Map states as a whole; $$.State.RetryCount is the number
    # of retries of the state. CONTEXT /
    # https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html
    engine.register_lambda("flaky", _flaky(failures=2))
    inner = {"StartAt": "Call", "States": {"Call": lambda_task("flaky")}}
    state: dict[str, Any] = {
        "Type": kind,
        "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 3}],
        "ResultSelector": {"retries.$": "$$.State.RetryCount"},
        "End": True,
    }
    if kind == "Parallel":
        state["Branches"] = [inner]
    else:
        state.update(ItemsPath="$.items", ItemProcessor=inner)
    assert run(machine({"S": state}), {"items": [1]}).output == {"retries": 2}


def test_context_path_as_a_comparator_value(run):
    # "Variable to variable comparison operators" may reference the context object. CONTEXT
    definition = machine(
        {
            "C": {
                "Type": "Choice",
                "Choices": [
                    {
                        "Variable": "$.v",
                        "NumericGreaterThanPath": "$$.Execution.Input.threshold",
                        "Next": "Above",
                    }
                ],
                "Default": "Below",
            },
            "Above": {"Type": "Pass", "Result": "above", "End": True},
            "Below": {"Type": "Pass", "Result": "below", "End": True},
        }
    )
    assert run(definition, {"v": 3, "threshold": 2}).output == "above"
    assert run(definition, {"v": 1, "threshold": 2}).output == "below"


WAIT = "https://docs.aws.amazon.com/step-functions/latest/dg/state-wait.html"
SUCCEED = "https://docs.aws.amazon.com/step-functions/latest/dg/state-succeed.html"


def test_choice_wait_succeed_apply_input_path_and_output_path(run):
    # Choice, Wait and Succeed states take InputPath and OutputPath (CHOICE, WAIT, SUCCEED).
    definition = machine(
        {
            "C": {
                "Type": "Choice",
                "InputPath": "$.inner",
                "OutputPath": "$.data",
                "Choices": [{"Variable": "$.go", "BooleanEquals": True, "Next": "W"}],
                "Default": "W",
            },
            "W": {"Type": "Wait", "Seconds": 0, "InputPath": "$.keep", "Next": "S"},
            "S": {"Type": "Succeed", "OutputPath": "$.value"},
        }
    )
    payload = {"inner": {"go": True, "data": {"keep": {"value": 7}, "drop": 1}}}
    assert run(definition, payload).output == 7


@pytest.mark.parametrize(
    ("fields", "payload", "seconds"),
    [
        ({"Seconds": 5}, {}, 5),
        ({"SecondsPath": "$.delay"}, {"delay": 3}, 3),
    ],
)
def test_wait_seconds_and_seconds_path(make_engine, fields, payload, seconds):
    # Seconds waits that many seconds; SecondsPath reads them from the input. WAIT
    engine = make_engine(time_scale=0)
    definition = machine({"W": {"Type": "Wait", **fields, "End": True}})
    execution = engine.start_execution(definition, payload).wait(30)
    assert execution.status == SUCCEEDED
    assert [(w.reason, w.seconds) for w in execution.waits] == [("wait", seconds)]


def test_wait_timestamp_in_the_past_does_not_wait_long(make_engine):
    # Timestamp waits until that time; a time in the past continues at once. WAIT
    engine = make_engine(time_scale=0)
    definition = machine({"W": {"Type": "Wait", "TimestampPath": "$.at", "End": True}})
    execution = engine.start_execution(definition, {"at": "2016-03-14T01:59:00Z"}).wait(30)
    assert execution.status == SUCCEEDED
    assert all(w.seconds <= 0 for w in execution.waits)


def test_map_max_concurrency_one_keeps_order_and_results(run):
    # MaxConcurrency limits parallel iterations; results keep the items' order. MAP
    definition = machine(
        {
            "M": {
                "Type": "Map",
                "MaxConcurrency": 1,
                "ItemProcessor": {
                    "StartAt": "Double",
                    "States": {"Double": pass_state({"v.$": "States.MathAdd($.n, $.n)"})},
                },
                "End": True,
            }
        }
    )
    assert run(definition, [{"n": 1}, {"n": 2}, {"n": 3}]).output == [
        {"v": 2},
        {"v": 4},
        {"v": 6},
    ]
