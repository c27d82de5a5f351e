"""The notebook path: the Step Functions SDK's Workflow API against the local AWS API."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from workflow.api import ApiServer, ApiServerError, LocalAwsApi
from workflow.local.engine import LocalEngine

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def notebook_api() -> Any:
    engine = LocalEngine(time_scale=0.01, poll_interval=0.5)
    server = ApiServer(LocalAwsApi(engine)).start()
    yield engine, server.url
    server.stop()
    server.stop()  # idempotent


def test_sdk_workflow_create_execute_output_events_and_token_over_http(notebook_api, monkeypatch):
    import boto3
    from stepfunctions.steps import Chain, LambdaStep, Pass, Task
    from stepfunctions.workflow import Workflow

    monkeypatch.setenv("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    engine, url = notebook_api
    assert url.startswith("http://127.0.0.1:")
    seen: list[Any] = []
    engine.on_event(seen.append)
    tokens: list[str] = []
    polls = [0]

    def describe(submitted: dict[str, Any], ctx: Any) -> dict[str, Any] | None:
        polls[0] += 1
        return None if polls[0] < 2 else {"TrainingJobStatus": "Completed", **submitted}

    engine.register_lambda("prepare", lambda p, c: {"job": p["job"], "state": c.state_name})
    engine.register_lambda("approve", lambda p, c: tokens.append(p["token"]) or {})
    engine.register_service(
        "sagemaker",
        "createTrainingJob",
        lambda p, c: {"TrainingJobArn": "arn:tj/" + p["TrainingJobName"]},
        describe,
    )
    sfn = boto3.client("stepfunctions", endpoint_url=url, region_name="us-east-1")
    definition = Chain(
        [
            LambdaStep(
                "Prepare",
                parameters={
                    "FunctionName": "prepare",
                    "Payload": {"job.$": "$$.Execution.Input['JobName']"},
                },
                result_path="$.prepare",
            ),
            Task(
                "Train",
                resource="arn:aws:states:::sagemaker:createTrainingJob.sync",
                parameters={"TrainingJobName.$": "$.JobName"},
                result_path="$.train",
            ),
            LambdaStep(
                "Approval",
                wait_for_callback=True,
                parameters={"FunctionName": "approve", "Payload": {"token.$": "$$.Task.Token"}},
                result_path="$.approval",
            ),
            Pass("Done"),
        ]
    )
    workflow = Workflow(
        "local-notebook", definition, role="arn:aws:iam::123456789012:role/sfn", client=sfn
    )
    workflow.create()
    execution = workflow.execute(inputs={"JobName": "job-1"})

    def approve() -> None:
        deadline = time.monotonic() + 30
        while not tokens and time.monotonic() < deadline:
            time.sleep(0.02)
        sfn.send_task_success(taskToken=tokens[0], output=json.dumps({"ok": True}))

    approver = threading.Thread(target=approve, daemon=True)
    approver.start()
    output = execution.get_output(wait=True)
    approver.join(10)
    assert execution.describe()["status"] == "SUCCEEDED"
    assert output["prepare"]["Payload"] == {"job": "job-1", "state": "Prepare"}
    assert output["train"]["TrainingJobStatus"] == "Completed"
    assert output["approval"] == {"ok": True}
    events = execution.list_events()
    types = [e["type"] for e in events]
    assert types[0] == "ExecutionStarted" and types[-1] == "ExecutionSucceeded"
    assert "TaskSubmitted" in types
    # the engine's listeners see the served executions too
    assert [e.event["type"] for e in seen if e.execution_arn == execution.execution_arn] == types
    # a second unnamed execution works (moto bug 5, patched) and both are listed by name
    second = workflow.execute(inputs={"JobName": "job-2"})
    while not tokens[1:]:
        time.sleep(0.02)
    engine.send_task_success(tokens[1], {})  # the engine also answers served executions
    assert second.get_output(wait=True)["prepare"]["Payload"]["job"] == "job-2"
    listed = workflow.list_executions()
    assert len(listed) == 2 and all(item.name for item in listed)


def test_only_loopback_and_servers_are_independent():
    with pytest.raises(ApiServerError, match="loopback"):
        ApiServer(LocalAwsApi(LocalEngine()), host="0.0.0.0")
    first = ApiServer(LocalAwsApi(LocalEngine())).start()
    second = ApiServer(LocalAwsApi(LocalEngine())).start()
    try:
        assert first.url != second.url
        assert first.url.startswith("http://127.0.0.1:")
    finally:
        first.stop()
        second.stop()


def test_session_aws_api_serves_the_sessions_store(tmp_path, monkeypatch):
    from botocore.exceptions import ClientError

    from workflow.notebook.session import start

    monkeypatch.chdir(tmp_path)
    session = start("local", root=tmp_path / "store")
    with session.aws_api() as api:
        assert api.url.startswith("http://127.0.0.1:")
        sagemaker = api.client("sagemaker")
        assert sagemaker.list_endpoints()["Endpoints"] == []
        with pytest.raises(ClientError, match="ValidationError"):
            api.client("sagemaker-runtime").invoke_endpoint(EndpointName="none", Body=b"x")
    aws = start("aws", root=tmp_path / "store")
    with aws.aws_api() as api:
        assert api.url == ""  # boto3's own endpoints: the same code runs against AWS


def test_create_and_update_refuse_invalid_definitions(served):
    # CreateStateMachine/UpdateStateMachine answer InvalidDefinition
    # (https://docs.aws.amazon.com/step-functions/latest/apireference/API_CreateStateMachine.html).
    from botocore.exceptions import ClientError

    sfn = served.client()
    role = "arn:aws:iam::123456789012:role/r"
    bad = json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass"}}})
    with pytest.raises(ClientError) as info:
        sfn.create_state_machine(name="bad", definition=bad, roleArn=role)
    error = info.value.response["Error"]
    assert error["Code"] == "InvalidDefinition"
    # AWS's message shape: "Invalid State Machine Definition: '<CODE>: <problem> at /States/A'".
    assert error["Message"].startswith(
        "Invalid State Machine Definition: 'SCHEMA_VALIDATION_FAILED"
    )
    assert "a Pass state needs exactly one of 'Next' or 'End: true'" in error["Message"]
    assert "at /States/A" in error["Message"]
    good = json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}})
    arn = sfn.create_state_machine(name="good", definition=good, roleArn=role)["stateMachineArn"]
    with pytest.raises(ClientError) as info:
        sfn.update_state_machine(stateMachineArn=arn, definition=bad)
    assert info.value.response["Error"]["Code"] == "InvalidDefinition"
