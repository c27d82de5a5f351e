"""Safe deployment end to end on the local runtime: registry, canary update, alarm rollback.

Three `run --local` runs share one store and one endpoint of two instances (a canary needs two
or more: https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_TrafficRoutingConfig.html):
the first creates the endpoint, the second updates it with the default canary policy and ends
with its model live, the third's canary is tripped by setting a rollback alarm to ALARM during
the baking period (as `aws cloudwatch set-alarm-state` does) and ends `DeploymentRolledBack`
with the second model still serving and its own package `Rejected`. A fourth run whose approval
is rejected leaves its package `Rejected` and the endpoint untouched.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import TINY_LOCAL_HYPERPARAMETERS
from helpers.local_runs import outbox, reject_when_asked, run

from workflow.config import WorkflowConfig, load_config
from workflow.local.cloudwatch import LocalCloudWatch
from workflow.local.model_registry import ModelRegistry
from workflow.local.sagemaker_endpoints import stop_endpoint
from workflow.local.store import LocalStore

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ENDPOINT = "guarded-e2e"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("safe")
    yield folder
    from workflow.local.runtime import LocalRuntime

    with LocalRuntime(config(folder), echo=False) as runtime:
        stop_endpoint(runtime.sagemaker, ENDPOINT, grace=3)


def config(root: Path, **overrides: Any) -> WorkflowConfig:
    values: dict[str, Any] = {
        "local.root": str(root),
        "local.gate_threshold": "0.0",
        "local.dataset.train": "4",
        "local.dataset.validation": "2",
        "local.dataset.test": "4",
        "local.dataset.size": "64",
        "local.hyperparameters": dict(TINY_LOCAL_HYPERPARAMETERS),
        "endpoint.name": ENDPOINT,
        "endpoint.initial_instance_count": "2",
        # a canary bake of 600 s and a final one of 100 s: 6 s and 1 s at this time scale
        "endpoint.deployment.wait_seconds": "600",
        "endpoint.deployment.termination_wait_seconds": "100",
        "local.deployment_time_scale": "0.01",
        "endpoint.data_capture.sampling_percentage": "100",
    }
    values.update(overrides)
    return load_config(None, environ={}, overrides=values)


def endpoint(root: Path) -> dict[str, Any]:
    return dict(json.loads((root / "sagemaker" / "endpoints" / f"{ENDPOINT}.json").read_text()))


def packages(root: Path, cfg: WorkflowConfig) -> list[dict[str, Any]]:
    registry = ModelRegistry(LocalStore(root))
    listed = registry.list_packages({"ModelPackageGroupName": cfg.registry.group_name})
    described = [
        registry.describe_package({"ModelPackageName": s["ModelPackageArn"]})
        for s in listed["ModelPackageSummaryList"]
    ]  # ListModelPackages is newest first by default; oldest first here
    return sorted(described, key=lambda p: int(p["ModelPackageVersion"]))


def run_while_baking(
    root: Path, cfg: WorkflowConfig, commit: str, during: Callable[[dict[str, Any]], None]
) -> tuple[Any, str]:
    """Run the pipeline; call ``during(record)`` once, when the update's first step bakes."""
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            record = endpoint(root)
            if record.get("PendingDeploymentSummary"):
                during(record)
                return
            time.sleep(0.05)

    threading.Thread(target=watch, daemon=True).start()
    try:
        return run(cfg, commit=commit, keep_endpoint=True)
    finally:
        stop.set()


def test_first_run_creates_the_endpoint_all_at_once(root: Path) -> None:
    cfg = config(root)
    result, log = run(cfg, commit="5afe000000000000000000000000000000000001", keep_endpoint=True)
    assert result.exit_code == 0, log
    record = endpoint(root)
    assert record["EndpointStatus"] == "InService"
    assert "LastDeploymentConfig" not in record  # CreateEndpoint: no deployment policy
    (package,) = packages(root, cfg)
    assert package["ModelApprovalStatus"] == "Approved"


def test_second_run_updates_with_a_canary_and_its_model_goes_live(root: Path) -> None:
    cfg = config(root)
    before = endpoint(root)["EndpointConfigName"]
    seen: list[dict[str, Any]] = []  # what DescribeEndpoint shows while the canary bakes
    commit = "5afe000000000000000000000000000000000002"
    result, log = run_while_baking(root, cfg, commit, seen.append)
    assert result.exit_code == 0, log
    record = endpoint(root)
    # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeEndpoint.html
    assert record["EndpointStatus"] == "InService"
    assert record["EndpointConfigName"] != before
    routing = record["LastDeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing["Type"] == "CANARY"
    assert routing["CanarySize"] == {"Type": "CAPACITY_PERCENT", "Value": 50}
    assert seen and seen[0]["EndpointStatus"] == "Updating"
    assert seen[0]["EndpointConfigName"] == before  # the old configuration serves meanwhile
    statuses = [p["ModelApprovalStatus"] for p in packages(root, cfg)]
    assert statuses == ["Approved", "Approved"]


def test_an_alarm_during_the_canary_rolls_back_and_rejects_the_package(root: Path) -> None:
    cfg = config(root)
    live = endpoint(root)["EndpointConfigName"]
    alarm = cfg.rollback_alarm_names["Invocation5XXErrors"]
    cloudwatch = LocalCloudWatch(root, cfg.region, cfg.account_id)
    tripped: list[str] = []

    def trip(record: dict[str, Any]) -> None:  # aws cloudwatch set-alarm-state, while baking
        cloudwatch.set_alarm_state(alarm, "ALARM", "e2e: the canary misbehaves")
        tripped.append(alarm)

    commit = "5afe000000000000000000000000000000000003"
    result, log = run_while_baking(root, cfg, commit, trip)
    summary = result.summary
    assert tripped == [alarm]
    assert result.exit_code == 1, log
    assert summary["execution_error"] == "DeploymentRolledBack", summary
    assert summary["failed_state"] == "CheckEndpoint"
    assert live in summary["cause"]
    record = endpoint(root)
    # https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-configuration.html:
    # the rollback sends all traffic back to the old fleet, which stays InService
    assert (record["EndpointStatus"], record["EndpointConfigName"]) == ("InService", live)
    assert alarm in record["FailureReason"]
    assert not record.get("PendingDeploymentSummary")  # DescribeEndpoint leaves it out
    assert "DeploymentRolledBack" in outbox(root)[-1]["Message"]
    third = packages(root, cfg)[-1]
    assert third["ModelApprovalStatus"] == "Rejected"
    assert "rolled back" in third["ApprovalDescription"]
    # the alarm is back to OK for the next update once the test is done
    cloudwatch.set_alarm_state(alarm, "OK", "e2e: done")


def test_a_rejected_approval_leaves_the_package_rejected_and_the_endpoint_untouched(
    root: Path,
) -> None:
    cfg = config(root)
    before = endpoint(root)
    stop = threading.Event()
    reviewer = threading.Thread(target=reject_when_asked, args=(root, stop), daemon=True)
    reviewer.start()
    try:
        result, log = run(
            cfg, approve="manual", commit="5afe000000000000000000000000000000000004",
            keep_endpoint=True,
        )  # fmt: skip
    finally:
        stop.set()
    assert result.exit_code == 1, log
    assert result.summary["error"] == "Rejected"
    after = endpoint(root)
    assert after["EndpointConfigName"] == before["EndpointConfigName"]
    assert after["EndpointStatus"] == "InService"
    fourth = packages(root, cfg)[-1]
    assert fourth["ModelApprovalStatus"] == "Rejected"
    assert "masks look wrong" in fourth["ApprovalDescription"]


def test_the_endpoint_captured_every_prediction_in_sagemakers_format(root: Path) -> None:
    # https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-data-capture-endpoint.html
    cfg = config(root)
    store = LocalStore(root)
    prefix = f"{cfg.data_capture_uri}/{ENDPOINT}/AllTraffic/"
    files = store.list(prefix)
    assert len(files) >= 2  # the prediction of each run that deployed, through the router
    for uri in files:
        (line,) = store.get_bytes(uri).decode().splitlines()
        record = json.loads(line)
        assert record["eventVersion"] == "0"
        request = record["captureData"]["endpointInput"]
        assert (request["mode"], request["encoding"]) == ("INPUT", "BASE64")
        answer = json.loads(record["captureData"]["endpointOutput"]["data"])
        assert "predictions" in answer
