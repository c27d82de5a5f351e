"""Documents AWS refuses (`InvalidDefinition`) are refused before anything runs, in one sentence.

AWS validates a definition at CreateStateMachine/UpdateStateMachine and answers
`InvalidDefinition` (https://docs.aws.amazon.com/step-functions/latest/apireference/API_CreateStateMachine.html);
the rules are the States Language's
(https://docs.aws.amazon.com/step-functions/latest/dg/statemachine-structure.html).
"""

from __future__ import annotations

from typing import Any

import pytest
from asl_builders import machine, pass_state

from workflow.local.engine import InvalidDefinitionError

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("states", "message"),
    [
        ({"A": {"Type": "Pass"}}, "States.A: a Pass state needs exactly one of 'Next' or 'End: true' (it has neither)"),
        ({"A": pass_state(), "B": pass_state()}, "States.B: unreachable from StartAt 'A'"),
        ({"A": pass_state(Next="Nowhere")}, "States.A.Next: 'Nowhere' is not a state"),
        ({"A": {"Type": "Teleport", "End": True}}, "States.A.Type: 'Teleport' is not one of"),
        (
            {"C": {"Type": "Choice", "Choices": [{"Variable": "$.x", "Next": "D"}], "Default": "D"},
             "D": {"Type": "Succeed"}},
            "States.C.Choices[0]: needs exactly one comparator",
        ),
        ({"A": pass_state(ResultSelector={"x": 1})}, "States.A.ResultSelector: field 'ResultSelector' does not belong to a Pass state"),
        ({"A": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": True,
                "Arguments": {"FunctionName": "f"}}},
         "States.A.Arguments: field 'Arguments' does not belong to a JSONPath state"),
        ({"A": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": True,
                "Retry": [{"ErrorEquals": ["States.ALL"], "BackoffRate": 0.5}]}},
         "States.A.Retry[0].BackoffRate: 0.5 must be a number >= 1.0"),
    ],
)  # fmt: skip
def test_invalid_documents_are_refused_before_a_run(engine, states, message):
    definition: dict[str, Any] = machine(states)
    with pytest.raises(InvalidDefinitionError) as info:
        engine.start_execution(definition)
    assert message in str(info.value)
    assert str(info.value).startswith("Invalid State Machine Definition: ")
    assert info.value.exit_code == 2
    assert engine.executions == []


def test_each_problem_is_one_sentence(engine):
    definition = machine({"A": {"Type": "Pass"}, "B": pass_state(Nxt="A")})
    with pytest.raises(InvalidDefinitionError) as info:
        engine.start_execution(definition)
    # A has no Next/End, B.Nxt is unknown, B is unreachable, no terminal state is reachable.
    assert len(info.value.problems) == 4
    assert all(problem.startswith(("States.", "document:")) for problem in info.value.problems)


def test_a_valid_jsonata_document_is_accepted_by_the_structure_check(engine):
    # JSONata fields are part of the States Language
    # (https://docs.aws.amazon.com/step-functions/latest/dg/transforming-data.html).
    definition = machine(
        {"A": {"Type": "Pass", "Output": "{% $states.input %}", "End": True}},
        QueryLanguage="JSONata",
    )
    assert engine.check_definition(definition)["QueryLanguage"] == "JSONata"
