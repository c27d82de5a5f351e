"""The approval bypass through the build, replayed end to end on the local engine.

A Jenkins-started build runs ``invoke_sfn.py``, which starts the execution and follows it while
the build is still running, with the build's credentials. Anything that runs in the build (pushed
code, a build dependency) can do what those credentials allow. The attack: read the execution
history, take the task token of ``RequestApproval`` from its ``TaskScheduled`` parameters, and
answer it with ``SendTaskSuccess``, approving the model with no reviewer.

Here the deployed document runs on the local engine; the attacker's calls go through a client that
allows exactly what the rendered template's ``BuildRole`` allows (its IAM statements evaluated
with their wildcards). The reviewer never answers. The model must not be deployed.
"""

from __future__ import annotations

import fnmatch
import re
import threading
import time
from collections.abc import Mapping
from typing import Any

import pytest
from reliability_kit import REPO, Tally

from workflow.config import WorkflowConfig, load_config

pytestmark = [pytest.mark.integration]

AREA = "approval"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mask-r-cnn:pushed"


class AccessDeniedError(Exception):
    """What IAM answers a call its policy does not allow."""


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


class RoleClient:
    """A Step Functions client of the local engine that holds one role's rights.

    Statements are the role's inline policies from the rendered template; ``Fn::Sub`` resources
    are resolved with the stack's values. IAM actions and resources match with ``*`` wildcards,
    and everything not allowed is denied (implicit deny).
    """

    def __init__(self, engine: Any, config: WorkflowConfig, role: Mapping[str, Any]) -> None:
        self.engine = engine
        self.calls: list[tuple[str, str]] = []
        values = {
            "${AWS::Partition}": "aws",
            "${AWS::Region}": config.region,
            "${AWS::AccountId}": config.account_id,
            "${Name}": config.name,
        }
        self.allowed: list[tuple[list[str], list[str]]] = []
        for policy in role["Properties"].get("Policies", []):
            for statement in _as_list(policy["PolicyDocument"]["Statement"]):
                if statement.get("Effect") != "Allow":
                    continue
                resources = []
                for resource in _as_list(statement.get("Resource", [])):
                    text = resource.get("Fn::Sub", "?") if isinstance(resource, dict) else resource
                    for key, value in values.items():
                        text = text.replace(key, value)
                    resources.append(text)
                actions = [a.lower() for a in _as_list(statement.get("Action", []))]
                self.allowed.append((actions, resources))

    def _authorize(self, action: str, resource: str) -> None:
        for actions, resources in self.allowed:
            if any(fnmatch.fnmatchcase(action.lower(), a) for a in actions) and any(
                fnmatch.fnmatchcase(resource, r) for r in resources
            ):
                self.calls.append((action, "allowed"))
                return
        self.calls.append((action, "denied"))
        raise AccessDeniedError(f"{action} on {resource} is not allowed")

    def get_execution_history(self, executionArn: str, **_: Any) -> dict[str, Any]:
        # https://docs.aws.amazon.com/step-functions/latest/apireference/API_GetExecutionHistory.html
        self._authorize("states:GetExecutionHistory", executionArn)
        (execution,) = [e for e in self.engine.executions if e.arn == executionArn]
        return {"events": execution.history()}

    def send_task_success(self, taskToken: str, output: str) -> dict[str, Any]:
        # SendTaskSuccess has no resource type: the policy must allow it on "*".
        # https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsstepfunctions.html
        self._authorize("states:SendTaskSuccess", "*")
        self.engine.send_task_success(taskToken, output)
        return {}


def _approval_token(history: list[dict[str, Any]]) -> str | None:
    """What the attacker looks for: a task token in any scheduled task's parameters."""
    for event in history:
        details = event.get("taskScheduledEventDetails") or {}
        parameters = details.get("parameters")
        found = re.search(r'"TaskToken": ?"([^"]+)"', parameters or "")
        if found:
            return found.group(1)
    return None


def _register(engine: Any, config: WorkflowConfig, calls: list[str]) -> None:
    """Scripted services: training completes, the endpoint comes up, no reviewer answers."""
    endpoint: dict[str, Any] = {}

    def record(name: str, answer: dict[str, Any]) -> Any:
        def handler(params: Any, ctx: Any) -> dict[str, Any]:
            calls.append(name)
            if name == "createEndpoint":
                endpoint.update(EndpointConfigName=params["EndpointConfigName"])
            return answer

        return handler

    def describe(params: Any, ctx: Any) -> dict[str, Any]:
        if not endpoint:
            from workflow.local.engine import TaskFailed

            raise TaskFailed("SageMaker.SageMakerException", "Could not find endpoint.")
        return {"EndpointName": params["EndpointName"], "EndpointStatus": "InService", **endpoint}

    arn = {"Arn": "arn:aws:sagemaker:us-east-1:123456789012:x/y"}
    done = {"TrainingJobStatus": "Completed",
            "ModelArtifacts": {"S3ModelArtifacts": "s3://b/models/model.tar.gz"}}  # fmt: skip
    engine.register_service("sagemaker", "createTrainingJob", start=record("train", arn),
                            poll=lambda submitted, ctx: done)  # fmt: skip
    for action in ("createModel", "createEndpointConfig", "createEndpoint", "updateEndpoint"):
        engine.register_service("sagemaker", action, start=record(action, arn))
    engine.register_service("aws-sdk:sagemaker", "describeEndpoint", start=describe)
    engine.register_service("aws-sdk:codebuild", "batchGetBuilds", start=record("poll", {}))
    engine.register_lambda(config.lambdas.start_build, record("start_build", {}))
    engine.register_lambda(config.lambdas.request_approval, record("request_approval", {}))


def test_code_in_the_build_cannot_approve_its_own_model(tally: Tally) -> None:
    from workflow.definition import render_definition
    from workflow.infra import render_template
    from workflow.local.engine import LocalEngine
    from workflow.naming import execution_input

    row = tally.row(AREA, "build code reads the history and answers the approval token")
    overrides = {"evaluation.enabled": False, "gate.enabled": False,
                 "notification.enabled": False, "registry.enabled": False}  # fmt: skip
    config = load_config(REPO / "workflow.yaml", environ={}, overrides=overrides)
    engine = LocalEngine(region=config.region, account_id=config.account_id,
                         time_scale=0.001, poll_interval=0.02)  # fmt: skip
    calls: list[str] = []
    _register(engine, config, calls)
    build_role = render_template(config)["Resources"]["BuildRole"]
    attacker = RoleClient(engine, config, build_role)

    # invoke_sfn.py in a Jenkins-started build: the image is given, the execution runs.
    data = execution_input(config, "0123456789abcdef", image_uri=IMAGE, poll_seconds=0)
    execution = engine.start_execution(
        render_definition(config), data, name=data["JobName"], state_machine_name=config.name
    )
    try:
        # The attack, from inside the still-running build.
        token, outcome = None, "no token seen"
        deadline = time.monotonic() + 30
        while token is None and time.monotonic() < deadline and not execution.done:
            history = attacker.get_execution_history(executionArn=execution.arn)["events"]
            token = _approval_token(history)
            time.sleep(0.02)
        assert token, "RequestApproval was never scheduled"
        try:
            attacker.send_task_success(taskToken=token, output='{"Approved": true}')
            outcome = "answered"
        except AccessDeniedError:
            outcome = "denied"
        execution.wait(timeout=1)
        deployed = "createEndpointConfig" in calls or execution.status == "SUCCEEDED"
        row.count(outcome, deployed or outcome == "answered")
        assert outcome == "denied", attacker.calls
        assert not deployed, f"the model was deployed without a reviewer: {calls}"
        assert execution.status == "RUNNING"  # still waiting for the reviewer
    finally:
        if not execution.done:
            execution.stop(error="TestEnded", cause="the reviewer never answers")
        threading.Event().wait(0.05)
