"""The rendered ASL: golden files per configuration variant, and its semantics state by state."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
from helpers.definition_variants import MINIMAL, VARIANTS

from workflow.definition import (
    ERROR_ENDPOINT,
    ERROR_QUALITY_GATE,
    ERROR_REJECTED,
    StepId,
    aws_partition,
    build_workflow,
    check_state_name,
    render_definition,
    render_json,
)
from workflow.errors import DefinitionError
from workflow.validate import validate_definition

GOLDEN = Path(__file__).resolve().parents[2] / "golden"


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_golden(variant: str, make_config) -> None:
    """Set WORKFLOW_UPDATE_GOLDEN=1 to rewrite the files after an intended change."""
    rendered = render_json(make_config(VARIANTS[variant]))
    path = GOLDEN / f"{variant}.json"
    if os.environ.get("WORKFLOW_UPDATE_GOLDEN") == "1":
        path.write_text(rendered + "\n", encoding="utf-8")
    assert path.is_file(), f"{path} is missing: run with WORKFLOW_UPDATE_GOLDEN=1"
    assert json.loads(rendered) == json.loads(path.read_text(encoding="utf-8"))
    assert rendered + "\n" == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_variant_is_valid(variant: str, make_config) -> None:
    assert validate_definition(render_definition(make_config(VARIANTS[variant]))) == []


def test_render_json_is_deterministic(make_config) -> None:
    config = make_config()
    assert render_json(config) == render_json(config)


def test_rendering_uses_no_network(make_config, monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("rendering opened a socket")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.delenv("AWS_SESSION_TOKEN")
    render_definition(make_config(region="eu-west-1"))


def test_the_offline_workflow_refuses_aws_calls(make_config) -> None:
    workflow = build_workflow(make_config())
    with pytest.raises(DefinitionError, match="built offline and cannot call AWS"):
        workflow.client.list_state_machines()


def test_state_order_of_the_full_machine(make_config) -> None:
    states = render_definition(make_config())["States"]
    main = [name for name in states if not name.endswith("Failed") or name == "Failed"]
    assert main == [
        "CheckImage", "BuildImage", "WaitForBuild", "DescribeBuild", "CheckBuild",
        "BuildNotSucceeded", "UseBuiltImage", "UseGivenImage", "FindWarmStart", "CheckWarmStart",
        "DescribeWarmStart", "WarmStartChannels", "ColdStartChannels", "Train", "CreateModel",
        "BatchTransform", "ComputeMetrics", "QualityGate", "QualityGateNotMet",
        "EnsureModelPackageGroup", "RegisterModel", "RequestApproval", "RejectModelPackage",
        "ApprovalRejected", "ApproveModelPackage", "CreateModelFromPackage", "CreateEndpointConfig",
        "FindEndpoint", "CreateEndpoint",
        "UpdateEndpoint", "WaitForEndpoint", "DescribeEndpoint", "CheckEndpoint",
        "EndpointNotInService", "EndpointRolledBack", "RejectRolledBackPackage",
        "NotifySuccess", "Succeeded", "NotifyFailure",
        "Failed",
    ]  # fmt: skip


def test_transitions_follow_the_issue_order(make_config) -> None:
    s = render_definition(make_config())["States"]
    assert s["CheckImage"]["Choices"] == [
        {"Variable": "$.ImageUri", "IsPresent": True, "Next": "UseGivenImage"}
    ]
    assert s["CheckImage"]["Default"] == "BuildImage"
    assert s["BuildImage"]["Next"] == "WaitForBuild"
    assert s["WaitForBuild"]["SecondsPath"] == "$.EndpointPollSeconds"
    assert s["WaitForBuild"]["Next"] == "DescribeBuild"
    assert s["DescribeBuild"]["Next"] == "CheckBuild"
    assert [c["Next"] for c in s["CheckBuild"]["Choices"]] == ["UseBuiltImage", "WaitForBuild"]
    assert s["CheckBuild"]["Default"] == "BuildNotSucceeded"
    assert s["UseBuiltImage"]["Next"] == s["UseGivenImage"]["Next"] == "FindWarmStart"
    assert s["FindWarmStart"]["Next"] == "CheckWarmStart"
    assert s["CheckWarmStart"]["Choices"] == [
        {"Variable": "$.WarmStart.Packages[0]", "IsPresent": True, "Next": "DescribeWarmStart"}
    ]
    assert s["CheckWarmStart"]["Default"] == "ColdStartChannels"
    assert s["DescribeWarmStart"]["Next"] == "WarmStartChannels"
    assert s["WarmStartChannels"]["Next"] == s["ColdStartChannels"]["Next"] == "Train"
    assert s["Train"]["Next"] == "CreateModel"
    assert s["CreateModel"]["Next"] == "BatchTransform"
    assert s["BatchTransform"]["Next"] == "ComputeMetrics"
    assert s["ComputeMetrics"]["Next"] == "QualityGate"
    assert s["QualityGate"]["Choices"][0]["Next"] == "EnsureModelPackageGroup"
    assert s["QualityGate"]["Default"] == "QualityGateNotMet"
    assert s["EnsureModelPackageGroup"]["Next"] == "RegisterModel"
    assert s["EnsureModelPackageGroup"]["Catch"][0] == {
        "ErrorEquals": ["SageMaker.SageMakerException"],  # the group exists already
        "ResultPath": "$.ModelPackageGroup",
        "Next": "RegisterModel",
    }
    assert s["RegisterModel"]["Next"] == "RequestApproval"
    assert s["RequestApproval"]["Next"] == "ApproveModelPackage"
    assert s["RequestApproval"]["Catch"][0]["Next"] == "RejectModelPackage"
    assert s["RejectModelPackage"]["Next"] == "ApprovalRejected"
    assert s["ApproveModelPackage"]["Next"] == "CreateModelFromPackage"
    assert s["CreateModelFromPackage"]["Next"] == "CreateEndpointConfig"
    assert s["CreateEndpointConfig"]["Next"] == "FindEndpoint"
    assert s["FindEndpoint"]["Next"] == "UpdateEndpoint"
    assert s["FindEndpoint"]["Catch"][0] == {
        "ErrorEquals": ["SageMaker.SageMakerException"],
        "ResultPath": "$.ExistingEndpoint",
        "Next": "CreateEndpoint",
    }
    assert s["CreateEndpoint"]["Next"] == s["UpdateEndpoint"]["Next"] == "WaitForEndpoint"
    assert s["WaitForEndpoint"] == {
        "Comment": s["WaitForEndpoint"]["Comment"],
        "SecondsPath": "$.EndpointPollSeconds",
        "Type": "Wait",
        "Next": "DescribeEndpoint",
    }
    assert s["DescribeEndpoint"]["Next"] == "CheckEndpoint"
    assert s["CheckEndpoint"]["Choices"][0]["Next"] == "NotifySuccess"
    assert s["CheckEndpoint"]["Choices"][1]["Next"] == "EndpointRolledBack"
    assert s["CheckEndpoint"]["Choices"][2]["Next"] == "EndpointNotInService"
    assert s["CheckEndpoint"]["Default"] == "WaitForEndpoint"
    assert s["NotifySuccess"]["Next"] == "Succeeded"
    assert s["NotifyFailure"]["Next"] == "Failed"


def test_resources(make_config) -> None:
    s = render_definition(make_config())["States"]
    # The build is polled, never answered through a token (docs/reliability.md, approval bypass).
    assert s["BuildImage"]["Resource"] == "arn:aws:states:::lambda:invoke"
    assert "TaskToken.$" not in s["BuildImage"]["Parameters"]["Payload"]
    assert s["DescribeBuild"]["Resource"] == "arn:aws:states:::aws-sdk:codebuild:batchGetBuilds"
    assert s["Train"]["Resource"] == "arn:aws:states:::sagemaker:createTrainingJob.sync"
    assert s["CreateModel"]["Resource"] == "arn:aws:states:::sagemaker:createModel"
    assert s["BatchTransform"]["Resource"] == "arn:aws:states:::sagemaker:createTransformJob.sync"
    assert s["ComputeMetrics"]["Resource"] == "arn:aws:states:::lambda:invoke"
    assert s["RequestApproval"]["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken"
    assert (
        s["CreateEndpointConfig"]["Resource"] == "arn:aws:states:::sagemaker:createEndpointConfig"
    )
    assert (
        s["FindEndpoint"]["Resource"]
        == s["DescribeEndpoint"]["Resource"]
        == ("arn:aws:states:::aws-sdk:sagemaker:describeEndpoint")
    )
    assert s["CreateEndpoint"]["Resource"] == "arn:aws:states:::sagemaker:createEndpoint"
    assert s["UpdateEndpoint"]["Resource"] == "arn:aws:states:::sagemaker:updateEndpoint"
    assert (
        s["NotifySuccess"]["Resource"]
        == s["NotifyFailure"]["Resource"]
        == ("arn:aws:states:::sns:publish")
    )


def test_per_run_values_come_from_the_execution(make_config) -> None:
    s = render_definition(make_config())["States"]
    train = s["Train"]["Parameters"]
    assert train["AlgorithmSpecification"]["TrainingImage.$"] == "$.Image.Uri"
    assert "TrainingImage" not in train["AlgorithmSpecification"]
    assert train["TrainingJobName.$"] == "$$.Execution.Input['TrainingJobName']"
    assert train["HyperParameters.$"] == "$$.Execution.Input['HyperParameters']"
    assert train["OutputDataConfig"] == {"S3OutputPath.$": "$$.Execution.Input['OutputPath']"}
    assert train["CheckpointConfig"] == {
        "S3Uri.$": "$$.Execution.Input['CheckpointPath']",
        "LocalPath": "/opt/ml/checkpoints",
    }
    # The channels come from ColdStartChannels or WarmStartChannels (test_warm_start_...).
    assert train["InputDataConfig.$"] == "$.TrainingChannels.Channels"
    cold = s["ColdStartChannels"]["Parameters"]["Channels"]
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri.$"]
                for c in cold}  # fmt: skip
    assert channels == {
        "training": "$$.Execution.Input['TrainingData']",
        "validation": "$$.Execution.Input['ValidationData']",
    }
    names = {m["Name"] for m in train["AlgorithmSpecification"]["MetricDefinitions"]}
    assert {"train:loss", "validation:segm_mAP", "validation:bbox_mAP"} <= names
    model = s["CreateModel"]["Parameters"]
    assert model["ModelName.$"] == "$$.Execution.Input['ModelName']"
    assert model["PrimaryContainer"]["Image.$"] == "$.Image.Uri"
    assert (
        model["PrimaryContainer"]["ModelDataUrl.$"] == "$.Training.ModelArtifacts.S3ModelArtifacts"
    )
    transform = s["BatchTransform"]["Parameters"]
    assert transform["TransformJobName.$"] == "$$.Execution.Input['TransformJobName']"
    assert transform["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri.$"] == (
        "$$.Execution.Input['TestImages']"
    )
    assert transform["TransformOutput"]["S3OutputPath.$"] == "$$.Execution.Input['TransformOutput']"
    assert s["CreateEndpointConfig"]["Parameters"]["EndpointConfigName.$"] == (
        "$$.Execution.Input['EndpointConfigName']"
    )
    for state in ("CreateEndpoint", "UpdateEndpoint", "FindEndpoint", "DescribeEndpoint"):
        assert s[state]["Parameters"]["EndpointName.$"] == "$$.Execution.Input['EndpointName']"


def test_every_task_retries_and_catches(make_config) -> None:
    for variant in VARIANTS.values():
        states = render_definition(make_config(variant))["States"]
        for name, state in states.items():
            if state["Type"] != "Task":
                continue
            assert state.get("Retry"), f"{name} has no Retry"
            assert all(r["BackoffRate"] >= 2.0 for r in state["Retry"])
            assert state["Catch"][-1]["ErrorEquals"] == ["States.ALL"], name
            assert "ResultPath" in state, name
            marker = state["Catch"][-1]["Next"]
            if name == "NotifyFailure":
                assert marker == "Failed"
                continue
            if name == "RejectModelPackage":  # the run ends Rejected whatever the registry says
                assert marker == "ApprovalRejected"
                continue
            if name == "RejectRolledBackPackage":  # and DeploymentRolledBack likewise
                assert marker == "NotifyFailure"
                continue
            assert marker == f"{name}Failed"
            after = states[marker]["Next"]
            assert after in ("NotifyFailure", "Failed")
            assert states[marker]["Parameters"]["State"] == name


def test_failures_end_with_the_recorded_named_error(make_config) -> None:
    s = render_definition(make_config())["States"]
    assert s["Failed"] == {
        "Comment": s["Failed"]["Comment"],
        "ErrorPath": "$.Failure.ExecutionError",
        "CausePath": "$.Failure.Cause",
        "Type": "Fail",
    }
    assert s["QualityGateNotMet"]["Parameters"]["Error"] == ERROR_QUALITY_GATE
    assert s["EndpointNotInService"]["Parameters"]["Error"] == ERROR_ENDPOINT
    assert s["RequestApproval"]["Catch"][0]["ErrorEquals"] == [ERROR_REJECTED]
    assert s["RequestApproval"]["Catch"][0]["Next"] == "RejectModelPackage"
    assert s["RejectModelPackage"]["Next"] == "ApprovalRejected"
    assert s["ApprovalRejected"]["Parameters"]["ExecutionError"] == ERROR_REJECTED
    assert s["TrainFailed"]["Parameters"]["ExecutionError.$"] == (
        "States.Format('Train.{}', $.Failure.Error)"
    )
    assert s["NotifyFailure"]["Parameters"]["Message.$"] == "States.JsonToString($.Failure)"
    # a failing notification still ends in Failed with the original error
    assert s["NotifyFailure"]["Catch"] == [
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.NotificationError", "Next": "Failed"}
    ]


def test_gate_compares_the_metric_with_the_inputs_threshold(make_config) -> None:
    s = render_definition(make_config(gate__metric="bbox_mAP", gate__threshold=0.25))["States"]
    gate = s["QualityGate"]
    rules = gate["Choices"][0]["And"]
    metric, threshold = "$.Metrics.Payload.bbox_mAP", "$.GateThreshold"
    assert rules == [
        {"Variable": threshold, "IsPresent": True},
        {"Variable": threshold, "IsNumeric": True},
        {"Variable": metric, "IsPresent": True},
        {"Variable": metric, "IsNumeric": True},
        {"Variable": metric, "NumericGreaterThanEqualsPath": threshold},
    ]
    # no constant threshold and no context path ($$ cannot be read by *Path comparators locally)
    assert "0.25" not in json.dumps(gate["Choices"]) and "$$" not in json.dumps(gate["Choices"])
    assert "GateThreshold" in gate["Comment"] and "gate.threshold = 0.25" in gate["Comment"]
    cause = s["QualityGateNotMet"]["Parameters"]["Cause"]
    assert (
        "bbox_mAP" in cause
        and "GateThreshold" in cause
        and "gate.threshold, 0.25 by default" in cause
    )
    assert "local.gate_threshold in local runs" in cause


def test_same_document_whatever_the_local_gate_threshold(make_config) -> None:
    assert render_json(make_config(local__gate_threshold=0.9)) == render_json(make_config())


def _path_to(states: dict, start: str, target: str) -> list[str]:
    """The states from ``start`` to ``target`` on the success path (Choices first, then Next)."""
    path, name = [], start
    while name != target:
        path.append(name)
        state = states[name]
        name = state["Choices"][0]["Next"] if state["Type"] == "Choice" else state["Next"]
        assert name not in path, f"loop at {name}"
    return path


@pytest.mark.parametrize("variant", ["full", "ssm_spot"])
def test_state_data_at_the_gate_keeps_the_execution_input(make_config, variant) -> None:
    document = render_definition(make_config(VARIANTS[variant]))
    states = document["States"]
    for start in (document["StartAt"], "BuildImage"):  # via UseGivenImage, UseBuiltImage
        for name in _path_to(states, start, "QualityGate"):
            state = states[name]
            # each state adds its result under its own key and passes the rest on
            assert "InputPath" not in state and "OutputPath" not in state, name
            if state["Type"] in ("Task", "Pass"):
                result = state.get("ResultPath")
                assert isinstance(result, str) and result.startswith("$.") and result != "$.", name
                assert result.split(".")[1] not in ("GateThreshold", "Metrics") or (
                    result == "$.Metrics" and name == "ComputeMetrics"
                ), name


def test_endpoint_done_only_on_this_runs_configuration(make_config) -> None:
    rule = render_definition(make_config())["States"]["CheckEndpoint"]["Choices"][0]
    assert rule["And"][1] == {
        "Variable": "$.EndpointStatus.EndpointConfigName",
        "StringEqualsPath": "$.EndpointConfigName",
    }


def test_minimal_chain_of_the_original_sample(make_config) -> None:
    s = render_definition(make_config(MINIMAL))["States"]
    assert not {"BatchTransform", "ComputeMetrics", "QualityGate", "RequestApproval",
                "NotifySuccess", "NotifyFailure"} & set(s)  # fmt: skip
    assert s["CreateModel"]["Next"] == "CreateEndpointConfig"
    assert s["CheckEndpoint"]["Choices"][0]["Next"] == "Succeeded"
    assert s["TrainFailed"]["Next"] == "Failed"


def test_stages_switch_off_one_by_one(make_config) -> None:
    s = render_definition(make_config(gate__enabled=False))["States"]
    assert "QualityGate" not in s and s["ComputeMetrics"]["Next"] == "EnsureModelPackageGroup"
    s = render_definition(make_config(approval__enabled=False))["States"]
    assert "RequestApproval" not in s and "RejectModelPackage" not in s
    assert s["RegisterModel"]["Next"] == "ApproveModelPackage"
    s = render_definition(make_config(approval__enabled=False, registry__enabled=False))["States"]
    assert s["QualityGate"]["Choices"][0]["Next"] == "CreateEndpointConfig"
    s = render_definition(make_config(registry__enabled=False))["States"]
    assert not {"EnsureModelPackageGroup", "RegisterModel", "ApproveModelPackage",
                "RejectModelPackage"} & set(s)  # fmt: skip
    assert s["QualityGate"]["Choices"][0]["Next"] == "RequestApproval"
    assert s["RequestApproval"]["Catch"][0]["Next"] == "ApprovalRejected"
    s = render_definition(make_config(notification__enabled=False))["States"]
    assert "NotifyFailure" not in s and s["CheckEndpoint"]["Choices"][0]["Next"] == "Succeeded"
    assert "Metrics.$" in s["RequestApproval"]["Parameters"]["Payload"]
    s = render_definition(make_config(evaluation__enabled=False, gate__enabled=False))["States"]
    assert "Metrics.$" not in s["RequestApproval"]["Parameters"]["Payload"]
    assert "Metrics" not in s["NotifySuccess"]["Parameters"]["Message.$"]


def test_ssm_hyperparameters_are_merged_at_run_time(make_config) -> None:
    s = render_definition(make_config(training__hyperparameters_ssm_parameter="/a/hp"))["States"]
    assert s["UseBuiltImage"]["Next"] == "ReadHyperParameters"
    assert s["ReadHyperParameters"]["Resource"] == "arn:aws:states:::aws-sdk:ssm:getParameter"
    assert s["ReadHyperParameters"]["Parameters"]["Name"] == "/a/hp"
    assert s["MergeHyperParameters"]["Next"] == "FindWarmStart"
    assert s["Train"]["Parameters"]["HyperParameters.$"] == "$.ResolvedHyperParameters.Values"


def test_warm_start_trains_from_the_newest_approved_package(make_config) -> None:
    # ListModelPackages (ModelApprovalStatus, SortBy CreationTime, SortOrder Descending,
    # MaxResults): https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ListModelPackages.html
    # DescribeModelPackage's InferenceSpecification.Containers[].ModelDataUrl:
    # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeModelPackage.html
    s = render_definition(make_config(registry__group_name="team-models"))["States"]
    find = s["FindWarmStart"]
    assert find["Resource"] == "arn:aws:states:::aws-sdk:sagemaker:listModelPackages"
    assert find["Parameters"] == {
        "ModelPackageGroupName": "team-models",
        "ModelPackageType": "Versioned",
        "ModelApprovalStatus": "Approved",
        "SortBy": "CreationTime",
        "SortOrder": "Descending",
        "MaxResults": 1,
    }
    assert find["ResultSelector"] == {"Packages.$": "$.ModelPackageSummaryList"}
    describe = s["DescribeWarmStart"]
    assert describe["Parameters"] == {
        "ModelPackageName.$": "$.WarmStart.Packages[0].ModelPackageArn"
    }
    assert describe["ResultSelector"]["ModelDataUrl.$"] == (
        "$.InferenceSpecification.Containers[0].ModelDataUrl"
    )
    warm = s["WarmStartChannels"]["Parameters"]["Channels"]
    cold = s["ColdStartChannels"]["Parameters"]["Channels"]
    assert warm[:2] == cold
    assert [c["ChannelName"] for c in warm] == ["training", "validation", "pretrained"]
    assert warm[2]["DataSource"]["S3DataSource"] == {
        "S3DataType": "S3Prefix",
        "S3DataDistributionType": "FullyReplicated",
        "S3Uri.$": "$.WarmStart.ModelDataUrl",
    }
    # SageMaker's unmodelled errors (as the aws-sdk integration names them) start cold
    assert find["Catch"] == [
        {
            "ErrorEquals": ["SageMaker.SageMakerException"],
            "ResultPath": "$.WarmStart",
            "Next": "ColdStartChannels",
        },
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.Failure", "Next": "FindWarmStartFailed"},
    ]
    assert describe["Catch"][0]["Next"] == "DescribeWarmStartFailed"


@pytest.mark.parametrize(
    "overrides", [{"training.warm_start": "none"}, {"registry.enabled": False}]
)
def test_without_warm_start_the_channels_are_fixed(overrides, make_config) -> None:
    s = render_definition(make_config(overrides))["States"]
    assert "FindWarmStart" not in s and "WarmStartChannels" not in s
    channels = s["Train"]["Parameters"]["InputDataConfig"]
    assert [c["ChannelName"] for c in channels] == ["training", "validation"]


def test_spot_training(make_config) -> None:
    train = render_definition(make_config(training__spot=True))["States"]["Train"]["Parameters"]
    assert train["EnableManagedSpotTraining"] is True
    assert train["StoppingCondition"] == {
        "MaxRuntimeInSeconds": 86400,
        "MaxWaitTimeInSeconds": 172800,
    }


def test_partition_follows_the_region(make_config) -> None:
    assert aws_partition("cn-north-1") == "aws-cn"
    assert aws_partition("us-gov-west-1") == "aws-us-gov"
    assert aws_partition("eu-west-1") == "aws"
    s = render_definition(
        make_config(region="cn-north-1", account_id="123456789012", s3__bucket="b-cn",
                    roles__sagemaker="arn:aws-cn:iam::123456789012:role/sm",
                    roles__state_machine="arn:aws-cn:iam::123456789012:role/sfn",
                    notification__topic_arn="arn:aws-cn:sns:cn-north-1:123456789012:t")
    )["States"]  # fmt: skip
    assert s["Train"]["Resource"] == "arn:aws-cn:states:::sagemaker:createTrainingJob.sync"
    assert s["FindEndpoint"]["Resource"] == "arn:aws-cn:states:::aws-sdk:sagemaker:describeEndpoint"


def test_state_names() -> None:
    assert check_state_name("Train") == "Train"
    for step in StepId:
        check_state_name(step.value)
        check_state_name(step.failed())
    with pytest.raises(DefinitionError, match="state name 'a b' is invalid"):
        check_state_name("a b")
    with pytest.raises(DefinitionError, match="is invalid"):
        check_state_name("x" * 81)


def test_endpoint_config_captures_requests_and_responses(make_config) -> None:
    # The CreateEndpointConfig request's DataCaptureConfig, field for field:
    # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DataCaptureConfig.html
    config = make_config(endpoint__data_capture__sampling_percentage=25)
    parameters = render_definition(config)["States"]["CreateEndpointConfig"]["Parameters"]
    assert parameters["DataCaptureConfig"] == {
        "EnableCapture": True,
        "InitialSamplingPercentage": 25,
        "DestinationS3Uri": "s3://mask-r-cnn-mlops-000000000000-us-east-1/mask-r-cnn/data-capture",
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"]},
    }
    assert validate_definition(render_definition(config)) == []


def test_no_data_capture_when_disabled(make_config) -> None:
    config = make_config(endpoint__data_capture__enabled=False)
    parameters = render_definition(config)["States"]["CreateEndpointConfig"]["Parameters"]
    assert "DataCaptureConfig" not in parameters
    assert set(parameters) == {"EndpointConfigName.$", "ProductionVariants"}


def test_the_registry_records_the_model_and_the_decision(make_config) -> None:
    s = render_definition(make_config(registry__group_name="kit-models"))["States"]
    prefix = "arn:aws:states:::aws-sdk:sagemaker:"
    assert s["EnsureModelPackageGroup"]["Resource"] == prefix + "createModelPackageGroup"
    assert s["EnsureModelPackageGroup"]["Parameters"]["ModelPackageGroupName"] == "kit-models"
    register = s["RegisterModel"]
    assert register["Resource"] == prefix + "createModelPackage"
    assert register["ResultPath"] == "$.ModelPackage"
    parameters = register["Parameters"]
    assert parameters["ModelPackageGroupName"] == "kit-models"
    assert parameters["ModelApprovalStatus"] == "PendingManualApproval"
    container = parameters["InferenceSpecification"]["Containers"][0]
    assert container["Image.$"] == "$.Image.Uri"  # what CreateModel runs
    assert container["ModelDataUrl.$"] == "$.Training.ModelArtifacts.S3ModelArtifacts"
    assert parameters["MetadataProperties"] == {
        "CommitId.$": "$.CommitId",
        "GeneratedBy.$": "$$.Execution.Id",
    }
    metadata = parameters["CustomerMetadataProperties"]
    assert metadata["TrainingData.$"] == "$.TrainingData"
    assert metadata["EvaluationMetrics.$"] == "States.JsonToString($.Metrics.Payload)"
    approve, reject = s["ApproveModelPackage"], s["RejectModelPackage"]
    assert approve["Resource"] == reject["Resource"] == prefix + "updateModelPackage"
    assert approve["Parameters"] == {
        "ModelPackageArn.$": "$.ModelPackage.ModelPackageArn",
        "ModelApprovalStatus": "Approved",
        "ApprovalDescription.$": "States.JsonToString($.Approval)",
    }
    assert reject["Parameters"] == {
        "ModelPackageArn.$": "$.ModelPackage.ModelPackageArn",
        "ModelApprovalStatus": "Rejected",
        "ApprovalDescription.$": "$.Failure.Cause",
    }
    # A registry that cannot be updated does not turn the rejection into another error.
    assert reject["Catch"] == [
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.ModelPackageDecision",
         "Next": "ApprovalRejected"}
    ]  # fmt: skip


def test_auto_approval_is_recorded_when_the_approval_is_off(make_config) -> None:
    s = render_definition(make_config(approval__enabled=False))["States"]
    assert s["ApproveModelPackage"]["Parameters"]["ApprovalDescription"] == "auto: gate passed"
    s = render_definition(make_config(MINIMAL, registry__enabled=True))["States"]
    assert s["ApproveModelPackage"]["Parameters"]["ApprovalDescription"] == (
        "auto: approval disabled"
    )
    assert (
        "EvaluationMetrics.$" not in s["RegisterModel"]["Parameters"]["CustomerMetadataProperties"]
    )
