"""The rollback alarms of UpdateEndpoint's AutoRollbackConfiguration and their one grant.

AWS: the alarms watch AWS/SageMaker endpoint metrics per EndpointName and VariantName
(https://docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html, ModelLatency in
microseconds); SageMaker needs cloudwatch:DescribeAlarms on them
(https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-configuration.html).
"""

from __future__ import annotations

import json
from typing import Any

ARN = "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:"
NAMES = ("mask-r-cnn-mlops-mask-r-cnn-5xx-errors", "mask-r-cnn-mlops-mask-r-cnn-model-latency")


def _alarms(template: dict[str, Any]) -> dict[str, Any]:
    return {
        name: resource["Properties"]
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    }


def _alarm_grants(template: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    grants = {}
    for role in ("StateMachineRole", "SageMakerExecutionRole"):
        policies = template["Resources"][role]["Properties"]["Policies"]
        grants[role] = [
            s
            for p in policies
            for s in p["PolicyDocument"]["Statement"]
            if "cloudwatch:DescribeAlarms" in json.dumps(s["Action"])
        ]
    return grants


def _render(config: Any) -> dict[str, Any]:
    from workflow.definition import render_json
    from workflow.infra import render_template

    return render_template(config, render_json(config))


def test_the_template_creates_the_alarms_the_definition_names(rendered: dict[str, Any]) -> None:
    alarms = _alarms(rendered)
    assert sorted(alarms) == ["RollbackAlarmInvocation5XXErrors", "RollbackAlarmModelLatency"]
    errors = alarms["RollbackAlarmInvocation5XXErrors"]
    assert {k: v for k, v in errors.items() if k != "AlarmDescription"} == {
        "AlarmName": NAMES[0],
        "Namespace": "AWS/SageMaker",
        "MetricName": "Invocation5XXErrors",
        "Dimensions": [
            {"Name": "EndpointName", "Value": {"Ref": "EndpointName"}},
            {"Name": "VariantName", "Value": "AllTraffic"},
        ],
        "Statistic": "Sum",
        "Period": 60,
        "EvaluationPeriods": 2,
        "Threshold": 1,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "TreatMissingData": "notBreaching",
    }
    latency = alarms["RollbackAlarmModelLatency"]
    assert (latency["AlarmName"], latency["Statistic"], latency["Threshold"]) == (
        NAMES[1],
        "Average",
        5000000,  # microseconds
    )
    states = rendered["Resources"]["StateMachine"]["Properties"]["Definition"]["States"]
    rollback = states["UpdateEndpoint"]["Parameters"]["DeploymentConfig"]
    assert [a["AlarmName"] for a in rollback["AutoRollbackConfiguration"]["Alarms"]] == [
        a["AlarmName"] for a in alarms.values()
    ]


def test_describe_alarms_on_the_two_alarms_only(rendered: dict[str, Any]) -> None:
    expected = {
        "Effect": "Allow",
        "Action": "cloudwatch:DescribeAlarms",
        "Resource": [{"Fn::Sub": ARN + name} for name in NAMES],
    }
    assert _alarm_grants(rendered) == {
        "StateMachineRole": [expected],
        "SageMakerExecutionRole": [expected],
    }


def test_thresholds_follow_the_configuration(make_config: Any) -> None:
    alarms = {
        "errors_threshold": 5,
        "latency_threshold_microseconds": 250000,
        "period_seconds": 300,
        "evaluation_periods": 3,
    }
    config = make_config(**{"endpoint.deployment.alarms": alarms})
    rendered = _alarms(_render(config))
    errors = rendered["RollbackAlarmInvocation5XXErrors"]
    latency = rendered["RollbackAlarmModelLatency"]
    assert (errors["Threshold"], latency["Threshold"]) == (5, 250000)
    assert {(a["Period"], a["EvaluationPeriods"]) for a in rendered.values()} == {(300, 3)}


def test_no_alarms_and_no_grant_when_disabled(make_config: Any) -> None:
    config = make_config(**{"endpoint.deployment.alarms.enabled": "false"})
    template = _render(config)
    assert _alarms(template) == {}
    assert _alarm_grants(template) == {"StateMachineRole": [], "SageMakerExecutionRole": []}
