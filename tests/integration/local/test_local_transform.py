from __future__ import annotations

import json
from typing import Any

import helpers
import pytest

from workflow.local.engine import TaskFailed
from workflow.local.sagemaker import LocalSageMaker
from workflow.local.sagemaker_endpoints import ModelHandler
from workflow.local.sagemaker_transform import TransformJobHandler

pytestmark = pytest.mark.integration


def transform_request(name: str, source: str, output: str, **extra: Any) -> dict[str, Any]:
    return {
        "TransformJobName": name,
        "ModelName": "m",
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": source}},
            "ContentType": "image/png",
        },
        "TransformOutput": {"S3OutputPath": output, "Accept": "application/json"},
        "TransformResources": {"InstanceCount": 1, "InstanceType": "ml.m5.large"},
        **extra,
    }


def finish(handler: TransformJobHandler, submitted: dict[str, Any]) -> Any:
    return helpers.finish_job(handler, submitted)


@pytest.fixture
def model(fake_sagemaker: LocalSageMaker, model_tarball: Any) -> str:
    uri = model_tarball(fake_sagemaker.store, "s3://bucket/models/m/model.tar.gz", "tiny")
    ModelHandler(fake_sagemaker).start(
        {"ModelName": "m", "PrimaryContainer": {"Image": "fake:1", "ModelDataUrl": uri}}, None
    )
    return "m"


def test_transform_writes_one_out_file_per_object(
    fake_sagemaker: LocalSageMaker, model: str
) -> None:
    sm = fake_sagemaker
    for name, data in [("a.png", b"1" * 10), ("sub/b.png", b"2" * 20)]:
        sm.store.put_bytes(f"s3://bucket/in/{name}", data)
    handler = TransformJobHandler(sm)
    submitted = handler.start(
        transform_request("t1", "s3://bucket/in/", "s3://bucket/out/t1"), None
    )
    describe = finish(handler, submitted)
    assert describe["TransformJobStatus"] == "Completed"
    assert sm.store.list("s3://bucket/out/t1/") == [
        "s3://bucket/out/t1/a.png.out",
        "s3://bucket/out/t1/sub/b.png.out",
    ]
    answer = json.loads(sm.store.get_bytes("s3://bucket/out/t1/sub/b.png.out"))
    assert answer == {"model": "tiny", "bytes": 20, "type": "image/png"}
    # the same output prefix is never overwritten
    record = sm.records.get("transform-jobs", "t1")
    assert record["LocalRecordCount"] == 2
    submitted = handler.start(
        transform_request("t2", "s3://bucket/in/", "s3://bucket/out/t1"), None
    )
    with pytest.raises(TaskFailed, match="exists already"):
        finish(handler, submitted)


def test_payload_limit_and_error_answers_fail_the_job(
    fake_sagemaker: LocalSageMaker, model: str
) -> None:
    sm = fake_sagemaker
    sm.store.put_bytes("s3://bucket/big/x.png", b"0" * (1024 * 1024 + 1))
    handler = TransformJobHandler(sm)
    submitted = handler.start(
        transform_request("t3", "s3://bucket/big/", "s3://bucket/out/t3", MaxPayloadInMB=1), None
    )
    with pytest.raises(TaskFailed, match="more than MaxPayloadInMB"):
        finish(handler, submitted)
    sm.store.put_bytes("s3://bucket/json/x.json", b"{}")
    request = transform_request("t4", "s3://bucket/json/", "s3://bucket/out/t4")
    request["TransformInput"]["ContentType"] = "application/json"
    submitted = handler.start(request, None)
    with pytest.raises(TaskFailed, match="HTTP 415"):
        finish(handler, submitted)
    assert sm.records.get("transform-jobs", "t4")["TransformJobStatus"] == "Failed"


def test_line_split_multi_record(fake_sagemaker: LocalSageMaker, model: str) -> None:
    sm = fake_sagemaker
    sm.store.put_bytes("s3://bucket/lines/x.csv", b"1,2\n3,4\n5,6\n")
    handler = TransformJobHandler(sm)
    request = transform_request(
        "t5", "s3://bucket/lines/", "s3://bucket/out/t5", BatchStrategy="SingleRecord"
    )
    request["TransformInput"]["SplitType"] = "Line"
    request["TransformOutput"]["AssembleWith"] = "Line"
    finish(handler, handler.start(request, None))
    lines = sm.store.get_bytes("s3://bucket/out/t5/x.csv.out").decode().splitlines()
    assert [json.loads(line)["bytes"] for line in lines] == [3, 3, 3]


def test_unknown_model_is_refused(fake_sagemaker: LocalSageMaker) -> None:
    with pytest.raises(TaskFailed, match="Could not find model"):
        TransformJobHandler(fake_sagemaker).start(
            transform_request("t6", "s3://bucket/in/", "s3://bucket/out/"), None
        )


def test_server_is_parked_for_an_endpoint_of_the_same_model(
    store: Any, fake_image: Any, model_tarball: Any
) -> None:
    from workflow.local.sagemaker import SageMakerSettings, server_key
    from workflow.local.sagemaker_endpoints import (
        EndpointConfigHandler,
        EndpointHandlers,
        stop_endpoint,
    )

    sm = LocalSageMaker(
        store=store,
        resolve_image=lambda uri: fake_image,
        settings=SageMakerSettings(stop_grace_seconds=3, reuse_servers=True, warm_seconds=60),
        log_sink=None,
    )
    uri = model_tarball(store, "s3://bucket/models/w/model.tar.gz", "warm")
    ModelHandler(sm).start(
        {"ModelName": "m", "PrimaryContainer": {"Image": "f", "ModelDataUrl": uri}}, None
    )
    store.put_bytes("s3://bucket/in/a.png", b"1")
    handler = TransformJobHandler(sm)
    finish(
        handler,
        handler.start(transform_request("tw", "s3://bucket/in/", "s3://bucket/out/tw"), None),
    )
    key = server_key(fake_image, uri, {})
    parked = sm.warm.adopt(key)
    assert parked is not None and parked.alive()
    assert sm.warm.park(key, parked)
    EndpointConfigHandler(sm).start(
        {"EndpointConfigName": "c", "ProductionVariants": [{"ModelName": "m"}]}, None
    )
    endpoints = EndpointHandlers(sm)
    endpoints.create({"EndpointName": "e", "EndpointConfigName": "c"}, None)
    endpoints.wait_idle()
    record = sm.records.get("endpoints", "e")
    assert record["EndpointStatus"] == "InService" and record["Pid"] == parked.pid
    assert sm.warm.adopt(key) is None
    stop_endpoint(sm, "e", grace=3)
    assert not parked.alive()
    # the transform job's extracted model is left alone
    assert (store.root / "jobs" / "tw" / "model" / "model.txt").is_file()
