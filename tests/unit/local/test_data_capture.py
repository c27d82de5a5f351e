"""Data capture of local endpoints: SageMaker's record format, layout, sampling and safety.

The record format and S3 layout are SageMaker's:
https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-data-capture-endpoint.html
(``<DestinationS3Uri>/<EndpointName>/<VariantName>/yyyy/mm/dd/hh/<file>.jsonl``, lines of
``captureData``/``eventMetadata``/``eventVersion``); the configuration's constraints are those of
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DataCaptureConfig.html.
"""

from __future__ import annotations

import base64
import json
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from workflow.local.data_capture import (
    DataCapture,
    Invocation,
    check_data_capture_config,
    decode_capture,
    variant_name,
)
from workflow.local.store import LocalStore

NOW = datetime(2026, 3, 4, 5, 6, 7, 890000, tzinfo=timezone.utc)
DESTINATION = "s3://bucket/mask-r-cnn/data-capture"


def endpoint_config(percentage: int = 100, **capture: Any) -> dict[str, Any]:
    return {
        "EndpointConfigName": "c",
        "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": "m"}],
        "DataCaptureConfig": {
            "EnableCapture": True,
            "InitialSamplingPercentage": percentage,
            "DestinationS3Uri": DESTINATION,
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"]},
            **capture,
        },
    }


INVOCATION = Invocation(
    endpoint="mask-r-cnn",
    variant="AllTraffic",
    request=b"\x89PNG\r\n\x1a\n-not-utf8-\xff",
    request_type="image/png",
    response=b'{"predictions": []}',
    response_type="application/json; charset=utf-8",
)


def capture(tmp_path: Path, sample: float = 0.0) -> DataCapture:
    return DataCapture(LocalStore(tmp_path), sample=lambda: sample, clock=lambda: NOW)


def read_lines(store: LocalStore, uri: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in store.get_bytes(uri).decode().splitlines()]


def test_one_record_in_sagemakers_format_and_layout(tmp_path: Path) -> None:
    writer = capture(tmp_path)
    uri = writer.capture(endpoint_config(), INVOCATION)
    assert uri is not None
    folder = f"{DESTINATION}/mask-r-cnn/AllTraffic/2026/03/04/05/"
    assert uri.startswith(folder) and uri.endswith(".jsonl")
    assert uri[len(folder) :].startswith("06-07-890-")
    (record,) = read_lines(writer.store, uri)
    assert record["eventVersion"] == "0"
    assert set(record["eventMetadata"]) == {"eventId", "inferenceTime"}
    assert record["eventMetadata"]["inferenceTime"] == "2026-03-04T05:06:07Z"
    request, response = (
        record["captureData"]["endpointInput"],
        record["captureData"]["endpointOutput"],
    )
    # Not a JSON content type: base64. A JSON one (parameters aside): the text itself.
    assert request == {
        "observedContentType": "image/png",
        "mode": "INPUT",
        "data": base64.b64encode(INVOCATION.request).decode(),
        "encoding": "BASE64",
    }
    assert response == {
        "observedContentType": "application/json; charset=utf-8",
        "mode": "OUTPUT",
        "data": '{"predictions": []}',
        "encoding": "JSON",
    }
    assert decode_capture(request) == INVOCATION.request
    assert decode_capture(response) == INVOCATION.response


def test_every_capture_is_a_new_file(tmp_path: Path) -> None:
    writer = capture(tmp_path)
    uris = {writer.capture(endpoint_config(), INVOCATION) for _ in range(3)}
    assert len(uris) == 3 and None not in uris
    assert sorted(uris) == writer.store.list(DESTINATION + "/")  # type: ignore[type-var]


@pytest.mark.parametrize(("percentage", "sample", "written"), [
    (0, 0.0, False), (100, 0.999999, True), (50, 0.49, True), (50, 0.5, False),
])  # fmt: skip
def test_sampling(tmp_path: Path, percentage: int, sample: float, written: bool) -> None:
    uri = capture(tmp_path, sample).capture(endpoint_config(percentage), INVOCATION)
    assert (uri is not None) is written
    assert bool(LocalStore(tmp_path).list("s3://bucket/")) is written


@pytest.mark.parametrize(
    "config",
    [
        {"ProductionVariants": [{"VariantName": "AllTraffic"}]},
        endpoint_config(EnableCapture=False),
        None,
    ],
)
def test_no_capture_without_an_enabled_configuration(tmp_path: Path, config: Any) -> None:
    assert capture(tmp_path).capture(config, INVOCATION) is None
    assert not (tmp_path / "s3").exists()


def test_enable_capture_defaults_to_true_and_modes_choose_the_sides(tmp_path: Path) -> None:
    config = endpoint_config(CaptureOptions=[{"CaptureMode": "Output"}])
    del config["DataCaptureConfig"]["EnableCapture"]
    del config["DataCaptureConfig"]["CaptureContentTypeHeader"]
    writer = capture(tmp_path)
    (record,) = read_lines(writer.store, str(writer.capture(config, INVOCATION)))
    # No CaptureContentTypeHeader: SageMaker base64-encodes everything.
    assert list(record["captureData"]) == ["endpointOutput"]
    assert record["captureData"]["endpointOutput"]["encoding"] == "BASE64"


def test_inference_id_is_recorded(tmp_path: Path) -> None:
    writer = capture(tmp_path)
    invocation = Invocation(**{**INVOCATION.__dict__, "inference_id": "req-1"})
    (record,) = read_lines(writer.store, str(writer.capture(endpoint_config(), invocation)))
    assert record["eventMetadata"]["inferenceId"] == "req-1"


def test_a_failing_capture_is_logged_and_never_raises(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = endpoint_config(DestinationS3Uri="s3://bucket/../escape")
    with caplog.at_level(logging.WARNING, logger="workflow.local.data_capture"):
        assert capture(tmp_path).capture(config, INVOCATION) is None
    assert "data capture of endpoint mask-r-cnn failed" in caplog.text
    broken = endpoint_config()
    del broken["DataCaptureConfig"]["DestinationS3Uri"]
    assert capture(tmp_path).capture(broken, INVOCATION) is None


def test_variant_name() -> None:
    assert variant_name(endpoint_config()) == "AllTraffic"
    assert variant_name({"ProductionVariants": [{"VariantName": "Blue"}]}) == "Blue"
    assert variant_name(None) == "AllTraffic"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"InitialSamplingPercentage": 101}, "InitialSamplingPercentage = 101 must be an integer"),
        ({"InitialSamplingPercentage": "10"}, "InitialSamplingPercentage = '10' must be"),
        ({"DestinationS3Uri": "bucket/x"}, "'bucket/x' is not an s3:// URI"),
        ({"DestinationS3Uri": "s3://b/" + "k" * 512}, "at most 512 characters"),
        ({"CaptureOptions": []}, "must list 1 to 32 capture options"),
        ({"CaptureOptions": [{"CaptureMode": "Both"}]}, "CaptureMode 'Both' is not one of"),
    ],
)
def test_create_endpoint_config_refuses_what_sagemaker_refuses(
    change: dict[str, Any], message: str
) -> None:
    assert check_data_capture_config(endpoint_config()["DataCaptureConfig"]) is None
    assert check_data_capture_config(None) is None
    problem = check_data_capture_config(endpoint_config(**change)["DataCaptureConfig"])
    assert problem is not None and message in problem
