"""What an endpoint received: its SageMaker data capture files read back for notebook 03.

SageMaker writes sampled requests and responses as JSON Lines under
``<DestinationS3Uri>/<EndpointName>/<VariantName>/yyyy/mm/dd/hh/``, one record per line with
``captureData`` (``endpointInput``, ``endpointOutput``: ``observedContentType``, ``mode``,
``data``, ``encoding``) and ``eventMetadata`` (``eventId``, ``inferenceTime``):
https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-data-capture-endpoint.html.
The destination is read from the endpoint's configuration (``DataCaptureConfig``), as on AWS; in
local mode the files are in the local store, in aws mode in S3.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from workflow.notebook.session import AwsClients, Session
from workflow.notebook.tables import Table


@dataclass(frozen=True)
class Capture:
    """One captured invocation.

    Attributes:
        uri: The capture file it was read from.
        variant: The production variant that answered (the folder after the endpoint's name).
        record: The JSON record as SageMaker writes it.
    """

    uri: str
    variant: str
    record: Mapping[str, Any]

    @property
    def inference_time(self) -> str:
        """``eventMetadata.inferenceTime`` (ISO 8601, UTC)."""
        return str(self.record.get("eventMetadata", {}).get("inferenceTime", ""))

    @property
    def event_id(self) -> str:
        """``eventMetadata.eventId``."""
        return str(self.record.get("eventMetadata", {}).get("eventId", ""))

    def side(self, name: str) -> Mapping[str, Any]:
        """``captureData.endpointInput`` or ``captureData.endpointOutput`` (empty if not kept)."""
        value = self.record.get("captureData", {}).get(name)
        return value if isinstance(value, Mapping) else {}


def capture_destination(clients: AwsClients, endpoint_name: str) -> str | None:
    """The ``DestinationS3Uri`` of the configuration the endpoint serves; None if it captures nothing."""
    sagemaker = clients.client("sagemaker")
    endpoint = sagemaker.describe_endpoint(EndpointName=endpoint_name)
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    capture = config.get("DataCaptureConfig") or {}
    if not capture or capture.get("EnableCapture") is False:
        return None
    return str(capture["DestinationS3Uri"]).rstrip("/")


def read_captures(
    session: Session, destination: str, endpoint_name: str, limit: int = 20
) -> list[Capture]:
    """Return the newest ``limit`` captured invocations of an endpoint, oldest first.

    Args:
        session: The notebook session (local mode reads the store, aws mode S3).
        destination: The ``DestinationS3Uri`` (see :func:`capture_destination`).
        endpoint_name: The endpoint whose folder is read.
        limit: How many records to keep (the newest).
    """
    prefix = f"{destination}/{endpoint_name}/"
    captures: list[Capture] = []
    for uri, body in _objects(session, prefix):
        if not uri.endswith(".jsonl"):
            continue
        variant = uri[len(prefix) :].split("/", 1)[0]
        for line in body.decode("utf-8").splitlines():
            if line.strip():
                captures.append(Capture(uri, variant, json.loads(line)))
    captures.sort(key=lambda capture: (capture.inference_time, capture.uri))
    return captures[-limit:] if limit > 0 else captures


def capture_table(captures: Sequence[Capture], title: str = "") -> Table:
    """One row per captured invocation: when, which variant, what came in, what went out."""
    rows = []
    for capture in captures:
        request, response = capture.side("endpointInput"), capture.side("endpointOutput")
        rows.append(
            [
                capture.inference_time,
                capture.variant,
                capture.event_id[:8],
                _describe_input(request),
                _describe_output(response),
            ]
        )
    return Table(["inference time", "variant", "event", "request", "response"], rows, title)


def _describe_input(side: Mapping[str, Any]) -> str:
    if not side:
        return "-"
    from workflow.local.data_capture import decode_capture

    try:
        size = f"{len(decode_capture(side)):,} bytes"
    except (KeyError, ValueError):
        size = "unreadable"
    return (
        f"{side.get('observedContentType', '?')}, {size} ({str(side.get('encoding', '?')).lower()})"
    )


def _describe_output(side: Mapping[str, Any]) -> str:
    if not side:
        return "-"
    kind = str(side.get("observedContentType", "?"))
    if side.get("encoding") == "JSON":
        try:
            answer = json.loads(str(side.get("data", "")))
        except ValueError:
            return f"{kind}, not JSON"
        if isinstance(answer, Mapping) and isinstance(answer.get("predictions"), list):
            found = answer["predictions"]
            labels = sorted({str(p.get("category", p.get("label"))) for p in found})
            return f"{len(found)} objects" + (f": {', '.join(labels)}" if labels else "")
    return kind


def _objects(session: Session, prefix: str) -> Iterator[tuple[str, bytes]]:
    if session.local:
        store = session.store()
        for uri, path in store.iter_objects(prefix):
            yield uri, path.read_bytes()
        return
    import boto3

    from workflow.local.store import parse_s3_uri

    bucket, key = parse_s3_uri(prefix)
    s3 = boto3.client("s3", region_name=session.config.region)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
        for item in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            yield f"s3://{bucket}/{item['Key']}", body


__all__ = ["Capture", "capture_destination", "capture_table", "read_captures"]
