"""CloudWatch for the local endpoints: metric alarms and the endpoints' metrics.

``PutMetricAlarm``, ``DescribeAlarms``, ``SetAlarmState``, ``DeleteAlarms``,
``GetMetricStatistics`` and ``GetMetricData`` over `workflow.local.cloudwatch` (alarms in the
store, evaluated over the data points the endpoints' routers record), with CloudWatch's request
and response shapes (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/) and its
error codes: ``ResourceNotFound`` (404) for a missing alarm, ``ValidationError``,
``InvalidNextToken``, ``InvalidParameterValue``. CloudWatch is ``awsQueryCompatible``: an error
also carries its query code in ``x-amzn-query-error`` (:data:`QUERY_ERRORS`), which botocore
reads first. The wire protocols (JSON 1.0 and Smithy RPC v2 CBOR) are the server's.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from typing import Any

from workflow.api.errors import ApiError
from workflow.api.wire import page
from workflow.local.cloudwatch import CloudWatchError, LocalCloudWatch, public_alarm

logger = logging.getLogger(__name__)

TARGET_PREFIX = "GraniteServiceVersion20100801"
NAMESPACE = "com.amazonaws.cloudwatch"
# Error code -> (HTTP status, query error code;fault), as botocore's service model lists them.
QUERY_ERRORS = {
    "ResourceNotFound": (404, "ResourceNotFound;Sender"),
    "ValidationError": (400, "ValidationError;Sender"),
    "InvalidNextToken": (400, "InvalidNextToken;Sender"),
    "InvalidParameterValue": (400, "InvalidParameterValue;Sender"),
    "MissingParameter": (400, "MissingParameter;Sender"),
    "InvalidParameterCombination": (400, "InvalidParameterCombination;Sender"),
}
_UNITS = {"ModelLatency": "Microseconds", "OverheadLatency": "Microseconds"}


def cloudwatch_error(code: str, message: str) -> ApiError:
    """An ApiError with CloudWatch's status for ``code``."""
    return ApiError(code, message, QUERY_ERRORS.get(code, (400, ""))[0])


def epoch(value: Any, name: str) -> float:
    """A request timestamp (epoch seconds, a datetime, or ISO 8601 text) as epoch seconds."""
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)).timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    try:
        return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise cloudwatch_error(
            "InvalidParameterValue", f"{name} {value!r} is not a timestamp; pass epoch seconds."
        ) from None


def _moment(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc)


def _shown(alarm: Mapping[str, Any]) -> dict[str, Any]:
    """An alarm as DescribeAlarms returns it (timestamps as datetimes)."""
    return {
        k: (_moment(float(v)) if k.endswith("Timestamp") and isinstance(v, (int, float)) else v)
        for k, v in public_alarm(alarm).items()
    }


class CloudWatchApi:
    """The CloudWatch operations over one local root."""

    def __init__(self, cloudwatch: LocalCloudWatch) -> None:
        self.cloudwatch = cloudwatch

    def operations(self) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
        """The ``<Operation>`` table."""
        return {
            "PutMetricAlarm": self.put_metric_alarm,
            "DescribeAlarms": self.describe_alarms,
            "SetAlarmState": self.set_alarm_state,
            "DeleteAlarms": self.delete_alarms,
            "GetMetricStatistics": self.get_metric_statistics,
            "GetMetricData": self.get_metric_data,
        }

    def _call(self, action: Callable[[], Any]) -> Any:
        try:
            return action()
        except CloudWatchError as exc:
            raise cloudwatch_error(exc.code, exc.message) from exc

    def put_metric_alarm(self, body: dict[str, Any]) -> dict[str, Any]:
        """PutMetricAlarm: create or replace a metric alarm."""
        self._call(lambda: self.cloudwatch.put_metric_alarm(body))
        return {}

    def set_alarm_state(self, body: dict[str, Any]) -> dict[str, Any]:
        """SetAlarmState."""
        for key in ("AlarmName", "StateValue", "StateReason"):
            if not body.get(key):
                raise cloudwatch_error("ValidationError", f"SetAlarmState needs {key}; add it.")
        self._call(
            lambda: self.cloudwatch.set_alarm_state(
                str(body["AlarmName"]), str(body["StateValue"]), str(body["StateReason"])
            )
        )
        return {}

    def delete_alarms(self, body: dict[str, Any]) -> dict[str, Any]:
        """DeleteAlarms: all named alarms, or none when one is missing."""
        names = [str(n) for n in body.get("AlarmNames") or []]
        self._call(lambda: self.cloudwatch.delete_alarms(names))
        return {}

    def describe_alarms(self, body: dict[str, Any]) -> dict[str, Any]:
        """DescribeAlarms with AlarmNames, AlarmNamePrefix, StateValue, MaxRecords, NextToken."""
        names = [str(n) for n in body.get("AlarmNames") or []]
        prefix = str(body.get("AlarmNamePrefix") or "")
        if names and prefix:
            raise cloudwatch_error(
                "InvalidParameterCombination",
                "AlarmNames and AlarmNamePrefix cannot be given together; pass one of them.",
            )
        state = body.get("StateValue")
        alarms = [
            a
            for a in self.cloudwatch.alarms(names, prefix)
            if state is None or a.get("StateValue") == state
        ]
        types = body.get("AlarmTypes") or ["MetricAlarm"]
        if "MetricAlarm" not in types:
            alarms = []
        chunk, token = page(
            alarms,
            body,
            f"cloudwatch:alarms:{names}:{prefix}:{state}",
            size_key="MaxRecords",
            token_key="NextToken",
            invalid=lambda message: cloudwatch_error("InvalidNextToken", message),
            default_size=50,
        )
        return {"MetricAlarms": [_shown(a) for a in chunk], "CompositeAlarms": [],
                "NextToken": token}  # fmt: skip

    def get_metric_statistics(self, body: dict[str, Any]) -> dict[str, Any]:
        """GetMetricStatistics of an endpoint metric."""
        for key in ("Namespace", "MetricName", "StartTime", "EndTime", "Period"):
            if body.get(key) is None:
                raise cloudwatch_error("MissingParameter", f"GetMetricStatistics needs {key}.")
        metric = str(body["MetricName"])
        points: dict[int, dict[str, Any]] = {}
        for stat in body.get("Statistics") or []:
            values = self.cloudwatch.statistics(
                str(body["Namespace"]), metric, body.get("Dimensions") or [],
                epoch(body["StartTime"], "StartTime"), epoch(body["EndTime"], "EndTime"),
                int(body["Period"]), str(stat),
            )  # fmt: skip
            for start, value in values.items():
                points.setdefault(start, {"Timestamp": _moment(start)})[str(stat)] = value
        unit = _UNITS.get(metric, "None")
        datapoints = [{**points[start], "Unit": unit} for start in sorted(points)]
        return {"Label": metric, "Datapoints": datapoints}

    def get_metric_data(self, body: dict[str, Any]) -> dict[str, Any]:
        """GetMetricData of ``MetricStat`` queries (no metric math), newest first."""
        start = epoch(body.get("StartTime"), "StartTime")
        end = epoch(body.get("EndTime"), "EndTime")
        results = []
        for query in body.get("MetricDataQueries") or []:
            stat = query.get("MetricStat")
            if not stat:
                raise cloudwatch_error(
                    "ValidationError",
                    f"query {query.get('Id')!r} has no MetricStat; metric math (Expression) is "
                    "not evaluated locally.",
                )
            metric = stat.get("Metric") or {}
            values = self.cloudwatch.statistics(
                str(metric.get("Namespace") or ""), str(metric.get("MetricName") or ""),
                metric.get("Dimensions") or [], start, end, int(stat.get("Period") or 60),
                str(stat.get("Stat") or "Average"),
            )  # fmt: skip
            if query.get("ReturnData", True) is False:
                continue
            order = sorted(values, reverse=True)
            results.append({
                "Id": query.get("Id"), "Label": query.get("Label") or metric.get("MetricName"),
                "Timestamps": [_moment(s) for s in order], "Values": [values[s] for s in order],
                "StatusCode": "Complete",
            })  # fmt: skip
        return {"MetricDataResults": results, "Messages": []}


__all__ = ["NAMESPACE", "QUERY_ERRORS", "TARGET_PREFIX", "CloudWatchApi", "cloudwatch_error"]
