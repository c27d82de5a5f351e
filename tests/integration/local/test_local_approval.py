"""Manual approval locally: the command-line answer and the email links served on loopback."""

from __future__ import annotations

import re
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from workflow.config import load_config
from workflow.local import callbacks
from workflow.local.runtime import LocalRuntime

pytestmark = pytest.mark.integration


def approval_definition(function: str) -> dict[str, Any]:
    return {
        "StartAt": "RequestApproval",
        "States": {
            "RequestApproval": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                "Parameters": {
                    "FunctionName": function,
                    "Payload": {
                        "TaskToken.$": "$$.Task.Token",
                        "ExecutionArn.$": "$$.Execution.Id",
                        "ModelName": "m-1",
                        "Metrics.$": "$.Metrics",
                    },
                },
                "ResultPath": "$.Approval",
                "Catch": [{"ErrorEquals": ["Rejected"], "ResultPath": "$.Failure", "Next": "No"}],
                "End": True,
            },
            "No": {"Type": "Fail", "Error": "Rejected", "Cause": "rejected"},
        },
    }


@pytest.fixture
def runtime(tmp_path: Path) -> Any:
    config = load_config(None, environ={}, overrides={"local.root": str(tmp_path / "root")})
    runtime = LocalRuntime(config, approve="manual", echo=False)
    runtime.install()
    yield runtime
    runtime.close()


def wait_for(predicate: Any, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_email_links_approve_through_the_local_api(runtime: LocalRuntime) -> None:
    definition = approval_definition(runtime.config.lambdas.request_approval)
    execution = runtime.engine.start_execution(definition, {"Metrics": {"segm_mAP": 0.7}})
    message = wait_for(lambda: runtime.outbox.messages())[-1]["Message"]
    approve = re.search(r"Approve: (\S+)", message)
    assert approve is not None
    link = approve.group(1)
    assert link.startswith(runtime.approval_api_url())
    with urllib.request.urlopen(link, timeout=10) as page:  # GET only confirms
        assert page.status == 200 and b"Confirm" in page.read()
    assert not execution.done
    form = urllib.parse.urlencode(dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(link).query)))
    request = urllib.request.Request(
        runtime.approval_api_url() + "/approval",
        data=form.encode(),
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(request, timeout=10) as page:
        assert page.status == 200 and b"Approved" in page.read()
    assert execution.wait(20).status == "SUCCEEDED"
    assert execution.output["Approval"]["Approved"] is True


def test_reject_from_the_command_line(runtime: LocalRuntime) -> None:
    definition = approval_definition(runtime.config.lambdas.request_approval)
    execution = runtime.engine.start_execution(definition, {"Metrics": {"segm_mAP": 0.7}})
    request = wait_for(lambda: callbacks.pending_requests(runtime.root))[0]
    assert request["state"] == "RequestApproval" and request["execution"] == execution.arn
    assert callbacks.respond_if_pending(runtime.root, request["token"], "reject", cause="no")
    assert execution.wait(20).status == "FAILED"
    assert execution.error == "Rejected"
    assert not callbacks.pending_requests(runtime.root)


def test_auto_mode_rejects_below_the_gate(tmp_path: Path) -> None:
    config = load_config(None, environ={}, overrides={"local.root": str(tmp_path / "root")})
    runtime = LocalRuntime(config, approve="auto", echo=False)
    runtime.install()
    try:
        definition = approval_definition(config.lambdas.request_approval)
        low = runtime.engine.start_execution(definition, {"Metrics": {"segm_mAP": 0.1}})
        assert low.wait(20).status == "FAILED" and low.error == "Rejected"
        high = runtime.engine.start_execution(definition, {"Metrics": {"segm_mAP": 0.9}})
        assert high.wait(20).status == "SUCCEEDED"
        assert high.output["Approval"]["Mode"] == "auto"
    finally:
        runtime.close()


def test_auto_mode_uses_the_executions_gate_threshold(tmp_path: Path) -> None:
    # gate.threshold is 0.5; the execution input's GateThreshold is what QualityGate used
    config = load_config(None, environ={}, overrides={"local.root": str(tmp_path / "root")})
    runtime = LocalRuntime(config, approve="auto", echo=False)
    runtime.install()
    try:
        definition = approval_definition(config.lambdas.request_approval)
        low = {"Metrics": {"segm_mAP": 0.1}, "GateThreshold": 0.05}
        passed = runtime.engine.start_execution(definition, low).wait(20)
        assert passed.status == "SUCCEEDED", (passed.error, passed.cause)
        assert passed.output["Approval"]["Reason"] == "segm_mAP=0.1000 >= threshold 0.05"
        strict = {"Metrics": {"segm_mAP": 0.6}, "GateThreshold": 0.7}
        rejected = runtime.engine.start_execution(definition, strict).wait(20)
        assert (rejected.status, rejected.error) == ("FAILED", "Rejected")
    finally:
        runtime.close()


def test_auto_verdict_falls_back_to_the_configured_threshold(tmp_path: Path) -> None:
    from workflow.local.runtime import auto_verdict

    config = load_config(None, environ={}, overrides={"gate.threshold": 0.3})
    payload = {"Metrics": {"segm_mAP": 0.2}}
    assert auto_verdict(config, payload) == (False, "segm_mAP=0.2000 < threshold 0.3")
    assert auto_verdict(config, payload, {"GateThreshold": "x"})[0] is False
    assert auto_verdict(config, payload, {"GateThreshold": 0.2}) == (
        True,
        "segm_mAP=0.2000 >= threshold 0.2",
    )


def test_ssm_parameters_come_from_files_under_the_root(tmp_path: Path) -> None:
    config = load_config(None, environ={}, overrides={"local.root": str(tmp_path / "root")})
    runtime = LocalRuntime(config, echo=False)
    definition = {
        "StartAt": "Read",
        "States": {
            "Read": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:ssm:getParameter",
                "Parameters": {"Name": "/mask-r-cnn/hp", "WithDecryption": True},
                "ResultSelector": {"value.$": "States.StringToJson($.Parameter.Value)"},
                "End": True,
            }
        },
    }
    try:
        missing = runtime.engine.start_execution(definition, {}).wait(20)
        assert missing.status == "FAILED"
        assert missing.error == "Ssm.ParameterNotFoundException"
        assert "ssm/mask-r-cnn/hp" in (missing.cause or "")
        path = runtime.root / "ssm" / "mask-r-cnn" / "hp"
        path.parent.mkdir(parents=True)
        path.write_text('{"epochs": "3"}')
        found = runtime.engine.start_execution(definition, {}).wait(20)
        assert found.status == "SUCCEEDED" and found.output == {"value": {"epochs": "3"}}
    finally:
        runtime.close()
