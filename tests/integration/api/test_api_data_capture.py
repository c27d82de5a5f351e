"""Data capture through the local API's InvokeEndpoint, as a boto3 client uses it.

The endpoint's router (`workflow.local.router`, here in a thread) captures what its fleet
answers, so every client of the endpoint is captured, boto3's InvokeEndpoint included.

SageMaker writes the sampled requests and responses of an endpoint whose configuration has
``DataCaptureConfig`` to ``<DestinationS3Uri>/<EndpointName>/<VariantName>/yyyy/mm/dd/hh/``:
https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-data-capture-endpoint.html.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from botocore.exceptions import ClientError

from workflow.local.router import RouterServer
from workflow.local.sagemaker import CONFIGS, ENDPOINTS, LocalSageMaker

pytestmark = pytest.mark.integration

DESTINATION = "s3://bucket/mask-r-cnn/data-capture"


class Model(BaseHTTPRequestHandler):
    """A model server answering JSON, or 500 for the body ``fail``."""

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        data = json.dumps({"bytes": len(body)}).encode()
        self.send_response(500 if body == b"fail" else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def model_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Model)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def deploy(served: Any) -> Iterator[Any]:
    """Record an InService endpoint whose router forwards to ``url`` and whose configuration
    carries ``capture``."""
    routers: list[RouterServer] = []

    def make(url: str, capture: dict[str, Any] | None) -> None:
        records = LocalSageMaker(store=served.store, resolve_image=lambda uri: uri).records
        config: dict[str, Any] = {
            "EndpointConfigName": "Capture-Config",
            "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": "Capture-Model"}],
        }
        if capture is not None:
            config["DataCaptureConfig"] = capture
        records.create(CONFIGS, "Capture-Config", config, "endpoint configuration")
        path = records.path(ENDPOINTS, "Capture-Endpoint")
        router = RouterServer(0, path, served.store.root / "metrics", served.store.root)
        routers.append(router)
        threading.Thread(target=router.serve_forever, daemon=True).start()
        route = {"VariantName": "AllTraffic", "EndpointConfigName": "Capture-Config", "Url": url}
        endpoint = {
            "EndpointName": "Capture-Endpoint",
            "EndpointConfigName": "Capture-Config",
            "EndpointStatus": "InService",
            "Url": f"http://127.0.0.1:{router.server_address[1]}",
            "Routes": [{**route, "Weight": 1.0}],
            "LogPath": "serve.log",
        }
        records.create(ENDPOINTS, "Capture-Endpoint", endpoint, "endpoint")

    yield make
    for router in routers:
        router.shutdown()
        router.server_close()


def capture_config(percentage: int, enabled: bool = True) -> dict[str, Any]:
    # The CreateEndpointConfig shape the state machine sends (tests/golden/full.json).
    return {
        "EnableCapture": enabled,
        "InitialSamplingPercentage": percentage,
        "DestinationS3Uri": DESTINATION,
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"]},
    }


def invoke_three_times(served: Any) -> list[bytes]:
    runtime = served.client("sagemaker-runtime")
    bodies = [b"image-%d\xff" % i for i in range(3)]
    for body in bodies:
        answer = runtime.invoke_endpoint(
            EndpointName="Capture-Endpoint", ContentType="image/png", Body=body
        )
        assert json.loads(answer["Body"].read()) == {"bytes": len(body)}
    with pytest.raises(ClientError):  # the model's error is not captured
        runtime.invoke_endpoint(
            EndpointName="Capture-Endpoint", ContentType="image/png", Body=b"fail"
        )
    return bodies


def captured(served: Any) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for uri in served.store.list(DESTINATION + "/"):
        lines = served.store.get_bytes(uri).decode().splitlines()
        out += [(uri, json.loads(line)) for line in lines]
    return out


def test_full_sampling_captures_each_answered_request(served, model_url, deploy) -> None:
    deploy(model_url, capture_config(100))
    bodies = invoke_three_times(served)
    records = captured(served)
    assert len(records) == len(bodies)
    for uri, _ in records:
        assert uri.startswith(f"{DESTINATION}/Capture-Endpoint/AllTraffic/")
        assert len(uri[len(DESTINATION) :].split("/")) == 8  # /endpoint/variant/y/m/d/h/file
    inputs = sorted(base64.b64decode(r["captureData"]["endpointInput"]["data"]) for _, r in records)
    assert inputs == sorted(bodies)
    for _, record in records:
        assert record["eventVersion"] == "0"
        assert record["eventMetadata"]["eventId"] and record["eventMetadata"]["inferenceTime"]
        request, response = (record["captureData"][k] for k in ("endpointInput", "endpointOutput"))
        assert (request["mode"], request["encoding"], request["observedContentType"]) == (
            "INPUT",
            "BASE64",
            "image/png",
        )
        assert (response["mode"], response["encoding"]) == ("OUTPUT", "JSON")
        assert json.loads(response["data"])["bytes"] == len(base64.b64decode(request["data"]))


@pytest.mark.parametrize("capture", [capture_config(0), capture_config(100, False), None])
def test_no_capture_at_zero_percent_or_when_off(served, model_url, deploy, capture) -> None:
    deploy(model_url, capture)
    invoke_three_times(served)
    assert captured(served) == []


def test_a_capture_failure_does_not_fail_the_inference(served, model_url, deploy) -> None:
    deploy(model_url, capture_config(100))
    # A file where the capture folder should be: every capture write fails.
    served.store.put_bytes(DESTINATION + "/Capture-Endpoint", b"in the way")
    invoke_three_times(served)
    assert served.store.list(DESTINATION + "/") == [DESTINATION + "/Capture-Endpoint"]
