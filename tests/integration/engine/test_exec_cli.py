"""`python -m workflow exec` on foreign workflows: exit codes, --lambda, --mock-config."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from asl_builders import LAMBDA, machine, pass_state

from workflow import cli

pytestmark = pytest.mark.integration


@pytest.fixture
def main(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """`python -m workflow` with `exec` registered and the local store in tmp_path."""
    if "workflow.commands.exec" not in cli.COMMAND_MODULES:
        modules = (*cli.COMMAND_MODULES, "workflow.commands.exec")
        monkeypatch.setattr(cli, "COMMAND_MODULES", modules)
    package_logger = logging.getLogger("workflow")
    monkeypatch.setattr(package_logger, "handlers", list(package_logger.handlers))
    monkeypatch.setattr(package_logger, "level", package_logger.level)
    monkeypatch.setattr(package_logger, "propagate", package_logger.propagate)
    monkeypatch.syspath_prepend(str(Path(__file__).parent))

    def run(*args: str) -> int:
        return cli.main(["--set", f"local.root={tmp_path / 'root'}", *args])

    return run


def _write(tmp_path: Path, name: str, value: Any) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(value))
    return str(path)


def test_invalid_document_exits_2_with_one_sentence(main, tmp_path, capsys):
    path = _write(tmp_path, "bad.json", machine({"A": {"Type": "Pass"}}))
    assert main("exec", path) == 2
    err = capsys.readouterr().err
    assert "Invalid State Machine Definition: States.A: a Pass state needs exactly one of" in err
    assert "Traceback" not in err
    assert not (tmp_path / "root" / "runs").exists()  # nothing ran


def test_failed_execution_exits_1_with_error_and_cause(main, tmp_path, capsys):
    path = _write(tmp_path, "f.json", machine({"F": {"Type": "Fail", "Error": "E", "Cause": "C"}}))
    assert main("exec", path) == 1
    err = capsys.readouterr().err
    assert "error: execution FAILED: E: C" in err
    assert json.loads(err.strip().splitlines()[-1]) == {"error": "E", "cause": "C"}
    assert "Traceback" not in err


def test_user_lambda_and_unknown_lambda(main, tmp_path, capsys):
    definition = machine(
        {
            "Encode": {
                "Type": "Task",
                "Resource": LAMBDA,
                "Parameters": {"FunctionName": "encode", "Payload": {"input": "HelloWorld"}},
                "ResultSelector": {"b64.$": "$.Payload.output"},
                "Next": "Missing",
            },
            "Missing": {
                "Type": "Task",
                "Resource": LAMBDA,
                "Parameters": {"FunctionName": "not-there", "Payload": {}},
                "Catch": [
                    {
                        "ErrorEquals": ["Lambda.ResourceNotFoundException"],
                        "ResultPath": "$.missing",
                        "Next": "Done",
                    }
                ],
                "ResultPath": "$.never",
                "Next": "Done",
            },
            "Done": pass_state(),
        }
    )
    path = _write(tmp_path, "l.json", definition)
    assert main("exec", path, "--lambda", "encode=sdk_example_lambdas:encode") == 0
    output = json.loads(capsys.readouterr().out)
    assert output["b64"] == "SGVsbG9Xb3JsZA=="
    assert output["missing"]["Error"] == "Lambda.ResourceNotFoundException"


def test_bad_lambda_spec_is_a_usage_error(main, tmp_path, capsys):
    path = _write(tmp_path, "p.json", machine({"P": pass_state()}))
    assert main("exec", path, "--lambda", "encode") == 2
    assert "is not NAME=module:function" in capsys.readouterr().err


def test_mock_config_and_test_case(main, tmp_path, capsys):
    definition = machine(
        {
            "Train": {
                "Type": "Task",
                "Resource": "arn:aws:states:::glue:startJobRun.sync",
                "Parameters": {"JobName": "etl"},
                "End": True,
            }
        }
    )
    path = _write(tmp_path, "retrain.json", definition)
    mocks = _write(
        tmp_path,
        "mocks.json",
        {
            "StateMachines": {"retrain": {"TestCases": {"Ok": {"Train": "Done"}}}},
            "MockedResponses": {"Done": {"0": {"Return": {"JobRunState": "SUCCEEDED"}}}},
        },
    )
    assert main("exec", path, "--mock-config", mocks, "--test-case", "Ok") == 0
    assert json.loads(capsys.readouterr().out) == {"JobRunState": "SUCCEEDED"}
    assert main("exec", path, "--mock-config", mocks) == 2
    assert "--mock-config and --test-case go together" in capsys.readouterr().err
    assert main("exec", path, "--mock-config", mocks, "--test-case", "Nope") == 2
    assert "has no 'Nope'" in capsys.readouterr().err


ACTIVITY = "arn:aws:states:us-east-1:123456789012:activity:label-images"


def test_activity_task_is_answered_by_its_mock_or_fails_without_one(main, tmp_path, capsys):
    definition = machine(
        {
            "Label": {
                "Type": "Task",
                "Resource": ACTIVITY,
                "TimeoutSeconds": 5,
                "ResultPath": "$.labels",
                "Next": "Review",
            },
            "Review": {
                "Type": "Task",
                "Resource": ACTIVITY,
                "Catch": [{"ErrorEquals": ["Rejected"], "ResultPath": "$.review", "Next": "Done"}],
                "Next": "Done",
            },
            "Done": pass_state(),
        }
    )
    path = _write(tmp_path, "labels.json", definition)
    mocks = _write(
        tmp_path,
        "mocks.json",
        {
            "StateMachines": {"labels": {"TestCases": {"Ok": {"Label": "L", "Review": "R"}}}},
            "MockedResponses": {
                "L": {"0": {"Return": {"count": 3}}},
                "R": {"0": {"Throw": {"Error": "Rejected", "Cause": "blurry"}}},
            },
        },
    )
    assert main("exec", path, "--mock-config", mocks, "--test-case", "Ok") == 0
    output = json.loads(capsys.readouterr().out)
    assert output == {"labels": {"count": 3}, "review": {"Error": "Rejected", "Cause": "blurry"}}

    # No worker and no activity under `exec`: AWS fails an execution whose activity does not
    # exist with States.Runtime, which no Catch handles
    # (https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html).
    assert main("exec", path) == 1
    err = capsys.readouterr().err
    failure = json.loads(err.strip().splitlines()[-1])
    assert failure["error"] == "States.Runtime"
    assert ACTIVITY in failure["cause"] and "--mock-config" in failure["cause"]
    assert "Traceback" not in err
