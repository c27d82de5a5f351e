"""The Step Functions service of the local API: its operation table over the local engine.

One :class:`StepFunctionsApi` per server holds the state machines and the executions; the
application calls ``operations()[name](body)`` for ``X-Amz-Target: AWSStepFunctions.<name>``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from workflow.api.diagnostics import diagnostics
from workflow.api.errors import require
from workflow.api.sfn_activities import Activities
from workflow.api.sfn_executions import Executions
from workflow.api.sfn_machines import StateMachines
from workflow.api.teststate import test_state
from workflow.local.engine import LocalEngine

Operation = Callable[[dict[str, Any]], dict[str, Any]]
_MAX_DIAGNOSTICS = 100


class StepFunctionsApi:
    """State machines, executions and activities served over one engine."""

    def __init__(self, engine: LocalEngine) -> None:
        self.engine = engine
        self.machines = StateMachines(engine.region, engine.account_id)
        self.executions = Executions(engine, self.machines)
        self.activities = Activities(engine)

    def operations(self) -> dict[str, Operation]:
        """The ``AWSStepFunctions.<Operation>`` table."""
        m, e, a = self.machines, self.executions, self.activities
        return {
            "CreateStateMachine": m.create,
            "DescribeStateMachine": m.describe,
            "ListStateMachines": m.list,
            "UpdateStateMachine": m.update,
            "DeleteStateMachine": m.delete,
            "TagResource": lambda body: (a.tag if a.owns(body) else m.tag)(body),
            "UntagResource": lambda body: (a.untag if a.owns(body) else m.untag)(body),
            "ListTagsForResource": lambda body: (a.list_tags if a.owns(body) else m.list_tags)(
                body
            ),
            "PublishStateMachineVersion": m.publish,
            "ListStateMachineVersions": m.list_versions,
            "DeleteStateMachineVersion": m.delete_version,
            "CreateStateMachineAlias": m.create_alias,
            "DescribeStateMachineAlias": m.describe_alias,
            "UpdateStateMachineAlias": m.update_alias,
            "DeleteStateMachineAlias": m.delete_alias,
            "ListStateMachineAliases": m.list_aliases,
            "StartExecution": e.start,
            "StartSyncExecution": e.start_sync,
            "DescribeExecution": e.describe,
            "DescribeStateMachineForExecution": e.describe_machine,
            "ListExecutions": e.list,
            "StopExecution": e.stop,
            "RedriveExecution": e.redrive,
            "GetExecutionHistory": e.history,
            "SendTaskSuccess": e.send_success,
            "SendTaskFailure": e.send_failure,
            "SendTaskHeartbeat": e.send_heartbeat,
            "CreateActivity": a.create,
            "DescribeActivity": a.describe,
            "ListActivities": a.list,
            "DeleteActivity": a.delete,
            "GetActivityTask": a.get_task,
            "ValidateStateMachineDefinition": self.validate,
            "TestState": lambda body: test_state(self.engine, body),
        }

    def validate(self, body: dict[str, Any]) -> dict[str, Any]:
        """ValidateStateMachineDefinition: ``result`` OK/FAIL with diagnostics."""
        found = diagnostics(require(body, "definition"))
        limit = int(body.get("maxResults") or _MAX_DIAGNOSTICS)
        return {
            "result": "FAIL" if found else "OK",
            "diagnostics": found[:limit],
            "truncated": len(found) > limit,
        }

    def close(self) -> None:
        """Stop the executions still running."""
        self.executions.abort_running()


__all__ = ["StepFunctionsApi"]
