"""Offline validation: the rendered document passes; planted errors are each reported."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from workflow.cli import main
from workflow.validate import validate_definition

GOLDEN = Path(__file__).resolve().parents[2] / "golden"


@pytest.fixture(scope="module")
def full() -> dict:
    return json.loads((GOLDEN / "full.json").read_text(encoding="utf-8"))


def _problems(document: dict) -> list[str]:
    return validate_definition(document, lint=False)


def test_golden_documents_are_valid(full) -> None:
    assert validate_definition(full) == []
    for name in ("minimal", "ssm_spot"):
        assert validate_definition(json.loads((GOLDEN / f"{name}.json").read_text())) == []


def test_misspelled_training_field(full) -> None:
    doc = copy.deepcopy(full)
    params = doc["States"]["Train"]["Parameters"]
    params["TrainingJobNam.$"] = params.pop("TrainingJobName.$")
    assert _problems(doc) == [
        "States.Train.Parameters.TrainingJobNam: not a member of CreateTrainingJobRequest "
        "(did you mean 'TrainingJobName'?)",
        "States.Train.Parameters: missing required member 'TrainingJobName' of "
        "CreateTrainingJobRequest (give it statically or as 'TrainingJobName.$')",
    ]


def test_misspelled_nested_field_and_wrong_types(full) -> None:
    doc = copy.deepcopy(full)
    resources = doc["States"]["Train"]["Parameters"]["ResourceConfig"]
    resources["InstanceTyp"] = resources.pop("InstanceType")
    resources["InstanceCount"] = "1"
    doc["States"]["CreateEndpointConfig"]["Parameters"]["ProductionVariants"][0]["InstanceType"] = (
        "m5.large"
    )
    problems = _problems(doc)
    assert (
        "States.Train.Parameters.ResourceConfig.InstanceTyp: not a member of ResourceConfig (did you mean 'InstanceType'?)"
        in problems
    )
    assert (
        "States.Train.Parameters.ResourceConfig.InstanceCount: '1' must be an integer" in problems
    )
    assert any(
        p.startswith(
            "States.CreateEndpointConfig.Parameters.ProductionVariants[0].InstanceType: 'm5.large' is not one of"
        )
        for p in problems
    )


def test_lambda_sns_and_sdk_parameters(full) -> None:
    doc = copy.deepcopy(full)
    doc["States"]["ComputeMetrics"]["Parameters"]["FunctionNam"] = "x"
    doc["States"]["NotifyFailure"]["Parameters"]["Topic"] = "x"
    doc["States"]["FindEndpoint"]["Parameters"] = {"Name": "x"}
    problems = _problems(doc)
    assert (
        "States.ComputeMetrics.Parameters.FunctionNam: not a member of InvocationRequest (did you mean 'FunctionName'?)"
        in problems
    )
    assert any(
        p.startswith("States.NotifyFailure.Parameters.Topic: not a member of PublishInput")
        for p in problems
    )
    assert (
        "States.FindEndpoint.Parameters: missing required member 'EndpointName' of DescribeEndpointInput (give it statically or as 'EndpointName.$')"
        in problems
    )


def test_codebuild_members_are_matched_capitalised() -> None:
    doc = {
        "StartAt": "Build",
        "States": {
            "Build": {
                "Type": "Task",
                "Resource": "arn:aws:states:::codebuild:startBuild.sync",
                "Parameters": {"ProjectName": "p", "SourceVersion.$": "$.commit", "Colour": 1},
                "ResultPath": "$.Build",
                "End": True,
            }
        },
    }
    assert _problems(doc) == ["States.Build.Parameters.Colour: not a member of StartBuildInput"]


def test_unknown_api(full) -> None:
    doc = copy.deepcopy(full)
    doc["States"]["FindEndpoint"]["Resource"] = (
        "arn:aws:states:::aws-sdk:sagemaker:describeEndpoints"
    )
    assert _problems(doc) == [
        "States.FindEndpoint.Resource: sagemaker has no API 'describeEndpoints' (did you mean 'DescribeEndpoint'?)"
    ]


def test_dangling_next_and_unreachable_state(full) -> None:
    doc = copy.deepcopy(full)
    doc["States"]["NotifySuccess"]["Next"] = "Succeded"
    problems = _problems(doc)
    assert problems == [
        "States.NotifySuccess.Next: 'Succeded' is not a state (did you mean 'Succeeded'?)",
        "States.Succeeded: unreachable from StartAt 'CheckImage' (no Next, Default, Choices or "
        "Catch leads here); connect it or remove it",
    ]


def test_orphan_state(full) -> None:
    doc = copy.deepcopy(full)
    doc["States"]["Orphan"] = {"Type": "Pass", "End": True}
    assert _problems(doc) == [
        "States.Orphan: unreachable from StartAt 'CheckImage' (no Next, Default, Choices or Catch "
        "leads here); connect it or remove it"
    ]


def test_start_at_and_terminal_state() -> None:
    assert _problems({"StartAt": "A", "States": {"B": {"Type": "Succeed"}}}) == [
        "document: StartAt 'A' is not a state",
    ]
    loop = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "A"}}}
    assert _problems(loop) == [
        "document: no terminal state (Succeed, Fail or End: true) is reachable"
    ]
    assert _problems({"StartAt": "A"}) == [
        "document: 'States' must be a non-empty object of states"
    ]
    assert _problems([]) == ["document: is a list, expected a JSON object"]  # type: ignore[arg-type]


def test_state_fields_and_names() -> None:
    doc = {
        "StartAt": "A" * 81,
        "Colour": 1,
        "States": {
            "A" * 81: {"Type": "Pass", "Nxt": "C", "End": True},
            "C": {"Type": "Wait", "Seconds": 1, "SecondsPath": "$.x", "End": True},
            "D": {"Type": "Teleport"},
        },
    }
    problems = _problems(doc)
    assert "document: unknown field 'Colour'" in problems
    # State names: 1-80 characters (https://docs.aws.amazon.com/step-functions/latest/dg/statemachine-structure.html)
    long_name = "A" * 81
    assert any(p.startswith(f"States.{long_name}: invalid state name") for p in problems)
    assert (
        f"States.{long_name}.Nxt: field 'Nxt' does not belong to a Pass state "
        "(did you mean 'Next'?)" in problems
    )
    assert (
        "States.C: a Wait state needs exactly one of Seconds, Timestamp, SecondsPath, "
        "TimestampPath" in problems
    )
    assert any(p.startswith("States.D.Type: 'Teleport' is not one of") for p in problems)


def test_next_and_end_exclusive() -> None:
    doc = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B", "End": True},
                                      "B": {"Type": "Pass"}}}  # fmt: skip
    problems = _problems(doc)
    assert "States.A: a Pass state needs exactly one of 'Next' or 'End: true' (it has both)" in (
        problems
    )
    assert "States.B: a Pass state needs exactly one of 'Next' or 'End: true' (it has neither)" in (
        problems
    )


def test_choice_rules(full) -> None:
    doc = copy.deepcopy(full)
    rules = doc["States"]["QualityGate"]["Choices"][0]["And"]
    rules[2] = {"Variable": "$.Metrics.Payload.segm_mAP", "NumericGreaterThanEquals": "0.5"}
    rules.append({"Variable": "$.x", "NumericGreaterThanEqualsPath": "$$.Execution.Input.T"})
    rules.append({"Variable": "x", "IsPresent": True, "StringEquals": "y"})
    doc["States"]["CheckEndpoint"]["Choices"][1].pop("Next")
    problems = _problems(doc)
    assert (
        "States.QualityGate.Choices[0].And[2].NumericGreaterThanEquals: '0.5' must be a number"
        in problems
    )
    # A context path is a valid comparator value ("Variable to variable comparison
    # operators": https://docs.aws.amazon.com/step-functions/latest/dg/input-output-contextobject.html)
    assert not any("NumericGreaterThanEqualsPath" in p for p in problems)
    assert any(f"And[{len(rules) - 1}]: needs exactly one comparator" in p for p in problems)
    assert "States.CheckEndpoint.Choices[1]: a top-level Choice rule needs 'Next'" in problems


def test_retry_and_catch(full) -> None:
    doc = copy.deepcopy(full)
    doc["States"]["Train"]["Retry"].append(
        {"ErrorEquals": [], "BackoffRate": 0.5, "IntervalSeconds": 0}
    )
    doc["States"]["Train"]["Catch"].insert(
        0, {"ErrorEquals": ["States.ALL"], "Next": "TrainFailed"}
    )
    doc["States"]["CreateModel"]["Catch"][0]["Next"] = "Nope"
    problems = _problems(doc)
    assert "States.Train.Retry[1].ErrorEquals: must be a non-empty list of error names" in problems
    assert "States.Train.Retry[1].BackoffRate: 0.5 must be a number >= 1.0" in problems
    assert "States.Train.Retry[1].IntervalSeconds: must be a positive integer" in problems
    assert "States.Train.Catch[0]: States.ALL must be in the last entry" in problems
    assert "States.CreateModel.Catch[0].Next: 'Nope' is not a state" in problems


def test_what_aws_accepts_is_not_flagged(full) -> None:
    doc = copy.deepcopy(full)
    # Escapes in intrinsic literals (https://docs.aws.amazon.com/step-functions/latest/dg/intrinsic-functions.html)
    doc["States"]["NotifySuccess"]["Parameters"]["Message.$"] = "States.Format('it\\'s {}', $.x)"
    # A Task without ResultPath: its result replaces the input
    # (https://docs.aws.amazon.com/step-functions/latest/dg/input-output-resultpath.html)
    del doc["States"]["CreateModel"]["ResultPath"]
    doc["States"]["RequestApproval"]["Parameters"]["Payload"].pop("TaskToken.$")
    problems = _problems(doc)
    assert not any("escape" in p or "ResultPath" in p for p in problems)
    assert any("a .waitForTaskToken task must pass '$$.Task.Token'" in p for p in problems)


def test_activity_task_states_are_valid() -> None:
    # A Task whose Resource is an activity ARN, with TimeoutSeconds and HeartbeatSeconds
    # (https://docs.aws.amazon.com/step-functions/latest/dg/concepts-activities.html).
    activity = "arn:aws:states:us-east-1:123456789012:activity:label-images"
    document = {
        "StartAt": "Label",
        "States": {
            "Label": {
                "Type": "Task",
                "Resource": activity,
                "TimeoutSeconds": 300,
                "HeartbeatSeconds": 60,
                "Parameters": {"images.$": "$.images"},
                "Catch": [{"ErrorEquals": ["States.HeartbeatTimeout"], "Next": "Failed"}],
                "End": True,
            },
            "Failed": {"Type": "Fail", "Error": "LabelingStalled"},
        },
    }
    assert validate_definition(document) == []


def test_jsonata_and_variables_documents_are_valid() -> None:
    # https://docs.aws.amazon.com/step-functions/latest/dg/transforming-data.html
    # https://docs.aws.amazon.com/step-functions/latest/dg/workflow-variables.html
    doc = {
        "QueryLanguage": "JSONata",
        "StartAt": "Prepare",
        "States": {
            "Prepare": {
                "Type": "Pass",
                "Assign": {"threshold": 0.5},
                "Output": {"score": "{% $states.input.score %}"},
                "Next": "Gate",
            },
            "Gate": {
                "Type": "Choice",
                "Choices": [{"Condition": "{% $states.input.score > $threshold %}", "Next": "Map"}],
                "Default": "Low",
            },
            "Map": {
                "Type": "Map",
                "Items": "{% [1, 2] %}",
                "ItemProcessor": {
                    "StartAt": "Echo",
                    "States": {"Echo": {"Type": "Pass", "End": True}},
                },
                "Next": "Call",
            },
            "Call": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Arguments": {"FunctionName": "f", "Payload": "{% $states.input %}"},
                "Output": "{% $states.result.Payload %}",
                "Catch": [
                    {
                        "ErrorEquals": ["States.ALL"],
                        "Output": "{% $states.errorOutput %}",
                        "Next": "Low",
                    }
                ],
                "End": True,
            },
            "Low": {
                "Type": "Fail",
                "Error": "Low",
                "Cause": "{% 'score ' & $string($states.input.score) %}",
            },
        },
    }
    assert validate_definition(doc, lint=False) == []
    # JSONPath fields do not belong to JSONata states
    doc["States"]["Prepare"]["ResultPath"] = "$.x"
    assert validate_definition(doc, lint=False) == [
        "States.Prepare.ResultPath: field 'ResultPath' does not belong to a JSONata state "
        "(set QueryLanguage to JSONPath to use it)"
    ]


def test_cli_validate_reports_one_line_per_problem(full, tmp_path, capsys) -> None:
    doc = copy.deepcopy(full)
    doc["States"]["Orphan"] = {"Type": "Pass", "End": True}
    params = doc["States"]["Train"]["Parameters"]
    params["TrainingJobNam.$"] = params.pop("TrainingJobName.$")
    path = tmp_path / "asl.json"
    path.write_text(json.dumps(doc))
    assert main(["validate", "--file", str(path), "--no-statelint"]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "States.Orphan: unreachable from StartAt 'CheckImage' (no Next, Default, Choices or Catch leads here); connect it or remove it",
        "States.Train.Parameters.TrainingJobNam: not a member of CreateTrainingJobRequest (did you mean 'TrainingJobName'?)",
        "States.Train.Parameters: missing required member 'TrainingJobName' of CreateTrainingJobRequest (give it statically or as 'TrainingJobName.$')",
    ]
    assert "error: 3 problem(s)" in err
    assert "Traceback" not in err


def test_cli_validate_ok(full, tmp_path, capsys) -> None:
    path = tmp_path / "asl.json"
    path.write_text(json.dumps(full))
    assert main(["validate", "--file", str(path)]) == 0
    assert capsys.readouterr().out == ""


def test_cli_validate_bad_file(tmp_path, capsys) -> None:
    path = tmp_path / "asl.json"
    path.write_text("{")
    assert main(["validate", "--file", str(path)]) == 1
    assert "is not JSON" in capsys.readouterr().err
