"""Routing weights, blue/green traffic steps and CloudWatch alarm evaluation, without processes."""

from __future__ import annotations

import pytest

from workflow.local.cloudwatch import CloudWatchError, LocalCloudWatch, evaluate_alarm
from workflow.local.deployment import check_deployment_config, traffic_steps
from workflow.local.endpoint_metrics import append_invocation, metrics_dir, period_values
from workflow.local.router import Route, RoutingTable

ALARM = {
    "AlarmName": "errors",
    "Namespace": "AWS/SageMaker",
    "MetricName": "Invocation5XXErrors",
    "Statistic": "Sum",
    "Dimensions": [
        {"Name": "EndpointName", "Value": "ep"},
        {"Name": "VariantName", "Value": "AllTraffic"},
    ],
    "Period": 60,
    "EvaluationPeriods": 2,
    "Threshold": 1.0,
    "ComparisonOperator": "GreaterThanOrEqualToThreshold",
}
NOW = 1_800_000_030.0  # 30 s into a minute
MINUTE = 1_800_000_000


def test_routing_table_splits_by_weight():
    # Traffic goes to each variant in proportion to its weight:
    # https://docs.aws.amazon.com/sagemaker/latest/dg/model-ab-testing.html
    table = RoutingTable(
        [Route("Blue", "http://b", 0.75), Route("Green", "http://g", 0.25), Route("Off", "x", 0)]
    )
    picks = [table.choose(i / 1000).variant for i in range(1000)]  # type: ignore[union-attr]
    assert (picks.count("Blue"), picks.count("Green"), picks.count("Off")) == (750, 250, 0)
    assert table.shares() == {"http://b": 0.75, "http://g": 0.25}
    assert RoutingTable([]).choose(0.5) is None
    record = {"Routes": [{"VariantName": "AllTraffic", "Url": "http://a", "Weight": 1.0}]}
    assert RoutingTable.from_record(record).choose(0.99).url == "http://a"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("routing", "capacity", "expected"),
    [
        # https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-blue-green-all-at-once.html
        ({"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 60}, 1, [1.0]),
        # https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-blue-green-canary.html
        (
            {"Type": "CANARY", "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 25}},
            1,
            [0.25, 1.0],
        ),
        ({"Type": "CANARY", "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1}}, 4, [0.25, 1.0]),
        # https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-blue-green-linear.html
        (
            {"Type": "LINEAR", "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 30}},
            1,
            [0.3, 0.6, 0.9, 1.0],
        ),
        ({"Type": "LINEAR", "LinearStepSize": {"Type": "INSTANCE_COUNT", "Value": 1}}, 2, [0.5, 1]),
    ],
)
def test_traffic_steps(routing, capacity, expected):
    assert traffic_steps(routing, capacity) == expected


def test_deployment_config_problems_name_the_value():
    # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_TrafficRoutingConfig.html
    assert check_deployment_config(None) is None
    good = {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {
        "Type": "CANARY", "WaitIntervalInSeconds": 60,
        "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10}}}}  # fmt: skip
    assert check_deployment_config(good) is None
    bad = {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {
        "Type": "SOMETIMES", "WaitIntervalInSeconds": 60}}}  # fmt: skip
    assert "'SOMETIMES' is not one of ALL_AT_ONCE, CANARY, LINEAR" in str(
        check_deployment_config(bad)
    )
    canary = {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {
        "Type": "CANARY", "WaitIntervalInSeconds": 60}}}  # fmt: skip
    assert "needs CanarySize" in str(check_deployment_config(canary))


@pytest.mark.parametrize(
    ("values", "treat", "expected"),
    [
        # https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html#alarm-evaluation
        ({MINUTE: 3.0, MINUTE - 60: 1.0}, "missing", "ALARM"),
        ({MINUTE: 3.0, MINUTE - 60: 0.0}, "missing", "OK"),
        ({MINUTE - 120: 9.0}, "missing", "INSUFFICIENT_DATA"),  # outside the window
        # https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html#alarms-and-missing-data
        ({}, "notBreaching", "OK"),
        ({}, "breaching", "ALARM"),
        ({MINUTE: 2.0}, "breaching", "ALARM"),  # the missing period counts as breaching
        ({MINUTE: 2.0}, "notBreaching", "OK"),
        ({}, "ignore", "OK"),  # keeps the current state
    ],
)
def test_alarm_evaluation(values, treat, expected):
    alarm = {**ALARM, "TreatMissingData": treat, "StateValue": "OK"}
    state, reason = evaluate_alarm(alarm, values, NOW)
    assert state == expected, reason


def test_datapoints_to_alarm_m_out_of_n():
    # "M out of N": DatapointsToAlarm of EvaluationPeriods must breach:
    # https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html#alarm-evaluation
    alarm = {**ALARM, "EvaluationPeriods": 3, "DatapointsToAlarm": 2}
    values = {MINUTE: 5.0, MINUTE - 60: 0.0, MINUTE - 120: 2.0}
    state, reason = evaluate_alarm(alarm, values, NOW)
    assert state == "ALARM"
    assert reason.startswith("Threshold Crossed: 2 out of the last 3 datapoints")


def test_latency_alarm_over_router_data_points(tmp_path):
    # ModelLatency is in microseconds, Average per period:
    # https://docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html
    folder = metrics_dir(tmp_path, "ep")
    for offset, latency, status in ((1, 1000, 200), (2, 3000, 200), (3, 500, 503)):
        append_invocation(folder, {"Timestamp": MINUTE + offset, "VariantName": "AllTraffic",
                                   "StatusCode": status, "ModelLatency": latency})  # fmt: skip
    append_invocation(folder, {"Timestamp": MINUTE + 4, "VariantName": "Other",
                               "StatusCode": 500, "ModelLatency": 9})  # fmt: skip
    cloudwatch = LocalCloudWatch(tmp_path)
    values = cloudwatch.statistics(
        "AWS/SageMaker", "ModelLatency", ALARM["Dimensions"], MINUTE, NOW, 60, "Average"
    )
    assert values == {MINUTE: 1500.0}
    points = [
        {"Timestamp": MINUTE + 1, "VariantName": "A", "StatusCode": 500, "EndpointConfigName": "g"},
        {"Timestamp": MINUTE + 2, "VariantName": "A", "StatusCode": 502, "EndpointConfigName": "b"},
    ]
    assert period_values(points, "Invocation5XXErrors", None, "Sum", 60) == {MINUTE: 2.0}
    assert period_values(points, "Invocation5XXErrors", "A", "Sum", 60, "g") == {MINUTE: 1.0}
    # One 5XX this minute; with 2 evaluation periods the missing one before is not breaching.
    cloudwatch.put_metric_alarm({**ALARM, "TreatMissingData": "notBreaching"})
    assert cloudwatch.evaluate("errors", now=NOW)["StateValue"] == "OK"  # type: ignore[index]
    cloudwatch.put_metric_alarm({**ALARM, "EvaluationPeriods": 1})
    alarm = cloudwatch.evaluate("errors", now=NOW)
    assert alarm is not None
    assert (alarm["StateValue"], alarm["StateReason"][:17]) == ("ALARM", "Threshold Crossed")


def test_set_alarm_state_holds_one_period(tmp_path):
    # https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_SetAlarmState.html
    cloudwatch = LocalCloudWatch(tmp_path)
    cloudwatch.put_metric_alarm({**ALARM, "TreatMissingData": "notBreaching"})
    assert cloudwatch.state("errors") == "OK"
    cloudwatch.set_alarm_state("errors", "ALARM", "testing")
    assert cloudwatch.state("errors") == "ALARM"
    held = cloudwatch.evaluate("errors")
    assert held is not None
    assert cloudwatch.evaluate("errors", now=float(held["HeldUntil"]) + 1)["StateValue"] == "OK"  # type: ignore[index]
    with pytest.raises(CloudWatchError) as info:
        cloudwatch.set_alarm_state("nope", "ALARM", "x")
    assert info.value.code == "ResourceNotFound"
    with pytest.raises(CloudWatchError, match="ComparisonOperator 'Bigger'"):
        cloudwatch.put_metric_alarm({**ALARM, "ComparisonOperator": "Bigger"})
    with pytest.raises(CloudWatchError, match=r"ExtendedStatistic 'p99' .* is not evaluated"):
        cloudwatch.put_metric_alarm({**ALARM, "Statistic": None, "ExtendedStatistic": "p99"})
    with pytest.raises(CloudWatchError) as info:
        cloudwatch.delete_alarms(["errors", "nope"])
    assert info.value.code == "ResourceNotFound"
    cloudwatch.delete_alarms(["errors"])
    assert cloudwatch.alarms() == []
