"""A real local endpoint behind the local API: boto3, the SageMaker SDK's Predictor, the AWS CLI.

One state machine (CreateModel, CreateEndpointConfig, CreateEndpoint) deploys the repository's
`serve` with a tiny untrained Mask R-CNN, exactly as `run --local` wires it; then the SageMaker
reads, SageMaker Runtime's InvokeEndpoint and its error shapes are checked as a client sees them.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from workflow.api import ApiServer, LocalAwsApi
from workflow.config import load_config
from workflow.local.runtime import LocalRuntime

pytestmark = pytest.mark.integration

ROLE = "arn:aws:iam::000000000000:role/local"
CAPTURE_URI = "s3://bucket/data-capture"


def _tiny_model_tarball(folder: Path) -> Path:
    """An untrained tiny network saved as `train` saves it (model.pth + metadata.json)."""
    import torch
    from mask_r_cnn.model import ModelSpec, build_model

    spec = ModelSpec(
        backbone="mobilenet_v3_large_fpn", num_classes=2, min_size=64, max_size=64, fast=True,
        detections_per_image=3, norm_layer="batch_norm",
    )  # fmt: skip
    model_dir = folder / "model"
    model_dir.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(build_model(spec).state_dict(), model_dir / "model.pth")
    metadata = {
        "format": 1, "model": spec.to_dict(), "score_threshold": 0.5,
        "categories": [{"id": 1, "name": "thing", "label": 1}],
        "source_commit": "api0000", "training_job_name": "api-test",
    }  # fmt: skip
    (model_dir / "metadata.json").write_text(json.dumps(metadata))
    archive = folder / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in model_dir.iterdir():
            tar.add(path, arcname=path.name)
    return archive


def _png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 30, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def _deployment(image: str, model_data: str) -> dict[str, Any]:
    def task(name: str, action: str, parameters: dict[str, Any], next_state: str | None) -> Any:
        state = {
            "Type": "Task",
            "Resource": f"arn:aws:states:::sagemaker:{action}",
            "Parameters": parameters,
            "ResultPath": None,
        }
        return {name: {**state, **({"Next": next_state} if next_state else {"End": True})}}

    return {
        "StartAt": "Model",
        "States": {
            **task(
                "Model",
                "createModel",
                {
                    "ModelName": "Tiny-Model",
                    "ExecutionRoleArn": ROLE,
                    "PrimaryContainer": {"Image": image, "ModelDataUrl": model_data},
                },
                "Config",
            ),
            **task(
                "Config",
                "createEndpointConfig",
                {
                    "EndpointConfigName": "Tiny-Config",
                    "ProductionVariants": [
                        {
                            "VariantName": "AllTraffic",
                            "ModelName": "Tiny-Model",
                            "InitialInstanceCount": 1,
                            "InstanceType": "ml.m5.large",
                        }
                    ],
                    "DataCaptureConfig": {
                        "EnableCapture": True,
                        "InitialSamplingPercentage": 100,
                        "DestinationS3Uri": CAPTURE_URI,
                        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
                        "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"]},
                    },
                },
                "Endpoint",
            ),
            **task(
                "Endpoint",
                "createEndpoint",
                {"EndpointName": "Tiny-Endpoint", "EndpointConfigName": "Tiny-Config"},
                None,
            ),
        },
    }


@pytest.mark.slow
def test_local_endpoint_through_the_api(tmp_path, monkeypatch):
    import boto3

    config = load_config(None, environ={})
    runtime = LocalRuntime(
        config, tmp_path / "root", log_sink=None, echo=False, stop_grace_seconds=3, time_scale=0.01
    )
    archive = _tiny_model_tarball(tmp_path)
    runtime.store.put_file("s3://bucket/models/tiny/model.tar.gz", archive)
    keys = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}
    with runtime, ApiServer(LocalAwsApi(runtime.engine, runtime.sagemaker)) as server:
        session = boto3.Session(region_name=config.region, **keys)
        sfn = session.client("stepfunctions", endpoint_url=server.url)
        sagemaker = session.client("sagemaker", endpoint_url=server.url)
        sm_runtime = session.client("sagemaker-runtime", endpoint_url=server.url)
        machine = sfn.create_state_machine(
            name="deploy",
            definition=json.dumps(
                _deployment(
                    f"{config.image_repository_uri}:latest",
                    "https://bucket.s3.amazonaws.com/models/tiny/model.tar.gz",
                )
            ),
            roleArn=ROLE,
        )["stateMachineArn"]
        execution = sfn.start_execution(stateMachineArn=machine)["executionArn"]
        # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeEndpoint.html
        sagemaker.get_waiter("endpoint_in_service").wait(
            EndpointName="Tiny-Endpoint", WaiterConfig={"Delay": 1, "MaxAttempts": 240}
        )
        assert sfn.describe_execution(executionArn=execution)["status"] == "SUCCEEDED"
        endpoint = sagemaker.describe_endpoint(EndpointName="Tiny-Endpoint")
        assert (endpoint["EndpointName"], endpoint["EndpointConfigName"]) == (
            "Tiny-Endpoint",
            "Tiny-Config",
        )
        model = sagemaker.describe_model(ModelName="Tiny-Model")
        assert model["ModelArn"].endswith(":model/tiny-model")
        assert (
            sagemaker.describe_endpoint_config(EndpointConfigName="Tiny-Config")[
                "ProductionVariants"
            ][0]["ModelName"]
            == "Tiny-Model"
        )
        # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ListModels.html
        page = sagemaker.list_models(MaxResults=1)
        assert [m["ModelName"] for m in page["Models"]] == ["Tiny-Model"]
        assert "NextToken" not in page
        with pytest.raises(ClientError) as exc:
            sagemaker.describe_model(ModelName="Missing-Model")
        assert exc.value.response["Error"]["Code"] == "ValidationException"

        # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_runtime_InvokeEndpoint.html
        png = _png()
        answer = sm_runtime.invoke_endpoint(
            EndpointName="Tiny-Endpoint", ContentType="image/png", Accept="application/json",
            Body=png,
        )  # fmt: skip
        assert answer["ContentType"].startswith("application/json")
        assert answer["InvokedProductionVariant"] == "AllTraffic"
        prediction = json.loads(answer["Body"].read())
        with pytest.raises(ClientError) as exc:
            sm_runtime.invoke_endpoint(EndpointName="Nope", ContentType="image/png", Body=png)
        assert exc.value.response["Error"]["Code"] == "ValidationError"
        with pytest.raises(ClientError) as exc:
            sm_runtime.invoke_endpoint(
                EndpointName="Tiny-Endpoint", ContentType="text/csv", Body=b"1,2"
            )
        error = exc.value.response
        assert (error["Error"]["Code"], error["OriginalStatusCode"]) == ("ModelError", 415)
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 424

        # The SageMaker SDK's Predictor, pointed at the local API, as at SageMaker.
        monkeypatch.setenv("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
        from sagemaker.deserializers import JSONDeserializer
        from sagemaker.predictor import Predictor
        from sagemaker.serializers import IdentitySerializer
        from sagemaker.session import Session

        predictor = Predictor(
            "Tiny-Endpoint",
            sagemaker_session=Session(
                boto_session=session,
                sagemaker_client=sagemaker,
                sagemaker_runtime_client=sm_runtime,
            ),
            serializer=IdentitySerializer("image/png"),
            deserializer=JSONDeserializer(),
        )
        assert predictor.predict(png) == prediction

        # The AWS CLI, when one is installed, with --endpoint-url.
        aws = shutil.which("aws")
        if aws is not None:
            env = {
                **os.environ, "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_DEFAULT_REGION": config.region,
            }  # fmt: skip
            (tmp_path / "image.png").write_bytes(png)
            common = ["--endpoint-url", server.url, "--output", "json"]
            listed = subprocess.run(
                [aws, "stepfunctions", "list-executions", "--state-machine-arn", machine, *common],
                env=env, capture_output=True, text=True, timeout=120, check=True,
            )  # fmt: skip
            assert json.loads(listed.stdout)["executions"][0]["status"] == "SUCCEEDED"
            invoked = subprocess.run(
                [aws, "sagemaker-runtime", "invoke-endpoint", "--endpoint-name", "Tiny-Endpoint",
                 "--content-type", "image/png", "--body", f"fileb://{tmp_path / 'image.png'}",
                 str(tmp_path / "answer.json"), *common],
                env=env, capture_output=True, text=True, timeout=120, check=True,
            )  # fmt: skip
            assert json.loads(invoked.stdout)["InvokedProductionVariant"] == "AllTraffic"
            assert json.loads((tmp_path / "answer.json").read_text()) == prediction

        # Data capture at 100%: one record per answered request (boto3, Predictor, maybe the
        # CLI), none for the refused ones, in SageMaker's format (README "Data capture").
        captures = runtime.store.list(f"{CAPTURE_URI}/Tiny-Endpoint/AllTraffic/")
        assert len(captures) == (3 if aws is not None else 2)
        for uri in captures:
            (line,) = runtime.store.get_bytes(uri).decode().splitlines()
            record = json.loads(line)
            request = record["captureData"]["endpointInput"]
            response = record["captureData"]["endpointOutput"]
            assert (request["mode"], request["encoding"]) == ("INPUT", "BASE64")
            assert base64.b64decode(request["data"]) == png
            assert (response["mode"], response["encoding"]) == ("OUTPUT", "JSON")
            assert json.loads(response["data"]) == prediction
            assert record["eventVersion"] == "0"


def test_invoke_endpoint_forwards_headers_and_errors(served):
    """InvokeEndpoint's headers reach the container and its error comes back as a ModelError."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Echo(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            status = 500 if body == b"fail" else 200
            data = json.dumps(
                {
                    "path": self.path,
                    "type": self.headers["Content-Type"],
                    "accept": self.headers["Accept"],
                    "attributes": self.headers.get("X-Amzn-SageMaker-Custom-Attributes"),
                }
            ).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("X-Amzn-SageMaker-Custom-Attributes", "seen=1")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    echo = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=echo.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{echo.server_address[1]}"
        path = served.store.root / "sagemaker" / "endpoints" / "Echo-Endpoint.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"EndpointName": "Echo-Endpoint", "EndpointStatus": "InService",
                                    "Url": url, "LogPath": "serve.log"}))  # fmt: skip
        runtime = served.client("sagemaker-runtime")
        answer = runtime.invoke_endpoint(
            EndpointName="Echo-Endpoint", ContentType="application/x-image", Accept="text/plain",
            CustomAttributes="trace=abc", Body=b"pixels",
        )  # fmt: skip
        assert json.loads(answer["Body"].read()) == {
            "path": "/invocations",
            "type": "application/x-image",
            "accept": "text/plain",
            "attributes": "trace=abc",
        }
        assert answer["CustomAttributes"] == "seen=1"
        # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_runtime_InvokeEndpoint.html#API_runtime_InvokeEndpoint_Errors
        with pytest.raises(ClientError) as exc:
            runtime.invoke_endpoint(EndpointName="Echo-Endpoint", Body=b"fail")
        error = exc.value.response
        assert (error["Error"]["Code"], error["OriginalStatusCode"]) == ("ModelError", 500)
        assert json.loads(error["OriginalMessage"])["path"] == "/invocations"
    finally:
        echo.shutdown()
        echo.server_close()


def test_sagemaker_reads_filter_sort_and_page(served):
    from workflow.local.sagemaker import LocalSageMaker

    records = LocalSageMaker(store=served.store, resolve_image=Path).records
    for index, name in enumerate(["Alpha", "Beta", "Gamma"]):
        created = 1_700_000_000_000 + index * 1000
        arn = f"arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/{name.lower()}"
        records.create("endpoint-configs", name, {"EndpointConfigName": name,
                       "EndpointConfigArn": arn, "CreationTime": created}, "config")  # fmt: skip
        records.create("endpoints", name, {"EndpointName": name, "CreationTime": created,
                       "EndpointStatus": "InService" if index else "Failed"}, "endpoint")  # fmt: skip
    records.create("transform-jobs", "Batch-1", {"TransformJobName": "Batch-1",
                   "TransformJobStatus": "Completed", "CreationTime": 1_700_000_000_000,
                   "CreatedBy": "local"}, "transform job")  # fmt: skip
    sagemaker = served.client("sagemaker")
    # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ListEndpointConfigs.html
    first = sagemaker.list_endpoint_configs(MaxResults=2)
    assert [c["EndpointConfigName"] for c in first["EndpointConfigs"]] == ["Gamma", "Beta"]
    rest = sagemaker.list_endpoint_configs(MaxResults=2, NextToken=first["NextToken"])
    assert [c["EndpointConfigName"] for c in rest["EndpointConfigs"]] == ["Alpha"]
    assert rest["EndpointConfigs"][0]["CreationTime"].timestamp() == 1_700_000_000
    by_name = sagemaker.list_endpoints(SortBy="Name", SortOrder="Ascending")["Endpoints"]
    assert [e["EndpointName"] for e in by_name] == ["Alpha", "Beta", "Gamma"]
    in_service = sagemaker.list_endpoints(StatusEquals="InService", NameContains="a")
    assert [e["EndpointName"] for e in in_service["Endpoints"]] == ["Gamma", "Beta"]
    # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeTransformJob.html
    job = sagemaker.describe_transform_job(TransformJobName="Batch-1")
    assert (job["TransformJobStatus"], "CreatedBy" in job) == ("Completed", False)
    listed = sagemaker.list_transform_jobs()["TransformJobSummaries"]
    assert [j["TransformJobName"] for j in listed] == ["Batch-1"]
    with pytest.raises(ClientError) as exc:
        sagemaker.describe_transform_job(TransformJobName="Missing")
    assert exc.value.response["Error"]["Code"] == "ResourceNotFound"
    with pytest.raises(ClientError) as exc:
        sagemaker.describe_endpoint_config(EndpointConfigName="Missing")
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as exc:
        sagemaker.list_endpoints(NextToken="bogus")
    assert exc.value.response["Error"]["Code"] == "ValidationException"


def test_model_registry_through_boto3(served):
    # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateModelPackageGroup.html,
    # API_CreateModelPackage.html, API_DescribeModelPackage.html, API_ListModelPackages.html and
    # API_UpdateModelPackage.html; versions count 1, 2, ... in a group:
    # https://docs.aws.amazon.com/sagemaker/latest/dg/model-registry-models.html
    sagemaker = served.client("sagemaker")
    group = sagemaker.create_model_package_group(
        ModelPackageGroupName="Kit", ModelPackageGroupDescription="models of the kit"
    )
    assert group["ModelPackageGroupArn"] == (
        "arn:aws:sagemaker:us-east-1:123456789012:model-package-group/kit"
    )
    with pytest.raises(ClientError) as exc:
        sagemaker.create_model_package_group(ModelPackageGroupName="Kit")
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    assert "already exists" in exc.value.response["Error"]["Message"]
    specification = {
        "Containers": [{"Image": "local/mask-r-cnn:abc", "ModelDataUrl": "s3://b/model.tar.gz"}],
        "SupportedContentTypes": ["application/x-image"],
        "SupportedResponseMIMETypes": ["application/json"],
    }
    arns = [
        sagemaker.create_model_package(
            ModelPackageGroupName="Kit",
            ModelApprovalStatus="PendingManualApproval",
            InferenceSpecification=specification,
            MetadataProperties={"CommitId": f"commit{index}"},
        )["ModelPackageArn"]
        for index in range(3)
    ]
    assert arns[0] == "arn:aws:sagemaker:us-east-1:123456789012:model-package/kit/1"
    described = sagemaker.describe_model_package(ModelPackageName=arns[1])
    assert described["ModelPackageVersion"] == 2
    assert described["ModelApprovalStatus"] == "PendingManualApproval"
    assert described["MetadataProperties"] == {"CommitId": "commit1"}
    assert described["InferenceSpecification"]["Containers"][0]["Image"] == "local/mask-r-cnn:abc"
    assert described["CreationTime"].year >= 2026  # a datetime, as from SageMaker
    updated = sagemaker.update_model_package(
        ModelPackageArn=arns[1], ModelApprovalStatus="Approved", ApprovalDescription="by alice"
    )
    assert updated == {"ModelPackageArn": arns[1], "ResponseMetadata": updated["ResponseMetadata"]}
    described = sagemaker.describe_model_package(ModelPackageName=arns[1])
    assert (described["ModelApprovalStatus"], described["ApprovalDescription"]) == (
        "Approved",
        "by alice",
    )
    approved = sagemaker.list_model_packages(
        ModelPackageGroupName="Kit", ModelApprovalStatus="Approved"
    )["ModelPackageSummaryList"]
    assert [p["ModelPackageArn"] for p in approved] == [arns[1]]
    first = sagemaker.list_model_packages(ModelPackageGroupName="Kit", MaxResults=2)
    assert [p["ModelPackageVersion"] for p in first["ModelPackageSummaryList"]] == [3, 2]
    rest = sagemaker.list_model_packages(
        ModelPackageGroupName="Kit", MaxResults=2, NextToken=first["NextToken"]
    )
    assert [p["ModelPackageVersion"] for p in rest["ModelPackageSummaryList"]] == [1]
    assert "NextToken" not in rest
    for call, kwargs in (
        (sagemaker.describe_model_package, {"ModelPackageName": arns[0][:-1] + "9"}),
        (sagemaker.update_model_package, {"ModelPackageArn": arns[0], "ModelApprovalStatus": "x"}),
        (sagemaker.create_model_package, {"ModelPackageGroupName": "Missing",
                                          "InferenceSpecification": specification}),
    ):  # fmt: skip
        with pytest.raises(ClientError) as exc:
            call(**kwargs)
        assert exc.value.response["Error"]["Code"] == "ValidationException", kwargs
