"""Guarded endpoint updates through `python -m workflow api`, with boto3 only.

A model, endpoint configuration and endpoint are created through the SageMaker API, then updated
with a blue/green `DeploymentConfig` whose auto-rollback watches a CloudWatch alarm of the local
API. The serving program is a stand-in (`local.images` maps the image to it) that answers with
the name of its model, so every answer tells which fleet served it.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from workflow.local.store import LocalStore

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/stand-in:1"
ROLE = "arn:aws:iam::000000000000:role/local"
KEYS = {"aws_access_key_id": "local", "aws_secret_access_key": "local", "region_name": "us-east-1"}
SERVE = """#!/usr/bin/env python3
import json, os
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

MODEL = (Path(os.environ["SAGEMAKER_BASE_DIR"]) / "model" / "model.txt").read_text()

class Serve(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _answer(self, status, data):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._answer(200, b"")

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._answer(500 if MODEL == "broken" else 200, json.dumps({"model": MODEL}).encode())

address = (os.environ["SAGEMAKER_BIND_TO_HOST"], int(os.environ["SAGEMAKER_BIND_TO_PORT"]))
HTTPServer(address, Serve).serve_forever()
"""


class Api:
    """The running `python -m workflow api` and boto3 clients of it."""

    def __init__(self, url: str) -> None:
        import boto3

        self.url = url
        self.sagemaker = boto3.client("sagemaker", endpoint_url=url, **KEYS)
        self.runtime = boto3.client("sagemaker-runtime", endpoint_url=url, **KEYS)
        self.cloudwatch = boto3.client("cloudwatch", endpoint_url=url, **KEYS)

    def deploy(self, name: str, model: str) -> str:
        """Create a model (answering `model`) and its endpoint configuration; return its name."""
        self.sagemaker.create_model(
            ModelName=name, ExecutionRoleArn=ROLE,
            PrimaryContainer={"Image": IMAGE, "ModelDataUrl": f"s3://bucket/models/{model}.tar.gz"},
        )  # fmt: skip
        self.sagemaker.create_endpoint_config(
            EndpointConfigName=f"{name}-config",
            ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": name,
                                 "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}],
        )  # fmt: skip
        return f"{name}-config"

    def start(self, endpoint: str, old: str, new: str, alarm: str) -> tuple[str, str]:
        """An endpoint serving model `old`, a configuration of model `new` and an error alarm."""
        blue = self.deploy(f"{endpoint}-old", old)
        green = self.deploy(f"{endpoint}-new", new)
        put_error_alarm(self, alarm, endpoint)
        self.sagemaker.create_endpoint(EndpointName=endpoint, EndpointConfigName=blue)
        # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeEndpoint.html
        self.wait(endpoint, lambda d: d["EndpointStatus"] != "Creating")
        return blue, green

    def answer(self, endpoint: str) -> str:
        body = self.runtime.invoke_endpoint(
            EndpointName=endpoint, ContentType="image/png", Body=b"png"
        )["Body"].read()
        return str(json.loads(body)["model"])

    def wait(self, endpoint: str, until: Any, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            described: dict[str, Any] = self.sagemaker.describe_endpoint(EndpointName=endpoint)
            if until(described):
                return described
            assert time.monotonic() < deadline, described
            time.sleep(0.05)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    folder = tmp_path_factory.mktemp("safe-deployment")
    image = folder / "image"
    (image / "mask_r_cnn").mkdir(parents=True)
    (image / "mask_r_cnn" / "serve").write_text(SERVE)
    (image / "mask_r_cnn" / "serve").chmod(0o755)
    store = LocalStore(folder / "root")
    for model in ("first", "second", "broken"):
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            info = tarfile.TarInfo("model.txt")
            info.size = len(model)
            tar.addfile(info, io.BytesIO(model.encode()))
        store.put_bytes(f"s3://bucket/models/{model}.tar.gz", buffer.getvalue())
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "container"),
                                                         os.environ.get("PYTHONPATH", "")])}  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "workflow", "--set", f"local.root={folder / 'root'}",
         "--set", f"local.images={json.dumps({IMAGE: str(image)})}", "api"],
        cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        yield Api(process.stdout.readline().strip())
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def canary(wait_seconds: int, alarm: str) -> dict[str, Any]:
    """A CANARY policy of 50 % and the auto-rollback alarm, as UpdateEndpoint takes it.

    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DeploymentConfig.html
    """
    return {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "CANARY",
                "WaitIntervalInSeconds": wait_seconds,
                "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 50},
            },
            "TerminationWaitInSeconds": 0,
            "MaximumExecutionTimeoutInSeconds": 3600,
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": alarm}]},
    }


def put_error_alarm(api: Api, name: str, endpoint: str) -> None:
    # https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-configuration.html
    api.cloudwatch.put_metric_alarm(
        AlarmName=name, Namespace="AWS/SageMaker", MetricName="Invocation5XXErrors",
        Statistic="Sum", Dimensions=[{"Name": "EndpointName", "Value": endpoint},
                                     {"Name": "VariantName", "Value": "AllTraffic"}],
        Period=60, EvaluationPeriods=1, Threshold=1.0,
        ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData="notBreaching",
    )  # fmt: skip


def test_an_alarm_during_the_canary_rolls_the_update_back(api: Api) -> None:
    blue, green = api.start("guarded", "first", "second", "canary-errors")
    assert api.answer("guarded") == "first"
    # https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DescribeAlarms.html
    (alarm,) = api.cloudwatch.describe_alarms(AlarmNames=["canary-errors"])["MetricAlarms"]
    assert alarm["StateValue"] == "OK"  # no 5XX data point, treated as not breaching

    policy = canary(600, "canary-errors")  # 6 s with the default local time scale
    api.sagemaker.update_endpoint(
        EndpointName="guarded", EndpointConfigName=green, DeploymentConfig=policy
    )
    # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_PendingDeploymentSummary.html
    baking = api.wait("guarded", lambda d: "PendingDeploymentSummary" in d)
    assert baking["EndpointStatus"] == "Updating"
    assert baking["EndpointConfigName"] == blue
    pending = baking["PendingDeploymentSummary"]
    assert pending["EndpointConfigName"] == green
    assert pending["ProductionVariants"][0]["DesiredWeight"] == 0.5
    assert pending["ProductionVariants"][0]["DeployedImages"][0]["SpecifiedImage"] == IMAGE
    answers = {api.answer("guarded") for _ in range(40)}
    assert answers == {"first", "second"}  # the canary takes half of the traffic

    # https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_SetAlarmState.html
    api.cloudwatch.set_alarm_state(
        AlarmName="canary-errors", StateValue="ALARM", StateReason="testing the rollback"
    )
    # https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-configuration.html:
    # an alarm during a baking period rolls all traffic back to the old fleet.
    done = api.wait("guarded", lambda d: d["EndpointStatus"] != "Updating", timeout=30)
    assert done["EndpointStatus"] == "InService"
    assert done["EndpointConfigName"] == blue
    assert "canary-errors" in done["FailureReason"]
    assert done["LastDeploymentConfig"] == policy
    assert "PendingDeploymentSummary" not in done
    assert [v["VariantName"] for v in done["ProductionVariants"]] == ["AllTraffic"]
    assert {api.answer("guarded") for _ in range(20)} == {"first"}

    # The router's data points, as GetMetricStatistics returns them:
    # https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricStatistics.html
    now = time.time()
    stats = api.cloudwatch.get_metric_statistics(
        Namespace="AWS/SageMaker", MetricName="Invocations",
        Dimensions=[{"Name": "EndpointName", "Value": "guarded"},
                    {"Name": "VariantName", "Value": "AllTraffic"}],
        StartTime=now - 600, EndTime=now + 60, Period=60, Statistics=["Sum"],
    )  # fmt: skip
    assert sum(p["Sum"] for p in stats["Datapoints"]) == 61
    # https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html
    latency = api.cloudwatch.get_metric_data(
        MetricDataQueries=[{"Id": "latency", "MetricStat": {"Metric": {
            "Namespace": "AWS/SageMaker", "MetricName": "ModelLatency",
            "Dimensions": [{"Name": "EndpointName", "Value": "guarded"}]},
            "Period": 60, "Stat": "SampleCount"}}],
        StartTime=now - 600, EndTime=now + 60,
    )["MetricDataResults"][0]  # fmt: skip
    assert (latency["Id"], latency["StatusCode"], sum(latency["Values"])) == (
        "latency", "Complete", 61
    )  # fmt: skip


def test_without_an_alarm_the_update_finishes_on_the_new_config(api: Api) -> None:
    blue, green = api.start("calm", "first", "second", "calm-errors")
    api.sagemaker.update_endpoint(
        EndpointName="calm", EndpointConfigName=green, DeploymentConfig=canary(50, "calm-errors")
    )
    assert api.sagemaker.describe_endpoint(EndpointName="calm")["EndpointStatus"] == "Updating"
    # One update at a time:
    # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_UpdateEndpoint.html
    with pytest.raises(ClientError) as info:
        api.sagemaker.update_endpoint(EndpointName="calm", EndpointConfigName=blue)
    assert info.value.response["Error"]["Code"] == "ValidationException"
    # https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-blue-green-canary.html
    done = api.wait("calm", lambda d: d["EndpointStatus"] != "Updating", timeout=30)
    assert (done["EndpointStatus"], done["EndpointConfigName"]) == ("InService", green)
    assert "FailureReason" not in done
    assert {api.answer("calm") for _ in range(10)} == {"second"}
    api.sagemaker.delete_endpoint(EndpointName="calm")
    with pytest.raises(ClientError) as info:
        api.sagemaker.describe_endpoint(EndpointName="calm")
    assert info.value.response["Error"]["Code"] == "ValidationException"


def test_cloudwatch_errors_and_the_cbor_protocol(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    # botocore 1.44 sends CloudWatch as JSON 1.0 (it prefers json over smithy-rpc-v2-cbor);
    # clients that prefer CBOR get the same answers:
    # https://smithy.io/2.0/additional-specs/protocols/smithy-rpc-v2.html
    import boto3
    import botocore.model

    with pytest.raises(ClientError) as info:
        api.cloudwatch.set_alarm_state(AlarmName="ghost", StateValue="ALARM", StateReason="x")
    # https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_SetAlarmState.html#API_SetAlarmState_Errors
    assert info.value.response["Error"]["Code"] == "ResourceNotFound"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    monkeypatch.setattr(
        botocore.model, "PRIORITY_ORDERED_SUPPORTED_PROTOCOLS", ("smithy-rpc-v2-cbor", "json")
    )
    cbor = boto3.Session(**KEYS).client("cloudwatch", endpoint_url=api.url)
    assert cbor.meta.service_model.resolved_protocol == "smithy-rpc-v2-cbor"
    put_error_alarm(_with(cbor), "cbor-alarm", "none")
    (alarm,) = cbor.describe_alarms(AlarmNamePrefix="cbor-")["MetricAlarms"]
    assert (alarm["AlarmName"], alarm["Threshold"], alarm["Period"]) == ("cbor-alarm", 1.0, 60)
    assert alarm["StateUpdatedTimestamp"].year >= 2026  # a CBOR timestamp (tag 1)
    with pytest.raises(ClientError) as info:
        cbor.delete_alarms(AlarmNames=["cbor-alarm", "ghost"])
    assert info.value.response["Error"]["Code"] == "ResourceNotFound"
    # The AWS CLI, when one is installed: `aws cloudwatch set-alarm-state` as on AWS.
    aws = shutil.which("aws")
    if aws is not None:
        env = {**os.environ, "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
               "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip
        subprocess.run(
            [aws, "cloudwatch", "set-alarm-state", "--alarm-name", "cbor-alarm", "--state-value",
             "ALARM", "--state-reason", "from the CLI", "--endpoint-url", api.url],
            env=env, capture_output=True, text=True, timeout=120, check=True,
        )  # fmt: skip
        (alarm,) = cbor.describe_alarms(AlarmNames=["cbor-alarm"])["MetricAlarms"]
        assert (alarm["StateValue"], alarm["StateReason"]) == ("ALARM", "from the CLI")
    cbor.delete_alarms(AlarmNames=["cbor-alarm"])
    assert cbor.describe_alarms(AlarmNamePrefix="cbor-")["MetricAlarms"] == []


def test_sagemaker_writes_refuse_what_sagemaker_refuses(api: Api) -> None:
    # https://docs.aws.amazon.com/sagemaker/latest/APIReference/CommonErrors.html: SageMaker
    # answers a refused request with ValidationException and a message naming the resource.
    config = api.deploy("twice", "first")
    for call, kwargs, message in (
        (api.sagemaker.create_model,
         {"ModelName": "twice", "ExecutionRoleArn": ROLE, "PrimaryContainer": {"Image": IMAGE}},
         "Cannot create already existing model"),
        (api.sagemaker.create_endpoint, {"EndpointName": "e", "EndpointConfigName": "nope"},
         "Could not find endpoint configuration"),
        (api.sagemaker.update_endpoint, {"EndpointName": "nope", "EndpointConfigName": config},
         'Could not find endpoint "arn:aws:sagemaker:us-east-1:000000000000:endpoint/nope"'),
        (api.sagemaker.delete_model, {"ModelName": "nope"}, "Could not find model"),
        (api.sagemaker.delete_endpoint_config, {"EndpointConfigName": "nope"},
         "Could not find endpoint configuration"),
    ):  # fmt: skip
        with pytest.raises(ClientError) as info:
            call(**kwargs)
        error = info.value.response["Error"]
        assert (error["Code"], message in error["Message"]) == ("ValidationException", True)
    api.sagemaker.delete_endpoint_config(EndpointConfigName=config)
    api.sagemaker.delete_model(ModelName="twice")
    with pytest.raises(ClientError):
        api.sagemaker.describe_model(ModelName="twice")


def test_cloudwatch_in_the_query_protocol(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    # Older clients speak CloudWatch's query protocol (form in, XML out):
    # https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/making-api-requests.html
    import boto3
    import botocore.model

    monkeypatch.setattr(botocore.model, "PRIORITY_ORDERED_SUPPORTED_PROTOCOLS", ("query",))
    query = boto3.Session(**KEYS).client("cloudwatch", endpoint_url=api.url)
    assert query.meta.service_model.resolved_protocol == "query"
    put_error_alarm(_with(query), "query-alarm", "none")
    query.set_alarm_state(AlarmName="query-alarm", StateValue="ALARM", StateReason="query")
    (alarm,) = query.describe_alarms(AlarmNames=["query-alarm"])["MetricAlarms"]
    assert (alarm["StateValue"], alarm["Threshold"], alarm["EvaluationPeriods"]) == (
        "ALARM",
        1.0,
        1,
    )
    assert alarm["Dimensions"][0] == {"Name": "EndpointName", "Value": "none"}
    assert alarm["StateUpdatedTimestamp"].year >= 2026
    with pytest.raises(ClientError) as info:
        query.delete_alarms(AlarmNames=["ghost"])
    assert info.value.response["Error"]["Code"] == "ResourceNotFound"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    query.delete_alarms(AlarmNames=["query-alarm"])


def _with(cloudwatch: Any) -> Api:
    api = Api.__new__(Api)
    api.cloudwatch = cloudwatch
    return api


def test_a_model_answering_5xx_trips_its_alarm_and_rolls_back(api: Api) -> None:
    # The router's Invocation5XXErrors data points reach the alarm, as SageMaker's metrics do:
    # https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-blue-green-all-at-once.html
    blue, broken = api.start("faulty", "first", "broken", "faulty-errors")
    policy = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 1000}
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "faulty-errors"}]},
    }
    api.sagemaker.update_endpoint(
        EndpointName="faulty", EndpointConfigName=broken, DeploymentConfig=policy
    )
    api.wait("faulty", lambda d: "PendingDeploymentSummary" in d)
    errors = 0
    deadline = time.monotonic() + 30
    while api.sagemaker.describe_endpoint(EndpointName="faulty")["EndpointStatus"] == "Updating":
        assert time.monotonic() < deadline
        try:
            api.answer("faulty")
        except ClientError as exc:  # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_runtime_InvokeEndpoint.html
            assert exc.response["Error"]["Code"] == "ModelError"
            errors += 1
    assert errors >= 1
    done = api.sagemaker.describe_endpoint(EndpointName="faulty")
    assert (done["EndpointStatus"], done["EndpointConfigName"]) == ("InService", blue)
    assert "faulty-errors" in done["FailureReason"]
    (alarm,) = api.cloudwatch.describe_alarms(AlarmNames=["faulty-errors"])["MetricAlarms"]
    assert alarm["StateValue"] == "ALARM"
    assert {api.answer("faulty") for _ in range(10)} == {"first"}
