"""A Distributed Map run by AWS's rules: item sources, batches, tolerated failures, results.

Pure functions over an S3-style client (``get_object``, ``list_objects_v2``, ``put_object``;
the local runtime passes the local store's, ``workflow.local.clients.LocalS3``). The interpreter
seam (``workflow.local.interpreter.distributed_map``) evaluates the state's fields and runs the
child executions; this module owns what AWS documents about the data:

- ``read_items``: ``ItemReader`` with ``s3:getObject`` (``ReaderConfig.InputType`` JSON, JSONL,
  CSV, MANIFEST) or ``s3:listObjectsV2``, then ``MaxItems``
  (https://docs.aws.amazon.com/step-functions/latest/dg/input-output-itemreader.html);
- ``make_batches``: ``ItemBatcher``
  (https://docs.aws.amazon.com/step-functions/latest/dg/input-output-itembatcher.html);
- ``exceeds_tolerance``: ``ToleratedFailureCount``/``ToleratedFailurePercentage``
  (https://docs.aws.amazon.com/step-functions/latest/dg/state-map-distributed.html);
- ``transform_results`` and ``write_results``: ``ResultWriter``
  (https://docs.aws.amazon.com/step-functions/latest/dg/input-output-resultwriter.html).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

ITEM_READER_FAILED: Final = "States.ItemReaderFailed"
RESULT_WRITER_FAILED: Final = "States.ResultWriterFailed"
EXCEEDED: Final = "States.ExceedToleratedFailureThreshold"
EXCEEDED_CAUSE: Final = "The specified tolerated failure threshold was exceeded"
CSV_DELIMITERS: Final[dict[str, str]] = {
    "COMMA": ",",
    "PIPE": "|",
    "SEMICOLON": ";",
    "SPACE": " ",
    "TAB": "\t",
}
INPUT_TYPES: Final = ("CSV", "JSON", "JSONL", "MANIFEST")
TRANSFORMATIONS: Final = ("NONE", "COMPACT", "FLATTEN")
OUTPUT_TYPES: Final = ("JSON", "JSONL")
# AWS: a batch holds at most 256 KiB (MaxInputBytesPerBatch's upper bound).
MAX_BATCH_BYTES: Final = 256 * 1024


class S3Like(Protocol):
    """The S3 calls a map run makes (boto3's names and shapes)."""

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        """Return ``{"Body": <stream>}``."""

    def list_objects_v2(self, Bucket: str, Prefix: str = "", **kwargs: Any) -> dict[str, Any]:
        """Return one page of ``Contents``."""

    def put_object(self, Bucket: str, Key: str, Body: Any = b"") -> dict[str, Any]:
        """Write an object."""


class MapRunFailure(Exception):
    """The map run fails with an AWS error name (``States.ItemReaderFailed``, ...) and cause."""

    def __init__(self, error: str, cause: str) -> None:
        super().__init__(f"{error}: {cause}")
        self.error = error
        self.cause = cause


@dataclass(frozen=True)
class ReaderSpec:
    """``ItemReader.ReaderConfig`` once evaluated (``MaxItems`` resolved)."""

    input_type: str | None = None
    csv_header_location: str = "FIRST_ROW"
    csv_headers: tuple[str, ...] = ()
    csv_delimiter: str = "COMMA"
    max_items: int | None = None


@dataclass
class ChildRecord:
    """One child workflow execution as ``ResultWriter`` reports it (Transformation NONE)."""

    arn: str
    name: str
    state_machine_arn: str
    input: Any
    status: str
    start_date: str
    stop_date: str | None = None
    output: Any = None
    error: str | None = None
    cause: str | None = None
    items: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """Return the record AWS writes for this execution (its input and output as JSON)."""
        record: dict[str, Any] = {
            "ExecutionArn": self.arn,
            "Input": json.dumps(self.input, separators=(",", ":")),
            "InputDetails": {"Included": True},
            "Name": self.name,
        }
        if self.status == "SUCCEEDED":
            record["Output"] = json.dumps(self.output, separators=(",", ":"))
            record["OutputDetails"] = {"Included": True}
        else:
            if self.error is not None:
                record["Error"] = self.error
            if self.cause is not None:
                record["Cause"] = self.cause
        record.update(
            {
                "RedriveCount": 0,
                "StartDate": self.start_date,
                "StateMachineArn": self.state_machine_arn,
                "Status": self.status,
            }
        )
        if self.stop_date is not None:
            record["StopDate"] = self.stop_date
        return record


# -- ItemReader ---------------------------------------------------------------------------------
def read_items(
    s3: S3Like | None, action: str, parameters: Mapping[str, Any], spec: ReaderSpec
) -> list[Any]:
    """Return the items an ``ItemReader`` gives, ``MaxItems`` applied.

    Raises:
        MapRunFailure: ``States.ItemReaderFailed`` (no local S3, a missing object, content that
            is not of the declared ``InputType``).
    """
    if s3 is None:
        raise MapRunFailure(
            ITEM_READER_FAILED,
            "the engine has no local S3 store to read the ItemReader from; create the engine "
            "with LocalEngine(s3=LocalS3(LocalStore(root))) or run it with the local runtime",
        )
    bucket = _text_param(parameters, "Bucket")
    if action == "listObjectsV2":
        items = _list_objects(s3, bucket, str(parameters.get("Prefix", "")))
    elif action == "getObject":
        key = _text_param(parameters, "Key")
        content = _get(s3, bucket, key)
        items = _parse_object(s3, content, spec, f"s3://{bucket}/{key}")
    else:
        raise MapRunFailure(
            ITEM_READER_FAILED,
            f"ItemReader Resource arn:aws:states:::s3:{action} is not one AWS supports; use "
            "s3:getObject or s3:listObjectsV2",
        )
    if spec.max_items:
        items = items[: spec.max_items]
    return items


def _text_param(parameters: Mapping[str, Any], name: str) -> str:
    value = parameters.get(name)
    if not isinstance(value, str) or not value:
        raise MapRunFailure(
            ITEM_READER_FAILED,
            f"ItemReader Parameters.{name} = {value!r} must be a non-empty string",
        )
    return value


def _get(s3: S3Like, bucket: str, key: str) -> bytes:
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    except Exception as exc:
        raise MapRunFailure(
            ITEM_READER_FAILED, f"cannot read s3://{bucket}/{key} from the local store ({exc})"
        ) from exc
    data = body.read()
    return data if isinstance(data, bytes) else str(data).encode()


def _list_objects(s3: S3Like, bucket: str, prefix: str) -> list[Any]:
    items: list[Any] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"ContinuationToken": token} if token else {}
        page = s3.list_objects_v2(Bucket=bucket, Prefix=prefix, **kwargs)
        for entry in page.get("Contents", []):
            modified = entry.get("LastModified")
            items.append(
                {
                    "Etag": entry.get("ETag", ""),
                    "Key": entry["Key"],
                    # AWS gives LastModified as epoch seconds in the item.
                    "LastModified": int(modified.timestamp())
                    if hasattr(modified, "timestamp")
                    else modified,
                    "Size": entry.get("Size", 0),
                    "StorageClass": entry.get("StorageClass", "STANDARD"),
                }
            )
        token = page.get("NextContinuationToken")
        if not page.get("IsTruncated") or not token:
            return items


def _parse_object(s3: S3Like, content: bytes, spec: ReaderSpec, uri: str) -> list[Any]:
    kind = spec.input_type or "JSON"
    if kind not in INPUT_TYPES:
        raise MapRunFailure(
            ITEM_READER_FAILED,
            f"ItemReader InputType {kind} is not read locally (the kit has no Parquet reader); "
            "store the items as JSON, JSONL or CSV for local runs",
        )
    text = content.decode("utf-8-sig")
    if kind == "JSON":
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise MapRunFailure(ITEM_READER_FAILED, f"{uri} is not JSON ({exc})") from exc
        if not isinstance(value, list):
            raise MapRunFailure(ITEM_READER_FAILED, "Attempting to map over non-iterable node.")
        return value
    if kind == "JSONL":
        try:
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError as exc:
            raise MapRunFailure(ITEM_READER_FAILED, f"{uri} is not JSON Lines ({exc})") from exc
    if kind == "CSV":
        return _csv_rows(text, spec)
    return _manifest_rows(s3, text, uri)


def _csv_rows(text: str, spec: ReaderSpec) -> list[Any]:
    rows = list(csv.reader(io.StringIO(text), delimiter=CSV_DELIMITERS[spec.csv_delimiter]))
    if spec.csv_header_location == "GIVEN":
        headers = list(spec.csv_headers)
    else:
        headers, rows = (rows[0], rows[1:]) if rows else ([], [])
    if len(set(headers)) < len(headers):
        raise MapRunFailure(ITEM_READER_FAILED, "CSV headers cannot contain duplicates.")
    # Every value is a string, as AWS reads CSV; a short row gets "" for its missing columns.
    return [
        {header: row[i] if i < len(row) else "" for i, header in enumerate(headers)}
        for row in rows
        if row
    ]


def _manifest_rows(s3: S3Like, text: str, uri: str) -> list[Any]:
    """Rows of the CSV files an S3 Inventory ``manifest.json`` lists, named by ``fileSchema``."""
    try:
        manifest = json.loads(text)
        schema = [name.strip() for name in manifest["fileSchema"].split(",")]
        bucket = str(manifest["destinationBucket"]).rsplit(":", 1)[-1]
        files = manifest["files"]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise MapRunFailure(
            ITEM_READER_FAILED,
            f"{uri} is not an S3 Inventory manifest.json (needs fileSchema, destinationBucket "
            f"and files): {exc}",
        ) from exc
    items: list[Any] = []
    for entry in files:
        data = _get(s3, bucket, str(entry["key"]))
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        for row in csv.reader(io.StringIO(data.decode("utf-8"))):
            if row:
                items.append(dict(zip(schema, row, strict=False)))
    return items


# -- ItemBatcher --------------------------------------------------------------------------------
def make_batches(
    items: Sequence[Any],
    max_items: int | None,
    max_bytes: int | None,
    batch_input: Any = None,
) -> list[dict[str, Any]]:
    """Group items into child inputs ``{"Items": [...], "BatchInput": ...}``.

    A batch closes when it holds ``max_items`` items or when one more item would make the
    child input larger than ``max_bytes`` (at most 256 KiB, AWS's bound).
    """
    limit_bytes = min(max_bytes or MAX_BATCH_BYTES, MAX_BATCH_BYTES)
    batches: list[dict[str, Any]] = []
    current: list[Any] = []

    def child_input(batch: list[Any]) -> dict[str, Any]:
        value: dict[str, Any] = {"Items": batch}
        if batch_input is not None:
            value["BatchInput"] = batch_input
        return value

    for item in items:
        candidate = [*current, item]
        too_big = len(json.dumps(child_input(candidate)).encode()) > limit_bytes
        if current and (too_big or (max_items is not None and len(current) >= max_items)):
            batches.append(child_input(current))
            candidate = [item]
        current = candidate
    if current:
        batches.append(child_input(current))
    return batches


# -- Tolerated failures -------------------------------------------------------------------------
def exceeds_tolerance(
    failed_items: int, total_items: int, count: int | None, percentage: float | None
) -> bool:
    """Whether failed items exceed ``ToleratedFailureCount`` or ``ToleratedFailurePercentage``.

    Both default to 0: a single failed item fails the map run.
    """
    if failed_items == 0:
        return False
    over_count = failed_items > (count or 0)
    over_percentage = total_items > 0 and 100.0 * failed_items / total_items > (percentage or 0)
    if count is not None and percentage is None:
        return over_count
    if percentage is not None and count is None:
        return over_percentage
    return over_count or over_percentage


# -- ResultWriter -------------------------------------------------------------------------------
def transform_results(records: Sequence[ChildRecord], transformation: str) -> list[Any]:
    """Return the map's results in a ``WriterConfig.Transformation``.

    COMPACT and FLATTEN give each child's output (FLATTEN splices an array output); a child
    that did not succeed is given unchanged, its record as with NONE.
    """
    results: list[Any] = []
    for record in records:
        if transformation == "NONE" or record.status != "SUCCEEDED":
            results.append(record.describe())
        elif transformation == "FLATTEN" and isinstance(record.output, list):
            results.extend(record.output)
        else:
            results.append(record.output)
    return results


def write_results(
    s3: S3Like | None,
    bucket: str,
    prefix: str,
    map_run_arn: str,
    by_status: Mapping[str, Sequence[ChildRecord]],
    transformation: str,
    output_type: str,
) -> dict[str, Any]:
    """Write ``manifest.json`` and the ``<STATUS>_0.json`` files; return the map's output.

    Keys are ``<Prefix>/<map run id>/...``; the output is ``{"MapRunArn", "ResultWriterDetails":
    {"Bucket", "Key"}}`` with ``Key`` the manifest's.

    Raises:
        MapRunFailure: ``States.ResultWriterFailed`` (no local S3, an object exists already).
    """
    if s3 is None:
        raise MapRunFailure(
            RESULT_WRITER_FAILED,
            "the engine has no local S3 store to write the ResultWriter files to; create the "
            "engine with LocalEngine(s3=LocalS3(LocalStore(root)))",
        )
    base = f"{prefix.rstrip('/')}/" if prefix else ""
    base += map_run_arn.rsplit(":", 1)[-1] + "/"
    files: dict[str, list[dict[str, Any]]] = {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
    for status in ("SUCCEEDED", "FAILED", "PENDING"):
        records = by_status.get(status) or []
        if not records:
            continue
        values = transform_results(records, "NONE" if status != "SUCCEEDED" else transformation)
        if output_type == "JSONL":
            body = "".join(json.dumps(v, separators=(",", ":")) + "\n" for v in values).encode()
        else:
            body = json.dumps(values, separators=(",", ":")).encode()
        key = f"{base}{status}_0.json"
        _put(s3, bucket, key, body)
        files[status].append({"Key": key, "Size": len(body)})
    manifest = {"DestinationBucket": bucket, "MapRunArn": map_run_arn, "ResultFiles": files}
    manifest_key = f"{base}manifest.json"
    _put(s3, bucket, manifest_key, json.dumps(manifest, indent=2).encode())
    return {
        "MapRunArn": map_run_arn,
        "ResultWriterDetails": {"Bucket": bucket, "Key": manifest_key},
    }


def _put(s3: S3Like, bucket: str, key: str, body: bytes) -> None:
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    except Exception as exc:
        raise MapRunFailure(
            RESULT_WRITER_FAILED, f"cannot write s3://{bucket}/{key} to the local store ({exc})"
        ) from exc
