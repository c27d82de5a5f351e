"""The local SageMaker as SageMaker has it: names keep their case, S3Prefix channel layout, and
every S3 URI form, seen through a stand-in train program and the local API's DescribeTrainingJob.
"""

from __future__ import annotations

import json
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from workflow.api import ApiServer, LocalAwsApi
from workflow.local.docker_cli import DockerCli
from workflow.local.engine import LocalEngine, TaskFailed
from workflow.local.sagemaker import LocalSageMaker, SageMakerSettings
from workflow.local.sagemaker_docker import image_target
from workflow.local.sagemaker_training import TrainingJobHandler
from workflow.local.store import LocalStore

pytestmark = pytest.mark.integration

# Lists the channel's files into the model, so a test sees the layout the job got.
LISTING_TRAIN = """#!/usr/bin/env python3
import json, os
from pathlib import Path
base = Path(os.environ["SAGEMAKER_BASE_DIR"])
data = base / "input" / "data"
files = sorted(p.relative_to(data).as_posix() for p in data.rglob("*") if p.is_file())
(base / "model" / "files.json").write_text(json.dumps(files))
"""


@pytest.fixture
def sm(tmp_path: Path) -> LocalSageMaker:
    image = tmp_path / "image"
    (image / "mask_r_cnn").mkdir(parents=True)
    train = image / "mask_r_cnn" / "train"
    train.write_text(LISTING_TRAIN)
    train.chmod(0o755)
    store = LocalStore(tmp_path / "root")
    for key in ("PNGImages/a.png", "Annotations/a.txt"):
        store.put_bytes(f"s3://bucket/data/PennFudanPed/{key}", b"x")
    return LocalSageMaker(
        store=store,
        resolve_image=lambda uri: image,
        settings=SageMakerSettings(account_id="123456789012", stop_grace_seconds=2),
        log_sink=None,
    )


def _request(name: str, data_uri: str, output: str = "s3://bucket/out/") -> dict[str, Any]:
    source = {"S3DataType": "S3Prefix", "S3Uri": data_uri}
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": "listing:1", "TrainingInputMode": "File"},
        "InputDataConfig": [{"ChannelName": "training", "DataSource": {"S3DataSource": source}}],
        "OutputDataConfig": {"S3OutputPath": output},
        "ResourceConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large"},
        "StoppingCondition": {"MaxRuntimeInSeconds": 60},
    }


def _files(sm: LocalSageMaker, handler: TrainingJobHandler, request: dict[str, Any]) -> list[str]:
    submitted = handler.start(request, None)
    deadline = time.monotonic() + 60
    result = None
    while result is None and time.monotonic() < deadline:
        result = handler.poll(submitted, None)  # by the ARN, which lower-cases the name
        time.sleep(0.05)
    assert result is not None and result["TrainingJobStatus"] == "Completed"
    with tarfile.open(sm.store.path(result["ModelArtifacts"]["S3ModelArtifacts"])) as tar:
        member = tar.extractfile("files.json")
        assert member is not None
        return list(json.loads(member.read()))


@pytest.mark.parametrize(
    "data_uri",
    [
        "s3://bucket/data/PennFudanPed",
        "s3://bucket/data/PennFudanPed/",
        "https://bucket.s3.us-east-1.amazonaws.com/data/PennFudanPed",
        "https://s3.us-east-1.amazonaws.com/bucket/data/PennFudanPed/",
    ],
)
def test_s3prefix_channel_is_laid_out_relative_to_the_prefix(sm, data_uri):
    # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_S3DataSource.html (S3Prefix:
    # the objects under the key prefix) and
    # https://docs.aws.amazon.com/AmazonS3/latest/userguide/VirtualHosting.html (URI forms).
    files = _files(sm, TrainingJobHandler(sm), _request("layout", data_uri))
    assert files == ["training/Annotations/a.txt", "training/PNGImages/a.png"]


def test_names_keep_their_case(sm):
    handler = TrainingJobHandler(sm)
    name = "BYOC-Mask-RCNN-2026-12-03"
    _files(sm, handler, _request(name, "s3://bucket/data/PennFudanPed/"))
    with pytest.raises(TaskFailed, match="already existing"):
        handler.start(_request(name.lower(), "s3://bucket/data/PennFudanPed/"), None)
    server = ApiServer(LocalAwsApi(LocalEngine(), sm)).start()
    try:
        import boto3

        client = boto3.client(
            "sagemaker",
            endpoint_url=server.url,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",  # pragma: allowlist secret
        )
        # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeTrainingJob.html
        described = client.describe_training_job(TrainingJobName=name)
        assert described["TrainingJobName"] == name
        assert described["TrainingJobArn"].endswith(f":training-job/{name.lower()}")
        assert described["TrainingJobStatus"] == "Completed"
        listed = client.list_training_jobs(NameContains="mask-rcnn")["TrainingJobSummaries"]
        assert [s["TrainingJobName"] for s in listed] == [name]
    finally:
        server.stop()


class _NoEngine(DockerCli):
    def call(self, *args: str, timeout: float | None = None) -> Any:
        raise FileNotFoundError(self.executable)


def test_an_image_that_is_not_the_kits_fails_its_job_unless_mapped(sm, tmp_path):
    import dataclasses

    kit = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mask-r-cnn:abc1234"
    other = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.1"
    folder = image_target(sm, "listing:1")
    strict = LocalSageMaker(
        store=sm.store,
        resolve_image=sm.resolve_image,
        settings=dataclasses.replace(sm.settings, kit_repository="mask-r-cnn"),
        log_sink=None,
        docker=_NoEngine(),
    )
    assert image_target(strict, kit) == folder
    assert image_target(strict, "local/mask-r-cnn:abc1234-0123456789ab") == folder
    with pytest.raises(TaskFailed) as exc:
        image_target(strict, other)
    assert exc.value.cause == (
        f"image {other} is not this kit's image (local/... or the ECR repository mask-r-cnn), "
        "and no Docker CLI ('docker') is installed to run it as SageMaker would; start Docker "
        "(or set DOCKER_HOST) with the image in it, or map the image to a folder holding "
        "mask_r_cnn/train and mask_r_cnn/serve with local.images "
        f"({{'{other}': 'path/to/folder'}})."
    )
    mapped = LocalSageMaker(
        store=sm.store,
        resolve_image=sm.resolve_image,
        settings=dataclasses.replace(strict.settings, images={other: str(tmp_path / "image")}),
        log_sink=None,
    )
    request = _request("mapped-image", "s3://bucket/data/PennFudanPed/")
    request["AlgorithmSpecification"]["TrainingImage"] = other
    assert _files(mapped, TrainingJobHandler(mapped), request) == [
        "training/Annotations/a.txt",
        "training/PNGImages/a.png",
    ]


def test_metric_timestamps_are_epoch_seconds_on_the_wire():
    # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_MetricData.html: Timestamp is a
    # date; the records keep epoch milliseconds, which botocore would read as seconds (year 58892).
    from workflow.api.sagemaker import seconds

    record = {"CreationTime": 1796304064000, "FinalMetricDataList": [{"Timestamp": 1796304064938}]}
    assert seconds(record) == {
        "CreationTime": 1796304064.0,
        "FinalMetricDataList": [{"Timestamp": 1796304064.938}],
    }
