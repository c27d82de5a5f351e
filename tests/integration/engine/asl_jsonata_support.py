"""Helpers of the JSONata and variables suites: AWS documentation pages and document builders.

Every expected value in those suites comes from one of the AWS pages below; each test cites it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from workflow.local.engine import SUCCEEDED, LocalExecution

DOCS: Final = "https://docs.aws.amazon.com/step-functions/latest/dg/"
TRANSFORMING: Final = DOCS + "transforming-data.html"
VARIABLES: Final = DOCS + "workflow-variables.html"
STRUCTURE: Final = DOCS + "statemachine-structure.html"
CHOICE: Final = DOCS + "state-choice.html"
MAP: Final = DOCS + "state-map.html"
PARALLEL: Final = DOCS + "state-parallel.html"
WAIT: Final = DOCS + "state-wait.html"
FAIL: Final = DOCS + "state-fail.html"
ERRORS: Final = DOCS + "concepts-error-handling.html"
CONTEXT: Final = DOCS + "input-output-contextobject.html"
LAMBDA_DOC: Final = DOCS + "connect-lambda.html"
EXITED_EVENT: Final = (
    "https://docs.aws.amazon.com/step-functions/latest/apireference/"
    "API_StateExitedEventDetails.html"
)
EVENTS: Final = (
    "https://docs.aws.amazon.com/step-functions/latest/apireference/"
    "API_EvaluationFailedEventDetails.html"
)

Run = Callable[..., LocalExecution]

LAMBDA: Final = "arn:aws:states:::lambda:invoke"
QUERY_ERROR: Final = "States.QueryEvaluationError"


def machine(states: dict[str, Any], **top: Any) -> dict[str, Any]:
    """Return a document starting at the first state, with top-level fields `top`."""
    return {"StartAt": next(iter(states)), "States": states, **top}


def jsonata(states: dict[str, Any], **top: Any) -> dict[str, Any]:
    """Return a document whose top-level `QueryLanguage` is JSONata."""
    return machine(states, QueryLanguage="JSONata", **top)


def pass_output(output: Any, **fields: Any) -> dict[str, Any]:
    """Return a JSONata Pass state with `Output` that ends the execution."""
    return {"Type": "Pass", "Output": output, "End": True, **fields}


def inline_map(states: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """Return an inline Map state over `states` (ends the execution unless `Next` is given)."""
    state: dict[str, Any] = {
        "Type": "Map",
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "INLINE"},
            "StartAt": next(iter(states)),
            "States": states,
        },
        **fields,
    }
    if "Next" not in state:
        state["End"] = True
    return state


def succeeded(execution: LocalExecution) -> Any:
    """Return the output of an execution that must have succeeded."""
    assert execution.status == SUCCEEDED, (execution.error, execution.cause)
    return execution.output
