"""Local models, endpoint configs and endpoints (``serve`` processes on 127.0.0.1).

- ``CreateModel`` / ``CreateEndpointConfig`` record the request under
  ``<root>/sagemaker/{models,endpoint-configs}/``; a name in use is an error, as in AWS.
- ``CreateEndpoint`` records the endpoint as ``Creating`` and, in a thread, extracts the model's
  ``model.tar.gz`` into ``<root>/endpoints/<name>/<deployment>/model``, starts the image's ``serve``
  on a free port and marks the endpoint ``InService`` once ``/ping`` answers (``Failed`` with the
  log's tail if the process dies or never answers).
- ``UpdateEndpoint`` marks it ``Updating``, starts the new deployment beside the old one, waits for
  its ``/ping``, swaps the record, then stops the old process (in place, no downtime).
- ``DescribeEndpoint`` reads the record (a dead process turns ``InService`` into ``Failed``).

The serving processes run in their own session so that ``--keep-endpoint`` can leave them
running; their pid, port and URL are in the record, so :func:`stop_endpoint` works from another
process (``python -m workflow endpoints stop``).
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from workflow.local.data_capture import check_data_capture_config
from workflow.local.processes import pid_alive, stop_process_group
from workflow.local.sagemaker import (
    SAGEMAKER_ERROR,
    SDK_ERROR,
    LocalSageMaker,
    ServeProcess,
    extract_model,
    model_container,
    model_environment,
    new_id,
    now_ms,
    require_param,
    server_key,
    tail,
    task_failed,
)

logger = logging.getLogger(__name__)

MODELS = "models"
CONFIGS = "endpoint-configs"
ENDPOINTS = "endpoints"
_LOCAL_KEYS = ("Pid", "Port", "Url", "ModelDir", "LogPath", "CreatedBy", "Deployment")


def record_created(
    sm: LocalSageMaker,
    collection: str,
    name: str,
    params: Mapping[str, Any],
    arn_kind: str,
    arn_key: str,
    label: str,
) -> dict[str, Any]:
    """Store a created resource (the request without ``Tags``, its ARN and creation time).

    Returns:
        ``{arn_key: arn}``, the Create* API's answer.

    Raises:
        TaskFailed: When ``name`` exists already (AWS refuses to create it twice).
    """
    arn = sm.settings.arn(arn_kind, name)
    record = {
        **{k: v for k, v in params.items() if k != "Tags"},
        arn_key: arn,
        "CreationTime": now_ms(),
    }
    sm.records.create(collection, name, record, label)
    return {arn_key: arn}


class ModelHandler:
    """``sagemaker:createModel``."""

    def __init__(self, sm: LocalSageMaker) -> None:
        self.sm = sm

    def start(self, params: Mapping[str, Any], ctx: Any) -> dict[str, Any]:
        """Record the model; return ``{"ModelArn"}``."""
        name = str(require_param(params, "ModelName", "CreateModel"))
        container = params.get("PrimaryContainer") or (params.get("Containers") or [None])[0]
        if not container or not container.get("Image"):
            raise task_failed(
                SAGEMAKER_ERROR,
                "CreateModel needs PrimaryContainer.Image; add the image URI to the Parameters.",
            )
        return record_created(self.sm, MODELS, name, params, "model", "ModelArn", "model")


class EndpointConfigHandler:
    """``sagemaker:createEndpointConfig``."""

    def __init__(self, sm: LocalSageMaker) -> None:
        self.sm = sm

    def start(self, params: Mapping[str, Any], ctx: Any) -> dict[str, Any]:
        """Record the endpoint config; its models must exist. Return ``{"EndpointConfigArn"}``."""
        name = str(require_param(params, "EndpointConfigName", "CreateEndpointConfig"))
        variants = require_param(params, "ProductionVariants", "CreateEndpointConfig")
        problem = check_data_capture_config(params.get("DataCaptureConfig"))
        if problem is not None:
            raise task_failed(SAGEMAKER_ERROR, f"CreateEndpointConfig: {problem}.")
        for variant in variants:
            model = str(variant.get("ModelName") or "")
            if self.sm.records.get(MODELS, model) is None:
                raise task_failed(
                    SAGEMAKER_ERROR,
                    f'Could not find model "{self.sm.settings.arn("model", model)}"; create the '
                    "model before its endpoint config.",
                )
        return record_created(
            self.sm, CONFIGS, name, params, "endpoint-config", "EndpointConfigArn",
            "endpoint configuration",
        )  # fmt: skip


class EndpointHandlers:
    """``createEndpoint``, ``updateEndpoint``, ``describeEndpoint`` and ``deleteEndpoint``."""

    def __init__(self, sm: LocalSageMaker) -> None:
        self.sm = sm
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    # -- API ------------------------------------------------------------------------------------
    def create(self, params: Mapping[str, Any], ctx: Any) -> dict[str, Any]:
        """Start deploying; return ``{"EndpointArn"}`` while the endpoint is ``Creating``."""
        name = str(require_param(params, "EndpointName", "CreateEndpoint"))
        config_name = str(require_param(params, "EndpointConfigName", "CreateEndpoint"))
        self._config(config_name)
        arn = self.sm.settings.arn("endpoint", name)
        created = now_ms()
        record = {
            "EndpointName": name,
            "EndpointArn": arn,
            "EndpointConfigName": config_name,
            "EndpointStatus": "Creating",
            "CreationTime": created,
            "LastModifiedTime": created,
            "CreatedBy": getattr(ctx, "execution_arn", None),
        }
        self.sm.records.create(ENDPOINTS, name, record, "endpoint")
        self._deploy_async(name, config_name, updating=False)
        return {"EndpointArn": arn}

    def update(self, params: Mapping[str, Any], ctx: Any) -> dict[str, Any]:
        """Start an in-place update; return ``{"EndpointArn"}`` while it is ``Updating``."""
        name = str(require_param(params, "EndpointName", "UpdateEndpoint"))
        config_name = str(require_param(params, "EndpointConfigName", "UpdateEndpoint"))
        self._config(config_name)
        record = self.sm.records.get(ENDPOINTS, name)
        arn = self.sm.settings.arn("endpoint", name)
        if record is None:
            raise task_failed(SAGEMAKER_ERROR, f'Could not find endpoint "{arn}".')
        status = record.get("EndpointStatus")
        if status in ("Creating", "Updating"):
            raise task_failed(
                SAGEMAKER_ERROR,
                f'Cannot update in-progress endpoint "{arn}" (status {status}); wait until it is '
                "InService.",
            )
        self.sm.records.update(
            ENDPOINTS,
            name,
            EndpointStatus="Updating",
            FailureReason=None,
            PendingEndpointConfigName=config_name,
        )
        self._deploy_async(name, config_name, updating=True)
        return {"EndpointArn": arn}

    def describe(self, params: Mapping[str, Any], ctx: Any) -> dict[str, Any]:
        """Return the DescribeEndpoint dict, or fail like AWS for a missing endpoint."""
        name = str(params.get("EndpointName") or "")
        record = self.sm.records.get(ENDPOINTS, name) if name else None
        if record is None:
            raise task_failed(
                SDK_ERROR,
                f'Could not find endpoint "{self.sm.settings.arn("endpoint", name)}".',
            )
        return describe_endpoint(self._refresh(record))

    def delete(self, params: Mapping[str, Any], ctx: Any) -> dict[str, Any]:
        """Stop the endpoint's process and remove its record."""
        name = str(require_param(params, "EndpointName", "DeleteEndpoint"))
        if not stop_endpoint(self.sm, name, grace=self.sm.settings.stop_grace_seconds):
            raise task_failed(
                SAGEMAKER_ERROR,
                f'Could not find endpoint "{self.sm.settings.arn("endpoint", name)}".',
            )
        return {}

    # -- deployment -------------------------------------------------------------------------------
    def wait_idle(self, timeout: float | None = None) -> None:
        """Wait until no deployment thread runs (tests, shutdown)."""
        with self._lock:
            threads = list(self._threads.values())
        for thread in threads:
            thread.join(timeout)

    def _config(self, config_name: str) -> dict[str, Any]:
        record = self.sm.records.get(CONFIGS, config_name)
        if record is None:
            raise task_failed(
                SAGEMAKER_ERROR,
                f'Could not find endpoint configuration "'
                f'{self.sm.settings.arn("endpoint-config", config_name)}"; create it first.',
            )
        return record

    def _deploy_async(self, name: str, config_name: str, updating: bool) -> None:
        thread = threading.Thread(
            target=self._deploy,
            args=(name, config_name, updating),
            name=f"endpoint-{name}",
            daemon=True,
        )
        with self._lock:
            self._threads[name] = thread
        thread.start()

    def _deploy(self, name: str, config_name: str, updating: bool) -> None:
        try:
            server, deployment, model_dir = self._start_server(name, config_name)
        except Exception as exc:
            reason = getattr(exc, "cause", None) or str(exc)
            self._fail(name, reason, updating)
            return
        problem = server.wait_ready(self.sm.settings.ping_timeout_seconds)
        if problem is not None:
            server.stop(self.sm.settings.stop_grace_seconds)
            self._fail(name, problem, updating)
            return
        old = self.sm.records.get(ENDPOINTS, name) or {}
        self.sm.records.update(
            ENDPOINTS,
            name,
            EndpointStatus="InService",
            EndpointConfigName=config_name,
            PendingEndpointConfigName=None,
            FailureReason=None,
            Pid=server.pid,
            Port=server.port,
            Url=server.url,
            ModelDir=str(model_dir),
            LogPath=str(server.log_path),
            Deployment=deployment,
        )
        logger.info("endpoint %s is InService at %s", name, server.url)
        server.detach()  # the record owns the process now
        old_pid = old.get("Pid")
        if updating and isinstance(old_pid, int) and old_pid != server.pid:
            stop_process_group(old_pid, self.sm.settings.stop_grace_seconds)
            _remove_deployment(old)

    def _start_server(self, name: str, config_name: str) -> tuple[ServeProcess, str, Path]:
        config = self._config(config_name)
        variants = config.get("ProductionVariants") or []
        if not variants:
            raise task_failed(SAGEMAKER_ERROR, f"endpoint config {config_name} has no variants.")
        model_name = str(variants[0].get("ModelName"))
        model = self.sm.records.get(MODELS, model_name)
        if model is None:
            raise task_failed(SAGEMAKER_ERROR, f'Could not find model "{model_name}".')
        container = model_container(model)
        code_dir = self.sm.image_dir(str(container.get("Image")))
        model_data = container.get("ModelDataUrl")
        environment = model_environment(model)
        deployment = f"{now_ms()}-{new_id()}"
        warm = self.sm.warm.adopt(server_key(code_dir, model_data, environment))
        if warm is not None:
            return warm, deployment, warm.log_path.parent / "model"
        base = self.sm.store.folder("endpoints") / name / deployment
        model_dir = base / "model"
        if model_data:
            extract_model(self.sm.store, str(model_data), model_dir)
        else:
            model_dir.mkdir(parents=True)
        server = ServeProcess.start(
            self.sm.settings, code_dir, base, base / "serve.log", environment
        )
        return server, deployment, model_dir

    def _fail(self, name: str, reason: str, updating: bool) -> None:
        logger.error("endpoint %s failed: %s", name, reason)
        self.sm.records.update(
            ENDPOINTS,
            name,
            EndpointStatus="Failed",
            FailureReason=reason[:1024],
            PendingEndpointConfigName=None,
        )

    def _refresh(self, record: dict[str, Any]) -> dict[str, Any]:
        pid = record.get("Pid")
        if (
            record.get("EndpointStatus") == "InService"
            and isinstance(pid, int)
            and not pid_alive(pid)
        ):
            log = Path(str(record.get("LogPath", "")))
            return self.sm.records.update(
                ENDPOINTS,
                str(record["EndpointName"]),
                EndpointStatus="Failed",
                FailureReason=f"the serving process {pid} exited; see {log}: {tail(log)}",
            )
        return record


def describe_endpoint(record: Mapping[str, Any]) -> dict[str, Any]:
    """Turn a record into a DescribeEndpoint-shaped dict."""
    describe = {
        k: v
        for k, v in record.items()
        if k not in _LOCAL_KEYS and k != "PendingEndpointConfigName" and v is not None
    }
    if record.get("Url"):
        describe["ProductionVariants"] = [
            {
                "VariantName": "AllTraffic",
                "CurrentInstanceCount": 1,
                "DesiredInstanceCount": 1,
            }
        ]
    return describe


def endpoint_records(sm: LocalSageMaker) -> list[dict[str, Any]]:
    """Return every local endpoint record, with ``Running`` telling whether its process lives."""
    records = []
    for record in sm.records.all(ENDPOINTS):
        pid = record.get("Pid")
        record["Running"] = isinstance(pid, int) and pid_alive(pid)
        records.append(record)
    return records


def stop_endpoint(sm: LocalSageMaker, name: str, grace: float = 10.0) -> bool:
    """Stop an endpoint's serving process and remove its record.

    Returns:
        ``False`` when no such endpoint is recorded.
    """
    record = sm.records.get(ENDPOINTS, name)
    if record is None:
        return False
    pid = record.get("Pid")
    if isinstance(pid, int) and pid_alive(pid) and _is_serve(pid):
        stop_process_group(pid, grace)
    sm.records.delete(ENDPOINTS, name)
    _remove_deployment(record)
    return True


def _is_serve(pid: int) -> bool:
    """Guard against a reused pid: the process must be a ``serve`` program."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc (macOS): trust the record
    return any(part.endswith(b"serve") for part in cmdline)


def _remove_deployment(record: Mapping[str, Any]) -> None:
    """Remove the extracted model of a deployment (kept when it belongs to a transform job)."""
    model_dir = Path(str(record.get("ModelDir") or ""))
    if model_dir.name == "model" and model_dir.parent.parent.parent.name == "endpoints":
        shutil.rmtree(model_dir, ignore_errors=True)
