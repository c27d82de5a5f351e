"""UpdateEndpoint's DeploymentConfig and the wait loop's three ends (in service, rolled back, failed).

AWS's shapes: https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DeploymentConfig.html,
API_BlueGreenUpdatePolicy.html, API_TrafficRoutingConfig.html, API_CapacitySize.html and
API_AutoRollbackConfig.html (same folder).
"""

from __future__ import annotations

import pytest

from workflow.contracts import ENDPOINT_VARIANT_NAME, ERROR_ENDPOINT, ERROR_ROLLED_BACK
from workflow.definition import render_definition
from workflow.validate import validate_definition


def _states(make_config, **overrides):
    return render_definition(make_config(**overrides))["States"]


def _deployment(make_config, **overrides):
    return _states(make_config, **overrides)["UpdateEndpoint"]["Parameters"]["DeploymentConfig"]


ALARMS = {
    "Alarms": [
        {"AlarmName": "mask-r-cnn-mlops-mask-r-cnn-5xx-errors"},
        {"AlarmName": "mask-r-cnn-mlops-mask-r-cnn-model-latency"},
    ]
}


def test_canary_of_a_fleet_of_two(make_config) -> None:
    # CanarySize CAPACITY_PERCENT, at most 50 % of the variant's instances (API_TrafficRoutingConfig).
    deployment = _deployment(make_config, endpoint__initial_instance_count=2)
    assert deployment == {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "CANARY",
                "WaitIntervalInSeconds": 300,
                "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 50},
            },
            "TerminationWaitInSeconds": 120,
            "MaximumExecutionTimeoutInSeconds": 7200,
        },
        "AutoRollbackConfiguration": ALARMS,
    }


def test_linear_steps(make_config) -> None:
    settings = {"strategy": "linear", "linear_step_percent": 25, "wait_seconds": 60}
    deployment = _deployment(
        make_config, endpoint__initial_instance_count=4, endpoint__deployment=settings
    )
    assert deployment["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"] == {
        "Type": "LINEAR",
        "WaitIntervalInSeconds": 60,
        "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 25},
    }


@pytest.mark.parametrize(("count", "strategy"), [(1, "canary"), (1, "linear"), (3, "all_at_once")])
def test_all_at_once(make_config, count, strategy) -> None:
    # One instance cannot be split into a canary (<= 50 %) or linear steps (10-50 %).
    deployment = _deployment(
        make_config,
        endpoint__initial_instance_count=count,
        endpoint__deployment={"strategy": strategy},
    )
    policy = deployment["BlueGreenUpdatePolicy"]
    assert policy["TrafficRoutingConfiguration"] == {
        "Type": "ALL_AT_ONCE",
        "WaitIntervalInSeconds": 0,
    }
    assert policy["TerminationWaitInSeconds"] == 120
    assert deployment["AutoRollbackConfiguration"] == ALARMS


def test_no_rollback_alarms_when_disabled(make_config) -> None:
    deployment = _deployment(make_config, endpoint__deployment={"alarms": {"enabled": False}})
    assert "AutoRollbackConfiguration" not in deployment


def test_create_endpoint_has_no_deployment_config(make_config) -> None:
    states = _states(make_config)
    assert set(states["CreateEndpoint"]["Parameters"]) == {
        "EndpointConfigName.$",
        "EndpointName.$",
    }
    variants = states["CreateEndpointConfig"]["Parameters"]["ProductionVariants"]
    assert [v["VariantName"] for v in variants] == [ENDPOINT_VARIANT_NAME]


def test_every_deployment_variant_is_valid_against_botocore(make_config) -> None:
    for overrides in (
        {"endpoint__initial_instance_count": 2},
        {"endpoint__initial_instance_count": 2, "endpoint__deployment": {"strategy": "linear"}},
        {"endpoint__deployment": {"alarms": {"enabled": False}}},
    ):
        validate_definition(render_definition(make_config(**overrides)))


def test_rolled_back_is_in_service_on_another_configuration_after_an_update(make_config) -> None:
    states = _states(make_config)
    choices = states["CheckEndpoint"]["Choices"]
    assert choices[1] == {
        "And": [
            {"Variable": "$.EndpointStatus.EndpointStatus", "StringEquals": "InService"},
            {"Variable": "$.ExistingEndpoint.EndpointArn", "IsPresent": True},
        ],
        "Next": "EndpointRolledBack",
    }
    rolled_back = states["EndpointRolledBack"]["Parameters"]
    assert (rolled_back["Error"], rolled_back["ExecutionError"]) == (ERROR_ROLLED_BACK,) * 2
    assert rolled_back["Cause.$"].startswith("States.Format('endpoint {} rolled back to ")
    assert rolled_back["Endpoint.$"] == "$.EndpointStatus"
    assert states["EndpointRolledBack"]["Next"] == "RejectRolledBackPackage"
    assert states["EndpointNotInService"]["Parameters"]["Error"] == ERROR_ENDPOINT
    assert ERROR_ROLLED_BACK == "DeploymentRolledBack"


def test_failed_statuses_end_as_endpoint_failed(make_config) -> None:
    # EndpointStatus values: OutOfService | Creating | Updating | SystemUpdating | RollingBack |
    # InService | Deleting | Failed | UpdateRollbackFailed
    # (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_EndpointMetadata.html);
    # the transitional ones wait.
    choice = _states(make_config)["CheckEndpoint"]["Choices"][2]
    assert choice["Next"] == "EndpointNotInService"
    failed = {rule["StringEquals"] for rule in choice["Or"]}
    assert failed == {"Failed", "OutOfService", "Deleting", "UpdateRollbackFailed", "InService"}


def test_the_execution_budget_covers_the_deployment(make_config) -> None:
    from workflow.definition.factories import timeout_seconds

    short = timeout_seconds(
        make_config(endpoint__deployment={"max_execution_timeout_seconds": 600})
    )
    long = timeout_seconds(
        make_config(endpoint__deployment={"max_execution_timeout_seconds": 28800})
    )
    assert long - short == 28800 - 600


def test_the_package_carries_the_evaluation_as_model_quality(make_config) -> None:
    # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ModelMetrics.html
    states = _states(make_config)
    payload = states["ComputeMetrics"]["Parameters"]["Payload"]
    assert payload["MetricsOutput.$"] == (
        "States.Format('{}model-quality.json', $.TransformOutput)"
    )
    assert states["RegisterModel"]["Parameters"]["ModelMetrics"] == {
        "ModelQuality": {
            "Statistics": {
                "ContentType": "application/json",
                "S3Uri.$": "$.Metrics.Payload.MetricsUri",
            }
        }
    }
    without = _states(make_config, registry__enabled=False)
    assert "MetricsOutput.$" not in without["ComputeMetrics"]["Parameters"]["Payload"]
    no_evaluation = _states(make_config, evaluation__enabled=False, gate__enabled=False)
    assert "ModelMetrics" not in no_evaluation["RegisterModel"]["Parameters"]


def test_the_endpoint_serves_a_model_made_from_the_approved_package(make_config) -> None:
    # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ContainerDefinition.html
    states = _states(make_config)
    model = states["CreateModelFromPackage"]
    assert model["Resource"] == "arn:aws:states:::sagemaker:createModel"
    assert model["Parameters"] == {
        "ModelName.$": "$$.Execution.Input['DeployModelName']",
        "ExecutionRoleArn": "arn:aws:iam::000000000000:role/mask-r-cnn-mlops-sagemaker",
        "PrimaryContainer": {"ModelPackageName.$": "$.ModelPackage.ModelPackageArn"},
    }
    variants = states["CreateEndpointConfig"]["Parameters"]["ProductionVariants"]
    assert variants[0]["ModelName.$"] == "$$.Execution.Input['DeployModelName']"
    without = _states(make_config, registry__enabled=False)
    assert "CreateModelFromPackage" not in without
    variants = without["CreateEndpointConfig"]["Parameters"]["ProductionVariants"]
    assert variants[0]["ModelName.$"] == "$$.Execution.Input['ModelName']"


def test_a_rolled_back_package_is_rejected_with_the_cause(make_config) -> None:
    # UpdateModelPackage sets Approved, Rejected or PendingManualApproval on a package:
    # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_UpdateModelPackage.html
    states = _states(make_config)
    reject = states["RejectRolledBackPackage"]
    assert reject["Resource"].endswith(":states:::aws-sdk:sagemaker:updateModelPackage")
    assert reject["Parameters"] == {
        "ModelPackageArn.$": "$.ModelPackage.ModelPackageArn",
        "ModelApprovalStatus": "Rejected",
        "ApprovalDescription.$": "$.Failure.Cause",
    }
    # the run ends DeploymentRolledBack whether or not the registry could be updated
    assert reject["Next"] == "NotifyFailure"
    assert reject["Catch"][-1]["Next"] == "NotifyFailure"
    without = _states(make_config, **{"registry.enabled": False})
    assert "RejectRolledBackPackage" not in without
    assert without["EndpointRolledBack"]["Next"] == "NotifyFailure"
