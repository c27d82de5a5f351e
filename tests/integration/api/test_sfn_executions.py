"""boto3 against the local API: executions, history paging, stop, redrive, tokens, sync, TestState.

Expected shapes and codes are AWS's, from the Step Functions API reference
(https://docs.aws.amazon.com/step-functions/latest/apireference/API_Operations.html).
"""

from __future__ import annotations

import json
import time

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

pytestmark = pytest.mark.integration

PASS = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": "Pass Result", "End": True}}}
NULL = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": None, "End": True}}}
CHAIN = {
    "StartAt": "A",
    "States": {
        "A": {"Type": "Pass", "Next": "B"},
        "B": {"Type": "Pass", "Next": "C"},
        "C": {"Type": "Pass", "End": True},
    },
}
LONG_WAIT = {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3000, "End": True}}}
FLAKY = {
    "StartAt": "Prepare",
    "States": {
        "Prepare": {"Type": "Pass", "Result": {"x": 1}, "ResultPath": "$.prep", "Next": "Call"},
        "Call": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "flaky", "Payload.$": "$.prep"},
            "ResultSelector": {"ok.$": "$.Payload.ok"},
            "End": True,
        },
    },
}
TOKEN = {
    "StartAt": "Wait",
    "States": {
        "Wait": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
            "Parameters": {"FunctionName": "token", "Payload": {"token.$": "$$.Task.Token"}},
            "HeartbeatSeconds": 600,
            "End": True,
        }
    },
}


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def _token(served, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while not served.tokens and time.monotonic() < deadline:
        time.sleep(0.02)
    return served.tokens.pop()


def test_describe_execution_json_encodes_input_and_output(served, make_machine, wait):
    sfn = served.client()
    arn = make_machine(PASS)
    started = sfn.start_execution(stateMachineArn=arn, name="run-1", input='{"k": [1]}')
    # https://docs.aws.amazon.com/step-functions/latest/apireference/API_DescribeExecution.html:
    # input and output are JSON strings, so a string output is quoted.
    described = wait(sfn, started["executionArn"])
    assert described["status"] == "SUCCEEDED"
    assert described["output"] == '"Pass Result"'
    assert json.loads(described["input"]) == {"k": [1]}
    assert described["stopDate"] >= described["startDate"]
    assert described["redriveCount"] == 0
    null_arn = sfn.start_execution(stateMachineArn=make_machine(NULL))["executionArn"]
    assert wait(sfn, null_arn)["output"] == "null"
    # https://docs.aws.amazon.com/step-functions/latest/apireference/API_DescribeStateMachineForExecution.html
    ran = sfn.describe_state_machine_for_execution(executionArn=started["executionArn"])
    assert (ran["stateMachineArn"], json.loads(ran["definition"])) == (arn, PASS)


def test_start_errors_and_idempotency(served, make_machine, wait):
    sfn = served.client()
    arn = make_machine(LONG_WAIT)
    first = sfn.start_execution(stateMachineArn=arn, name="same", input="{}")
    # https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html:
    # idempotent for a running execution with the same name and input, else ExecutionAlreadyExists.
    again = sfn.start_execution(stateMachineArn=arn, name="same", input="{}")
    assert again["executionArn"] == first["executionArn"]
    with pytest.raises(ClientError) as exc:
        sfn.start_execution(stateMachineArn=arn, name="same", input='{"other": 1}')
    assert _code(exc) == "ExecutionAlreadyExists"
    with pytest.raises(ClientError) as exc:
        sfn.start_execution(stateMachineArn=arn, input="{bad")
    assert _code(exc) == "InvalidExecutionInput"
    with pytest.raises(ClientError) as exc:
        sfn.start_execution(stateMachineArn=arn.replace(":stateMachine:", ":stateMachine:x"))
    assert _code(exc) == "StateMachineDoesNotExist"
    with pytest.raises(ClientError) as exc:
        sfn.describe_execution(executionArn=first["executionArn"] + "-missing")
    assert _code(exc) == "ExecutionDoesNotExist"
    with pytest.raises(ClientError) as exc:
        sfn.describe_execution(executionArn="arn:aws:states:us-east-1:1:stateMachine:x")
    assert _code(exc) == "InvalidArn"
    sfn.stop_execution(executionArn=first["executionArn"])


def test_list_executions_filters_and_pages(served, make_machine, wait):
    sfn = served.client()
    arn = make_machine(PASS)
    arns = [
        sfn.start_execution(stateMachineArn=arn, name=f"e{i}")["executionArn"] for i in range(3)
    ]
    for execution_arn in arns:
        wait(sfn, execution_arn)
    running = sfn.start_execution(stateMachineArn=make_machine(LONG_WAIT))["executionArn"]
    # https://docs.aws.amazon.com/step-functions/latest/apireference/API_ListExecutions.html:
    # newest first, statusFilter, maxResults/nextToken.
    first = sfn.list_executions(stateMachineArn=arn, maxResults=2)
    assert [e["executionArn"] for e in first["executions"]] == arns[::-1][:2]
    rest = sfn.list_executions(stateMachineArn=arn, maxResults=2, nextToken=first["nextToken"])
    assert [e["executionArn"] for e in rest["executions"]] == [arns[0]]
    assert "nextToken" not in rest
    assert sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING")["executions"] == []
    with pytest.raises(ClientError) as exc:
        sfn.list_executions(stateMachineArn=arn, statusFilter="DONE")
    assert _code(exc) == "ValidationException"
    sfn.stop_execution(executionArn=running)


def test_history_pages_reverses_and_drops_data(served, make_machine, wait):
    sfn = served.client()
    arn = sfn.start_execution(stateMachineArn=make_machine(CHAIN), input='{"a": 1}')["executionArn"]
    wait(sfn, arn)
    everything = sfn.get_execution_history(executionArn=arn)["events"]
    assert [e["type"] for e in everything][:2] == ["ExecutionStarted", "PassStateEntered"]
    # https://docs.aws.amazon.com/step-functions/latest/apireference/API_GetExecutionHistory.html
    page = sfn.get_execution_history(executionArn=arn, maxResults=3)
    assert [e["id"] for e in page["events"]] == [1, 2, 3]
    following = sfn.get_execution_history(
        executionArn=arn, maxResults=3, nextToken=page["nextToken"]
    )
    assert [e["id"] for e in following["events"]] == [4, 5, 6]
    newest = sfn.get_execution_history(executionArn=arn, reverseOrder=True, maxResults=1)
    assert newest["events"][0]["type"] == "ExecutionSucceeded"
    bare = sfn.get_execution_history(executionArn=arn, includeExecutionData=False)["events"]
    assert "input" not in bare[0]["executionStartedEventDetails"]
    assert "input" in everything[0]["executionStartedEventDetails"]
    with pytest.raises(ClientError) as exc:
        sfn.get_execution_history(executionArn=arn, nextToken=newest["nextToken"])
    assert _code(exc) == "InvalidToken"  # a token of another listing (reverse order)


def test_stop_keeps_error_and_cause(served, make_machine, wait):
    sfn = served.client()
    arn = sfn.start_execution(stateMachineArn=make_machine(LONG_WAIT))["executionArn"]
    # https://docs.aws.amazon.com/step-functions/latest/apireference/API_StopExecution.html
    stopped = sfn.stop_execution(executionArn=arn, error="Operator", cause="stopped by a test")
    described = wait(sfn, arn)
    assert (described["status"], described["error"], described["cause"]) == (
        "ABORTED",
        "Operator",
        "stopped by a test",
    )
    assert abs((described["stopDate"] - stopped["stopDate"]).total_seconds()) < 1
    last = sfn.get_execution_history(executionArn=arn, reverseOrder=True)["events"][0]
    assert last["type"] == "ExecutionAborted"
    assert last["executionAbortedEventDetails"] == {
        "error": "Operator",
        "cause": "stopped by a test",
    }
    assert described["redriveStatus"] == "REDRIVABLE"


def test_redrive_after_failure(served, make_machine, wait):
    sfn = served.client()
    arn = sfn.start_execution(stateMachineArn=make_machine(FLAKY))["executionArn"]
    failed = wait(sfn, arn)
    assert (failed["status"], failed["error"]) == ("FAILED", "Flaky")
    # https://docs.aws.amazon.com/step-functions/latest/apireference/API_RedriveExecution.html
    redriven = sfn.redrive_execution(executionArn=arn)
    described = wait(sfn, arn)
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == {"ok": {"x": 1}}
    assert described["redriveCount"] == 1
    assert described["redriveDate"] == redriven["redriveDate"]
    types = [e["type"] for e in sfn.get_execution_history(executionArn=arn)["events"]]
    assert "ExecutionRedriven" in types
    with pytest.raises(ClientError) as exc:
        sfn.redrive_execution(executionArn=arn)
    assert _code(exc) == "ExecutionNotRedrivable"


def test_task_tokens(served, make_machine, wait):
    sfn = served.client()
    arn = make_machine(TOKEN)
    # https://docs.aws.amazon.com/step-functions/latest/apireference/API_SendTaskFailure.html
    failing = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    token = _token(served)
    sfn.send_task_heartbeat(taskToken=token)
    sfn.send_task_failure(taskToken=token, error="Rejected", cause="the reviewer said no")
    described = wait(sfn, failing)
    assert (described["status"], described["error"], described["cause"]) == (
        "FAILED",
        "Rejected",
        "the reviewer said no",
    )
    succeeding = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    token = _token(served)
    with pytest.raises(ClientError) as exc:
        sfn.send_task_success(taskToken=token, output="{not json")
    assert _code(exc) == "InvalidOutput"
    sfn.send_task_success(taskToken=token, output='{"approved": true}')
    assert json.loads(wait(sfn, succeeding)["output"]) == {"approved": True}
    with pytest.raises(ClientError) as exc:
        sfn.send_task_success(taskToken=token, output="{}")
    assert _code(exc) == "TaskDoesNotExist"


def test_start_sync_execution(served, make_machine, monkeypatch):
    arn = make_machine(PASS, type="EXPRESS")
    # botocore sends StartSyncExecution to the host `sync-<endpoint host>`, which an IP address
    # endpoint does not have; the client turns the prefix off (documented in the README).
    with pytest.raises(EndpointConnectionError):
        served.client(retries={"max_attempts": 0}).start_sync_execution(stateMachineArn=arn)
    monkeypatch.setenv("AWS_DISABLE_HOST_PREFIX_INJECTION", "true")
    sfn = served.client()
    # https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartSyncExecution.html
    answer = sfn.start_sync_execution(stateMachineArn=arn, input="{}")
    assert (answer["status"], answer["output"]) == ("SUCCEEDED", '"Pass Result"')
    assert answer["billingDetails"]["billedDurationInMilliseconds"] >= 100
    with pytest.raises(ClientError) as exc:
        sfn.start_sync_execution(stateMachineArn=make_machine(PASS))
    assert _code(exc) == "StateMachineTypeNotSupported"


def test_test_state(served, monkeypatch):
    monkeypatch.setenv("AWS_DISABLE_HOST_PREFIX_INJECTION", "true")
    sfn = served.client()
    # https://docs.aws.amazon.com/step-functions/latest/apireference/API_TestState.html
    pass_state = {"Type": "Pass", "Parameters": {"v.$": "$.a"}, "Next": "After"}
    answer = sfn.test_state(
        definition=json.dumps(pass_state), input='{"a": 7}', inspectionLevel="DEBUG"
    )
    assert (answer["status"], json.loads(answer["output"]), answer["nextState"]) == (
        "SUCCEEDED",
        {"v": 7},
        "After",
    )
    assert json.loads(answer["inspectionData"]["input"]) == {"a": 7}
    task = {
        "Type": "Task",
        "Resource": "arn:aws:states:::sns:publish",
        "Parameters": {"TopicArn": "arn:aws:sns:us-east-1:1:t", "Message.$": "$.m"},
        "ResultSelector": {"id.$": "$.MessageId"},
        "Retry": [{"ErrorEquals": ["Throttled"], "MaxAttempts": 2}],
        "Catch": [{"ErrorEquals": ["Boom"], "Next": "Handle", "ResultPath": "$.error"}],
        "End": True,
    }
    mocked = sfn.test_state(
        definition=json.dumps(task),
        input='{"m": "hi"}',
        inspectionLevel="DEBUG",
        mock={"result": '{"MessageId": "m-1"}'},
    )
    assert (mocked["status"], json.loads(mocked["output"])) == ("SUCCEEDED", {"id": "m-1"})
    assert json.loads(mocked["inspectionData"]["afterParameters"])["Message"] == "hi"
    flow = {
        **task,
        "InputPath": "$.in",
        "ResultPath": "$.published",
        "OutputPath": "$.published",
        "Parameters": {"TopicArn": "arn:aws:sns:us-east-1:1:t", "Message.$": "$.m"},
    }
    traced = sfn.test_state(
        definition=json.dumps(flow),
        input='{"in": {"m": "hi"}, "other": 1}',
        inspectionLevel="TRACE",
        mock={"result": '{"MessageId": "m-2", "SequenceNumber": "1"}'},
    )
    data = {k: json.loads(v) for k, v in traced["inspectionData"].items()}
    assert data["afterInputPath"] == {"m": "hi"}
    assert data["result"] == {"MessageId": "m-2", "SequenceNumber": "1"}
    assert data["afterResultSelector"] == {"id": "m-2"}
    assert data["afterResultPath"] == {"in": {"m": "hi"}, "other": 1, "published": {"id": "m-2"}}
    assert json.loads(traced["output"]) == {"id": "m-2"}
    caught = sfn.test_state(
        definition=json.dumps(task),
        input='{"m": "hi"}',
        mock={"errorOutput": {"error": "Boom", "cause": "mocked"}},
    )
    assert (caught["status"], caught["error"], caught["nextState"]) == (
        "CAUGHT_ERROR",
        "Boom",
        "Handle",
    )
    assert "inspectionData" not in caught  # INFO
    retried = sfn.test_state(
        definition=json.dumps(task),
        input='{"m": "hi"}',
        mock={"errorOutput": {"error": "Throttled", "cause": "x"}},
    )
    assert (retried["status"], retried["error"]) == ("RETRIABLE", "Throttled")
    machine = {
        "StartAt": "Choose",
        "States": {
            "Choose": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.n", "NumericGreaterThan": 1, "Next": "Big"}],
                "Default": "Small",
            },
            "Big": {"Type": "Succeed"},
            "Small": {"Type": "Fail", "Error": "TooSmall"},
        },
    }
    chosen = sfn.test_state(definition=json.dumps(machine), stateName="Choose", input='{"n": 5}')
    assert chosen["nextState"] == "Big"
    failed = sfn.test_state(definition=json.dumps(machine["States"]["Small"]))
    assert (failed["status"], failed["error"]) == ("FAILED", "TooSmall")
    with pytest.raises(ClientError) as exc:
        sfn.test_state(definition=json.dumps(pass_state), variables='{"x": 1}')
    assert _code(exc) == "ValidationException"  # a known local limit, named in the message


def test_a_task_without_local_handler_fails_when_it_runs(served, make_machine, wait):
    sfn = served.client()
    machine = {
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "nobody", "Payload": {}},
                "Catch": [{"ErrorEquals": ["Lambda.ResourceNotFoundException"], "Next": "Put"}],
                "End": True,
            },
            "Put": {
                "Type": "Task",
                "Resource": "arn:aws:states:::dynamodb:putItem",
                "Parameters": {"TableName": "t", "Item": {}},
                "End": True,
            },
        },
    }
    # As on AWS, StartExecution succeeds and the execution fails at the Task: a missing Lambda
    # function is Lambda.ResourceNotFoundException
    # (https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html#API_Invoke_Errors).
    arn = sfn.start_execution(stateMachineArn=make_machine(machine))["executionArn"]
    described = wait(sfn, arn)
    assert (described["status"], described["error"]) == ("FAILED", "States.TaskFailed")
    assert "does not implement dynamodb:putItem" in described["cause"]
    events = sfn.get_execution_history(executionArn=arn)["events"]
    failures = [e["taskFailedEventDetails"]["error"] for e in events if e["type"] == "TaskFailed"]
    assert failures == ["Lambda.ResourceNotFoundException", "States.TaskFailed"]
