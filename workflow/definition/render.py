"""Configuration -> the whole state machine -> the ASL document that is deployed and run."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from workflow.config import WorkflowConfig
from workflow.definition.factories import WorkflowSteps
from workflow.definition.names import StepId, check_state_name

if TYPE_CHECKING:
    from stepfunctions.workflow import Workflow


def build_workflow(config: WorkflowConfig, client: Any = None) -> Workflow:
    """Build the `stepfunctions` Workflow of this configuration, without calling AWS.

    Args:
        config: The configuration.
        client: A boto3 Step Functions client for ``Workflow.create()/execute()``. Default: an
            offline client that refuses to send requests (rendering needs none).

    Returns:
        The SDK workflow of the configuration's whole chain (`WorkflowSteps.chain`);
        ``workflow.definition`` is the graph of steps.

    Raises:
        DefinitionError: When a state name is invalid.
    """
    steps = WorkflowSteps(config)
    return steps.unchecked_workflow(steps.chain(), client)


def render_definition(config: WorkflowConfig) -> dict[str, Any]:
    """Return the ASL document of this configuration as a dict."""
    document: dict[str, Any] = json.loads(build_workflow(config).definition.to_json())
    for name in document["States"]:
        check_state_name(name)
    document["States"] = _in_reading_order(document["States"])
    return document


def _in_reading_order(states: dict[str, Any]) -> dict[str, Any]:
    """Order the states as the machine runs them: main path, failure markers, failure tail.

    JSON object order has no meaning to Step Functions; a fixed order keeps diffs readable.
    """
    tail = (StepId.NOTIFY_FAILURE.value, StepId.FAILED.value)
    main = [s.value for s in StepId if s.value in states and s.value not in tail]
    markers = [s.failed() for s in StepId if s.failed() in states]
    rest = sorted(set(states) - set(main) - set(markers) - set(tail))
    order = [*main, *markers, *rest, *(t for t in tail if t in states)]
    return {name: states[name] for name in order}


def render_json(config: WorkflowConfig) -> str:
    """Return the ASL document as the exact JSON string that is deployed (2-space indent)."""
    return json.dumps(render_definition(config), indent=2, ensure_ascii=False)
