"""`endpoint.deployment`: UpdateEndpoint's traffic shifting and rollback alarms, SageMaker's ranges.

Bounds from https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_TrafficRoutingConfig.html
(CanarySize at most 50 %, LinearStepSize 10-50 %, WaitIntervalInSeconds 0-3600) and
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_BlueGreenUpdatePolicy.html
(TerminationWaitInSeconds 0-3600, MaximumExecutionTimeoutInSeconds 600-28800, more than the waits).
"""

from __future__ import annotations

import pytest

from workflow.config import load_config
from workflow.errors import ConfigError


def _problems(**kwargs) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(**kwargs)
    return info.value.problems


def test_defaults(make_config) -> None:
    deployment = make_config().endpoint.deployment
    assert (deployment.strategy, deployment.canary_percent, deployment.linear_step_percent) == (
        "canary",
        50,
        50,
    )
    assert (
        deployment.wait_seconds,
        deployment.termination_wait_seconds,
        deployment.max_execution_timeout_seconds,
    ) == (300, 120, 7200)
    alarms = deployment.alarms
    assert (alarms.enabled, alarms.errors_threshold, alarms.latency_threshold_microseconds) == (
        True,
        1,
        5000000,
    )
    assert (alarms.period_seconds, alarms.evaluation_periods) == (60, 2)


def test_alarm_names_derive_from_the_kit_and_endpoint_names(make_config) -> None:
    config = make_config(name="kit", endpoint__name="ep")
    assert config.rollback_alarm_names == {
        "Invocation5XXErrors": "kit-ep-5xx-errors",
        "ModelLatency": "kit-ep-model-latency",
    }


def test_baking_periods_per_strategy(make_config) -> None:
    # canary: one wait; linear 25 %: four steps; all at once: only the termination wait.
    waits = {"wait_seconds": 100, "termination_wait_seconds": 10}
    assert make_config(endpoint__deployment=waits).endpoint.deployment.baking_seconds() == 110
    linear = {**waits, "strategy": "linear", "linear_step_percent": 25}
    assert make_config(endpoint__deployment=linear).endpoint.deployment.baking_seconds() == 410
    once = {**waits, "strategy": "all_at_once"}
    assert make_config(endpoint__deployment=once).endpoint.deployment.baking_seconds() == 10


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("strategy", "rolling", "'rolling' is not one of canary, linear, all_at_once"),
        ("canary_percent", 0, "0 is out of range (expected 1 to 50 percent)"),
        ("canary_percent", 51, "51 is out of range (expected 1 to 50 percent)"),
        ("linear_step_percent", 5, "5 is out of range (expected 10 to 50 percent)"),
        ("linear_step_percent", 60, "60 is out of range (expected 10 to 50 percent)"),
        ("wait_seconds", 3601, "3601 is out of range (expected 0 to 3600 seconds)"),
        ("wait_seconds", -1, "-1 is out of range (expected 0 to 3600 seconds)"),
        ("termination_wait_seconds", 3601, "3601 is out of range (expected 0 to 3600 seconds)"),
        (
            "max_execution_timeout_seconds",
            599,
            "599 is out of range (expected 600 to 28800 seconds)",
        ),
        (
            "max_execution_timeout_seconds",
            28801,
            "28801 is out of range (expected 600 to 28800 seconds)",
        ),
    ],
)
def test_deployment_is_validated(write_config, key, value, problem) -> None:
    path = write_config({"endpoint": {"deployment": {key: value}}})
    assert _problems(path=path, environ={}) == [f"endpoint.deployment.{key} = {problem}"]


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("enabled", "yes", "'yes' is not a boolean (expected true or false)"),
        ("errors_threshold", 0, "0 is out of range (expected 1 to 1e+06 errors)"),
        (
            "latency_threshold_microseconds",
            999,
            "999 is out of range (expected 1000 to 3.6e+09 microseconds)",
        ),
        ("period_seconds", 90, "90 is not a multiple of 60 s"),
        ("period_seconds", 30, "30 is out of range (expected 60 to 3600 seconds)"),
        ("evaluation_periods", 25, "25 is out of range (expected 1 to 24)"),
    ],
)
def test_alarms_are_validated(write_config, key, value, problem) -> None:
    path = write_config({"endpoint": {"deployment": {"alarms": {key: value}}}})
    assert _problems(path=path, environ={}) == [f"endpoint.deployment.alarms.{key} = {problem}"]


def test_the_timeout_must_outlast_the_baking_periods(write_config) -> None:
    # "the timeout value should be larger than the total waiting time specified in
    # TerminationWaitInSeconds and WaitIntervalInSeconds" (API_BlueGreenUpdatePolicy).
    deployment = {
        "strategy": "linear",
        "linear_step_percent": 20,
        "wait_seconds": 600,
        "termination_wait_seconds": 600,
        "max_execution_timeout_seconds": 3600,
    }
    path = write_config({"endpoint": {"deployment": deployment}})
    [problem] = _problems(path=path, environ={})
    assert problem.startswith("endpoint.deployment.max_execution_timeout_seconds = 3600 ")
    assert "(3600 s: wait_seconds per traffic step plus termination_wait_seconds)" in problem
