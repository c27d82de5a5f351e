"""Notebook 03's data capture reader, over files written in SageMaker's capture format.

The format (JSON Lines of ``captureData``/``eventMetadata`` under
``<DestinationS3Uri>/<EndpointName>/<VariantName>/yyyy/mm/dd/hh/``) is SageMaker's:
https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-data-capture-endpoint.html
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from workflow.local.data_capture import DataCapture, Invocation
from workflow.notebook import capture_destination, capture_table, read_captures

DESTINATION = "s3://bucket/kit/data-capture"
CONFIG = {
    "EndpointConfigName": "cfg-1",
    "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": "m"}],
    "DataCaptureConfig": {
        "EnableCapture": True,
        "InitialSamplingPercentage": 100,
        "DestinationS3Uri": DESTINATION,
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"]},
    },
}


def _write(session, endpoint: str, minute: int, answer: dict[str, Any]) -> None:
    clock = dt.datetime(2026, 12, 3, 10, minute, tzinfo=dt.timezone.utc)
    capture = DataCapture(session.store(), sample=lambda: 0.0, clock=lambda: clock)
    invocation = Invocation(
        endpoint, "AllTraffic", b"\x89PNG...", "image/png",
        json.dumps(answer).encode(), "application/json",
    )  # fmt: skip
    assert capture.capture(CONFIG, invocation) is not None


def test_captures_are_read_back_newest_last_per_endpoint(make_session):
    session = make_session()
    square = {"predictions": [{"label": 1, "category": "square", "score": 0.9}]}
    _write(session, "ep", 2, {"predictions": []})
    _write(session, "ep", 1, square)
    _write(session, "other-ep", 3, square)

    captures = read_captures(session, DESTINATION, "ep")

    assert [c.inference_time for c in captures] == ["2026-12-03T10:01:00Z", "2026-12-03T10:02:00Z"]
    assert {c.variant for c in captures} == {"AllTraffic"}
    table = capture_table(captures)
    assert table.column("response") == ["1 objects: square", "0 objects"]
    # image/png is not listed as JSON: SageMaker keeps it base64
    assert table.column("request") == ["image/png, 7 bytes (base64)"] * 2
    assert [c.inference_time for c in read_captures(session, DESTINATION, "ep", limit=1)] == [
        "2026-12-03T10:02:00Z"
    ]


def test_no_capture_files_read_as_an_empty_table(make_session):
    session = make_session()
    assert read_captures(session, DESTINATION, "ep") == []
    assert capture_table([]).rows == []


class _Clients:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    def client(self, service: str) -> _Clients:
        assert service == "sagemaker"
        return self

    def describe_endpoint(self, EndpointName: str) -> dict[str, Any]:
        return {"EndpointName": EndpointName, "EndpointConfigName": "cfg-1"}

    def describe_endpoint_config(self, EndpointConfigName: str) -> dict[str, Any]:
        return self.config


def test_the_destination_is_the_one_the_endpoint_configuration_names():
    assert capture_destination(_Clients(CONFIG), "ep") == DESTINATION
    off = {**CONFIG, "DataCaptureConfig": {**CONFIG["DataCaptureConfig"], "EnableCapture": False}}
    assert capture_destination(_Clients(off), "ep") is None
    assert capture_destination(_Clients({"EndpointConfigName": "cfg-1"}), "ep") is None
