"""An image that is not the kit's runs in Docker as SageMaker runs it: a training job, a failing
one, one over its runtime, an endpoint with an update and an invoke, and a batch transform, all
through the local SageMaker handlers the state machine calls.

The engine is the project's private one (`scripts/docker-engine.sh`), started here when none
answers and stopped at the end only if this module started it; the image is made here with no
registry (`helpers.foreign_image`, a few seconds). Skipped with the reason when no engine can run.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helpers
import pytest
import requests
from helpers.foreign_image import build_foreign_image

from workflow.local.docker_cli import LOCAL_LABEL
from workflow.local.engine import TaskFailed
from workflow.local.orphans import OWNER_KEY, reap_jobs
from workflow.local.sagemaker import LocalSageMaker, SageMakerSettings
from workflow.local.sagemaker_endpoints import (
    EndpointConfigHandler,
    EndpointHandlers,
    ModelHandler,
    stop_endpoint,
)
from workflow.local.sagemaker_training import TrainingJobHandler
from workflow.local.sagemaker_transform import TransformJobHandler
from workflow.local.store import LocalStore

pytestmark = [
    pytest.mark.integration,
    pytest.mark.docker,
    pytest.mark.slow,
    pytest.mark.timeout(900),
]

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "scripts" / "docker-engine.sh"
# An ECR URI of another repository than the kit's: it must run from the local engine, unpulled.
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/someone-elses-model:1"


def _answers(host: str) -> bool:
    try:
        return (
            subprocess.run(
                ["docker", "version", "--format", "{{.Server.Version}}"],
                env={**os.environ, "DOCKER_HOST": host},
                capture_output=True,
                timeout=15,
            ).returncode
            == 0
        )
    except subprocess.TimeoutExpired:
        return False


@pytest.fixture(scope="module")
def engine() -> Iterator[str]:
    """DOCKER_HOST of an answering engine: the user's, or the project's private one."""
    if shutil.which("docker") is None:
        pytest.skip("no docker CLI on PATH; install docker.io (scripts/docker-engine.sh does)")
    host = os.environ.get("DOCKER_HOST") or ""
    started = False
    if not host or not _answers(host):
        host = subprocess.run(
            [str(SCRIPT), "host"], capture_output=True, text=True, check=True
        ).stdout.strip()
        if not _answers(host):
            start = subprocess.run(
                [str(SCRIPT), "start"], capture_output=True, text=True, timeout=300
            )
            if start.returncode != 0:
                pytest.skip(f"no Docker engine could be started: {start.stderr.strip()[-400:]}")
            started = True
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DOCKER_HOST", host)
        began = time.monotonic()
        build_foreign_image(IMAGE, dict(os.environ))
        print(f"foreign image built in {time.monotonic() - began:.1f} s")
        try:
            yield host
        finally:
            subprocess.run(["docker", "image", "rm", "--force", IMAGE], capture_output=True)
            if started:
                subprocess.run([str(SCRIPT), "stop"], capture_output=True, timeout=120)


def _kit_code(uri: str) -> Path:
    raise AssertionError(f"the kit's code was asked to run image {uri}")


@pytest.fixture
def sm(engine: str, tmp_path: Path) -> Iterator[LocalSageMaker]:
    store = LocalStore(tmp_path / "root")
    for key in ("a.txt", "sub/b.txt"):
        store.put_bytes(f"s3://bucket/data/train/{key}", key.encode())
    store.put_bytes("s3://bucket/batch/one.json", b'{"x": 1}')
    yield LocalSageMaker(
        store=store,
        resolve_image=_kit_code,
        settings=SageMakerSettings(
            account_id="123456789012",
            kit_repository="mask-r-cnn",
            stop_grace_seconds=3,
            ping_timeout_seconds=60,
        ),
        log_sink=None,
    )
    # A finished transform stops its server in the background: allow it the stop grace.
    deadline = time.monotonic() + 15
    while _containers() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _containers() == [], "a container outlived its job or endpoint"


def _containers() -> list[str]:
    listed = subprocess.run(
        ["docker", "ps", "--all", "--quiet", "--filter", f"label={LOCAL_LABEL}"],
        capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    return listed.stdout.split()


def _request(name: str, **hyperparameters: Any) -> dict[str, Any]:
    source = {"S3DataType": "S3Prefix", "S3Uri": "s3://bucket/data/train"}
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {
            "TrainingImage": IMAGE,
            "TrainingInputMode": "File",
            "MetricDefinitions": [{"Name": "loss", "Regex": r"loss=([0-9.]+)"}],
        },
        "HyperParameters": hyperparameters,
        "Environment": {"MY_SETTING": "on"},
        "InputDataConfig": [{"ChannelName": "training", "DataSource": {"S3DataSource": source}}],
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/out/"},
        "ResourceConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large"},
        "StoppingCondition": {"MaxRuntimeInSeconds": 120},
    }


def _train(sm: LocalSageMaker, request: dict[str, Any]) -> dict[str, Any]:
    handler = TrainingJobHandler(sm)
    return dict(helpers.finish_job(handler, handler.start(request, None), timeout=120, poll=0.2))


def _model_json(sm: LocalSageMaker, uri: str) -> dict[str, Any]:
    with tarfile.open(fileobj=io.BytesIO(sm.store.get_bytes(uri))) as tar:
        member = tar.extractfile("model.json")
        assert member is not None
        return dict(json.loads(member.read()))


def test_training_runs_the_image_on_sagemakers_layout(sm: LocalSageMaker) -> None:
    # https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-training-algo-running-container.html
    described = _train(sm, _request("Foreign-Train", epochs=2))
    assert described["TrainingJobStatus"] == "Completed"
    artifact = described["ModelArtifacts"]["S3ModelArtifacts"]
    assert artifact == "s3://bucket/out/Foreign-Train/output/model.tar.gz"
    seen = _model_json(sm, artifact)
    assert seen["hyperparameters"] == {"epochs": "2"}  # SageMaker passes strings
    assert seen["resourceconfig"]["current_host"] == "algo-1"
    assert seen["inputdataconfig"]["training"]["TrainingInputMode"] == "File"
    assert seen["files"] == ["training/a.txt", "training/sub/b.txt"]
    assert seen["environment"] == {
        "TRAINING_JOB_NAME": "Foreign-Train",
        "TRAINING_JOB_ARN": "arn:aws:sagemaker:us-east-1:123456789012:training-job/foreign-train",
        "MY_SETTING": "on",
        "MASTER_PORT": None,  # the kit's own variables stay out of another image
    }
    assert seen["checkpoints"] is False  # no CheckpointConfig: no /opt/ml/checkpoints
    assert sm.store.exists("s3://bucket/out/Foreign-Train/output/output.tar.gz")
    assert [m["MetricName"] for m in described["FinalMetricDataList"]] == ["loss"]
    log = (sm.store.folder("jobs") / "Foreign-Train" / "algo-1.log").read_text()
    assert "train: epoch=2 loss=0.5" in log


def test_a_failing_container_fails_the_job_with_its_failure_file(sm: LocalSageMaker) -> None:
    # https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-training-signal-success-failure.html
    with pytest.raises(TaskFailed) as exc:
        _train(sm, _request("foreign-bad", epochs="many"))
    reason = "epochs='many' is not a whole number; pass e.g. epochs=2."
    assert exc.value.error == "States.TaskFailed" and exc.value.cause == reason
    record = sm.records.get("training-jobs", "foreign-bad") or {}
    assert record["TrainingJobStatus"] == "Failed" and record["FailureReason"] == reason


def test_max_runtime_stops_the_container(sm: LocalSageMaker) -> None:
    # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_StoppingCondition.html
    request = _request("foreign-slow", sleep=120)
    request["StoppingCondition"] = {"MaxRuntimeInSeconds": 2}
    began = time.monotonic()
    with pytest.raises(TaskFailed) as exc:
        _train(sm, request)
    assert time.monotonic() - began < 30
    assert exc.value.cause.startswith("MaxRuntimeExceeded: ")
    record = sm.records.get("training-jobs", "foreign-slow") or {}
    assert record["TrainingJobStatus"] == "Stopped"


def test_the_next_command_removes_the_container_of_a_dead_runtime(sm: LocalSageMaker) -> None:
    handler = TrainingJobHandler(sm)
    handler.start(_request("foreign-orphan", sleep=120), None)
    try:
        record = sm.records.get("training-jobs", "foreign-orphan") or {}
        [container] = record["Containers"]
        deadline = time.monotonic() + 30
        while not _containers_named(container):  # docker run creates it a moment later
            assert time.monotonic() < deadline, f"container {container} never appeared"
            time.sleep(0.2)
        # As if the runtime that started it had been killed: its owner stamp names no process.
        owner = {OWNER_KEY: {"Pid": 1, "Started": 0}}
        sm.records.update("training-jobs", "foreign-orphan", **owner)
        assert reap_jobs(sm.records, grace=2) == ["foreign-orphan"]
        assert _containers_named(container) == []
        stopped = sm.records.get("training-jobs", "foreign-orphan") or {}
        assert stopped["TrainingJobStatus"] == "Stopped" and stopped["Containers"] == []
    finally:
        handler.stop_all()


def _wait(handlers: EndpointHandlers, name: str) -> dict[str, Any]:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        described = handlers.describe({"EndpointName": name}, None)
        if described["EndpointStatus"] not in ("Creating", "Updating"):
            return described
        time.sleep(0.2)
    raise AssertionError(f"endpoint {name} never left {described['EndpointStatus']}")


def test_endpoint_and_transform_serve_from_the_image(sm: LocalSageMaker) -> None:
    # https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-inference-code.html
    request = _request("foreign-model", epochs=3)
    request["CheckpointConfig"] = {"S3Uri": "s3://bucket/checkpoints/foreign-model/"}
    artifact = _train(sm, request)["ModelArtifacts"]
    checkpoint = sm.store.get_bytes("s3://bucket/checkpoints/foreign-model/last.txt")
    assert checkpoint == b"epoch 3\n"  # written to /opt/ml/checkpoints, synced back
    container = {"Image": IMAGE, "ModelDataUrl": artifact["S3ModelArtifacts"]}
    ModelHandler(sm).start({"ModelName": "foreign", "PrimaryContainer": container}, None)
    for config in ("foreign-a", "foreign-b"):
        variant = {"VariantName": "AllTraffic", "ModelName": "foreign", "InitialInstanceCount": 1}
        EndpointConfigHandler(sm).start(
            {"EndpointConfigName": config, "ProductionVariants": [variant]}, None
        )
    handlers = EndpointHandlers(sm)
    try:
        handlers.create({"EndpointName": "foreign-ep", "EndpointConfigName": "foreign-a"}, None)
        assert _wait(handlers, "foreign-ep")["EndpointStatus"] == "InService"
        first = sm.records.get("endpoints", "foreign-ep") or {}
        answer = requests.post(
            first["Url"] + "/invocations", data=b"hello",
            headers={"Content-Type": "text/plain"}, timeout=30,
        )  # fmt: skip
        assert answer.status_code == 200
        assert answer.json() == {"epochs": 3, "echo": "hello", "content_type": "text/plain"}
        handlers.update({"EndpointName": "foreign-ep", "EndpointConfigName": "foreign-b"}, None)
        assert _wait(handlers, "foreign-ep")["EndpointConfigName"] == "foreign-b"
        handlers.wait_idle()
        second = sm.records.get("endpoints", "foreign-ep") or {}
        assert second["Container"] != first["Container"]
        assert _containers_named(first["Container"]) == []  # the old fleet's container is gone
        assert requests.post(second["Url"] + "/invocations", data=b"x", timeout=30).ok
    finally:
        handlers.wait_idle()
        stop_endpoint(sm, "foreign-ep", grace=3)
    transform = TransformJobHandler(sm)
    submitted = transform.start(
        {
            "TransformJobName": "foreign-batch",
            "ModelName": "foreign",
            "TransformInput": {
                "DataSource": {"S3DataSource": {"S3Uri": "s3://bucket/batch/"}},
                "ContentType": "application/json",
            },
            "TransformOutput": {"S3OutputPath": "s3://bucket/batch-out/"},
        },
        None,
    )
    helpers.finish_job(transform, submitted, timeout=90, poll=0.2)
    out = json.loads(sm.store.get_bytes("s3://bucket/batch-out/one.json.out"))
    assert out == {"epochs": 3, "echo": '{"x": 1}', "content_type": "application/json"}


def _containers_named(name: str) -> list[str]:
    listed = subprocess.run(
        ["docker", "ps", "--all", "--quiet", "--filter", f"name=^{name}$"],
        capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    return listed.stdout.split()


def _task(action: str, parameters: dict[str, Any], next_state: str | None) -> dict[str, Any]:
    state = {"Type": "Task", "Resource": f"arn:aws:states:::sagemaker:{action}"}
    return {
        **state,
        "Parameters": parameters,
        **({"Next": next_state} if next_state else {"End": True}),
    }


def test_a_state_machine_trains_deploys_and_boto3_invokes_the_image(
    engine: str, tmp_path: Path
) -> None:
    """The same path as `run --local` and `python -m workflow api`: a state machine on the local
    engine, and SageMaker Runtime's InvokeEndpoint from boto3."""
    import boto3

    from workflow.api import ApiServer, LocalAwsApi
    from workflow.config import load_config
    from workflow.local.runtime import LocalRuntime

    config = load_config(None, environ={})
    runtime = LocalRuntime(config, tmp_path / "root", log_sink=None, echo=False,
                           stop_grace_seconds=3, time_scale=0.01)  # fmt: skip
    runtime.store.put_bytes("s3://bucket/data/train/a.txt", b"a")
    training = _request("Machine-Train", epochs="4")
    training["RoleArn"] = "arn:aws:iam::000000000000:role/local"
    definition = {
        "StartAt": "Train",
        "States": {
            "Train": {**_task("createTrainingJob.sync", training, "Model"), "ResultPath": "$.train"},
            "Model": {**_task("createModel", {
                "ModelName": "Machine-Model", "ExecutionRoleArn": training["RoleArn"],
                "PrimaryContainer": {
                    "Image": IMAGE, "ModelDataUrl.$": "$.train.ModelArtifacts.S3ModelArtifacts",
                },
            }, "Config"), "ResultPath": None},
            "Config": {**_task("createEndpointConfig", {
                "EndpointConfigName": "Machine-Config",
                "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": "Machine-Model",
                                        "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}],
            }, "Endpoint"), "ResultPath": None},
            "Endpoint": {**_task("createEndpoint", {
                "EndpointName": "Machine-Endpoint", "EndpointConfigName": "Machine-Config",
            }, None), "ResultPath": None},
        },
    }  # fmt: skip
    keys = {
        "aws_access_key_id": "local",
        "aws_secret_access_key": "local",  # pragma: allowlist secret
    }
    with runtime, ApiServer(LocalAwsApi(runtime.engine, runtime.sagemaker)) as server:
        session = boto3.Session(region_name=config.region, **keys)
        sfn = session.client("stepfunctions", endpoint_url=server.url)
        sagemaker = session.client("sagemaker", endpoint_url=server.url)
        machine = sfn.create_state_machine(
            name="foreign", definition=json.dumps(definition), roleArn=training["RoleArn"]
        )["stateMachineArn"]
        execution = sfn.start_execution(stateMachineArn=machine)["executionArn"]
        deadline = time.monotonic() + 120
        while (status := sfn.describe_execution(executionArn=execution)["status"]) == "RUNNING":
            assert time.monotonic() < deadline, "the execution did not end in 120 s"
            time.sleep(0.5)
        assert status == "SUCCEEDED"
        sagemaker.get_waiter("endpoint_in_service").wait(
            EndpointName="Machine-Endpoint", WaiterConfig={"Delay": 1, "MaxAttempts": 120}
        )
        model = sagemaker.describe_model(ModelName="Machine-Model")
        assert model["PrimaryContainer"]["Image"] == IMAGE
        # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeTrainingJob.html
        trained = sagemaker.describe_training_job(TrainingJobName="Machine-Train")
        assert trained["AlgorithmSpecification"]["TrainingImage"] == IMAGE
        [metric] = trained["FinalMetricDataList"]  # its Timestamp parses as a date
        assert (metric["MetricName"], metric["Value"]) == ("loss", 0.5)
        assert abs(metric["Timestamp"].timestamp() - time.time()) < 300
        # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_runtime_InvokeEndpoint.html
        answer = session.client("sagemaker-runtime", endpoint_url=server.url).invoke_endpoint(
            EndpointName="Machine-Endpoint", ContentType="text/plain", Body=b"ping"
        )
        assert json.loads(answer["Body"].read()) == {
            "epochs": 4, "echo": "ping", "content_type": "text/plain",
        }  # fmt: skip
    deadline = time.monotonic() + 15
    while _containers() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _containers() == []  # the runtime's exit stopped and removed the endpoint's container
