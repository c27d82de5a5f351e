"""Workflow variables in the local engine, with AWS Step Functions' results (each test cites it).

Covers `Assign` in both query languages, `$name` references in JSONPath states (paths,
intrinsic functions, Choice), the rule that a state's expressions read the variables from
before the state, and scoping across Map and Parallel.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from asl_jsonata_support import (
    CHOICE,
    ERRORS,
    EXITED_EVENT,
    LAMBDA,
    MAP,
    PARALLEL,
    QUERY_ERROR,
    TRANSFORMING,
    VARIABLES,
    Run,
    inline_map,
    jsonata,
    machine,
    pass_output,
    succeeded,
)

from workflow.local.engine import FAILED, LocalEngine

pytestmark = pytest.mark.integration


# ------------------------------------------------------------------------------------------
# JSONPath states
# ------------------------------------------------------------------------------------------


def test_jsonpath_assign_and_references(run: Run) -> None:
    # VARIABLES + TRANSFORMING ("name.$": "$customerName"): Assign takes literals and paths
    # (".$"); later JSONPath states read a variable as $name, also inside an intrinsic
    # function, and a string without ".$" stays literal.
    definition = machine(
        {
            "Remember": {
                "Type": "Pass",
                "Assign": {"customerName": "María", "order.$": "$.order", "quote": 'say "hi"'},
                "Next": "Use",
            },
            "Use": {
                "Type": "Pass",
                "Parameters": {
                    "static": "Hello",
                    "title.$": "$.title",
                    "name.$": "$customerName",
                    "first.$": "$order.items[0]",
                    "greeting.$": "States.Format('Dear {}', $customerName)",
                    "quote.$": "$quote",
                    "not-evaluated": "$customerName",
                },
                "End": True,
            },
        }
    )
    payload = {"title": "Doctor", "order": {"items": ["pen", "ink"]}}
    assert succeeded(run(definition, payload)) == {
        "static": "Hello",
        "title": "Doctor",
        "name": "María",
        "first": "pen",
        "greeting": "Dear María",
        "quote": 'say "hi"',
        "not-evaluated": "$customerName",
    }, VARIABLES + " " + TRANSFORMING


def test_jsonpath_choice_on_a_variable(run: Run) -> None:
    # VARIABLES/CHOICE: a JSONPath Choice rule's Variable may be a workflow variable.
    definition = machine(
        {
            "Set": {"Type": "Pass", "Assign": {"limit": 10}, "Next": "Check"},
            "Check": {
                "Type": "Choice",
                "Choices": [
                    {"Variable": "$limit", "NumericGreaterThanPath": "$.n", "Next": "Over"}
                ],
                "Default": "Under",
            },
            "Over": {"Type": "Pass", "Result": "limit above n", "End": True},
            "Under": {"Type": "Pass", "Result": "limit at most n", "End": True},
        }
    )
    assert succeeded(run(definition, {"n": 3})) == "limit above n", CHOICE
    assert succeeded(run(definition, {"n": 30})) == "limit at most n", CHOICE


def test_jsonpath_reference_to_an_unassigned_variable_fails(run: Run) -> None:
    # VARIABLES: a variable exists once a state assigned it; reading one that no state
    # assigned fails the state (States.Runtime, as for a JSONPath that matches nothing)
    # instead of passing null on.
    definition = machine(
        {"Use": {"Type": "Pass", "Parameters": {"v.$": "$neverAssigned"}, "End": True}}
    )
    execution = run(definition, {})
    assert (execution.status, execution.error) == (FAILED, "States.Runtime"), VARIABLES
    assert "$neverAssigned" in (execution.cause or ""), VARIABLES


# ------------------------------------------------------------------------------------------
# JSONata states
# ------------------------------------------------------------------------------------------


def test_jsonata_assign_any_json_value(run: Run) -> None:
    # VARIABLES: Assign holds any JSON value (object, array, string, number, boolean, null),
    # literal or JSONata.
    definition = jsonata(
        {
            "Set": {
                "Type": "Pass",
                "Assign": {
                    "obj": {"a": [1, "{% $states.input.x %}"]},
                    "nothing": None,
                    "flag": True,
                    "text": "{% $uppercase($states.input.s) %}",
                },
                "Next": "Get",
            },
            "Get": pass_output(
                {
                    "obj": "{% $obj %}",
                    "isNull": "{% $nothing = null %}",
                    "flag": "{% $flag %}",
                    "text": "{% $text %}",
                }
            ),
        }
    )
    assert succeeded(run(definition, {"x": 2, "s": "ok"})) == {
        "obj": {"a": [1, 2]},
        "isNull": True,
        "flag": True,
        "text": "OK",
    }, VARIABLES


def test_jsonata_reference_to_an_unassigned_variable_fails(run: Run) -> None:
    # TRANSFORMING: an expression that returns nothing (undefined) fails the state;
    # ERRORS: States.QueryEvaluationError.
    execution = run(jsonata({"Get": pass_output("{% $neverAssigned %}")}), {})
    assert (execution.status, execution.error) == (FAILED, QUERY_ERROR), ERRORS
    assert "$neverAssigned" in (execution.cause or ""), ERRORS


def test_assignments_see_the_values_from_before_the_state(run: Run) -> None:
    # VARIABLES: the expressions of a state (its other Assign values, its Output) are
    # evaluated with the variable values from before the state; the new values are visible
    # from the next state on.
    definition = jsonata(
        {
            "First": {"Type": "Pass", "Assign": {"x": 1}, "Next": "Second"},
            "Second": {
                "Type": "Pass",
                "Assign": {"x": 2, "y": "{% $x %}"},
                "Output": {"xInOutput": "{% $x %}"},
                "Next": "Third",
            },
            "Third": pass_output(
                {"x": "{% $x %}", "y": "{% $y %}", "previous": "{% $states.input %}"}
            ),
        }
    )
    assert succeeded(run(definition, {})) == {
        "x": 2,
        "y": 1,
        "previous": {"xInOutput": 1},
    }, VARIABLES


def test_jsonpath_assign_sees_the_values_from_before_the_state(run: Run) -> None:
    # VARIABLES: the same rule in a JSONPath state ($x in Assign is the value at entry).
    definition = machine(
        {
            "First": {"Type": "Pass", "Assign": {"x": "old"}, "Next": "Second"},
            "Second": {
                "Type": "Pass",
                "Assign": {"x": "new", "previous.$": "$x"},
                "Next": "Third",
            },
            "Third": {
                "Type": "Pass",
                "Parameters": {"x.$": "$x", "previous.$": "$previous"},
                "End": True,
            },
        }
    )
    assert succeeded(run(definition, {})) == {"x": "new", "previous": "old"}, VARIABLES


@pytest.mark.parametrize(("n", "expected"), [(7, "big"), (1, "default")])
def test_choice_rule_assign_and_default_assign(run: Run, n: int, expected: str) -> None:
    # CHOICE + VARIABLES: a matching rule's Assign runs; the Choice state's own Assign runs
    # only when no rule matches and Default is taken (here both go to the same state).
    definition = jsonata(
        {
            "Check": {
                "Type": "Choice",
                "Choices": [
                    {
                        "Condition": "{% $states.input.n > 5 %}",
                        "Assign": {"path": "big"},
                        "Next": "Done",
                    }
                ],
                "Default": "Done",
                "Assign": {"path": "default"},
            },
            "Done": pass_output({"path": "{% $path %}", "input": "{% $states.input %}"}),
        }
    )
    assert succeeded(run(definition, {"n": n})) == {
        "path": expected,
        "input": {"n": n},
    }, CHOICE + " " + VARIABLES


def test_task_assign_from_result_and_catch_assign(engine: LocalEngine, run: Run) -> None:
    # VARIABLES: Task states assign from $states.result; a Catch can assign from
    # $states.errorOutput; both are visible to the following states.
    engine.register_lambda("price", lambda payload, ctx: {"current_price": 12.5})

    def broken(payload: Any, ctx: Any) -> Any:
        raise RuntimeError("down")

    engine.register_lambda("broken", broken)
    definition = jsonata(
        {
            "Price": {
                "Type": "Task",
                "Resource": LAMBDA,
                "Arguments": {"FunctionName": "price", "Payload": {}},
                "Assign": {"currentPrice": "{% $states.result.Payload.current_price %}"},
                "Next": "Notify",
            },
            "Notify": {
                "Type": "Task",
                "Resource": LAMBDA,
                "Arguments": {"FunctionName": "broken", "Payload": {}},
                "Catch": [
                    {
                        "ErrorEquals": ["States.ALL"],
                        "Assign": {"failure": "{% $states.errorOutput.Error %}"},
                        "Next": "Report",
                    }
                ],
                "End": True,
            },
            "Report": pass_output({"price": "{% $currentPrice %}", "failure": "{% $failure %}"}),
        }
    )
    assert succeeded(run(definition, {})) == {
        "price": 12.5,
        "failure": "RuntimeError",
    }, VARIABLES


def test_history_holds_assigned_variables_as_json(run: Run) -> None:
    # EXITED_EVENT: assignedVariables maps each variable assigned by the state to its value
    # "as a serialized JSON representation".
    definition = jsonata(
        {"Set": pass_output("done", Assign={"quote": 'a"b', "n": 1.5, "obj": {"k": [None]}})}
    )
    execution = run(definition, {})
    assert succeeded(execution) == "done", EXITED_EVENT
    (exited,) = [event for event in execution.history() if event["type"] == "PassStateExited"]
    assigned = exited["stateExitedEventDetails"]["assignedVariables"]
    assert {name: json.loads(text) for name, text in assigned.items()} == {
        "quote": 'a"b',
        "n": 1.5,
        "obj": {"k": [None]},
    }, EXITED_EVENT


# ------------------------------------------------------------------------------------------
# Scope: Map and Parallel
# ------------------------------------------------------------------------------------------


def test_map_iterations_read_outer_variables_and_export_through_the_map(run: Run) -> None:
    # VARIABLES (variable scope) + MAP: states in a Map iteration read the outer variables;
    # the Map state's own Assign/Output hand the results to the outer scope.
    definition = jsonata(
        {
            "Set": {"Type": "Pass", "Assign": {"rate": 3}, "Next": "Each"},
            "Each": inline_map(
                {
                    "Scale": {
                        "Type": "Pass",
                        "Assign": {"local": "{% $states.input * $rate %}"},
                        "Output": "{% $states.input * $rate %}",
                        "End": True,
                    }
                },
                Items="{% $states.input.values %}",
                Assign={"scaled": "{% $states.result %}"},
                Output={"count": "{% $count($states.result) %}"},
                Next="Report",
            ),
            "Report": pass_output(
                {
                    "scaled": "{% $scaled %}",
                    "count": "{% $states.input.count %}",
                    "innerVisible": "{% $exists($local) %}",
                }
            ),
        }
    )
    assert succeeded(run(definition, {"values": [1, 2, 3]})) == {
        "scaled": [3, 6, 9],
        "count": 3,
        "innerVisible": False,
    }, VARIABLES + " " + MAP


def test_inner_state_cannot_assign_an_outer_variable(run: Run) -> None:
    # VARIABLES (variable scope): a state in a Map iteration (or Parallel branch) cannot
    # assign a value to a variable of the outer scope.
    definition = jsonata(
        {
            "Set": {"Type": "Pass", "Assign": {"total": 0}, "Next": "Each"},
            "Each": inline_map(
                {"Add": {"Type": "Pass", "Assign": {"total": 1}, "End": True}}, Items=[1]
            ),
        }
    )
    execution = run(definition, {})
    assert (execution.status, execution.error) == (FAILED, "States.Runtime"), VARIABLES
    cause = execution.cause or ""
    # The cause names the state, the variable and the rule.
    assert "state 'Add' cannot assign the variable 'total'" in cause, VARIABLES
    assert "outer scope" in cause, VARIABLES


def test_parallel_branches_have_separate_scopes(run: Run) -> None:
    # VARIABLES (variable scope) + PARALLEL: each branch reads the outer variables, cannot
    # see a sibling branch's variables, and its variables do not leak out.
    definition = jsonata(
        {
            "Set": {"Type": "Pass", "Assign": {"base": 10}, "Next": "Both"},
            "Both": {
                "Type": "Parallel",
                "Branches": [
                    machine(
                        {
                            "A1": {"Type": "Pass", "Assign": {"mine": 1}, "Next": "A2"},
                            "A2": pass_output("{% $base + $mine %}"),
                        }
                    ),
                    machine({"B": pass_output("{% $exists($mine) %}")}),
                ],
                "Assign": {"fromA": "{% $states.result[0] %}"},
                "Next": "After",
            },
            "After": pass_output(
                {
                    "branches": "{% $states.input %}",
                    "fromA": "{% $fromA %}",
                    "mineVisible": "{% $exists($mine) %}",
                }
            ),
        }
    )
    assert succeeded(run(definition, {})) == {
        "branches": [11, False],
        "fromA": 11,
        "mineVisible": False,
    }, VARIABLES + " " + PARALLEL


def test_map_iterations_do_not_share_variables(run: Run) -> None:
    # VARIABLES (variable scope): every Map iteration has its own scope, so a variable one
    # iteration assigns is not seen by the next one (run one at a time here).
    definition = jsonata(
        {
            "Each": inline_map(
                {
                    "Mark": pass_output(
                        {"item": "{% $states.input %}", "sawOther": "{% $exists($seen) %}"},
                        Assign={"seen": "{% $states.input %}"},
                    )
                },
                Items=["a", "b", "c"],
                MaxConcurrency=1,
            )
        }
    )
    assert succeeded(run(definition, {})) == [
        {"item": "a", "sawOther": False},
        {"item": "b", "sawOther": False},
        {"item": "c", "sawOther": False},
    ], VARIABLES


def test_distributed_map_iterations_cannot_read_outer_variables(run: Run) -> None:
    # VARIABLES (variable scope): unlike an inline Map, the child workflows of a Distributed
    # Map cannot reference the variables of the outer scope.
    def definition(mode: str) -> dict[str, Any]:
        processor = {"Read": pass_output("{% $exists($outer) %}")}
        each = inline_map(processor, Items=[1, 2])
        each["ItemProcessor"]["ProcessorConfig"] = {"Mode": mode, "ExecutionType": "STANDARD"}
        return jsonata(
            {"Set": {"Type": "Pass", "Assign": {"outer": 1}, "Next": "Each"}, "Each": each}
        )

    assert succeeded(run(definition("INLINE"), {})) == [True, True], VARIABLES
    assert succeeded(run(definition("DISTRIBUTED"), {})) == [False, False], VARIABLES
