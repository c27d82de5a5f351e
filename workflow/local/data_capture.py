"""SageMaker data capture of local endpoints: sampled requests and responses as JSON Lines.

When the configuration an endpoint serves has ``DataCaptureConfig`` with ``EnableCapture``, each
``InvokeEndpoint`` that the model answers is sampled at ``InitialSamplingPercentage`` and written
in SageMaker's capture format under the local store's path of ``DestinationS3Uri``:
``<DestinationS3Uri>/<EndpointName>/<VariantName>/yyyy/mm/dd/hh/<mm-ss-mmm>-<uuid>.jsonl``, each
line ``{"captureData": {"endpointInput": {...}, "endpointOutput": {...}}, "eventMetadata":
{"eventId", "inferenceTime"[, "inferenceId"]}, "eventVersion": "0"}``. Bodies whose content type
``CaptureContentTypeHeader`` lists as JSON (or CSV) are kept as text, everything else as base64,
as SageMaker does: https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-data-capture-endpoint.html
and https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DataCaptureConfig.html.

Differences from AWS: one record per file (SageMaker buffers several records per file and
uploads them within minutes; here a file appears as soon as the model answers), written
atomically through the store, which never overwrites; ``KmsKeyId`` is ignored. Batch transform
never captures (on AWS a transform job captures only through its own ``DataCaptureConfig``).
A capture that fails is logged and never fails the inference.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import random
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from workflow.local.store import LocalStore

logger = logging.getLogger(__name__)

EVENT_VERSION = "0"
DEFAULT_VARIANT = "AllTraffic"
CAPTURE_MODES = ("Input", "Output", "InputAndOutput")
# DataCaptureConfig.DestinationS3Uri's pattern and bounds in the SageMaker API reference.
_DESTINATION = re.compile(r"(https|s3)://([^/]+)/?(.*)")


@dataclass(frozen=True)
class CaptureSettings:
    """The ``DataCaptureConfig`` of an endpoint configuration, as the runtime applies it."""

    destination: str
    percentage: float
    capture_input: bool
    capture_output: bool
    json_types: frozenset[str]
    csv_types: frozenset[str]

    @classmethod
    def from_config(cls, endpoint_config: Mapping[str, Any]) -> CaptureSettings | None:
        """Read an endpoint configuration record; None when it does not capture."""
        capture = endpoint_config.get("DataCaptureConfig")
        # EnableCapture defaults to true in the API (the field is optional).
        if not isinstance(capture, Mapping) or capture.get("EnableCapture", True) is not True:
            return None
        modes = {str(o.get("CaptureMode")) for o in capture.get("CaptureOptions") or []}
        header = capture.get("CaptureContentTypeHeader") or {}
        return cls(
            destination=str(capture["DestinationS3Uri"]).rstrip("/"),
            percentage=float(capture.get("InitialSamplingPercentage", 0)),
            capture_input=bool(modes & {"Input", "InputAndOutput"}),
            capture_output=bool(modes & {"Output", "InputAndOutput"}),
            json_types=frozenset(_media_type(t) for t in header.get("JsonContentTypes") or []),
            csv_types=frozenset(_media_type(t) for t in header.get("CsvContentTypes") or []),
        )

    def encode(self, body: bytes, content_type: str, mode: str) -> dict[str, str]:
        """One side of ``captureData``: JSON or CSV content types as text, the rest base64."""
        media = _media_type(content_type)
        encoding = "JSON" if media in self.json_types else "CSV" if media in self.csv_types else ""
        if encoding:
            try:
                data = body.decode("utf-8")
            except UnicodeDecodeError:
                encoding = ""
        if not encoding:
            encoding, data = "BASE64", base64.b64encode(body).decode("ascii")
        return {
            "observedContentType": content_type,
            "mode": mode,
            "data": data,
            "encoding": encoding,
        }


def check_data_capture_config(capture: Any) -> str | None:
    """Return why CreateEndpointConfig refuses this ``DataCaptureConfig``, or None.

    The API reference's constraints: ``InitialSamplingPercentage`` 0 to 100,
    ``DestinationS3Uri`` an ``s3://`` or ``https://`` URI of at most 512 characters, 1 to 32
    ``CaptureOptions`` of ``Input``, ``Output`` or ``InputAndOutput``.
    """
    if capture is None:
        return None
    if not isinstance(capture, Mapping):
        return "DataCaptureConfig must be an object"
    percentage = capture.get("InitialSamplingPercentage")
    if (
        isinstance(percentage, bool)
        or not isinstance(percentage, int)
        or not 0 <= percentage <= 100
    ):
        return (
            f"DataCaptureConfig.InitialSamplingPercentage = {percentage!r} must be an integer "
            "from 0 to 100"
        )
    destination = capture.get("DestinationS3Uri")
    if not isinstance(destination, str) or len(destination) > 512:
        return "DataCaptureConfig.DestinationS3Uri must be an S3 URI of at most 512 characters"
    if not _DESTINATION.fullmatch(destination) or not destination.startswith("s3://"):
        return (
            f"DataCaptureConfig.DestinationS3Uri = {destination!r} is not an s3:// URI "
            "(the local runtime writes captures to its store's s3:// paths)"
        )
    options = capture.get("CaptureOptions")
    if not isinstance(options, list) or not 1 <= len(options) <= 32:
        return "DataCaptureConfig.CaptureOptions must list 1 to 32 capture options"
    for option in options:
        mode = option.get("CaptureMode") if isinstance(option, Mapping) else None
        if mode not in CAPTURE_MODES:
            return (
                f"DataCaptureConfig.CaptureOptions: CaptureMode {mode!r} is not one of "
                f"{', '.join(CAPTURE_MODES)}"
            )
    return None


@dataclass(frozen=True)
class Invocation:
    """One answered InvokeEndpoint, as data capture sees it."""

    endpoint: str
    variant: str
    request: bytes
    request_type: str
    response: bytes
    response_type: str
    inference_id: str | None = None


class DataCapture:
    """Write the sampled captures of local endpoints into the store."""

    def __init__(
        self,
        store: LocalStore,
        sample: Callable[[], float] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.store = store
        self._sample = sample or random.random
        self._clock = clock or (lambda: datetime.now(timezone.utc))

    def capture(
        self, endpoint_config: Mapping[str, Any] | None, invocation: Invocation
    ) -> str | None:
        """Sample and write one invocation; return the capture file's URI, or None.

        Never raises: a capture that fails is logged, and the inference is answered anyway.
        """
        try:
            settings = CaptureSettings.from_config(endpoint_config or {})
            if settings is None or self._sample() * 100 >= settings.percentage:
                return None
            return self._write(settings, invocation)
        except Exception as exc:  # capture must never fail the inference
            logger.warning(
                "data capture of endpoint %s failed, the inference is answered anyway: %s",
                invocation.endpoint,
                exc,
            )
            return None

    def _write(self, settings: CaptureSettings, invocation: Invocation) -> str:
        now = self._clock().astimezone(timezone.utc)
        capture_data: dict[str, Any] = {}
        if settings.capture_input:
            capture_data["endpointInput"] = settings.encode(
                invocation.request, invocation.request_type, "INPUT"
            )
        if settings.capture_output:
            capture_data["endpointOutput"] = settings.encode(
                invocation.response, invocation.response_type, "OUTPUT"
            )
        metadata = {"eventId": str(uuid.uuid4()), "inferenceTime": f"{now:%Y-%m-%dT%H:%M:%SZ}"}
        if invocation.inference_id:
            metadata["inferenceId"] = invocation.inference_id
        record = {
            "captureData": capture_data,
            "eventMetadata": metadata,
            "eventVersion": EVENT_VERSION,
        }
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode("utf-8")
        name = f"{now:%M-%S}-{now.microsecond // 1000:03d}-{uuid.uuid4().hex}.jsonl"
        uri = "/".join(
            (
                settings.destination,
                invocation.endpoint,
                invocation.variant,
                f"{now:%Y/%m/%d/%H}",
                name,
            )
        )
        self.store.put_bytes(uri, line)  # atomic, and never over another file
        return uri


def variant_name(endpoint_config: Mapping[str, Any] | None) -> str:
    """The (first) production variant's name of an endpoint configuration."""
    variants = (endpoint_config or {}).get("ProductionVariants") or [{}]
    return str(variants[0].get("VariantName") or DEFAULT_VARIANT)


def decode_capture(entry: Mapping[str, Any]) -> bytes:
    """Return the bytes one side of ``captureData`` recorded (for readers and tests)."""
    data = str(entry["data"])
    if entry.get("encoding") == "BASE64":
        try:
            return base64.b64decode(data, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"captured data is not valid base64: {exc}") from exc
    return data.encode("utf-8")


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


__all__ = [
    "CaptureSettings",
    "DataCapture",
    "Invocation",
    "check_data_capture_config",
    "decode_capture",
    "variant_name",
]
