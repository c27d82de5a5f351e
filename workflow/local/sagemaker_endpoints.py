"""Local models, endpoint configs and endpoints (``serve`` processes on 127.0.0.1).

- ``CreateModel`` / ``CreateEndpointConfig`` record the request under
  ``<root>/sagemaker/{models,endpoint-configs}/``; a name in use is an error, as in AWS.
- ``CreateEndpoint`` records the endpoint as ``Creating`` and, in a thread, extracts the model's
  ``model.tar.gz`` into ``<root>/endpoints/<name>/<deployment>/model``, starts the image's ``serve``
  on a free port and marks the endpoint ``InService`` once ``/ping`` answers (``Failed`` with the
  log's tail if the process dies or never answers).
- The endpoint's ``Url`` is its router (`workflow.local.router`, a process started with the
  endpoint), which forwards each request to the fleets in the record's ``Routes`` by weight and
  records the CloudWatch data points of every invocation; the URL never changes on an update.
- ``UpdateEndpoint`` marks it ``Updating`` and starts the new deployment beside the old one. With
  no ``DeploymentConfig`` it swaps the routes once the new one answers ``/ping`` and stops the
  old process (in place, no downtime); with a blue/green ``DeploymentConfig`` it shifts traffic
  step by step and rolls back on an alarm (`workflow.local.deployment`).
- ``DescribeEndpoint`` reads the record (a dead process turns ``InService`` into ``Failed``).

The serving and router processes run in their own sessions so that ``--keep-endpoint`` can leave
them running; their pids, ports and URLs are in the record, so :func:`stop_endpoint` works from
another process (``python -m workflow endpoints stop``).
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from workflow.local.cloudwatch import LocalCloudWatch
from workflow.local.data_capture import check_data_capture_config
from workflow.local.deployment import BlueGreen, EndpointGoneError, Fleet, check_deployment_config
from workflow.local.endpoint_metrics import metrics_dir
from workflow.local.model_registry import ModelRegistry
from workflow.local.processes import pid_alive, process_cmdline, stop_process_group
from workflow.local.router import RouterProcess, is_router, wait_listening
from workflow.local.sagemaker import (
    CONFIGS,
    ENDPOINTS,
    MODELS,
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
from workflow.local.sagemaker_docker import image_target, remove_containers, start_server

logger = logging.getLogger(__name__)

_LOCAL_KEYS = (
    "Pid", "Port", "Url", "ModelDir", "LogPath", "CreatedBy", "Deployment", "RouterPid",
    "Routes", "ServeUrl", "Pending", "PendingEndpointConfigName", "Container",
)  # fmt: skip


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
    """``sagemaker:createModel``, from an image and artifact or from a model package.

    A container naming ``ModelPackageName`` (a package ARN) takes the image, ``ModelDataUrl``
    and environment of the package's first inference container, looked up in the local
    registry, as SageMaker does:
    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ContainerDefinition.html.
    The record keeps ``ModelPackageName`` beside the resolved values, which the endpoints serve.
    """

    def __init__(self, sm: LocalSageMaker, registry: ModelRegistry | None = None) -> None:
        self.sm = sm
        self.registry = registry

    def start(self, params: Mapping[str, Any], ctx: Any) -> dict[str, Any]:
        """Record the model; return ``{"ModelArn"}``."""
        name = str(require_param(params, "ModelName", "CreateModel"))
        key = "PrimaryContainer" if params.get("PrimaryContainer") else "Containers"
        container = params.get("PrimaryContainer") or (params.get("Containers") or [None])[0]
        if container and container.get("ModelPackageName"):
            container = self._from_package(dict(container))
            resolved = container if key == "PrimaryContainer" else [container]
            params = {**params, key: resolved}
        if not container or not container.get("Image"):
            raise task_failed(
                SAGEMAKER_ERROR,
                "CreateModel needs PrimaryContainer.Image or ModelPackageName; add the image URI "
                "or the model package ARN to the Parameters.",
            )
        return record_created(self.sm, MODELS, name, params, "model", "ModelArn", "model")

    def _from_package(self, container: dict[str, Any]) -> dict[str, Any]:
        """Return ``container`` with the image, artifact and environment of its model package."""
        arn = str(container["ModelPackageName"])
        if self.registry is None:
            raise task_failed(
                SAGEMAKER_ERROR,
                f"CreateModel names model package {arn!r}, but this runtime has no model "
                "registry; create the model from PrimaryContainer.Image instead.",
            )
        package = self.registry.describe_package({"ModelPackageName": arn})
        containers = (package.get("InferenceSpecification") or {}).get("Containers") or [{}]
        source = containers[0]
        resolved = {k: source[k] for k in ("Image", "ModelDataUrl") if source.get(k)}
        environment = {**(source.get("Environment") or {}), **(container.get("Environment") or {})}
        if environment:
            resolved["Environment"] = environment
        return {**container, **resolved}


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
        self._deploy_async(name, config_name, False)
        return {"EndpointArn": arn}

    def update(self, params: Mapping[str, Any], ctx: Any) -> dict[str, Any]:
        """Start an update; return ``{"EndpointArn"}`` while it is ``Updating``.

        With ``DeploymentConfig`` the update is blue/green with traffic shifting and
        auto-rollback (`workflow.local.deployment`); without it, in place.
        """
        name = str(require_param(params, "EndpointName", "UpdateEndpoint"))
        config_name = str(require_param(params, "EndpointConfigName", "UpdateEndpoint"))
        self._config(config_name)
        deployment = params.get("DeploymentConfig")
        problem = check_deployment_config(deployment)
        if problem is not None:
            raise task_failed(SAGEMAKER_ERROR, f"UpdateEndpoint: {problem}.")
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
        changes: dict[str, Any] = {"LastDeploymentConfig": deployment} if deployment else {}
        self.sm.records.update(
            ENDPOINTS,
            name,
            EndpointStatus="Updating",
            FailureReason=None,
            PendingEndpointConfigName=config_name,
            **changes,
        )
        self._deploy_async(name, config_name, True, deployment)
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

    def _deploy_async(self, name: str, *args: Any) -> None:
        """Run :meth:`_deploy` for ``name`` (and its other arguments) in a thread."""
        thread = threading.Thread(
            target=self._deploy,
            args=(name, *args),
            name=f"endpoint-{name}",
            daemon=True,
        )
        with self._lock:
            self._threads[name] = thread
        thread.start()

    def _deploy(
        self,
        name: str,
        config_name: str,
        updating: bool,
        deployment: Mapping[str, Any] | None = None,
    ) -> None:
        grace = self.sm.settings.stop_grace_seconds
        try:  # the router first: its start (~1 s of imports) overlaps the fleet's
            router = self._router(name)
            fleet = self._start_fleet(name, config_name)
        except Exception as exc:
            reason = getattr(exc, "cause", None) or str(exc)
            self._fail(name, reason, updating and bool(deployment))
            return
        problem = fleet.server.wait_ready(self.sm.settings.ping_timeout_seconds)
        if problem is None and not wait_listening(router.port, 10.0):
            problem = f"the endpoint's router did not listen on port {router.port}"
        if problem is not None:
            fleet.server.stop(grace)
            self._fail(name, problem, updating and bool(deployment))
            return
        fleet.server.detach()  # the record owns the process now
        old = self.sm.records.get(ENDPOINTS, name) or {}
        old_pid = old.get("Pid")
        containers = {old_pid: old.get("Container"), fleet.server.pid: fleet.server.container}

        def stop(pid: int) -> None:  # a fleet's process, and its container if it has one
            stop_process_group(pid, grace)
            remove_containers(self.sm.docker, containers.get(pid))

        blue_serves = isinstance(old_pid, int) and pid_alive(old_pid) and bool(old.get("Routes"))
        if updating and deployment and blue_serves:
            summary = (old.get("ProductionVariants") or [None])[0]
            blue = {"Pid": old_pid, "Route": old["Routes"][-1], "Summary": summary}

            def update(**changes: Any) -> dict[str, Any]:
                record = self.sm.records.update_existing(ENDPOINTS, name, **changes)
                if record is None:
                    raise EndpointGoneError(name)
                return record

            if BlueGreen(
                update, blue, fleet, deployment,
                LocalCloudWatch(self.sm.store.root, self.sm.settings.region,
                                self.sm.settings.account_id).state,
                self.sm.settings.deployment_time_scale,
                stop,
                lambda: self.sm.records.get(ENDPOINTS, name) is not None,
            ).run():  # fmt: skip
                _remove_deployment(old)
            else:
                _remove_deployment({"ModelDir": str(fleet.model_dir)})
            return
        if (
            self.sm.records.update_existing(
                ENDPOINTS,
                name,
                EndpointStatus="InService",
                EndpointConfigName=config_name,
                PendingEndpointConfigName=None,
                FailureReason=None,
                Url=router.url,
                Port=router.port,
                RouterPid=router.pid,
                Routes=[fleet.route(1.0)],
                ProductionVariants=[fleet.summary(1.0)],
                **fleet.fields(),
            )
            is None
        ):  # deleted while it deployed: its processes are ours to stop
            fleet.server.stop(grace)
            stop_process_group(router.pid, grace)
            return
        logger.info("endpoint %s is InService at %s", name, router.url)
        if updating and isinstance(old_pid, int) and old_pid != fleet.server.pid:
            stop(old_pid)
            _remove_deployment(old)

    def _router(self, name: str) -> RouterProcess:
        """The endpoint's running router, or a new one (an endpoint's URL never changes)."""
        record = self.sm.records.get(ENDPOINTS, name) or {}
        pid, port = record.get("RouterPid"), record.get("Port")
        if isinstance(pid, int) and isinstance(port, int) and pid_alive(pid) and is_router(pid):
            return RouterProcess(pid=pid, port=port)
        router = RouterProcess.start(
            self.sm.settings.python,
            self.sm.records.path(ENDPOINTS, name),
            metrics_dir(self.sm.store.root, name),
            self.sm.store.folder("endpoints") / name / "router.log",
            self.sm.store.root,
        )
        # Recorded at once, so that deleting the endpoint stops it even if the fleet never starts.
        self.sm.records.update_existing(ENDPOINTS, name, RouterPid=router.pid, Port=router.port)
        return router

    def _start_fleet(self, name: str, config_name: str) -> Fleet:
        config = self._config(config_name)
        variants = config.get("ProductionVariants") or []
        if not variants:
            raise task_failed(SAGEMAKER_ERROR, f"endpoint config {config_name} has no variants.")
        variant = variants[0]
        model_name = str(variant.get("ModelName"))
        model = self.sm.records.get(MODELS, model_name)
        if model is None:
            raise task_failed(SAGEMAKER_ERROR, f'Could not find model "{model_name}".')
        container = model_container(model)
        image = str(container.get("Image"))
        code_dir = image_target(self.sm, image)
        model_data = container.get("ModelDataUrl")
        environment = model_environment(model)
        deployment = f"{now_ms()}-{new_id()}"

        def fleet(server: ServeProcess, model_dir: Path) -> Fleet:
            return Fleet(
                server=server, deployment=deployment, model_dir=model_dir,
                config_name=config_name, variant=str(variant.get("VariantName") or "AllTraffic"),
                image=image, instance_type=str(variant.get("InstanceType") or ""),
                instance_count=int(variant.get("InitialInstanceCount") or 1),
            )  # fmt: skip

        warm = self.sm.warm.adopt(server_key(code_dir, model_data, environment))
        if warm is not None:
            return fleet(warm, warm.log_path.parent / "model")
        base = self.sm.store.folder("endpoints") / name / deployment
        model_dir = base / "model"
        if model_data:
            extract_model(self.sm.store, str(model_data), model_dir)
        else:
            model_dir.mkdir(parents=True)
        server = start_server(self.sm, code_dir, base, base / "serve.log", environment)
        return fleet(server, model_dir)

    def _fail(self, name: str, reason: str, blue_green: bool) -> None:
        """Mark the endpoint ``Failed``; a blue/green update whose new fleet never started rolls
        back instead: the old fleet keeps serving, ``InService`` with the reason."""
        record = self.sm.records.get(ENDPOINTS, name) or {}
        pid = record.get("Pid")
        if blue_green and isinstance(pid, int) and pid_alive(pid):
            logger.error("endpoint %s update rolled back: %s", name, reason)
            self.sm.records.update(
                ENDPOINTS,
                name,
                EndpointStatus="InService",
                FailureReason=f"Endpoint update was rolled back: {reason}"[:1024],
                PendingEndpointConfigName=None,
                PendingDeploymentSummary=None,
            )
            return
        logger.error("endpoint %s failed: %s", name, reason)
        self.sm.records.update(
            ENDPOINTS,
            name,
            EndpointStatus="Failed",
            FailureReason=reason[:1024],
            PendingEndpointConfigName=None,
        )

    def _refresh(self, record: dict[str, Any]) -> dict[str, Any]:
        if record.get("EndpointStatus") != "InService":
            return record
        name = str(record["EndpointName"])
        pid, router = record.get("Pid"), record.get("RouterPid")
        if isinstance(pid, int) and not pid_alive(pid):
            log = Path(str(record.get("LogPath", "")))
            return self.sm.records.update(
                ENDPOINTS,
                name,
                EndpointStatus="Failed",
                FailureReason=f"the serving process {pid} exited; see {log}: {tail(log)}",
            )
        if isinstance(router, int) and not pid_alive(router):
            log = self.sm.store.folder("endpoints") / name / "router.log"
            return self.sm.records.update(
                ENDPOINTS,
                name,
                EndpointStatus="Failed",
                FailureReason=f"the endpoint's router {router} exited; see {log}: {tail(log)}",
            )
        return record


def describe_endpoint(record: Mapping[str, Any]) -> dict[str, Any]:
    """Turn a record into a DescribeEndpoint-shaped dict."""
    describe = {k: v for k, v in record.items() if k not in _LOCAL_KEYS and v is not None}
    if record.get("Url") and not describe.get("ProductionVariants"):
        describe["ProductionVariants"] = [
            {
                "VariantName": "AllTraffic",
                "CurrentInstanceCount": 1,
                "DesiredInstanceCount": 1,
            }
        ]
    return describe


def delete_record(sm: LocalSageMaker, collection: str, params: Mapping[str, Any]) -> None:
    """``DeleteModel`` / ``DeleteEndpointConfig``: remove the record, or fail as SageMaker does
    for a missing one (an endpoint that uses it keeps serving, as on AWS)."""
    key, kind, label = {
        MODELS: ("ModelName", "model", "model"),
        CONFIGS: ("EndpointConfigName", "endpoint-config", "endpoint configuration"),
    }[collection]
    action = "DeleteModel" if collection == MODELS else "DeleteEndpointConfig"
    name = str(require_param(params, key, action))
    if sm.records.get(collection, name) is None:
        raise task_failed(
            SAGEMAKER_ERROR, f'Could not find {label} "{sm.settings.arn(kind, name)}".'
        )
    sm.records.delete(collection, name)


def endpoint_records(sm: LocalSageMaker) -> list[dict[str, Any]]:
    """Return every local endpoint record, with ``Running`` telling whether its serving process
    and its router (the endpoint's URL) live."""
    records = []
    for record in sm.records.all(ENDPOINTS):
        pid, router = record.get("Pid"), record.get("RouterPid")
        record["Running"] = (
            isinstance(pid, int) and pid_alive(pid) and (router is None or pid_alive(router))
        )
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
    for pid in (record.get("Pid"), (record.get("Pending") or {}).get("Pid")):
        if isinstance(pid, int) and pid_alive(pid) and _is_serve(pid):
            stop_process_group(pid, grace)
    remove_containers(
        sm.docker, record.get("Container"), (record.get("Pending") or {}).get("Container")
    )
    router = record.get("RouterPid")
    if isinstance(router, int) and pid_alive(router) and is_router(router):
        stop_process_group(router, grace)
    sm.records.delete(ENDPOINTS, name)
    _remove_deployment(record)
    return True


def _is_serve(pid: int) -> bool:
    """Guard against a reused pid: the process must be a ``serve`` program."""
    cmdline = process_cmdline(pid)
    return cmdline is None or any(part.endswith(b"serve") for part in cmdline)


def _remove_deployment(record: Mapping[str, Any]) -> None:
    """Remove the extracted model of a deployment (kept when it belongs to a transform job)."""
    model_dir = Path(str(record.get("ModelDir") or ""))
    if model_dir.name == "model" and model_dir.parent.parent.parent.name == "endpoints":
        shutil.rmtree(model_dir, ignore_errors=True)
