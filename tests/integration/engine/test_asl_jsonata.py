"""JSONata in the local engine, with AWS Step Functions' results (each test cites its AWS page).

Covers `QueryLanguage` (top level and per state), `Arguments`, `Output`, `$states` (`input`,
`result`, `errorOutput`, `context`), Choice `Condition`, Map `Items`/`ItemSelector`, `{% %}` in
Wait, Fail and Map fields, the functions Step Functions adds, and `States.QueryEvaluationError`.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import pytest
from asl_jsonata_support import (
    CHOICE,
    CONTEXT,
    ERRORS,
    EVENTS,
    FAIL,
    LAMBDA,
    LAMBDA_DOC,
    MAP,
    PARALLEL,
    QUERY_ERROR,
    STRUCTURE,
    TRANSFORMING,
    WAIT,
    Run,
    inline_map,
    jsonata,
    machine,
    pass_output,
    succeeded,
)

from workflow.local.engine import FAILED, EngineError, LocalEngine, LocalExecution

pytestmark = pytest.mark.integration


def failed_with(execution: LocalExecution, doc: str, error: str, *cause_parts: str) -> None:
    """Assert the execution failed with `error` (as the AWS page `doc` says) and a cause."""
    assert execution.status == FAILED, (doc, execution.output)
    assert execution.error == error, (doc, execution.cause)
    for part in cause_parts:
        assert part in (execution.cause or ""), (doc, execution.cause)


# ------------------------------------------------------------------------------------------
# Output, Arguments, $states
# ------------------------------------------------------------------------------------------


def test_output_evaluates_expressions_inside_objects_and_arrays(run: Run) -> None:
    # TRANSFORMING: "Any string value, including those inside objects or arrays, will be
    # evaluated as JSONata if surrounded by {% %}"; other strings stay literal.
    definition = jsonata(
        {
            "P": pass_output(
                {
                    "title": "{% $states.input.title %}",
                    "n": ["{% $count($states.input.items) %}", "literal"],
                    "not-evaluated": "$customerName",
                    "total": "{% $sum($states.input.items.price) %}",
                }
            )
        }
    )
    payload = {"title": "Doctor", "items": [{"price": 2.5}, {"price": 1.5}]}
    assert succeeded(run(definition, payload)) == {
        "title": "Doctor",
        "n": [2, "literal"],
        "not-evaluated": "$customerName",
        "total": 4,
    }, TRANSFORMING


def test_output_may_be_one_expression_of_any_type(run: Run) -> None:
    # TRANSFORMING: Output "accepts a JSONata expression directly", any JSON value.
    definition = jsonata({"P": pass_output("{% $states.input.a & '-' & $states.input.b %}")})
    assert succeeded(run(definition, {"a": "x", "b": "y"})) == "x-y", TRANSFORMING


def test_task_arguments_result_and_output(engine: LocalEngine, run: Run) -> None:
    # LAMBDA_DOC + TRANSFORMING: Arguments is the request; $states.result the task's result
    # (for lambda:invoke, the Invoke response with the function's answer in Payload).
    engine.register_lambda("double", lambda payload, ctx: {"value": payload["x"] * 2})
    definition = jsonata(
        {
            "T": {
                "Type": "Task",
                "Resource": LAMBDA,
                "Arguments": {"FunctionName": "double", "Payload": {"x": "{% $states.input.n %}"}},
                "Output": {
                    "value": "{% $states.result.Payload.value %}",
                    "status": "{% $states.result.StatusCode %}",
                    "input": "{% $states.input %}",
                },
                "End": True,
            }
        }
    )
    assert succeeded(run(definition, {"n": 21})) == {
        "value": 42,
        "status": 200,
        "input": {"n": 21},
    }, LAMBDA_DOC + " " + TRANSFORMING


def test_states_context_is_the_context_object(run: Run) -> None:
    # TRANSFORMING/CONTEXT: $states.context is the context object (Execution, State, ...).
    definition = jsonata(
        {
            "Here": pass_output(
                {
                    "name": "{% $states.context.Execution.Name %}",
                    "input": "{% $states.context.Execution.Input %}",
                    "state": "{% $states.context.State.Name %}",
                }
            )
        }
    )
    output = succeeded(run(definition, {"k": 1}, name="ctx-run"))
    assert output == {
        "name": "ctx-run",
        "input": {"k": 1},
        "state": "Here",
    }, CONTEXT


def test_catch_sees_states_error_output(engine: LocalEngine, run: Run) -> None:
    # TRANSFORMING: $states.errorOutput is "only available in a Catch"; a Catch's Output
    # replaces the state output. ERRORS: an unhandled Lambda error is named after its type.
    def reject(payload: Any, ctx: Any) -> Any:
        raise ValueError("bad input")

    engine.register_lambda("reject", reject)
    definition = jsonata(
        {
            "T": {
                "Type": "Task",
                "Resource": LAMBDA,
                "Arguments": {"FunctionName": "reject", "Payload": {}},
                "Catch": [
                    {
                        "ErrorEquals": ["States.ALL"],
                        "Output": {
                            "error": "{% $states.errorOutput.Error %}",
                            "message": "{% $parse($states.errorOutput.Cause).errorMessage %}",
                            "input": "{% $states.input %}",
                        },
                        "Next": "Done",
                    }
                ],
                "End": True,
            },
            "Done": {"Type": "Succeed"},
        }
    )
    assert succeeded(run(definition, {"id": 7})) == {
        "error": "ValueError",
        "message": "bad input",
        "input": {"id": 7},
    }, TRANSFORMING + " " + ERRORS


def test_wait_for_task_token_with_states_context(engine: LocalEngine, inbox: Any) -> None:
    # CONTEXT/LAMBDA_DOC: in a JSONata state the task token is $states.context.Task.Token;
    # the answer sent with SendTaskSuccess is $states.result.
    engine.register_lambda("ask", lambda payload, ctx: inbox.put(payload["token"]) or {})
    definition = jsonata(
        {
            "Approve": {
                "Type": "Task",
                "Resource": LAMBDA + ".waitForTaskToken",
                "Arguments": {
                    "FunctionName": "ask",
                    "Payload": {"token": "{% $states.context.Task.Token %}"},
                },
                "Output": {"approved": "{% $states.result.decision = 'yes' %}"},
                "End": True,
            }
        }
    )
    execution = engine.start_execution(definition, {})
    engine.send_task_success(inbox.take(), {"decision": "yes"})
    assert succeeded(execution.wait(30)) == {"approved": True}, CONTEXT + " " + LAMBDA_DOC


# ------------------------------------------------------------------------------------------
# Choice, Map, Parallel, Wait, Fail
# ------------------------------------------------------------------------------------------


def choice_machine() -> dict[str, Any]:
    return jsonata(
        {
            "Check": {
                "Type": "Choice",
                "Choices": [
                    {
                        "Condition": "{% $states.input.score >= 0.9 and $states.input.ok %}",
                        "Output": {"grade": "A"},
                        "Next": "Done",
                    }
                ],
                "Default": "Done",
                "Output": {"grade": "{% 'below ' & $string($states.input.score) %}"},
            },
            "Done": {"Type": "Succeed"},
        }
    )


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"score": 0.95, "ok": True}, {"grade": "A"}),
        ({"score": 0.95, "ok": False}, {"grade": "below 0.95"}),
        ({"score": 0.5, "ok": True}, {"grade": "below 0.5"}),
    ],
)
def test_choice_condition_picks_the_rule_and_its_output(
    run: Run, payload: dict[str, Any], expected: dict[str, Any]
) -> None:
    # CHOICE: a JSONata rule is a "Condition" that evaluates to a boolean; the matching
    # rule's Output (or, on Default, the state's Output) is the state output.
    assert succeeded(run(choice_machine(), payload)) == expected, CHOICE


def test_choice_condition_that_is_not_a_boolean_fails(run: Run) -> None:
    # CHOICE: "Condition" must evaluate to a boolean; ERRORS: a failed JSONata evaluation is
    # States.QueryEvaluationError.
    definition = jsonata(
        {
            "Check": {
                "Type": "Choice",
                "Choices": [{"Condition": "{% $states.input.n %}", "Next": "Done"}],
                "Default": "Done",
            },
            "Done": {"Type": "Succeed"},
        }
    )
    failed_with(
        run(definition, {"n": 5}), ERRORS, QUERY_ERROR, "'$states.input.n'", "not a boolean"
    )


def test_map_items_and_item_selector(run: Run) -> None:
    # MAP: Items is "a JSON array or a JSONata expression that must evaluate to an array";
    # ItemSelector builds each iteration's input, with $states.context.Map.Item.Index/Value;
    # MaxConcurrency accepts JSONata; the Map result is the array of iteration outputs.
    definition = jsonata(
        {
            "Each": inline_map(
                {"Price": pass_output("{% $states.input.qty * $states.input.unit %}")},
                Items="{% $states.input.lines %}",
                MaxConcurrency="{% $states.input.parallelism %}",
                ItemSelector={
                    "qty": "{% $states.context.Map.Item.Value.qty %}",
                    "unit": "{% $states.input.unit %}",
                    "index": "{% $states.context.Map.Item.Index %}",
                },
                Output={"prices": "{% $states.result %}", "sum": "{% $sum($states.result) %}"},
            )
        }
    )
    payload = {"lines": [{"qty": 1}, {"qty": 3}, {"qty": 2}], "unit": 5, "parallelism": 2}
    assert succeeded(run(definition, payload)) == {"prices": [5, 15, 10], "sum": 30}, MAP


def test_map_items_literal_array_and_default_input(run: Run) -> None:
    # MAP: Items may be a literal JSON array; without Items the state input must be an array.
    literal = jsonata(
        {"Each": inline_map({"Echo": pass_output("{% $states.input * 2 %}")}, Items=[1, 2])}
    )
    default = jsonata({"Each": inline_map({"Echo": pass_output("{% $states.input %}")})})
    assert succeeded(run(literal, {})) == [2, 4], MAP
    assert succeeded(run(default, ["a", "b"])) == ["a", "b"], MAP


def test_map_items_that_are_not_an_array_fail(run: Run) -> None:
    # MAP: the Items expression "must evaluate to an array"; ERRORS: States.QueryEvaluationError.
    definition = jsonata(
        {"Each": inline_map({"Echo": pass_output(1)}, Items="{% $states.input %}")}
    )
    failed_with(run(definition, {"not": "an array"}), ERRORS, QUERY_ERROR, "Items")


def test_parallel_arguments_are_each_branch_input(run: Run) -> None:
    # PARALLEL: Arguments (JSONata only) is passed to every branch; the result is the array
    # of branch outputs, in branch order.
    definition = jsonata(
        {
            "Both": {
                "Type": "Parallel",
                "Arguments": {"n": "{% $states.input.n %}"},
                "Branches": [
                    machine({"Inc": pass_output("{% $states.input.n + 1 %}")}),
                    machine({"Neg": pass_output("{% -$states.input.n %}")}),
                ],
                "Output": "{% $states.result %}",
                "End": True,
            }
        }
    )
    assert succeeded(run(definition, {"n": 4})) == [5, -4], PARALLEL


def test_wait_seconds_and_fail_error_cause_accept_jsonata(run: Run) -> None:
    # WAIT: Seconds may be a JSONata expression; FAIL: Error and Cause accept JSONata.
    definition = jsonata(
        {
            "Pause": {"Type": "Wait", "Seconds": "{% $states.input.delay %}", "Next": "Stop"},
            "Stop": {
                "Type": "Fail",
                "Error": "{% 'Model.' & $states.input.kind %}",
                "Cause": "{% 'waited ' & $string($states.input.delay) & ' s' %}",
            },
        }
    )
    execution = run(definition, {"delay": 1, "kind": "Rejected"})
    assert (execution.status, execution.error, execution.cause) == (
        FAILED,
        "Model.Rejected",
        "waited 1 s",
    ), WAIT + " " + FAIL


# ------------------------------------------------------------------------------------------
# QueryLanguage
# ------------------------------------------------------------------------------------------


def test_jsonata_state_inside_a_jsonpath_machine(run: Run) -> None:
    # STRUCTURE/TRANSFORMING: QueryLanguage defaults to JSONPath and may be set per state.
    definition = machine(
        {
            "Legacy": {"Type": "Pass", "Parameters": {"v.$": "$.x"}, "Next": "Modern"},
            "Modern": {
                "Type": "Pass",
                "QueryLanguage": "JSONata",
                "Output": {"double": "{% $states.input.v * 2 %}"},
                "Next": "Legacy2",
            },
            "Legacy2": {
                "Type": "Pass",
                "ResultPath": "$.copy",
                "Parameters": {"d.$": "$.double"},
                "End": True,
            },
        }
    )
    assert succeeded(run(definition, {"x": 4})) == {"double": 8, "copy": {"d": 8}}, STRUCTURE


def test_jsonpath_state_in_a_jsonata_machine_is_refused(engine: LocalEngine) -> None:
    # STRUCTURE: with a top-level QueryLanguage of JSONata, a state cannot go back to
    # JSONPath; the document is refused before anything runs.
    definition = jsonata(
        {"Old": {"Type": "Pass", "QueryLanguage": "JSONPath", "Parameters": {"a": 1}, "End": True}}
    )
    with pytest.raises(EngineError) as refused:
        engine.start_execution(definition, {})
    assert any(word in str(refused.value) for word in ("JSONPath", "QueryLanguage")), STRUCTURE
    assert engine.executions == [], STRUCTURE
    # The refusal leaves nothing behind: a JSONPath document parses and runs afterwards
    # (moto kept the refused document's QueryLanguage scope in a class attribute).
    jsonpath = machine({"P": {"Type": "Pass", "Parameters": {"v.$": "$.v"}, "End": True}})
    assert succeeded(engine.start_execution(jsonpath, {"v": 1}).wait(30)) == {"v": 1}, STRUCTURE


# ------------------------------------------------------------------------------------------
# Step Functions' JSONata functions
# ------------------------------------------------------------------------------------------


def test_step_functions_functions(run: Run) -> None:
    # TRANSFORMING, "JSONata functions provided by Step Functions".
    definition = jsonata(
        {
            "F": pass_output(
                {
                    "partition": "{% $partition([1,2,3,4,5,6,7,8,9], 3) %}",
                    "partition_rest": "{% $partition([1,2,3,4,5], 2) %}",
                    "range": "{% $range(0, 10, 2) %}",
                    "range_down": "{% $range(5, 1, -2) %}",
                    "hash": "{% $hash('input data', 'SHA-256') %}",
                    "md5": "{% $hash($states.input.text, 'MD5') %}",
                    "parse": '{% $parse(\'{"product": {"name": "Headphones"}}\').product %}',
                    "same_seed": "{% $random(42) = $random(42) %}",
                    "unit": "{% $random() >= 0 and $random() < 1 %}",
                    "uuid": "{% $uuid() %}",
                }
            )
        }
    )
    output = succeeded(run(definition, {"text": "abc"}))
    uuid_text = output.pop("uuid")
    assert output == {
        "partition": [[1, 2, 3], [4, 5, 6], [7, 8, 9]],
        "partition_rest": [[1, 2], [3, 4], [5]],
        "range": [0, 2, 4, 6, 8, 10],
        "range_down": [5, 3, 1],
        "hash": hashlib.sha256(b"input data").hexdigest(),
        "md5": hashlib.md5(b"abc").hexdigest(),
        "parse": {"name": "Headphones"},
        "same_seed": True,
        "unit": True,
    }, TRANSFORMING
    assert uuid.UUID(uuid_text).version == 4, TRANSFORMING  # $uuid is a v4 UUID


def test_eval_is_not_available(run: Run) -> None:
    # TRANSFORMING: "$eval is not available—use $parse instead".
    definition = jsonata({"F": pass_output("{% $eval('1 + 1') %}")})
    failed_with(run(definition, {}), ERRORS, QUERY_ERROR, "$eval", "$parse")


def test_hash_with_an_unknown_algorithm_fails(run: Run) -> None:
    # TRANSFORMING: $hash supports MD5, SHA-1, SHA-256, SHA-384 and SHA-512 only.
    definition = jsonata({"F": pass_output("{% $hash('x', 'SHA-3') %}")})
    failed_with(run(definition, {}), ERRORS, QUERY_ERROR, "SHA-3", "SHA-256")


# ------------------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------------------


def test_undefined_result_fails_with_query_evaluation_error_and_event(run: Run) -> None:
    # TRANSFORMING: an expression must produce a defined value; ERRORS: otherwise the state
    # fails with States.QueryEvaluationError; EVENTS: an EvaluationFailed event names it.
    execution = run(jsonata({"P": pass_output({"v": "{% $states.input.missing %}"})}), {})
    failed_with(execution, ERRORS, QUERY_ERROR, "'$states.input.missing'", "returned nothing")
    events = [event for event in execution.history() if event["type"] == "EvaluationFailed"]
    assert len(events) == 1, EVENTS
    details = events[0]["evaluationFailedEventDetails"]
    assert (details["error"], details["state"]) == (QUERY_ERROR, "P"), EVENTS


def test_type_error_fails_with_query_evaluation_error(run: Run) -> None:
    # ERRORS: a JSONata runtime error (here a string in arithmetic) is States.QueryEvaluationError.
    execution = run(jsonata({"P": pass_output("{% $states.input.s + 1 %}")}), {"s": "text"})
    failed_with(execution, ERRORS, QUERY_ERROR, "'$states.input.s + 1'")


def test_query_evaluation_error_is_catchable(engine: LocalEngine, run: Run) -> None:
    # ERRORS: States.QueryEvaluationError is an error name a Catch can match; the error output
    # holds Error and Cause.
    engine.register_lambda("never", lambda payload, ctx: payload)
    definition = jsonata(
        {
            "T": {
                "Type": "Task",
                "Resource": LAMBDA,
                "Arguments": {"FunctionName": "never", "Payload": "{% $states.input.nope %}"},
                "Catch": [
                    {
                        "ErrorEquals": [QUERY_ERROR],
                        "Output": "{% $states.errorOutput.Error %}",
                        "Next": "Done",
                    }
                ],
                "End": True,
            },
            "Done": {"Type": "Succeed"},
        }
    )
    assert succeeded(run(definition, {})) == QUERY_ERROR, ERRORS


# ------------------------------------------------------------------------------------------
# A document as Workflow Studio and the CDK emit it
# ------------------------------------------------------------------------------------------

STUDIO_RETRY = [
    {
        "ErrorEquals": [
            "Lambda.ServiceException",
            "Lambda.AWSLambdaException",
            "Lambda.SdkClientException",
            "Lambda.TooManyRequestsException",
        ],
        "IntervalSeconds": 1,
        "MaxAttempts": 3,
        "BackoffRate": 2,
        "JitterStrategy": "FULL",
    }
]

STUDIO_DOCUMENT: dict[str, Any] = {
    "Comment": "Evaluate a model, then tag every candidate when it is good enough",
    "QueryLanguage": "JSONata",
    "StartAt": "Evaluate",
    "States": {
        "Evaluate": {
            "Type": "Task",
            "Resource": LAMBDA,
            "Arguments": {
                "FunctionName": "arn:aws:lambda:us-east-1:123456789012:function:evaluate",
                "Payload": "{% $states.input %}",
            },
            "Retry": STUDIO_RETRY,
            "Assign": {"threshold": "{% $states.input.threshold %}"},
            "Output": "{% $states.result.Payload %}",
            "Next": "Good enough?",
        },
        "Good enough?": {
            "Type": "Choice",
            "Choices": [
                {
                    "Next": "Tag candidates",
                    "Condition": "{% $states.input.accuracy >= $threshold %}",
                }
            ],
            "Default": "Too low",
        },
        "Tag candidates": {
            "Type": "Map",
            "Items": "{% $states.input.candidates %}",
            "ItemSelector": {
                "model": "{% $states.context.Map.Item.Value %}",
                "rank": "{% $states.context.Map.Item.Index + 1 %}",
            },
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "INLINE"},
                "StartAt": "Tag",
                "States": {
                    "Tag": {
                        "Type": "Pass",
                        "Output": "{% $string($states.input.rank) & ':' & $states.input.model %}",
                        "End": True,
                    }
                },
            },
            "Output": {"tags": "{% $states.result %}", "threshold": "{% $threshold %}"},
            "End": True,
        },
        "Too low": {
            "Type": "Fail",
            "Error": "AccuracyTooLow",
            "Cause": "{% 'accuracy ' & $string($states.input.accuracy) & ' < ' & $string($threshold) %}",
        },
    },
}


def evaluate(payload: dict[str, Any], ctx: Any) -> dict[str, Any]:
    return {"accuracy": payload["accuracy"], "candidates": payload["candidates"]}


def test_workflow_studio_document_good_model(engine: LocalEngine, run: Run) -> None:
    # TRANSFORMING (Arguments/Output/Assign, $states.result.Payload), CHOICE (Condition with a
    # variable), MAP (Items, ItemSelector with $states.context.Map.Item): AWS's output.
    engine.register_lambda("evaluate", evaluate)
    payload = {"accuracy": 0.93, "threshold": 0.9, "candidates": ["resnet", "vit"]}
    assert succeeded(run(STUDIO_DOCUMENT, payload)) == {
        "tags": ["1:resnet", "2:vit"],
        "threshold": 0.9,
    }, TRANSFORMING + " " + CHOICE + " " + MAP


def test_workflow_studio_document_rejected_model(engine: LocalEngine, run: Run) -> None:
    # FAIL: Cause is a JSONata expression; the Choice Default goes to the Fail state.
    engine.register_lambda("evaluate", evaluate)
    payload = {"accuracy": 0.5, "threshold": 0.9, "candidates": ["resnet"]}
    execution = run(STUDIO_DOCUMENT, payload)
    assert (execution.status, execution.error, execution.cause) == (
        FAILED,
        "AccuracyTooLow",
        "accuracy 0.5 < 0.9",
    ), FAIL + " " + CHOICE


# ------------------------------------------------------------------------------------------
# The patches themselves
# ------------------------------------------------------------------------------------------


def test_install_is_idempotent_and_refuses_a_foreign_target(
    engine: LocalEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Not an AWS behaviour: the seam's guard. Installing twice changes nothing; a target that
    # is neither moto's function nor ours (another patch, another moto) is refused by name.
    from moto.stepfunctions.parser.asl.component.common.string import string_expression

    from workflow.local.interpreter import jsonata as local_jsonata

    assert local_jsonata.installed()
    patched = string_expression.StringJSONata._eval_body
    local_jsonata.install()
    assert string_expression.StringJSONata._eval_body is patched

    def foreign(self: Any, env: Any) -> None:
        raise AssertionError("not moto's")

    monkeypatch.setattr(string_expression.StringJSONata, "_eval_body", foreign)
    with pytest.raises(local_jsonata.JSONataCompatError, match=r"StringJSONata\._eval_body"):
        local_jsonata.install()
