from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

import pytest

from workflow.local.engine import TaskFailed
from workflow.local.processes import pid_alive
from workflow.local.sagemaker import LocalSageMaker
from workflow.local.sagemaker_endpoints import (
    EndpointConfigHandler,
    EndpointHandlers,
    ModelHandler,
    endpoint_records,
    stop_endpoint,
)

pytestmark = pytest.mark.integration


def create_model(sm: LocalSageMaker, name: str, text: str, write: Any) -> None:
    uri = write(sm.store, f"s3://bucket/models/{name}/model.tar.gz", text)
    ModelHandler(sm).start(
        {
            "ModelName": name,
            "PrimaryContainer": {"Image": "fake:1", "ModelDataUrl": uri},
            "ExecutionRoleArn": "arn:aws:iam::0:role/x",
        },
        None,
    )
    EndpointConfigHandler(sm).start(
        {
            "EndpointConfigName": f"{name}-config",
            "ProductionVariants": [
                {
                    "VariantName": "AllTraffic",
                    "ModelName": name,
                    "InitialInstanceCount": 1,
                    "InstanceType": "ml.m5.large",
                }
            ],
        },
        None,
    )


def wait_status(handlers: EndpointHandlers, name: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        describe = handlers.describe({"EndpointName": name}, None)
        if describe["EndpointStatus"] not in ("Creating", "Updating"):
            return describe
        time.sleep(0.1)
    raise AssertionError(f"endpoint {name} stayed {describe['EndpointStatus']}")


def invoke(url: str) -> dict[str, Any]:
    request = urllib.request.Request(
        url + "/invocations", data=b"abc", method="POST", headers={"Content-Type": "image/png"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_create_update_describe_delete(fake_sagemaker: LocalSageMaker, model_tarball: Any) -> None:
    sm = fake_sagemaker
    handlers = EndpointHandlers(sm)
    with pytest.raises(TaskFailed) as info:
        handlers.describe({"EndpointName": "ep"}, None)
    assert info.value.error == "SageMaker.SageMakerException"
    assert (
        'Could not find endpoint "arn:aws:sagemaker:us-east-1:000000000000:endpoint/ep"'
        in info.value.cause
    )
    create_model(sm, "m1", "first", model_tarball)
    create_model(sm, "m2", "second", model_tarball)
    try:
        assert handlers.create({"EndpointName": "ep", "EndpointConfigName": "m1-config"}, None)
        assert handlers.describe({"EndpointName": "ep"}, None)["EndpointStatus"] == "Creating"
        describe = wait_status(handlers, "ep")
        assert describe["EndpointStatus"] == "InService"
        assert "Pid" not in describe and "Url" not in describe
        record = sm.records.get("endpoints", "ep")
        assert invoke(record["Url"])["model"] == "first"
        with pytest.raises(TaskFailed, match="already existing endpoint"):
            handlers.create({"EndpointName": "ep", "EndpointConfigName": "m1-config"}, None)
        # update in place: a new process, the old one stopped only after the new one answers
        handlers.update({"EndpointName": "ep", "EndpointConfigName": "m2-config"}, None)
        assert wait_status(handlers, "ep")["EndpointConfigName"] == "m2-config"
        new = sm.records.get("endpoints", "ep")
        assert new["Pid"] != record["Pid"]
        assert invoke(new["Url"])["model"] == "second"
        handlers.wait_idle()
        assert not pid_alive(record["Pid"])
        listed = endpoint_records(sm)
        assert [(r["EndpointName"], r["Running"]) for r in listed] == [("ep", True)]
    finally:
        handlers.wait_idle()
        stop_endpoint(sm, "ep", grace=3)
    assert sm.records.get("endpoints", "ep") is None
    assert not pid_alive(new["Pid"])


def test_endpoint_whose_server_dies_is_failed(
    fake_sagemaker: LocalSageMaker, model_tarball: Any
) -> None:
    sm = fake_sagemaker
    handlers = EndpointHandlers(sm)
    create_model(sm, "broken", "crash", model_tarball)
    handlers.create({"EndpointName": "bad", "EndpointConfigName": "broken-config"}, None)
    describe = wait_status(handlers, "bad")
    assert describe["EndpointStatus"] == "Failed"
    assert "exited before answering /ping" in describe["FailureReason"]
    assert "model is broken" in describe["FailureReason"]
    stop_endpoint(sm, "bad")


def test_blue_green_update_whose_new_fleet_never_starts_rolls_back(
    fake_sagemaker: LocalSageMaker, model_tarball: Any
) -> None:
    # https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-blue-green.html
    sm = fake_sagemaker
    handlers = EndpointHandlers(sm)
    create_model(sm, "good", "first", model_tarball)
    create_model(sm, "broken", "crash", model_tarball)
    policy = {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {
        "Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}}}  # fmt: skip
    try:
        handlers.create({"EndpointName": "bg", "EndpointConfigName": "good-config"}, None)
        assert wait_status(handlers, "bg")["EndpointStatus"] == "InService"
        handlers.update(
            {"EndpointName": "bg", "EndpointConfigName": "broken-config",
             "DeploymentConfig": policy}, None,
        )  # fmt: skip
        handlers.wait_idle()
        describe = handlers.describe({"EndpointName": "bg"}, None)
        assert (describe["EndpointStatus"], describe["EndpointConfigName"]) == (
            "InService",
            "good-config",
        )
        assert describe["FailureReason"].startswith("Endpoint update was rolled back")
        assert invoke((sm.records.get("endpoints", "bg") or {})["Url"])["model"] == "first"
        with pytest.raises(TaskFailed, match="RollingUpdatePolicy is not emulated"):
            handlers.update(
                {"EndpointName": "bg", "EndpointConfigName": "good-config",
                 "DeploymentConfig": {"RollingUpdatePolicy": {}}}, None,
            )  # fmt: skip
    finally:
        handlers.wait_idle()
        stop_endpoint(sm, "bg", grace=3)


def test_deleting_an_endpoint_during_its_canary_stops_both_fleets(
    fake_sagemaker: LocalSageMaker, model_tarball: Any
) -> None:
    # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DeleteEndpoint.html
    sm = fake_sagemaker
    handlers = EndpointHandlers(sm)
    create_model(sm, "old", "first", model_tarball)
    create_model(sm, "new", "second", model_tarball)
    policy = {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {
        "Type": "CANARY", "WaitIntervalInSeconds": 3000,
        "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 25}}}}  # fmt: skip
    handlers.create({"EndpointName": "gone", "EndpointConfigName": "old-config"}, None)
    assert wait_status(handlers, "gone")["EndpointStatus"] == "InService"
    handlers.update(
        {"EndpointName": "gone", "EndpointConfigName": "new-config", "DeploymentConfig": policy},
        None,
    )
    deadline = time.monotonic() + 30
    while "Pending" not in (record := sm.records.get("endpoints", "gone") or {}):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    described = handlers.describe({"EndpointName": "gone"}, None)
    # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ProductionVariantSummary.html
    assert described["ProductionVariants"][0]["CurrentWeight"] == 0.75
    assert described["PendingDeploymentSummary"]["ProductionVariants"][0]["CurrentWeight"] == 0.25
    handlers.delete({"EndpointName": "gone"}, None)
    handlers.wait_idle()
    assert sm.records.get("endpoints", "gone") is None
    for pid in (record["Pid"], record["Pending"]["Pid"], record["RouterPid"]):
        assert not pid_alive(pid)


def test_model_and_config_rules(fake_sagemaker: LocalSageMaker, model_tarball: Any) -> None:
    sm = fake_sagemaker
    with pytest.raises(TaskFailed, match=r"PrimaryContainer\.Image"):
        ModelHandler(sm).start({"ModelName": "x"}, None)
    with pytest.raises(
        TaskFailed, match=r'Could not find model "arn:aws:sagemaker:.*:model/ghost"'
    ):
        EndpointConfigHandler(sm).start(
            {"EndpointConfigName": "c", "ProductionVariants": [{"ModelName": "ghost"}]}, None
        )
    create_model(sm, "m", "x", model_tarball)
    with pytest.raises(TaskFailed) as info:
        ModelHandler(sm).start({"ModelName": "m", "PrimaryContainer": {"Image": "i"}}, None)
    assert info.value.error == "SageMaker.AmazonSageMakerException"
    with pytest.raises(TaskFailed, match="Could not find endpoint configuration"):
        EndpointHandlers(sm).create({"EndpointName": "e", "EndpointConfigName": "nope"}, None)
    with pytest.raises(TaskFailed, match="name 'bad_name!' is invalid"):
        ModelHandler(sm).start({"ModelName": "bad_name!", "PrimaryContainer": {"Image": "i"}}, None)


def test_predict_png_lowers_the_threshold_when_nothing_is_detected(tmp_path: Any) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from PIL import Image

    from workflow.local.pipeline import predict_png

    seen: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            attributes = self.headers.get("X-Amzn-SageMaker-Custom-Attributes")
            seen.append(attributes)
            # six objects apart, and a lower-scored second label over the best one
            scores = (0.1, 0.3, 0.2, 0.06, 0.07, 0.08)
            predictions = [
                {"label": 1, "category": "circle", "box": [i, i, i + 1, i + 1], "score": s}
                for i, s in enumerate(scores)
            ]
            predictions.append(
                {"label": 2, "category": "square", "box": [1, 1, 2, 2], "score": 0.25}
            )
            predictions = predictions if attributes else []
            body = json.dumps({"predictions": predictions}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        image = tmp_path / "x.png"
        Image.new("RGB", (16, 16)).save(image)
        url = f"http://127.0.0.1:{server.server_address[1]}"
        picture = predict_png(url, image, tmp_path / "p.png")
    finally:
        server.shutdown()
        server.server_close()
    assert seen == [None, "score_threshold=0.05"]
    # each object's best label, the five best objects; the square under the 0.3 circle is hidden
    assert picture.drawn == 5 and picture.hidden == 1
    assert picture.lowered == 0.05 and picture.path.is_file() and picture.shapes is None
