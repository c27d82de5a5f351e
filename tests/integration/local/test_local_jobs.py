"""Training-job mechanics with a stand-in train program: hosts, shards, checkpoints, stop."""

from __future__ import annotations

import json
import os
import tarfile
import time
from pathlib import Path
from typing import Any

import helpers
import pytest

from workflow.local.engine import LocalEngine, TaskFailed
from workflow.local.sagemaker import LocalSageMaker, SageMakerSettings
from workflow.local.sagemaker_training import TrainingJobHandler
from workflow.local.store import LocalStore

pytestmark = pytest.mark.integration


@pytest.fixture
def sm(store: LocalStore, fake_train_image: Path) -> LocalSageMaker:
    return LocalSageMaker(
        store=store,
        resolve_image=lambda uri: fake_train_image,
        settings=SageMakerSettings(stop_grace_seconds=2),
        log_sink=None,
    )


def request(name: str, count: int = 1, sharded: bool = False, **hp: str) -> dict[str, Any]:
    source: dict[str, Any] = {"S3DataType": "S3Prefix", "S3Uri": "s3://bucket/data/train/"}
    if sharded:
        source["S3DataDistributionType"] = "ShardedByS3Key"
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": "fake:1", "TrainingInputMode": "File"},
        "HyperParameters": hp,
        "InputDataConfig": [{"ChannelName": "training", "DataSource": {"S3DataSource": source}}],
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/out"},
        "ResourceConfig": {"InstanceCount": count, "InstanceType": "ml.m5.large"},
        "StoppingCondition": {"MaxRuntimeInSeconds": 60},
        "CheckpointConfig": {"S3Uri": "s3://bucket/ckpt/shared"},
        "Environment": {"SOURCE_COMMIT": "abc"},
    }


def finish(handler: TrainingJobHandler, submitted: dict[str, Any]) -> dict[str, Any]:
    return helpers.finish_job(handler, submitted)


def seen(sm: LocalSageMaker, describe: dict[str, Any]) -> dict[str, Any]:
    with tarfile.open(sm.store.path(describe["ModelArtifacts"]["S3ModelArtifacts"])) as tar:
        member = tar.extractfile("seen.json")
        assert member is not None
        return json.loads(member.read())


def test_two_hosts_share_a_master_and_shard_the_data(sm: LocalSageMaker) -> None:
    handler = TrainingJobHandler(sm)
    describe = finish(handler, handler.start(request("multi", count=2, sharded=True), None))
    assert describe["TrainingJobStatus"] == "Completed"
    assert describe["BillableTimeInSeconds"] >= 2
    first = seen(sm, describe)
    assert first["host"] == "algo-1" and first["hosts"] == ["algo-1", "algo-2"]
    assert first["master"][0] == "127.0.0.1" and int(first["master"][1]) > 0
    assert first["job"] == "multi" and first["commit"] == "abc"
    second = json.loads(
        (sm.store.root / "jobs" / "multi" / "algo-2" / "model" / "seen.json").read_text()
    )
    assert second["master"] == first["master"]
    all_files = sm.store.list("s3://bucket/data/train/")
    assert len(first["files"]) + len(second["files"]) == len(all_files)
    assert not set(first["files"]) & set(second["files"])
    assert describe["FinalMetricDataList"][0]["MetricName"] == "train_loss"


def test_checkpoints_come_back_to_a_restarted_job(sm: LocalSageMaker) -> None:
    handler = TrainingJobHandler(sm)
    finish(handler, handler.start(request("first"), None))
    assert sm.store.list("s3://bucket/ckpt/shared/") == ["s3://bucket/ckpt/shared/ckpt-0.txt"]
    describe = finish(handler, handler.start(request("second"), None))
    assert seen(sm, describe)["checkpoints"] == ["ckpt-0.txt"]
    assert sm.store.list("s3://bucket/ckpt/shared/")[-1].endswith("ckpt-1.txt")


def test_failure_file_first_line_is_the_reason(sm: LocalSageMaker) -> None:
    handler = TrainingJobHandler(sm)
    with pytest.raises(TaskFailed) as info:
        finish(handler, handler.start(request("broken", fail="lr = -1 is not positive"), None))
    assert info.value.cause.startswith("lr = -1 is not positive")
    # the checkpoints written before the failure are synced too
    assert sm.store.list("s3://bucket/ckpt/shared/")


def test_stopping_the_execution_kills_the_job(sm: LocalSageMaker) -> None:
    handler = TrainingJobHandler(sm)
    engine = LocalEngine(time_scale=0.1)
    engine.register_service(
        "sagemaker", "createTrainingJob", handler.start, handler.poll, handler.cancel
    )
    params = request("long", sleep="60")
    definition = {
        "StartAt": "Train",
        "States": {
            "Train": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sagemaker:createTrainingJob.sync",
                "Parameters": params,
                "End": True,
            }
        },
    }
    execution = engine.start_execution(definition, {})
    deadline = time.monotonic() + 30
    while not (sm.records.get("training-jobs", "long") or {}).get("Pids"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    pid = sm.records.get("training-jobs", "long")["Pids"][0]
    execution.stop("Stopped", "by the test")
    execution.wait(30)
    assert execution.status == "ABORTED"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the training process survived the stop")
    assert handler.describe("long")["TrainingJobStatus"] == "Stopped"
