"""Local ``sagemaker:createTransformJob(.sync)``: a batch transform through a ``serve`` process.

The job extracts the model into ``<root>/jobs/<job>/model``, starts the image's ``serve`` on a
free 127.0.0.1 port, waits for ``/ping``, reads ``GET /execution-parameters`` for what the request
leaves open (``BatchStrategy``, ``MaxPayloadInMB``), then sends every object under
``TransformInput.DataSource.S3DataSource.S3Uri``:

- ``SplitType: None`` (the default): one request per object (``SingleRecord``);
- ``SplitType: Line``: one request per line (``SingleRecord``) or as many lines as fit into
  ``MaxPayloadInMB`` (``MultiRecord``).

Each response goes to ``<S3OutputPath>/<path relative to the input prefix>.out`` in the store
(``AssembleWith: Line`` adds a newline after each record). An object larger than
``MaxPayloadInMB`` or an error answer fails the job, as in SageMaker. The server is stopped at
the end, whatever happens.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from workflow.http import HttpError, get_json, post_bytes
from workflow.local.sagemaker import (
    MODELS,
    TASK_FAILED,
    LocalSageMaker,
    ServeProcess,
    extract_model,
    model_container,
    model_environment,
    now_ms,
    require_param,
    server_key,
    task_failed,
    validate_s3,
)
from workflow.local.sagemaker_docker import image_target, start_server
from workflow.local.store import StoreError, parse_s3_uri

logger = logging.getLogger(__name__)

KIND = "transform-jobs"
DEFAULT_PAYLOAD_MB = 6
INVOCATION_TIMEOUT = 600.0


@dataclass
class _Job:
    name: str
    thread: threading.Thread
    cancelled: threading.Event = field(default_factory=threading.Event)
    server: ServeProcess | None = None
    key: str = ""


class TransformJobHandler:
    """``sagemaker:createTransformJob`` with the ``.sync`` poll and cancel hooks."""

    def __init__(self, sm: LocalSageMaker) -> None:
        self.sm = sm
        self._jobs: dict[str, _Job] = {}

    def start(self, params: Mapping[str, Any], ctx: Any) -> dict[str, Any]:
        """Record the job and run it in a thread; return ``{"TransformJobArn"}``."""
        action = "CreateTransformJob"
        name = str(require_param(params, "TransformJobName", action))
        model_name = str(require_param(params, "ModelName", action))
        transform_input = require_param(params, "TransformInput", action)
        transform_output = require_param(params, "TransformOutput", action)
        source = (transform_input.get("DataSource") or {}).get("S3DataSource") or {}
        validate_s3(source.get("S3Uri"), "TransformInput.DataSource.S3DataSource.S3Uri")
        validate_s3(transform_output.get("S3OutputPath"), "TransformOutput.S3OutputPath")
        if self.sm.records.get(MODELS, model_name) is None:
            raise task_failed(
                "SageMaker.AmazonSageMakerException",
                f'Could not find model "{self.sm.settings.arn("model", model_name)}".',
            )
        arn = self.sm.settings.arn("transform-job", name)
        record = {
            **{k: v for k, v in params.items() if k != "Tags"},
            "TransformJobArn": arn,
            "TransformJobStatus": "InProgress",
            "CreationTime": now_ms(),
            "CreatedBy": getattr(ctx, "execution_arn", None),
        }
        self.sm.records.create(KIND, name, record, "transform job")
        thread = threading.Thread(
            target=self._run, args=(name, dict(params)), name=f"transform-{name}", daemon=True
        )
        job = _Job(name=name, thread=thread)
        self._jobs[name] = job
        thread.start()
        return {"TransformJobArn": arn}

    def poll(self, submitted: Any, ctx: Any) -> dict[str, Any] | None:
        """Return ``None`` while running, the Describe dict when completed; fail otherwise."""
        name = self.sm.records.stored_name(KIND, _name_of(submitted))
        job = self._jobs.get(name)
        if job is not None and job.thread.is_alive():
            return None
        record = self.sm.records.get(KIND, name)
        if record is None:
            raise task_failed(TASK_FAILED, f"transform job {name} is unknown.")
        status = record.get("TransformJobStatus")
        if status == "Completed":
            return describe_transform_job(record)
        if status == "InProgress":
            raise task_failed(
                TASK_FAILED,
                f"transform job {name} was started by another process that no longer runs it.",
            )
        raise task_failed(TASK_FAILED, str(record.get("FailureReason") or status))

    def cancel(self, submitted: Any, ctx: Any) -> None:
        """Stop the job (the execution stopped or the task timed out)."""
        job = self._jobs.get(self.sm.records.stored_name(KIND, _name_of(submitted)))
        if job is None:
            return
        job.cancelled.set()
        if job.server is not None:
            job.server.stop(self.sm.settings.stop_grace_seconds)
        job.thread.join(timeout=30)

    def stop_all(self) -> None:
        """Stop every job still running."""
        for name in list(self._jobs):
            self.cancel({"TransformJobArn": name}, None)

    # -- the job ------------------------------------------------------------------------------
    def _run(self, name: str, params: dict[str, Any]) -> None:
        job = self._jobs[name]
        started = now_ms()
        self.sm.records.update(KIND, name, TransformStartTime=started)
        try:
            count = self._transform(job, params)
        except Exception as exc:
            reason = getattr(exc, "cause", None) or str(exc)
            if job.cancelled.is_set():
                status, reason = "Stopped", f"Stopped: {reason}"
            else:
                status = "Failed"
            logger.error("transform job %s %s: %s", name, status.lower(), reason)
            if job.server is not None:
                job.server.stop(self.sm.settings.stop_grace_seconds)
            self.sm.records.update(
                KIND,
                name,
                TransformJobStatus=status,
                FailureReason=reason[:1024],
                TransformEndTime=now_ms(),
            )
            return
        server, job.server = job.server, None
        self.sm.records.update(
            KIND,
            name,
            TransformJobStatus="Completed",
            TransformEndTime=now_ms(),
            LocalRecordCount=count,
        )
        # The job is done once its output is written; the server is parked for an endpoint of
        # the same model, or stopped in the background (gunicorn takes seconds to shut down).
        if server is not None and not self.sm.warm.park(job.key, server):
            threading.Thread(
                target=server.stop, args=(self.sm.settings.stop_grace_seconds,), daemon=True
            ).start()

    def _transform(self, job: _Job, params: Mapping[str, Any]) -> int:
        model = self.sm.records.get(MODELS, str(params["ModelName"])) or {}
        container = model_container(model)
        code_dir = image_target(self.sm, str(container.get("Image")))
        base = self.sm.store.folder("jobs") / job.name
        if base.exists():
            raise RuntimeError(f"the local job folder {base} exists already; use a new job name")
        model_dir = base / "model"
        if container.get("ModelDataUrl"):
            extract_model(self.sm.store, str(container["ModelDataUrl"]), model_dir)
        else:
            model_dir.mkdir(parents=True)
        environment = {**model_environment(model), **dict(params.get("Environment") or {})}
        environment["SAGEMAKER_BATCH"] = "true"
        for key, env_name in (
            ("MaxPayloadInMB", "SAGEMAKER_MAX_PAYLOAD_IN_MB"),
            ("BatchStrategy", "SAGEMAKER_BATCH_STRATEGY"),
            ("MaxConcurrentTransforms", "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS"),
        ):
            if params.get(key) is not None:
                value = params[key]
                environment[env_name] = (
                    "SINGLE_RECORD"
                    if value == "SingleRecord"
                    else "MULTI_RECORD"
                    if value == "MultiRecord"
                    else str(value)
                )
        job.key = server_key(code_dir, container.get("ModelDataUrl"), environment)
        job.server = start_server(self.sm, code_dir, base, base / "serve.log", environment)
        problem = job.server.wait_ready(self.sm.settings.ping_timeout_seconds, job.cancelled.is_set)
        if problem is not None:
            raise RuntimeError(f"ClientError: {problem}")
        defaults = get_json(job.server.url + "/execution-parameters") or {}
        strategy = params.get("BatchStrategy") or defaults.get("BatchStrategy") or "MultiRecord"
        strategy = {"SINGLE_RECORD": "SingleRecord", "MULTI_RECORD": "MultiRecord"}.get(
            strategy, strategy
        )
        payload_mb = float(
            params.get("MaxPayloadInMB") or defaults.get("MaxPayloadInMB") or DEFAULT_PAYLOAD_MB
        )
        limit = int(payload_mb * 1024 * 1024) if payload_mb > 0 else None
        transform_input = params["TransformInput"]
        output = params["TransformOutput"]
        content_type = str(transform_input.get("ContentType") or "application/octet-stream")
        accept = str(output.get("Accept") or "application/json")
        split = transform_input.get("SplitType") or "None"
        joiner = b"\n" if output.get("AssembleWith") == "Line" else b""
        prefix = validate_s3(transform_input["DataSource"]["S3DataSource"]["S3Uri"], "S3Uri")
        output_path = validate_s3(output["S3OutputPath"], "TransformOutput.S3OutputPath")
        objects = self.sm.store.list(prefix)
        if not objects:
            raise RuntimeError(
                f'ClientError: No S3 objects found under S3 URL "{prefix}"; check '
                "TransformInput's S3Uri."
            )
        _, prefix_key = parse_s3_uri(prefix)
        base_key = prefix_key.rsplit("/", 1)[0] + "/" if "/" in prefix_key else ""
        count = 0
        for uri in objects:
            if job.cancelled.is_set():
                raise RuntimeError("the transform job was stopped")
            data = self.sm.store.get_bytes(uri)
            records = _split(data, split, strategy, limit)
            answers = []
            for record in records:
                if limit is not None and len(record) > limit:
                    raise RuntimeError(
                        f"ClientError: {uri} has {len(record)} bytes, more than MaxPayloadInMB "
                        f"({payload_mb:g} MB); raise MaxPayloadInMB or split the input."
                    )
                try:
                    answers.append(
                        post_bytes(
                            job.server.url + "/invocations",
                            record,
                            {"Content-Type": content_type, "Accept": accept},
                            INVOCATION_TIMEOUT,
                        )
                    )
                except HttpError as exc:
                    raise RuntimeError(f"ClientError: {uri}: {exc}") from exc
                count += 1
            body = b"".join(a + joiner for a in answers) if joiner else b"".join(answers)
            relative = parse_s3_uri(uri)[1][len(base_key) :]
            out_uri = output_path.rstrip("/") + "/" + relative + ".out"
            try:
                self.sm.store.put_bytes(out_uri, body)
            except StoreError as exc:
                raise RuntimeError(f"ClientError: {exc}") from exc
        logger.info("transform job %s: %d records in %d objects", job.name, count, len(objects))
        return count


def _split(data: bytes, split: str, strategy: str, limit: int | None) -> list[bytes]:
    if split != "Line":
        return [data]
    lines = [line for line in data.split(b"\n") if line.strip()]
    if strategy == "SingleRecord" or limit is None:
        return lines
    batches: list[bytes] = []
    current: list[bytes] = []
    size = 0
    for line in lines:
        if current and size + len(line) + 1 > limit:
            batches.append(b"\n".join(current))
            current, size = [], 0
        current.append(line)
        size += len(line) + 1
    if current:
        batches.append(b"\n".join(current))
    return batches


def describe_transform_job(record: Mapping[str, Any]) -> dict[str, Any]:
    """Turn a record into a DescribeTransformJob-shaped dict."""
    return {k: v for k, v in record.items() if k not in ("CreatedBy", "LocalRecordCount")}


def _name_of(submitted: Any) -> str:
    arn = str((submitted or {}).get("TransformJobArn", ""))
    return arn.rsplit("/", 1)[-1] if "/" in arn else arn
