from __future__ import annotations

import json
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import TINY_LOCAL_HYPERPARAMETERS

from workflow.local.engine import TaskFailed
from workflow.local.sagemaker import LocalSageMaker
from workflow.local.sagemaker_training import TrainingJobHandler

pytestmark = pytest.mark.integration


def request(name: str, **overrides: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "TrainingJobName": name,
        "AlgorithmSpecification": {
            "TrainingImage": "123.dkr.ecr.us-east-1.amazonaws.com/mask-r-cnn:x",
            "TrainingInputMode": "File",
            "MetricDefinitions": [{"Name": "loss", "Regex": r"loss=([0-9.]+)"}],
        },
        "RoleArn": "arn:aws:iam::000000000000:role/sm",
        "HyperParameters": dict(TINY_LOCAL_HYPERPARAMETERS),
        "InputDataConfig": [
            {
                "ChannelName": "training",
                "DataSource": {
                    "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://bucket/data/train/"}
                },
            },
            {
                "ChannelName": "validation",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": "s3://bucket/data/validation/",
                    }
                },
            },
        ],
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/models/"},
        "ResourceConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        "CheckpointConfig": {"S3Uri": f"s3://bucket/checkpoints/{name}/"},
    }
    params.update(overrides)
    return params


def run_to_end(handler: TrainingJobHandler, submitted: dict[str, Any], timeout: float = 300) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = handler.poll(submitted, None)
        if result is not None:
            return result
        time.sleep(0.2)
    raise AssertionError("training did not end in time")


@pytest.mark.slow
def test_real_tiny_training_job(
    make_sagemaker: Callable[..., LocalSageMaker], tmp_path: Path
) -> None:
    sm = make_sagemaker()
    handler = TrainingJobHandler(sm)
    submitted = handler.start(request("job-1"), None)
    assert submitted["TrainingJobArn"].endswith(":training-job/job-1")
    describe = run_to_end(handler, submitted)
    assert describe["TrainingJobStatus"] == "Completed", describe.get("FailureReason")
    model_uri = describe["ModelArtifacts"]["S3ModelArtifacts"]
    assert model_uri == "s3://bucket/models/job-1/output/model.tar.gz"
    with tarfile.open(sm.store.path(model_uri)) as tar:
        names = tar.getnames()
    assert "model.pth" in names and "metrics.json" in names
    metrics = {m["MetricName"]: m["Value"] for m in describe["FinalMetricDataList"]}
    assert {"train_loss", "segm_mAP", "bbox_mAP", "loss"} <= set(metrics)
    base = sm.store.root / "jobs" / "job-1" / "algo-1"
    config = base / "input" / "config"
    assert json.loads((config / "hyperparameters.json").read_text())["epochs"] == "1"
    assert json.loads((config / "resourceconfig.json").read_text())["hosts"] == ["algo-1"]
    assert set(json.loads((config / "inputdataconfig.json").read_text())) == {
        "training",
        "validation",
    }
    assert (base / "input" / "data" / "training" / "annotations.json").is_file()
    # checkpoints were synced to the store, and a second job of the same name is refused
    assert sm.store.list("s3://bucket/checkpoints/job-1/")
    with pytest.raises(TaskFailed) as info:
        handler.start(request("job-1"), None)
    assert info.value.error == "SageMaker.AmazonSageMakerException"
    assert "already existing" in info.value.cause


def test_failing_train_fails_with_the_failure_file(
    make_sagemaker: Callable[..., LocalSageMaker],
) -> None:
    handler = TrainingJobHandler(make_sagemaker())
    bad = request("job-bad", HyperParameters={"epochs": "zero"})
    submitted = handler.start(bad, None)
    with pytest.raises(TaskFailed) as info:
        run_to_end(handler, submitted)
    assert info.value.error == "States.TaskFailed"
    assert "epochs" in info.value.cause and "zero" in info.value.cause
    assert handler.describe("job-bad")["TrainingJobStatus"] == "Failed"


def test_missing_channel_data_fails_at_start(make_sagemaker: Callable[..., LocalSageMaker]) -> None:
    handler = TrainingJobHandler(make_sagemaker())
    channels = [
        {
            "ChannelName": "training",
            "DataSource": {"S3DataSource": {"S3Uri": "s3://bucket/nothing/"}},
        }
    ]
    with pytest.raises(TaskFailed, match="No S3 objects found"):
        handler.start(request("job-empty", InputDataConfig=channels), None)
    assert handler.describe("job-empty")["TrainingJobStatus"] == "Failed"


def test_max_runtime_stops_the_job(make_sagemaker: Callable[..., LocalSageMaker]) -> None:
    handler = TrainingJobHandler(make_sagemaker())
    slow = request(
        "job-slow",
        StoppingCondition={"MaxRuntimeInSeconds": 1},
        HyperParameters={**TINY_LOCAL_HYPERPARAMETERS, "epochs": "50"},
    )
    submitted = handler.start(slow, None)
    with pytest.raises(TaskFailed) as info:
        run_to_end(handler, submitted, timeout=60)
    assert info.value.cause.startswith("MaxRuntimeExceeded")
    describe = handler.describe("job-slow")
    assert describe["TrainingJobStatus"] == "Stopped"
    assert describe["SecondaryStatus"] == "MaxRuntimeExceeded"


def test_cancel_stops_the_processes(make_sagemaker: Callable[..., LocalSageMaker]) -> None:
    handler = TrainingJobHandler(make_sagemaker())
    submitted = handler.start(
        request("job-cancel", HyperParameters={**TINY_LOCAL_HYPERPARAMETERS, "epochs": "50"}), None
    )
    pid = handler.sm.records.get("training-jobs", "job-cancel")["Pids"][0]
    handler.cancel(submitted, None)
    import os

    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    assert handler.describe("job-cancel")["TrainingJobStatus"] == "Stopped"
