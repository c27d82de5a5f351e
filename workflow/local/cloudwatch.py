"""Local CloudWatch: metric alarms over the local endpoints' data points.

Alarms are records under ``<root>/cloudwatch/alarms/<quoted AlarmName>.json`` (written whole,
then renamed). A metric alarm of namespace ``AWS/SageMaker`` on an endpoint's metric
(`workflow.local.endpoint_metrics`, dimensions ``EndpointName`` and ``VariantName``) is evaluated
as CloudWatch evaluates one
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html#alarm-evaluation):
the statistic of each of the last ``EvaluationPeriods`` periods is compared with ``Threshold``;
``DatapointsToAlarm`` (default ``EvaluationPeriods``) breaching periods make ``ALARM``; periods
without data are treated as ``TreatMissingData`` says (``missing``, ``notBreaching``,
``breaching``, ``ignore``;
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html#alarms-and-missing-data).

Local differences: an alarm is evaluated when it is read (``DescribeAlarms``, a deployment's
baking period), not once a minute, and over the periods up to now including the current,
unfinished one, so a local demo reacts within seconds. A state set with ``SetAlarmState`` holds
until an evaluation one ``Period`` later, as on AWS, where the next evaluation replaces it
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_SetAlarmState.html).
"""

from __future__ import annotations

import json
import logging
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from workflow.errors import WorkflowError
from workflow.local.endpoint_metrics import (
    METRIC_NAMES,
    NAMESPACE,
    STATISTICS,
    metrics_dir,
    period_values,
    read_invocations,
)
from workflow.local.store import write_json_atomic

logger = logging.getLogger(__name__)

STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanOrEqualToThreshold": lambda value, threshold: value >= threshold,
    "GreaterThanThreshold": lambda value, threshold: value > threshold,
    "LessThanThreshold": lambda value, threshold: value < threshold,
    "LessThanOrEqualToThreshold": lambda value, threshold: value <= threshold,
}
MISSING_DATA = ("missing", "notBreaching", "breaching", "ignore")


class CloudWatchError(WorkflowError):
    """A CloudWatch request AWS refuses; ``code`` is AWS's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _fmt(value: float) -> str:
    return f"{value:g}" if value != int(value) else f"{value:.1f}"


def evaluate_alarm(
    alarm: Mapping[str, Any], values: Mapping[int, float], now: float
) -> tuple[str, str]:
    """Evaluate a metric alarm over ``{period start: statistic}``; return ``(state, reason)``.

    Args:
        alarm: The alarm (``Period``, ``EvaluationPeriods``, ``DatapointsToAlarm``,
            ``Threshold``, ``ComparisonOperator``, ``TreatMissingData``, ``StateValue``).
        values: The statistic of each period that has data.
        now: The evaluation time (epoch seconds); the newest period is the one holding it.
    """
    period = int(alarm["Period"])
    count = int(alarm["EvaluationPeriods"])
    needed = int(alarm.get("DatapointsToAlarm") or count)
    threshold = float(alarm["Threshold"])
    compare = OPERATORS[str(alarm["ComparisonOperator"])]
    treat = str(alarm.get("TreatMissingData") or "missing")
    newest = int(now) - int(now) % period
    window = [newest - i * period for i in range(count)]
    present = [(start, values[start]) for start in window if start in values]
    breaching = [(start, v) for start, v in present if compare(v, threshold)]
    missing = count - len(present)
    if not present:
        if treat == "ignore":
            return str(alarm.get("StateValue") or "INSUFFICIENT_DATA"), "no datapoints (ignored)"
        state = {"notBreaching": "OK", "breaching": "ALARM"}.get(treat, "INSUFFICIENT_DATA")
        return state, f"Insufficient Data: {count} missing datapoints treated as {treat}."
    hits = len(breaching) + (missing if treat == "breaching" else 0)
    shown = ", ".join(f"{_fmt(v)} ({time.strftime('%d/%m/%y %H:%M:%S', time.gmtime(s))})"
                      for s, v in (breaching or present)[:5])  # fmt: skip
    operator = str(alarm["ComparisonOperator"])
    if hits >= needed:
        return "ALARM", (
            f"Threshold Crossed: {hits} out of the last {count} datapoints [{shown}] "
            f"{'were' if hits > 1 else 'was'} {_words(operator)} the threshold ({_fmt(threshold)})."
        )
    return "OK", (
        f"Threshold Crossed: {len(present) - len(breaching)} out of the last {count} datapoints "
        f"[{shown}] {'were' if len(present) > 1 else 'was'} not {_words(operator)} the threshold "
        f"({_fmt(threshold)})."
    )


def _words(operator: str) -> str:
    return {
        "GreaterThanOrEqualToThreshold": "greater than or equal to",
        "GreaterThanThreshold": "greater than",
        "LessThanThreshold": "less than",
        "LessThanOrEqualToThreshold": "less than or equal to",
    }[operator]


def check_metric_alarm(params: Mapping[str, Any]) -> None:
    """Refuse a PutMetricAlarm request CloudWatch refuses, or one this emulation cannot evaluate.

    Raises:
        CloudWatchError: ``ValidationError`` naming the bad value and the fix.
    """

    def bad(message: str) -> CloudWatchError:
        return CloudWatchError("ValidationError", message)

    name = str(params.get("AlarmName") or "")
    if not 1 <= len(name) <= 255:
        raise bad(f"AlarmName {name!r} must have 1 to 255 characters; pass another name.")
    operator = params.get("ComparisonOperator")
    if operator not in OPERATORS:
        raise bad(
            f"ComparisonOperator {operator!r} is not one of {', '.join(OPERATORS)}; pass one."
        )
    for key in ("EvaluationPeriods", "Period", "Threshold"):
        if params.get(key) is None:
            raise bad(f"PutMetricAlarm needs {key}; add it to the request.")
    period = int(params["Period"])
    if (period < 60 and period not in (10, 20, 30)) or (period >= 60 and period % 60):
        raise bad(f"Period {period} must be 10, 20, 30 or a multiple of 60; pass one.")
    if int(params["EvaluationPeriods"]) < 1:
        raise bad(f"EvaluationPeriods {params['EvaluationPeriods']} must be at least 1.")
    treat = params.get("TreatMissingData") or "missing"
    if treat not in MISSING_DATA:
        raise bad(f"TreatMissingData {treat!r} is not one of {', '.join(MISSING_DATA)}.")
    if params.get("Metrics"):
        raise bad("metric math alarms (Metrics) are not evaluated locally; use MetricName.")
    statistic = params.get("Statistic")
    if params.get("ExtendedStatistic"):
        raise bad(
            f"ExtendedStatistic {params['ExtendedStatistic']!r} (a percentile) is not evaluated "
            f"locally; use Statistic, one of {', '.join(STATISTICS)}."
        )
    if statistic not in STATISTICS:
        raise bad(f"Statistic {statistic!r} is not one of {', '.join(STATISTICS)}; pass one.")


class LocalCloudWatch:
    """Alarm records and metric reads under one local root."""

    def __init__(self, root: Path, region: str = "us-east-1", account_id: str = "000000000000"):
        self.root = root
        self.folder = root / "cloudwatch" / "alarms"
        self.region = region
        self.account_id = account_id

    def _path(self, name: str) -> Path:
        return self.folder / f"{urllib.parse.quote(name, safe='')}.json"

    def _read(self, name: str) -> dict[str, Any] | None:
        path = self._path(name)
        try:
            return dict(json.loads(path.read_text()))
        except FileNotFoundError:
            return None

    def put_metric_alarm(self, params: Mapping[str, Any]) -> None:
        """Create or replace a metric alarm (``PutMetricAlarm``); a new alarm starts in
        ``INSUFFICIENT_DATA``, as on AWS."""
        check_metric_alarm(params)
        name = str(params["AlarmName"])
        now = time.time()
        previous = self._read(name) or {}
        alarm = {
            "ActionsEnabled": True, "OKActions": [], "AlarmActions": [],
            "InsufficientDataActions": [], "Dimensions": [], "TreatMissingData": "missing",
            **{k: v for k, v in params.items() if k != "Tags"},
            "AlarmArn": f"arn:aws:cloudwatch:{self.region}:{self.account_id}:alarm:{name}",
            "AlarmConfigurationUpdatedTimestamp": now,
            "StateValue": previous.get("StateValue", "INSUFFICIENT_DATA"),
            "StateReason": previous.get("StateReason", "Unchecked: Initial alarm creation"),
            "StateUpdatedTimestamp": previous.get("StateUpdatedTimestamp", now),
            "StateTransitionedTimestamp": previous.get("StateTransitionedTimestamp", now),
            "HeldUntil": previous.get("HeldUntil", 0.0),
        }  # fmt: skip
        write_json_atomic(self._path(name), alarm)

    def set_alarm_state(self, name: str, state: str, reason: str) -> None:
        """``SetAlarmState``: the state holds until an evaluation one period later."""
        if state not in STATES:
            raise CloudWatchError(
                "ValidationError", f"StateValue {state!r} is not one of {', '.join(STATES)}."
            )
        alarm = self._read(name)
        if alarm is None:
            raise CloudWatchError("ResourceNotFound", f"Alarm {name} does not exist")
        now = time.time()
        alarm.update(StateValue=state, StateReason=reason, StateUpdatedTimestamp=now,
                     StateTransitionedTimestamp=now, HeldUntil=now + int(alarm["Period"]))  # fmt: skip
        write_json_atomic(self._path(name), alarm)

    def delete_alarms(self, names: Sequence[str]) -> None:
        """``DeleteAlarms``: every name must exist, else nothing is deleted (as on AWS)."""
        missing = [n for n in names if not self._path(n).is_file()]
        if missing:
            raise CloudWatchError("ResourceNotFound", f"{missing[0]} does not exist")
        for name in names:
            self._path(name).unlink(missing_ok=True)

    def alarms(self, names: Sequence[str] = (), prefix: str = "") -> list[dict[str, Any]]:
        """The alarms (all, or those named / with the prefix), evaluated now, sorted by name."""
        if not self.folder.is_dir():
            return []
        found = []
        for path in sorted(self.folder.glob("*.json")):
            name = urllib.parse.unquote(path.stem)
            if (names and name not in names) or not name.startswith(prefix):
                continue
            alarm = self.evaluate(name)
            if alarm is not None:
                found.append(alarm)
        return sorted(found, key=lambda a: str(a["AlarmName"]))

    def state(self, name: str) -> str | None:
        """The alarm's state now, or ``None`` when there is no such alarm."""
        alarm = self.evaluate(name)
        return None if alarm is None else str(alarm["StateValue"])

    def evaluate(self, name: str, now: float | None = None) -> dict[str, Any] | None:
        """Evaluate an alarm now and store a state change; a state set with ``SetAlarmState``
        holds for one period."""
        alarm = self._read(name)
        if alarm is None:
            return None
        now = time.time() if now is None else now
        if now < float(alarm.get("HeldUntil") or 0):
            return alarm
        state, reason = evaluate_alarm(alarm, self.values(alarm, now), now)
        latest = self._read(name)
        if latest is None or latest.get("StateUpdatedTimestamp") != alarm.get(
            "StateUpdatedTimestamp"
        ):  # changed meanwhile (SetAlarmState, another evaluation): that state wins
            return latest
        if state != alarm.get("StateValue"):
            alarm.update(StateValue=state, StateReason=reason, StateUpdatedTimestamp=now,
                         StateTransitionedTimestamp=now)  # fmt: skip
            logger.info("alarm %s is %s: %s", name, state, reason)
            write_json_atomic(self._path(name), alarm)
        return alarm

    def values(self, alarm: Mapping[str, Any], now: float) -> dict[int, float]:
        """The alarm's metric per period over its evaluation window."""
        period = int(alarm["Period"])
        start = now - now % period - period * (int(alarm["EvaluationPeriods"]) - 1)
        return self.statistics(
            str(alarm.get("Namespace") or ""),
            str(alarm.get("MetricName") or ""),
            alarm.get("Dimensions") or [],
            start,
            now + 1,
            period,
            str(alarm.get("Statistic") or "Average"),
        )

    def statistics(
        self,
        namespace: str,
        metric: str,
        dimensions: Sequence[Mapping[str, Any]],
        start: float,
        end: float,
        period: int,
        stat: str,
    ) -> dict[int, float]:
        """``{period start: statistic}`` of an endpoint metric (empty for any other metric).

        ``EndpointName`` selects the endpoint, ``VariantName`` (optional) its variant; a local
        ``EndpointConfigName`` dimension keeps only the fleet of that configuration (during a
        blue/green update both fleets serve the same variant).
        """
        given = {str(d.get("Name")): str(d.get("Value")) for d in dimensions}
        endpoint = given.get("EndpointName")
        if namespace != NAMESPACE or metric not in METRIC_NAMES or not endpoint:
            return {}
        points = read_invocations(metrics_dir(self.root, endpoint), start, end)
        return period_values(
            points, metric, given.get("VariantName"), stat, period,
            given.get("EndpointConfigName"),
        )  # fmt: skip


def public_alarm(alarm: Mapping[str, Any]) -> dict[str, Any]:
    """The DescribeAlarms shape of a stored alarm (without the local bookkeeping)."""
    return {k: v for k, v in alarm.items() if k != "HeldUntil"}


__all__ = [
    "CloudWatchError",
    "LocalCloudWatch",
    "check_metric_alarm",
    "evaluate_alarm",
    "public_alarm",
]
