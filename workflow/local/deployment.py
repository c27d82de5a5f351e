"""Blue/green endpoint updates with traffic shifting and auto-rollback (``DeploymentConfig``).

``UpdateEndpoint`` with ``DeploymentConfig.BlueGreenUpdatePolicy`` starts the new (green) fleet
beside the old (blue) one, then shifts the traffic through the endpoint's router
(`workflow.local.router`) as ``TrafficRoutingConfiguration`` says, with a baking period of
``WaitIntervalInSeconds`` after each step during which the alarms of
``AutoRollbackConfiguration`` are watched
(https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-blue-green.html):

- ``ALL_AT_ONCE``: all traffic to green, bake
  (https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-blue-green-all-at-once.html);
- ``CANARY``: ``CanarySize`` of green's capacity, bake, then all, bake
  (https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-blue-green-canary.html);
- ``LINEAR``: steps of ``LinearStepSize`` until all, baking after each
  (https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-blue-green-linear.html).

An alarm in ``ALARM`` during a bake (or ``MaximumExecutionTimeoutInSeconds`` passing) rolls back:
all traffic returns to blue, green is stopped and the endpoint is ``InService`` on its old
configuration with a ``FailureReason``
(https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-configuration.html).
Otherwise blue is stopped ``TerminationWaitInSeconds`` after the last bake and the endpoint is
``InService`` on the new configuration. Every wait is multiplied by the local time scale
(``local.deployment_time_scale``).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workflow.local.sagemaker import ServeProcess, now_ms

logger = logging.getLogger(__name__)

TRAFFIC_TYPES = ("ALL_AT_ONCE", "CANARY", "LINEAR")
CAPACITY_TYPES = ("CAPACITY_PERCENT", "INSTANCE_COUNT")
# https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_BlueGreenUpdatePolicy.html
DEFAULT_MAX_EXECUTION_SECONDS = 3600
ALARM_POLL_SECONDS = 0.1


def check_deployment_config(config: Mapping[str, Any] | None) -> str | None:
    """The problem with a ``DeploymentConfig`` (one sentence with the fix), or ``None``.

    Follows https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DeploymentConfig.html
    and API_TrafficRoutingConfig.html; rolling updates (``RollingUpdatePolicy``) are not emulated.
    """
    if not config:
        return None
    if "RollingUpdatePolicy" in config:
        return (
            "DeploymentConfig.RollingUpdatePolicy is not emulated locally; use "
            "BlueGreenUpdatePolicy"
        )
    policy = config.get("BlueGreenUpdatePolicy")
    if not isinstance(policy, Mapping):
        return "DeploymentConfig needs BlueGreenUpdatePolicy; add it or leave DeploymentConfig out"
    routing = policy.get("TrafficRoutingConfiguration")
    if not isinstance(routing, Mapping):
        return "BlueGreenUpdatePolicy needs TrafficRoutingConfiguration; add it"
    kind = routing.get("Type")
    if kind not in TRAFFIC_TYPES:
        return f"TrafficRoutingConfiguration.Type {kind!r} is not one of {', '.join(TRAFFIC_TYPES)}"
    if routing.get("WaitIntervalInSeconds") is None:
        return "TrafficRoutingConfiguration needs WaitIntervalInSeconds (0 to 3600)"
    size_key = {"CANARY": "CanarySize", "LINEAR": "LinearStepSize"}.get(str(kind))
    if size_key is not None:
        size = routing.get(size_key)
        if not isinstance(size, Mapping) or size.get("Type") not in CAPACITY_TYPES:
            return (
                f"TrafficRoutingConfiguration of Type {kind} needs {size_key} with Type "
                f"{' or '.join(CAPACITY_TYPES)} and a Value"
            )
        if not isinstance(size.get("Value"), int) or size["Value"] < 1:
            return f"{size_key}.Value {size.get('Value')!r} must be a whole number of at least 1"
    for alarm in (config.get("AutoRollbackConfiguration") or {}).get("Alarms") or []:
        if not alarm.get("AlarmName"):
            return "every AutoRollbackConfiguration.Alarms entry needs an AlarmName"
    return None


def _share(size: Mapping[str, Any], capacity: int) -> float:
    value = int(size["Value"])
    if size["Type"] == "INSTANCE_COUNT":
        return min(value / max(capacity, 1), 1.0)
    return min(value / 100.0, 1.0)


def traffic_steps(routing: Mapping[str, Any], capacity: int = 1) -> list[float]:
    """Green's share of the traffic after each step, ending with ``1.0``.

    Args:
        routing: ``TrafficRoutingConfiguration``.
        capacity: Green's instance count (what an ``INSTANCE_COUNT`` size is a part of).
    """
    kind = routing["Type"]
    if kind == "CANARY":
        canary = _share(routing["CanarySize"], capacity)
        return [canary, 1.0] if canary < 1.0 else [1.0]
    if kind == "LINEAR":
        step = _share(routing["LinearStepSize"], capacity)
        count = math.ceil(round(1.0 / step, 9))
        return [min(round(step * (i + 1), 6), 1.0) for i in range(count)]
    return [1.0]


@dataclass
class Fleet:
    """A started serving process of one endpoint configuration."""

    server: ServeProcess
    deployment: str
    model_dir: Path
    config_name: str
    variant: str
    image: str
    instance_type: str = ""
    instance_count: int = 1

    def fields(self) -> dict[str, Any]:
        """The record's local fields of the serving fleet."""
        return {
            "Pid": self.server.pid,
            "ServeUrl": self.server.url,
            "ModelDir": str(self.model_dir),
            "LogPath": str(self.server.log_path),
            "Deployment": self.deployment,
            "Container": self.server.container,
        }

    def route(self, weight: float) -> dict[str, Any]:
        """The router's entry for this fleet."""
        return {
            "VariantName": self.variant,
            "EndpointConfigName": self.config_name,
            "Url": self.server.url,
            "Weight": weight,
        }

    def summary(self, weight: float, status: str | None = None) -> dict[str, Any]:
        """DescribeEndpoint's ``ProductionVariantSummary`` (or the pending one with ``status``).

        https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ProductionVariantSummary.html
        """
        summary: dict[str, Any] = {
            "VariantName": self.variant,
            "DeployedImages": [
                {"SpecifiedImage": self.image, "ResolvedImage": self.image,
                 "ResolutionTime": now_ms()}
            ],
            "CurrentWeight": weight,
            "DesiredWeight": weight,
            "CurrentInstanceCount": self.instance_count,
            "DesiredInstanceCount": self.instance_count,
        }  # fmt: skip
        if status is not None:
            summary["InstanceType"] = self.instance_type
            summary["VariantStatus"] = [{"Status": status, "StartTime": now_ms()}]
        return summary


Update = Callable[..., dict[str, Any]]


class EndpointGoneError(Exception):
    """The endpoint was deleted while its update ran; the update stops where it is."""


class BlueGreen:
    """One blue/green update of an endpoint whose green fleet is ready.

    Args:
        update: ``Records.update`` bound to the endpoint (``update(**changes)``).
        blue: The serving fleet: ``Pid``, ``Route`` and ``Summary`` (its ProductionVariants
            entry, whose weights follow the shift).
        green: The new fleet.
        config: ``DeploymentConfig``.
        alarm_state: Returns an alarm's state (``None`` for an unknown alarm).
        time_scale: Multiplies every wait.
        stop: Stops a serving process by pid.
        exists: Whether the endpoint is still recorded (a deleted one ends its bake at once).
    """

    def __init__(
        self,
        update: Update,
        blue: Mapping[str, Any],
        green: Fleet,
        config: Mapping[str, Any],
        alarm_state: Callable[[str], str | None],
        time_scale: float,
        stop: Callable[[int], object],
        exists: Callable[[], bool] = lambda: True,
    ) -> None:
        self.update = update
        self.blue = dict(blue)
        self.green = green
        self.config = config
        self.alarm_state = alarm_state
        self.scale = time_scale
        self.stop = stop
        self.exists = exists
        policy = config["BlueGreenUpdatePolicy"]
        self.routing = policy["TrafficRoutingConfiguration"]
        self.alarms: Sequence[str] = [
            str(a["AlarmName"])
            for a in (config.get("AutoRollbackConfiguration") or {}).get("Alarms") or []
        ]
        self.termination = float(policy.get("TerminationWaitInSeconds") or 0)
        self.deadline = time.monotonic() + self.scale * float(
            policy.get("MaximumExecutionTimeoutInSeconds") or DEFAULT_MAX_EXECUTION_SECONDS
        )
        self.started = now_ms()

    def run(self) -> bool:
        """Shift, bake, then finish or roll back. Returns ``True`` when green took over.

        ``update`` raises :class:`EndpointGoneError` once the endpoint is deleted: the new fleet
        is stopped (the deletion stopped the old one) and nothing is written.
        """
        try:
            return self._run()
        except EndpointGoneError:
            logger.info("endpoint deleted during its update; stopping the new fleet")
            self.stop(self.green.server.pid)
            return False

    def _run(self) -> bool:
        blue_route = dict(self.blue["Route"])
        for share in traffic_steps(self.routing, self.green.instance_count):
            routes = [{**blue_route, "Weight": 1.0 - share}] if share < 1.0 else []
            self._pending(share, "Baking", [*routes, self.green.route(share)])
            problem = self._bake(float(self.routing.get("WaitIntervalInSeconds") or 0))
            if problem is not None:
                self._roll_back(blue_route, problem)
                return False
        self.update(Routes=[self.green.route(1.0)])
        self._sleep(self.termination)
        self.stop(int(self.blue["Pid"]))
        self.update(
            EndpointStatus="InService",
            EndpointConfigName=self.green.config_name,
            PendingEndpointConfigName=None,
            PendingDeploymentSummary=None,
            Pending=None,
            FailureReason=None,
            ProductionVariants=[self.green.summary(1.0)],
            Routes=[self.green.route(1.0)],
            **self.green.fields(),
        )
        logger.info("endpoint update to %s finished", self.green.config_name)
        return True

    def _pending(self, share: float, status: str, routes: list[dict[str, Any]]) -> None:
        blue = [{**self.blue["Summary"], "CurrentWeight": 1.0 - share,
                 "DesiredWeight": 1.0 - share}] if self.blue.get("Summary") else []  # fmt: skip
        self.update(
            Routes=routes,
            Pending=self.green.fields(),
            **({"ProductionVariants": blue} if blue else {}),
            PendingDeploymentSummary={
                "EndpointConfigName": self.green.config_name,
                "ProductionVariants": [self.green.summary(share, status)],
                "StartTime": self.started,
            },
        )

    def _bake(self, seconds: float) -> str | None:
        """Watch the alarms for ``seconds`` (scaled); return why to roll back, or ``None``."""
        end = time.monotonic() + seconds * self.scale
        while True:
            if not self.exists():
                raise EndpointGoneError(self.green.config_name)
            fired = [name for name in self.alarms if self.alarm_state(name) == "ALARM"]
            if fired:
                return (
                    "Endpoint update was rolled back because the CloudWatch alarm(s) "
                    f"{', '.join(fired)} were in ALARM state during the baking period."
                )
            if time.monotonic() > self.deadline:
                return (
                    "Endpoint update was rolled back because it did not finish within "
                    "MaximumExecutionTimeoutInSeconds."
                )
            left = end - time.monotonic()
            if left <= 0:
                return None
            time.sleep(min(ALARM_POLL_SECONDS, left))

    def _roll_back(self, blue_route: Mapping[str, Any], reason: str) -> None:
        logger.warning("endpoint update to %s rolled back: %s", self.green.config_name, reason)
        self.update(Routes=[{**blue_route, "Weight": 1.0}])
        self.stop(self.green.server.pid)
        summary = [{**self.blue["Summary"], "CurrentWeight": 1.0, "DesiredWeight": 1.0}] if (
            self.blue.get("Summary")
        ) else []  # fmt: skip
        self.update(
            **({"ProductionVariants": summary} if summary else {}),
            EndpointStatus="InService",
            PendingEndpointConfigName=None,
            PendingDeploymentSummary=None,
            Pending=None,
            FailureReason=reason,
        )

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            threading.Event().wait(seconds * self.scale)


__all__ = ["BlueGreen", "EndpointGoneError", "Fleet", "check_deployment_config", "traffic_steps"]
