"""deploy / start / wait / approve / reject through the CLI against moto's Step Functions."""

from __future__ import annotations

import json
import subprocess
import time

import boto3
import pytest

from workflow.cli import main
from workflow.definition import render_json

pytestmark = pytest.mark.integration

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def test_deploy_creates_then_is_idempotent_then_updates(moto_sfn, capsys) -> None:
    assert main(["deploy"]) == 0
    arn = capsys.readouterr().out.strip()
    assert arn.endswith(":stateMachine:mask-r-cnn-mlops")
    from workflow.config import load_config

    deployed = moto_sfn.describe_state_machine(stateMachineArn=arn)
    assert deployed["definition"] == render_json(load_config(environ={}))
    assert deployed["roleArn"] == "arn:aws:iam::000000000000:role/mask-r-cnn-mlops-state_machine"

    assert main(["deploy"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == arn
    assert "unchanged state machine" in err

    # (gate.threshold travels in the execution input; the metric is part of the document)
    assert main(["deploy", "--set", "gate.metric=bbox_mAP", "--dry-run"]) == 0
    out, err = capsys.readouterr()
    assert '+              "Variable": "$.Metrics.Payload.bbox_mAP"' in err  # the diff
    assert (
        moto_sfn.describe_state_machine(stateMachineArn=arn)["definition"] == deployed["definition"]
    )

    assert main(["deploy", "--set", "gate.metric=bbox_mAP"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == arn and "updated state machine" in err
    assert (
        '"NumericGreaterThanEqualsPath": "$.GateThreshold"'
        in moto_sfn.describe_state_machine(stateMachineArn=arn)["definition"]
    )
    assert (
        "$.Metrics.Payload.bbox_mAP"
        in moto_sfn.describe_state_machine(stateMachineArn=arn)["definition"]
    )
    assert len(moto_sfn.list_state_machines()["stateMachines"]) == 1


def _input_echo_machine(make_machine, client, name: str = "mask-r-cnn-mlops") -> str:
    states = {
        "CheckImage": {"Type": "Choice", "Choices": [
            {"Variable": "$.ImageUri", "IsPresent": True, "Next": "Done"}], "Default": "Gate"},
        "Gate": {"Type": "Pass", "Parameters": {"Error": "QualityGateFailed", "Cause": "too low"},
                 "ResultPath": "$.Failure", "Next": "Failed"},
        "Failed": {"Type": "Fail", "ErrorPath": "$.Failure.Error", "CausePath": "$.Failure.Cause"},
        "Done": {"Type": "Succeed"},
    }  # fmt: skip
    return make_machine(client, name, states, "CheckImage")


def test_start_waits_and_exits_zero_on_success(moto_sfn, make_machine, capsys, monkeypatch) -> None:
    machine = _input_echo_machine(make_machine, moto_sfn)
    monkeypatch.setenv("CODEBUILD_RESOLVED_SOURCE_VERSION", COMMIT)
    monkeypatch.setenv("IMAGE_URI", "123.dkr.ecr.us-east-1.amazonaws.com/mask-r-cnn:abc")
    monkeypatch.setenv("MLOPS_GATE__THRESHOLD", "0.42")
    monkeypatch.setenv("MLOPS_LOCAL__GATE_THRESHOLD", "0.01")  # only for local runs
    code = main(["start", "--poll-seconds", "0.1", "--heartbeat-seconds", "5"])
    out, err = capsys.readouterr()
    assert code == 0, err
    arn = out.strip()
    assert arn.startswith(machine.replace(":stateMachine:", ":execution:"))
    data = json.loads(moto_sfn.describe_execution(executionArn=arn)["input"])
    assert data["CommitId"] == COMMIT
    assert data["ImageUri"].endswith(":abc")
    assert data["GateThreshold"] == 0.42  # AWS runs are gated by gate.threshold
    assert arn.endswith(":" + data["JobName"])
    assert "> CheckImage" in err and "> Done" in err
    assert "console: https://us-east-1.console.aws.amazon.com/states/" in err
    assert "SUCCEEDED" in err


def test_start_exits_one_with_the_named_error(moto_sfn, make_machine, capsys, monkeypatch) -> None:
    _input_echo_machine(make_machine, moto_sfn)
    code = main(["start", "--commit", "abc1234", "--poll-seconds", "0.1"])
    out, err = capsys.readouterr()
    assert code == 1
    assert out.strip().count(":execution:") == 1
    assert "> Gate" in err
    assert "ended FAILED: QualityGateFailed (too low)" in err
    assert "Traceback" not in err


def test_start_no_wait_returns_the_arn(moto_sfn, make_machine, capsys) -> None:
    machine = _input_echo_machine(make_machine, moto_sfn, name="other")
    code = main(["start", "--commit", "abc1234", "--no-wait", "--state-machine-arn", machine])
    out, err = capsys.readouterr()
    assert code == 0
    assert ":execution:other:mask-r-cnn-mlops-abc1234-" in out
    assert "->" not in err


def test_start_without_a_deployed_machine(moto_sfn, capsys) -> None:
    assert main(["start", "--commit", "abc1234"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == (
        "error: state machine 'mask-r-cnn-mlops' is not deployed in us-east-1; run "
        "'python -m workflow deploy' or pass --state-machine-arn"
    )


def _approval_machine(make_machine, client, queue_url: str) -> str:
    states = {
        "RequestApproval": {
            "Type": "Task",
            "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
            "Parameters": {"QueueUrl": queue_url, "MessageBody": {"TaskToken.$": "$$.Task.Token"}},
            "ResultPath": "$.Approval",
            "Catch": [{"ErrorEquals": ["Rejected"], "ResultPath": "$.Failure", "Next": "Failed"}],
            "Next": "Done",
        },
        "Failed": {"Type": "Fail", "ErrorPath": "$.Failure.Error", "CausePath": "$.Failure.Cause"},
        "Done": {"Type": "Succeed"},
    }
    return make_machine(client, "mask-r-cnn-mlops", states, "RequestApproval")


def _token_and_execution(client, machine: str, queue_url: str) -> tuple[str, str]:
    sqs = boto3.client("sqs", region_name="us-east-1")
    execution = client.start_execution(stateMachineArn=machine, name="run", input="{}")[
        "executionArn"
    ]
    for _ in range(100):
        messages = sqs.receive_message(QueueUrl=queue_url).get("Messages", [])
        if messages:
            return json.loads(messages[0]["Body"])["TaskToken"], execution
        time.sleep(0.05)
    raise AssertionError("the approval request never arrived")


def _final(client, execution: str) -> dict:
    for _ in range(200):
        description = client.describe_execution(executionArn=execution)
        if description["status"] != "RUNNING":
            return description
        time.sleep(0.05)
    raise AssertionError("the execution did not finish")


@pytest.mark.parametrize("command", ["approve", "reject"])
def test_approve_and_reject_answer_the_task_token(moto_sfn, make_machine, capsys, command) -> None:
    queue = boto3.client("sqs", region_name="us-east-1").create_queue(QueueName="a")["QueueUrl"]
    machine = _approval_machine(make_machine, moto_sfn, queue)
    token, execution = _token_and_execution(moto_sfn, machine, queue)
    assert main([command, token]) == 0
    assert capsys.readouterr().out.strip() == "aws"
    description = _final(moto_sfn, execution)
    if command == "approve":
        assert description["status"] == "SUCCEEDED"
        assert json.loads(description["output"])["Approval"] == {"approved": True}
    else:
        assert (description["status"], description["error"]) == ("FAILED", "Rejected")


def test_approve_answers_a_local_run_first(in_empty_dir, capsys, monkeypatch) -> None:
    callbacks = pytest.importorskip("workflow.local.callbacks")
    root = in_empty_dir / ".mlops"
    callbacks.register_request(root, "local-token", "exec-arn", "RequestApproval")

    def no_aws(*args, **kwargs):
        raise AssertionError("a local token must not reach AWS")

    monkeypatch.setattr("workflow.commands.sfn_client", no_aws)
    assert main(["reject", "local-token", "--cause", "not good enough"]) == 0
    assert capsys.readouterr().out.strip() == "local"
    response = callbacks.read_response(root, "local-token")
    assert response["status"] == "failure" and response["error"] == "Rejected"


def test_approve_with_bad_output(in_empty_dir, capsys) -> None:
    assert main(["approve", "tok", "--output", "[1]"]) == 1
    assert "must be a JSON object" in capsys.readouterr().err


@pytest.mark.slow
def test_invoke_sfn_as_codebuild_runs_it(moto_server, make_machine, repo_root, tmp_path) -> None:
    client = boto3.client("stepfunctions", region_name="us-east-1", endpoint_url=moto_server)
    good = _input_echo_machine(make_machine, client, name="good")
    bad = _input_echo_machine(make_machine, client, name="bad")
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL_SFN": moto_server,  # only Step Functions goes to the emulator
        "CODEBUILD_RESOLVED_SOURCE_VERSION": COMMIT,
        "IMAGE_URI": "123.dkr.ecr.us-east-1.amazonaws.com/mask-r-cnn:0123456",
        "STATE_MACHINE_ARN": good,
        "MLOPS_GATE__THRESHOLD": "0.45",
    }
    script = str(repo_root / "invoke_sfn.py")
    python = str(repo_root / ".venv" / "bin" / "python")
    ok = subprocess.run([python, script, "--poll-seconds", "0.2"], env=env, cwd=tmp_path,
                        capture_output=True, text=True, timeout=120)  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    arn = ok.stdout.strip()
    data = json.loads(client.describe_execution(executionArn=arn)["input"])
    assert data["CommitId"] == COMMIT and data["ImageUri"].endswith(":0123456")
    assert data["GateThreshold"] == 0.45
    assert "> Done" in ok.stderr

    env["STATE_MACHINE_ARN"] = bad
    del env["IMAGE_URI"]  # no image: this machine's Choice goes to its failing branch
    failed = subprocess.run([python, script, "--poll-seconds", "0.2"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert failed.returncode == 1
    assert "ended FAILED: QualityGateFailed" in failed.stderr
    assert "Traceback" not in failed.stderr

    no_wait = subprocess.run([python, script, "--no-wait"], env=env, cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)  # fmt: skip
    assert no_wait.returncode == 0 and ":execution:bad:" in no_wait.stdout

    del env["CODEBUILD_RESOLVED_SOURCE_VERSION"]  # and tmp_path is no git checkout
    no_commit = subprocess.run([python, script], env=env, cwd=tmp_path,
                               capture_output=True, text=True, timeout=120)  # fmt: skip
    assert no_commit.returncode == 2
    assert no_commit.stderr.startswith("error: cannot find the commit")
    assert "CODEBUILD_RESOLVED_SOURCE_VERSION" in no_commit.stderr


def test_cli_redrive_with_stubber(in_empty_dir, capsys, monkeypatch) -> None:
    from botocore.stub import Stubber

    arn = "arn:aws:states:us-east-1:123456789012:execution:m:run-1"
    client = boto3.client("stepfunctions", region_name="us-east-1")
    stub = Stubber(client)
    stub.add_response(
        "redrive_execution", {"redriveDate": "2026-11-21T00:00:00Z"}, {"executionArn": arn}
    )
    stub.activate()
    monkeypatch.setattr("workflow.commands.sfn_client", lambda region, url=None: client)
    assert main(["redrive", arn, "--no-wait"]) == 0
    assert capsys.readouterr().out.strip() == arn
    stub.assert_no_pending_responses()
    assert main(["redrive", "not-an-arn"]) == 1
    assert "is not an execution ARN" in capsys.readouterr().err


def test_redrive_waits_for_the_rerun(in_empty_dir, capsys, monkeypatch) -> None:
    from botocore.stub import Stubber

    arn = "arn:aws:states:us-east-1:123456789012:execution:m:run-1"
    sm = "arn:aws:states:us-east-1:123456789012:stateMachine:m"
    client = boto3.client("stepfunctions", region_name="us-east-1")
    stub = Stubber(client)
    old = {"id": 7, "timestamp": "2026-11-21T00:00:00Z", "type": "ExecutionFailed"}
    stub.add_response("get_execution_history", {"events": [old]},
                      {"executionArn": arn, "maxResults": 1, "reverseOrder": True,
                       "includeExecutionData": False})  # fmt: skip
    stub.add_response(
        "redrive_execution", {"redriveDate": "2026-11-21T00:00:00Z"}, {"executionArn": arn}
    )
    new = {"id": 8, "timestamp": "2026-11-21T00:00:01Z", "type": "TaskStateEntered",
           "stateEnteredEventDetails": {"name": "Train"}}  # fmt: skip
    stub.add_response("get_execution_history", {"events": [old, new]},
                      {"executionArn": arn, "maxResults": 1000, "includeExecutionData": False})  # fmt: skip
    stub.add_response("describe_execution", {"executionArn": arn, "stateMachineArn": sm,
                      "status": "SUCCEEDED", "startDate": "2026-11-21T00:00:00Z"},
                      {"executionArn": arn})  # fmt: skip
    stub.add_response("get_execution_history", {"events": [old, new]},
                      {"executionArn": arn, "maxResults": 1000, "includeExecutionData": False})  # fmt: skip
    stub.activate()
    monkeypatch.setattr("workflow.commands.sfn_client", lambda region, url=None: client)
    assert main(["redrive", arn, "--poll-seconds", "0.1"]) == 0
    err = capsys.readouterr().err
    assert "> Train" in err and "ExecutionFailed" not in err
    stub.assert_no_pending_responses()


def test_endpoint_url_flag_redirects_only_step_functions(moto_server, capsys, in_empty_dir) -> None:
    assert main(["deploy", "--endpoint-url", moto_server]) == 0
    arn = capsys.readouterr().out.strip()
    client = boto3.client("stepfunctions", region_name="us-east-1", endpoint_url=moto_server)
    assert client.describe_state_machine(stateMachineArn=arn)["name"] == "mask-r-cnn-mlops"
