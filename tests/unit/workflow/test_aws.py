"""deploy/start/wait/approve/redrive against botocore's Stubber (parameters validated)."""

from __future__ import annotations

import datetime as dt
import json

import boto3
import pytest
from botocore.stub import ANY, Stubber

from workflow.aws import (
    console_url,
    deploy,
    redrive,
    send_approval,
    start_execution,
    wait_for_execution,
)
from workflow.errors import AwsError, ExecutionFailedError

REGION = "us-east-1"
SM_ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:demo"
EX_ARN = "arn:aws:states:us-east-1:123456789012:execution:demo:run-1"
ROLE = "arn:aws:iam::123456789012:role/sfn"
NOW = dt.datetime(2026, 11, 21, tzinfo=dt.timezone.utc)
DEFINITION = json.dumps({"StartAt": "A", "States": {"A": {"Type": "Succeed"}}})


@pytest.fixture
def stubbed():
    client = boto3.client("stepfunctions", region_name=REGION)
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def _listing(*names: str) -> dict:
    return {
        "stateMachines": [
            {"stateMachineArn": SM_ARN.replace("demo", n), "name": n, "type": "STANDARD",
             "creationDate": NOW}
            for n in names
        ]
    }  # fmt: skip


def test_deploy_creates_when_missing(stubbed) -> None:
    client, stub = stubbed
    stub.add_response("list_state_machines", _listing("other"), {"maxResults": 1000})
    stub.add_response(
        "create_state_machine",
        {"stateMachineArn": SM_ARN, "creationDate": NOW},
        {"name": "demo", "definition": DEFINITION, "roleArn": ROLE, "type": "STANDARD",
         "tags": [{"key": "project", "value": "demo"}]},
    )  # fmt: skip
    result = deploy(client, "demo", DEFINITION, ROLE, tags={"project": "demo"})
    assert (result.arn, result.action) == (SM_ARN, "created")


def test_deploy_is_idempotent(stubbed) -> None:
    client, stub = stubbed
    stub.add_response("list_state_machines", _listing("demo"), {"maxResults": 1000})
    stub.add_response(
        "describe_state_machine",
        {"stateMachineArn": SM_ARN, "name": "demo", "definition": json.dumps(json.loads(DEFINITION), indent=4),
         "roleArn": ROLE, "type": "STANDARD", "creationDate": NOW},
        {"stateMachineArn": SM_ARN},
    )  # fmt: skip
    assert deploy(client, "demo", DEFINITION, ROLE).action == "unchanged"


def test_deploy_updates_a_changed_definition_and_pages(stubbed) -> None:
    client, stub = stubbed
    new = json.dumps({"StartAt": "B", "States": {"B": {"Type": "Succeed"}}})
    stub.add_response(
        "list_state_machines", {**_listing("x"), "nextToken": "t"}, {"maxResults": 1000}
    )
    stub.add_response(
        "list_state_machines", _listing("demo"), {"maxResults": 1000, "nextToken": "t"}
    )
    stub.add_response(
        "describe_state_machine",
        {"stateMachineArn": SM_ARN, "name": "demo", "definition": DEFINITION, "roleArn": ROLE,
         "type": "STANDARD", "creationDate": NOW},
        {"stateMachineArn": SM_ARN},
    )  # fmt: skip
    stub.add_response(
        "update_state_machine",
        {"updateDate": NOW},
        {"stateMachineArn": SM_ARN, "definition": new, "roleArn": ROLE},
    )
    result = deploy(client, "demo", new, ROLE)
    assert result.action == "updated"
    assert '-  "StartAt": "A"' in result.diff and '+  "StartAt": "B"' in result.diff


def test_deploy_dry_run_changes_nothing(stubbed) -> None:
    client, stub = stubbed
    stub.add_response("list_state_machines", _listing(), {"maxResults": 1000})
    assert deploy(client, "demo", DEFINITION, ROLE, dry_run=True).action == "would-create"


def test_errors_are_one_actionable_sentence(stubbed) -> None:
    client, stub = stubbed
    stub.add_client_error(
        "list_state_machines", "AccessDeniedException", "User is not authorized", 400
    )
    with pytest.raises(AwsError) as info:
        deploy(client, "demo", DEFINITION, ROLE)
    assert str(info.value) == (
        "ListStateMachines failed: AccessDeniedException: User is not authorized; the "
        "credentials lack the Step Functions permission; use a role that allows it (see README "
        "'AWS set-up')"
    )


def test_start_execution(stubbed) -> None:
    client, stub = stubbed
    stub.add_response(
        "start_execution",
        {"executionArn": EX_ARN, "startDate": NOW},
        {"stateMachineArn": SM_ARN, "name": "run-1", "input": '{"CommitId": "abc"}'},
    )
    assert start_execution(client, SM_ARN, {"CommitId": "abc"}, "run-1") == EX_ARN


def _event(i: int, kind: str, **details) -> dict:
    return {"id": i, "timestamp": NOW, "type": kind, **details}


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_wait_reports_transitions_and_heartbeats_then_fails(stubbed) -> None:
    client, stub = stubbed
    history = {"executionArn": EX_ARN, "maxResults": 1000, "includeExecutionData": False}
    describe = {"executionArn": EX_ARN}
    running = {
        "executionArn": EX_ARN,
        "stateMachineArn": SM_ARN,
        "status": "RUNNING",
        "startDate": NOW,
    }
    entered = _event(2, "TaskStateEntered", stateEnteredEventDetails={"name": "Train"})
    stub.add_response(
        "get_execution_history", {"events": [_event(1, "ExecutionStarted"), entered]}, history
    )
    stub.add_response("describe_execution", running, describe)
    for _ in range(3):  # nothing new for a while: heartbeats
        stub.add_response("get_execution_history", {"events": [entered]}, history)
        stub.add_response("describe_execution", running, describe)
    failed = _event(
        3,
        "TaskFailed",
        taskFailedEventDetails={
            "resourceType": "sagemaker",
            "resource": "createTrainingJob.sync",
            "error": "States.TaskFailed",
            "cause": "bad data",
        },
    )
    stub.add_response("get_execution_history", {"events": [failed]}, history)
    stub.add_response(
        "describe_execution",
        {**running, "status": "FAILED", "stopDate": NOW, "error": "States.TaskFailed", "cause": "bad data"},
        describe,
    )  # fmt: skip
    stub.add_response("get_execution_history", {"events": [failed]}, history)  # final read
    lines: list[str] = []
    clock = FakeClock()
    result = wait_for_execution(
        client, EX_ARN, poll_seconds=30, heartbeat_seconds=60, report=lines.append,
        clock=clock, sleep=clock.sleep,
    )  # fmt: skip
    assert result.status == "FAILED"
    name = EX_ARN.rsplit(":", 1)[-1]
    assert lines[:2] == [f"[0:00:00] execution {name} started", "[0:00:00] > Train"]
    heartbeats = [line for line in lines if "still RUNNING in Train" in line]
    assert len(heartbeats) == 1  # at 60 s; the failure arrives at 120 s
    assert console_url(REGION, EX_ARN) in heartbeats[0]
    assert lines[-1] == "[0:02:00] ! TaskFailed: States.TaskFailed: bad data"
    with pytest.raises(ExecutionFailedError) as info:
        result.raise_for_status()
    assert info.value.error == "States.TaskFailed"
    assert "ended FAILED: States.TaskFailed (bad data)" in str(info.value)


def test_wait_returns_output_on_success_and_times_out(stubbed) -> None:
    client, stub = stubbed
    history = {"executionArn": EX_ARN, "maxResults": 1000, "includeExecutionData": False}
    done = {"executionArn": EX_ARN, "stateMachineArn": SM_ARN, "status": "SUCCEEDED",
            "startDate": NOW, "stopDate": NOW, "output": '{"ok": 1}'}  # fmt: skip
    stub.add_response(
        "get_execution_history", {"events": [_event(1, "ExecutionSucceeded")]}, history
    )
    stub.add_response("describe_execution", done, {"executionArn": EX_ARN})
    stub.add_response(
        "get_execution_history", {"events": [_event(1, "ExecutionSucceeded")]}, history
    )
    result = wait_for_execution(client, EX_ARN, report=lambda line: None, sleep=lambda s: None)
    assert result.succeeded and result.output == {"ok": 1}
    result.raise_for_status()

    stub.add_response("get_execution_history", {"events": []}, history)
    stub.add_response("describe_execution", {**done, "status": "RUNNING"}, {"executionArn": EX_ARN})
    clock = FakeClock()
    clock.now = 100.0
    times = iter([0.0, 100.0, 100.0, 100.0])
    with pytest.raises(AwsError, match="still RUNNING after 0:01:40; it keeps running"):
        wait_for_execution(client, EX_ARN, timeout_seconds=50, report=lambda line: None,
                           clock=lambda: next(times), sleep=lambda s: None)  # fmt: skip


def test_approve_and_reject_on_aws(stubbed) -> None:
    client, stub = stubbed
    stub.add_response("send_task_success", {}, {"taskToken": "tok", "output": '{"approved": true}'})
    stub.add_response(
        "send_task_failure", {}, {"taskToken": "tok", "error": "Rejected", "cause": "too weak"}
    )
    send_approval(client, "tok", True)
    send_approval(client, "tok", False, cause="too weak")


def test_reject_of_an_answered_token(stubbed) -> None:
    client, stub = stubbed
    stub.add_client_error("send_task_failure", "TaskTimedOut", "Task Timed Out", 400,
                          expected_params={"taskToken": "tok", "error": "Rejected", "cause": ANY})  # fmt: skip
    with pytest.raises(AwsError, match="the task timed out before the answer"):
        send_approval(client, "tok", False)


def test_redrive(stubbed) -> None:
    client, stub = stubbed
    stub.add_response("redrive_execution", {"redriveDate": NOW}, {"executionArn": EX_ARN})
    assert redrive(client, EX_ARN) == NOW
    stub.add_client_error(
        "redrive_execution", "ExecutionNotRedrivable", "Execution is SUCCEEDED", 400
    )
    with pytest.raises(AwsError, match="only FAILED, TIMED_OUT or ABORTED executions"):
        redrive(client, EX_ARN)


def test_console_url() -> None:
    assert console_url("eu-west-1", EX_ARN) == (
        "https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1#/executions/details/"
        "arn%3Aaws%3Astates%3Aus-east-1%3A123456789012%3Aexecution%3Ademo%3Arun-1"
    )
    assert "#/statemachines/view/" in console_url(REGION, SM_ARN)
