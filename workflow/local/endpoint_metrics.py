"""The local endpoints' CloudWatch metrics: one data point per invocation, read back per period.

The router of an endpoint (`workflow.local.router`) appends one JSON line per ``/invocations``
request to ``<root>/cloudwatch/metrics/<EndpointName>/<yyyymmddHHMM>.jsonl`` (one file per UTC
minute, the finest period of SageMaker's endpoint metrics); each line is one ``os.write`` on a
file opened with ``O_APPEND``, so concurrent writers never interleave a line. A line holds the
time, the variant and endpoint configuration that answered, the HTTP status and the latencies.

The reader turns them into the metrics SageMaker publishes in the ``AWS/SageMaker`` namespace with
the dimensions ``EndpointName`` and ``VariantName``
(https://docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html#cloudwatch-metrics-endpoint-invocation):
``Invocations``, ``Invocation4XXErrors``, ``Invocation5XXErrors`` (1 or 0 per request),
``ModelLatency`` and ``OverheadLatency`` (microseconds), with CloudWatch's statistics
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Statistics-definitions.html).
Standard library only: the router imports it.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

NAMESPACE = "AWS/SageMaker"
METRICS_FOLDER = ("cloudwatch", "metrics")
METRIC_NAMES = (
    "Invocations",
    "Invocation4XXErrors",
    "Invocation5XXErrors",
    "ModelLatency",
    "OverheadLatency",
)
STATISTICS = ("SampleCount", "Sum", "Average", "Minimum", "Maximum")
_MINUTE = 60


def metrics_dir(root: Path, endpoint: str) -> Path:
    """Return the folder of one endpoint's data points."""
    return root.joinpath(*METRICS_FOLDER, endpoint)


def append_invocation(folder: Path, point: Mapping[str, Any]) -> None:
    """Append one invocation's data point (``Timestamp`` in epoch seconds) to its minute's file."""
    minute = time.strftime("%Y%m%d%H%M", time.gmtime(float(point["Timestamp"])))
    line = (json.dumps(dict(point), separators=(",", ":")) + "\n").encode()
    path = folder / f"{minute}.jsonl"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except FileNotFoundError:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)  # one write of a short line: appended whole (O_APPEND)
    finally:
        os.close(fd)


def read_invocations(folder: Path, start: float, end: float) -> list[dict[str, Any]]:
    """Return the data points of ``[start, end)`` (epoch seconds), oldest first."""
    points: list[dict[str, Any]] = []
    if not folder.is_dir():
        return points
    first = time.strftime("%Y%m%d%H%M", time.gmtime(start - start % _MINUTE))
    last = time.strftime("%Y%m%d%H%M", time.gmtime(end))
    for path in sorted(folder.glob("*.jsonl")):
        if not first <= path.stem <= last:
            continue
        for line in path.read_text().splitlines():
            try:
                point = json.loads(line)
            except ValueError:  # a line being written by the router right now
                continue
            if start <= float(point.get("Timestamp", 0)) < end:
                points.append(point)
    return points


def metric_value(point: Mapping[str, Any], metric: str) -> float | None:
    """The value one invocation contributes to ``metric`` (``None``: no sample)."""
    status = int(point.get("StatusCode", 0))
    if metric == "Invocations":
        return 1.0
    if metric == "Invocation4XXErrors":
        return 1.0 if 400 <= status < 500 else 0.0
    if metric == "Invocation5XXErrors":
        return 1.0 if status >= 500 else 0.0
    if metric in ("ModelLatency", "OverheadLatency"):
        value = point.get(metric)
        return None if value is None else float(value)
    return None


def statistic(values: Iterable[float], name: str) -> float | None:
    """CloudWatch's statistic ``name`` of the samples, or ``None`` when there are none."""
    samples = list(values)
    if not samples:
        return None
    if name == "SampleCount":
        return float(len(samples))
    if name == "Sum":
        return float(sum(samples))
    if name == "Average":
        return float(sum(samples) / len(samples))
    if name == "Minimum":
        return float(min(samples))
    if name == "Maximum":
        return float(max(samples))
    raise ValueError(f"statistic {name!r} is not one of {', '.join(STATISTICS)}")


def period_values(
    points: Iterable[Mapping[str, Any]],
    metric: str,
    variant: str | None,
    stat: str,
    period: int,
    endpoint_config: str | None = None,
) -> dict[int, float]:
    """Aggregate data points into ``{period start (epoch s): statistic}``; empty periods absent.

    Args:
        points: Invocation data points (:func:`read_invocations`).
        metric: One of :data:`METRIC_NAMES`.
        variant: Keep only this ``VariantName`` (``None``: every variant, the endpoint's metric).
        stat: One of :data:`STATISTICS`.
        period: Seconds per period.
        endpoint_config: Keep only the fleet of this endpoint configuration (``None``: all).
    """
    buckets: dict[int, list[float]] = {}
    for point in points:
        if variant is not None and point.get("VariantName") != variant:
            continue
        if endpoint_config is not None and point.get("EndpointConfigName") != endpoint_config:
            continue
        value = metric_value(point, metric)
        if value is None:
            continue
        moment = int(float(point["Timestamp"]))
        buckets.setdefault(moment - moment % period, []).append(value)
    result: dict[int, float] = {}
    for start, samples in buckets.items():
        value = statistic(samples, stat)
        if value is not None:
            result[start] = value
    return result


__all__ = [
    "METRIC_NAMES",
    "NAMESPACE",
    "STATISTICS",
    "append_invocation",
    "metric_value",
    "metrics_dir",
    "period_values",
    "read_invocations",
    "statistic",
]
