"""`python -m workflow exec` on definitions with Map, Parallel, Choice, Retry and Catch."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from workflow import cli

pytestmark = pytest.mark.integration

MINE = ("workflow.commands.run", "workflow.commands.exec", "workflow.commands.endpoints")


@pytest.fixture
def main(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """`python -m workflow` with the local commands registered, the store in tmp_path."""
    modules = tuple(cli.COMMAND_MODULES) + tuple(m for m in MINE if m not in cli.COMMAND_MODULES)
    monkeypatch.setattr(cli, "COMMAND_MODULES", modules)
    # cli.main() binds a handler to this test's captured stderr; undo it afterwards so later
    # tests do not log into a closed stream.
    package_logger = logging.getLogger("workflow")
    monkeypatch.setattr(package_logger, "handlers", list(package_logger.handlers))
    monkeypatch.setattr(package_logger, "level", package_logger.level)
    monkeypatch.setattr(package_logger, "propagate", package_logger.propagate)

    def run(*args: str) -> int:
        return cli.main(["--set", f"local.root={tmp_path / 'root'}", *args])

    return run


def write(tmp_path: Path, name: str, value: Any) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(value))
    return str(path)


TOPIC = "arn:aws:sns:us-east-1:000000000000:t"
MAP_PARALLEL_CHOICE = {
    "StartAt": "Fan",
    "States": {
        "Fan": {
            "Type": "Map",
            "ItemsPath": "$.items",
            "MaxConcurrency": 2,
            "Iterator": {
                "StartAt": "Publish",
                "States": {
                    "Publish": {
                        "Type": "Task",
                        "Resource": "arn:aws:states:::sns:publish",
                        "Parameters": {"TopicArn": TOPIC, "Message.$": "$.msg"},
                        "ResultSelector": {"id.$": "$.MessageId"},
                        "End": True,
                    }
                },
            },
            "ResultPath": "$.published",
            "Next": "Both",
        },
        "Both": {
            "Type": "Parallel",
            "Branches": [
                {
                    "StartAt": "Constant",
                    "States": {"Constant": {"Type": "Pass", "Result": 1, "End": True}},
                },
                {
                    "StartAt": "Find",
                    "States": {
                        "Find": {
                            "Type": "Task",
                            "Resource": "arn:aws:states:::aws-sdk:sagemaker:describeEndpoint",
                            "Parameters": {"EndpointName": "nothing-here"},
                            "Catch": [
                                {
                                    "ErrorEquals": ["SageMaker.SageMakerException"],
                                    "ResultPath": "$.err",
                                    "Next": "Missing",
                                }
                            ],
                            "End": True,
                        },
                        "Missing": {"Type": "Pass", "Result": "missing", "End": True},
                    },
                },
            ],
            "ResultPath": "$.both",
            "Next": "Decide",
        },
        "Decide": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.both[1]", "StringEquals": "missing", "Next": "Done"}],
            "Default": "Wrong",
        },
        "Wrong": {"Type": "Fail", "Error": "Wrong"},
        "Done": {
            "Type": "Pass",
            "Parameters": {"count.$": "States.ArrayLength($.published)", "both.$": "$.both"},
            "End": True,
        },
    },
}


def test_exec_map_parallel_choice(
    main: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    definition = write(tmp_path, "d.json", MAP_PARALLEL_CHOICE)
    document = write(tmp_path, "i.json", {"items": [{"msg": "a"}, {"msg": "b"}, {"msg": "c"}]})
    assert main("exec", definition, "--input", document) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {"count": 3, "both": [1, "missing"]}
    assert "> Fan" in captured.err
    lines = (tmp_path / "root" / "outbox.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["Message"] for line in lines) == ["a", "b", "c"]


RETRY_CATCH = {
    "StartAt": "Evaluate",
    "States": {
        "Evaluate": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {
                "FunctionName": "mask-r-cnn-mlops-evaluate",
                "Payload": {"TestData": "s3://b/t/"},
            },
            "Retry": [{"ErrorEquals": ["BadEventError"], "IntervalSeconds": 1, "MaxAttempts": 1}],
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Explain"}],
            "End": True,
        },
        "Explain": {
            "Type": "Fail",
            "Error": "EvaluationFailed",
            "Cause": "the evaluate Lambda failed",
        },
    },
}


def test_exec_retry_then_catch_fails_with_json_on_stderr(
    main: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    definition = write(tmp_path, "d.json", RETRY_CATCH)
    assert main("exec", definition) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    last = json.loads(captured.err.strip().splitlines()[-1])
    assert last == {"error": "EvaluationFailed", "cause": "the evaluate Lambda failed"}
    assert (
        captured.err.count("! LambdaFunctionFailed: BadEventError")
        + captured.err.count("! TaskFailed: BadEventError")
        == 2
    )  # the first attempt and its retry
    assert "first failure in state Evaluate" in captured.err


def test_exec_uncaught_task_error(
    main: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    definition = write(
        tmp_path,
        "d.json",
        {
            "StartAt": "Find",
            "States": {
                "Find": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::aws-sdk:sagemaker:describeEndpoint",
                    "Parameters": {"EndpointName": "ghost"},
                    "End": True,
                }
            },
        },
    )
    assert main("exec", definition) == 1
    last = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert last["error"] == "SageMaker.SageMakerException"
    assert (
        'Could not find endpoint "arn:aws:sagemaker:us-east-1:000000000000:endpoint/ghost"'
        in last["cause"]
    )


def test_exec_bad_files_are_usage_errors(
    main: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main("exec", str(tmp_path / "missing.json")) == 2
    assert "missing.json' cannot be read" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("{not json")
    assert main("exec", str(tmp_path / "bad.json")) == 2
    assert "is not JSON" in capsys.readouterr().err
    unknown = write(
        tmp_path,
        "u.json",
        {
            "StartAt": "X",
            "States": {
                "X": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::glue:startJobRun.sync",
                    "End": True,
                }
            },
        },
    )
    assert main("exec", unknown) != 0
    err = capsys.readouterr().err
    assert "error:" in err and "glue:startJobRun" in err


def test_endpoints_list_and_stop_without_endpoints(
    main: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main("endpoints", "list") == 0
    assert capsys.readouterr().out == ""
    assert main("endpoints", "stop", "nope") == 1
    assert "no local endpoint named 'nope'" in capsys.readouterr().err
    assert main("endpoints", "stop") == 2


def test_run_requires_local(main: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert main("run") == 2
    assert "add --local" in capsys.readouterr().err
    assert main("run", "--local", "--redrive") == 1
    assert "no failed local run to redrive" in capsys.readouterr().err


def test_endpoints_list_and_stop_a_kept_endpoint(
    main: Any, fake_sagemaker: Any, model_tarball: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from workflow.local.processes import pid_alive
    from workflow.local.sagemaker_endpoints import (
        EndpointConfigHandler,
        EndpointHandlers,
        ModelHandler,
    )

    sm = fake_sagemaker
    uri = model_tarball(sm.store, "s3://bucket/models/k/model.tar.gz", "kept")
    ModelHandler(sm).start(
        {"ModelName": "k", "PrimaryContainer": {"Image": "f", "ModelDataUrl": uri}}, None
    )
    EndpointConfigHandler(sm).start(
        {"EndpointConfigName": "kc", "ProductionVariants": [{"ModelName": "k"}]}, None
    )
    handlers = EndpointHandlers(sm)
    handlers.create({"EndpointName": "kept", "EndpointConfigName": "kc"}, None)
    handlers.wait_idle()
    assert main("endpoints", "list") == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(e["name"], e["status"], e["running"]) for e in listed] == [("kept", "InService", True)]
    pid = listed[0]["pid"]
    assert main("endpoints", "stop", "--all") == 0
    assert "stopped kept" in capsys.readouterr().err
    assert not pid_alive(pid)
    assert main("endpoints", "list") == 0
    assert capsys.readouterr().out == ""
