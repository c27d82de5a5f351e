"""SageMaker for local resources: control-plane reads and SageMaker Runtime's InvokeEndpoint.

Reads (``DescribeTrainingJob``, ``DescribeModel``, ``DescribeEndpointConfig``,
``DescribeEndpoint``, ``DescribeTransformJob`` and their ``List*`` with paging) answer from the
records the local handlers keep under ``<root>/sagemaker/``, so a notebook inspects what a local
run made with the boto3 calls it uses on AWS. ``InvokeEndpoint`` forwards the body to the local
endpoint's serving process, as SageMaker forwards it to the container's ``/invocations``:
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_runtime_InvokeEndpoint.html.
The endpoint's router captures an answered invocation with the data capture of the
configuration that answered it (`workflow.local.router`), as SageMaker captures at the
endpoint whichever client calls it; a capture never fails the inference.

Writes reuse the local runtime's handlers (`workflow.local.sagemaker_endpoints`), so an endpoint
made through the API is the one a state machine makes: ``CreateModel``, ``CreateEndpointConfig``,
``CreateEndpoint``, ``UpdateEndpoint`` (with ``DeploymentConfig``: blue/green with traffic shifting
and auto-rollback, `workflow.local.deployment`), ``DeleteEndpoint``, ``DeleteEndpointConfig`` and
``DeleteModel``; a refused request is SageMaker's ``ValidationException`` with its message
(https://docs.aws.amazon.com/sagemaker/latest/APIReference/CommonErrors.html). The endpoints
created through the API stop when the API stops.

The model registry (`workflow.local.model_registry`, the records the state machine's
``aws-sdk:sagemaker:*`` tasks write): ``CreateModelPackageGroup``, ``DescribeModelPackageGroup``,
``CreateModelPackage``, ``DescribeModelPackage``, ``ListModelPackages`` (paged with this API's
tokens) and ``UpdateModelPackage``; SageMaker's validation errors as ``ValidationException``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests

from workflow.api.errors import ApiError, require
from workflow.api.wire import page
from workflow.local.data_capture import variant_name
from workflow.local.engine import TaskFailed
from workflow.local.model_registry import ModelRegistry
from workflow.local.router import INFERENCE_ID_HEADER, VARIANT_HEADER
from workflow.local.sagemaker import CONFIGS, ENDPOINTS, MODELS, LocalSageMaker
from workflow.local.sagemaker_endpoints import (
    EndpointConfigHandler,
    EndpointHandlers,
    ModelHandler,
    delete_record,
    stop_endpoint,
)
from workflow.local.sagemaker_training import KIND as TRAINING_JOBS
from workflow.local.sagemaker_training import describe_training_job
from workflow.local.sagemaker_transform import KIND as TRANSFORM_JOBS
from workflow.local.sagemaker_transform import describe_transform_job

logger = logging.getLogger(__name__)

INVOKE_TIMEOUT_SECONDS = 60.0  # SageMaker's model response timeout
_MS_THRESHOLD = 10**11  # record times are epoch milliseconds; the wire wants seconds
_FORWARDED = {
    "X-Amzn-SageMaker-Custom-Attributes": "X-Amzn-SageMaker-Custom-Attributes",
    INFERENCE_ID_HEADER: INFERENCE_ID_HEADER,  # the router's data capture records it
}


@dataclass(frozen=True)
class Kind:
    """One SageMaker resource kind the API reads."""

    collection: str
    label: str
    name_key: str
    status_key: str | None
    list_key: str
    summary_keys: tuple[str, ...]
    missing_code: str
    describe: Callable[[Mapping[str, Any]], dict[str, Any]]


def _plain(record: Mapping[str, Any]) -> dict[str, Any]:
    return dict(record)


KINDS = {
    "TrainingJob": Kind(
        TRAINING_JOBS, "training job", "TrainingJobName", "TrainingJobStatus",
        "TrainingJobSummaries",
        ("TrainingJobName", "TrainingJobArn", "CreationTime", "TrainingEndTime",
         "LastModifiedTime", "TrainingJobStatus"),
        "ResourceNotFound", describe_training_job,
    ),
    "Model": Kind(
        MODELS, "model", "ModelName", None, "Models",
        ("ModelName", "ModelArn", "CreationTime"), "ValidationException", _plain,
    ),
    "EndpointConfig": Kind(
        CONFIGS, "endpoint configuration", "EndpointConfigName", None, "EndpointConfigs",
        ("EndpointConfigName", "EndpointConfigArn", "CreationTime"), "ValidationException",
        _plain,
    ),
    "Endpoint": Kind(
        ENDPOINTS, "endpoint", "EndpointName", "EndpointStatus", "Endpoints",
        ("EndpointName", "EndpointArn", "CreationTime", "LastModifiedTime", "EndpointStatus"),
        "ValidationException", _plain,
    ),
    "TransformJob": Kind(
        TRANSFORM_JOBS, "transform job", "TransformJobName", "TransformJobStatus",
        "TransformJobSummaries",
        ("TransformJobName", "TransformJobArn", "CreationTime", "TransformEndTime",
         "LastModifiedTime", "TransformJobStatus", "FailureReason"),
        "ResourceNotFound", describe_transform_job,
    ),
}  # fmt: skip


# Record keys holding epoch milliseconds: ``CreationTime`` and the like, and the ``Timestamp`` of
# ``FinalMetricDataList`` entries (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_MetricData.html).
_TIME_KEYS = ("Time", "Timestamp")


def seconds(value: Any) -> Any:
    """Record values with epoch-millisecond times turned into epoch seconds, recursively."""
    if isinstance(value, dict):
        return {
            k: (v / 1000 if k.endswith(_TIME_KEYS) and isinstance(v, int) and v > _MS_THRESHOLD
                else seconds(v))
            for k, v in value.items()
        }  # fmt: skip
    if isinstance(value, list):
        return [seconds(v) for v in value]
    return value


class SageMakerApi:
    """The SageMaker operations over one local SageMaker (its store and records)."""

    def __init__(self, sm: LocalSageMaker) -> None:
        self.sm = sm
        self._endpoints = EndpointHandlers(sm)
        self.registry = ModelRegistry(sm.store, sm.settings)
        self._created: set[str] = set()

    def operations(self) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
        """The ``SageMaker.<Operation>`` table."""
        table: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {}
        for name, kind in KINDS.items():
            plural = "Models" if name == "Model" else f"{name}s"
            table[f"Describe{name}"] = functools.partial(self.describe, kind)
            table[f"List{plural}"] = functools.partial(self.list, kind)
        registry = self.registry
        for operation, handler in (
            ("CreateModelPackageGroup", registry.create_group),
            ("DescribeModelPackageGroup", registry.describe_group),
            ("CreateModelPackage", registry.create_package),
            ("DescribeModelPackage", registry.describe_package),
            ("UpdateModelPackage", registry.update_package),
            ("CreateModel", _no_context(ModelHandler(self.sm).start)),
            ("CreateEndpointConfig", _no_context(EndpointConfigHandler(self.sm).start)),
            ("CreateEndpoint", self._create_endpoint),
            ("UpdateEndpoint", _no_context(self._endpoints.update)),
            ("DeleteEndpoint", _no_context(self._endpoints.delete)),
            ("DeleteEndpointConfig", functools.partial(self._delete, CONFIGS)),
            ("DeleteModel", functools.partial(self._delete, MODELS)),
        ):
            table[operation] = functools.partial(self._local_call, handler)
        table["ListModelPackages"] = self.list_model_packages
        return table

    def _create_endpoint(self, params: Mapping[str, Any]) -> dict[str, Any]:
        answer = self._endpoints.create(params, None)
        self._created.add(str(params["EndpointName"]))
        return answer

    def _delete(self, collection: str, params: Mapping[str, Any]) -> dict[str, Any]:
        delete_record(self.sm, collection, params)
        return {}

    def close(self) -> None:
        """Stop the endpoints created through this API, then wait for their deployments, which
        stop their own new processes once the endpoint is gone (a bake ends at once)."""
        for name in sorted(self._created):
            stop_endpoint(self.sm, name, self.sm.settings.stop_grace_seconds)
        self._endpoints.wait_idle(timeout=self.sm.settings.ping_timeout_seconds)

    def _local_call(
        self, handler: Callable[[Mapping[str, Any]], dict[str, Any]], body: dict[str, Any]
    ) -> dict[str, Any]:
        try:
            return dict(seconds(handler(body)))
        except TaskFailed as exc:
            raise ApiError("ValidationException", str(exc.cause)) from exc

    def list_model_packages(self, body: dict[str, Any]) -> dict[str, Any]:
        """ListModelPackages of the local registry, paged with this API's tokens."""
        filters = {k: v for k, v in body.items() if k not in ("MaxResults", "NextToken")}
        summaries = self._local_call(
            lambda params: {"List": self.registry.summaries(params)}, filters
        )["List"]
        chunk, token = page(
            summaries,
            body,
            f"sagemaker:model-packages:{sorted(filters.items())}",
            size_key="MaxResults",
            token_key="NextToken",
            invalid=lambda message: ApiError("ValidationException", message),
            default_size=10,
        )
        return {"ModelPackageSummaryList": chunk, "NextToken": token}

    def describe(self, kind: Kind, body: dict[str, Any]) -> dict[str, Any]:
        """Describe one resource, or fail as SageMaker does for a missing one."""
        name = str(require(body, kind.name_key))
        if kind.collection == ENDPOINTS:
            try:
                return dict(seconds(self._endpoints.describe({"EndpointName": name}, None)))
            except TaskFailed as exc:
                raise self._missing(kind, name) from exc
        record = self._get(kind, name)
        if record is None:
            raise self._missing(kind, name)
        return dict(seconds(kind.describe(record)))

    def list(self, kind: Kind, body: dict[str, Any]) -> dict[str, Any]:
        """List resources with NameContains, StatusEquals, SortBy/SortOrder and paging."""
        records = self.sm.records.all(kind.collection)
        contains = str(body.get("NameContains") or "").lower()
        status = body.get("StatusEquals")
        records = [
            r
            for r in records
            if contains in str(r.get(kind.name_key, "")).lower()
            and (status is None or kind.status_key is None or r.get(kind.status_key) == status)
        ]
        sort_by = str(body.get("SortBy") or "CreationTime")
        key = {"Name": kind.name_key, "Status": kind.status_key or kind.name_key}.get(
            sort_by, "CreationTime"
        )
        descending = str(body.get("SortOrder") or "Descending") == "Descending"
        records.sort(key=lambda r: _sort_key(r.get(key)), reverse=descending)
        chunk, token = page(
            records,
            body,
            f"sagemaker:{kind.collection}:{contains}:{status}:{key}:{descending}",
            size_key="MaxResults",
            token_key="NextToken",
            invalid=lambda message: ApiError("ValidationException", message),
            default_size=10,
        )
        summaries = [{k: r[k] for k in kind.summary_keys if r.get(k) is not None} for r in chunk]
        return {kind.list_key: seconds(summaries), "NextToken": token}

    def _get(self, kind: Kind, name: str) -> dict[str, Any] | None:
        try:
            return self.sm.records.get(kind.collection, name)
        except TaskFailed as exc:  # an invalid name
            raise ApiError("ValidationException", str(exc.cause)) from exc

    def _missing(self, kind: Kind, name: str) -> ApiError:
        arn = self.sm.settings.arn(kind.collection.rstrip("s"), name)
        if kind.missing_code == "ResourceNotFound":
            return ApiError(
                "ResourceNotFound", f"Requested resource not found: {kind.label} {name}"
            )
        return ApiError("ValidationException", f'Could not find {kind.label} "{arn}".')

    # -- SageMaker Runtime ------------------------------------------------------------------
    def invoke(
        self, name: str, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int, bytes, dict[str, str]]:
        """InvokeEndpoint: forward to the endpoint's ``/invocations``.

        Returns:
            ``(status, body, headers)`` of the answer.

        Raises:
            ApiError: ``ValidationError`` for an unknown or not InService endpoint,
                ``ModelError`` (424) carrying the container's status and body.
        """
        record = self._get(KINDS["Endpoint"], name) if name else None
        account = self.sm.settings.account_id
        if record is None:
            raise ApiError("ValidationError", f"Endpoint {name} of account {account} not found.")
        # An endpoint answers while it updates (the old fleet serves until traffic shifts):
        # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_UpdateEndpoint.html
        if record.get("EndpointStatus") not in ("InService", "Updating") or not record.get("Url"):
            raise ApiError(
                "ValidationError",
                f"Endpoint {name} of account {account} is {record.get('EndpointStatus')}, not "
                "InService; wait for the endpoint or look at DescribeEndpoint's FailureReason.",
            )
        given = {k.lower(): v for k, v in headers.items()}
        forward = {
            "Content-Type": given.get("content-type", "application/octet-stream"),
            "Accept": given.get("accept", "*/*"),
        }
        for header in _FORWARDED:
            if header.lower() in given:
                forward[header] = given[header.lower()]
        try:
            answer = requests.post(
                f"{record['Url']}/invocations",
                data=body,
                headers=forward,
                timeout=INVOKE_TIMEOUT_SECONDS,
            )
        except requests.RequestException as exc:
            raise ApiError(
                "ModelError",
                f'Received server error (0) from primary with message "{exc}". The serving '
                f"process of endpoint {name} did not answer; see {record.get('LogPath')}.",
                status=424,
            ) from exc
        if answer.status_code >= 300:
            text = answer.text[:2000]
            raise ModelError(name, answer.status_code, text, str(record.get("LogPath", "")))
        endpoint_config = self._endpoint_config(record)
        out = {
            "Content-Type": answer.headers.get("Content-Type", "application/json"),
            "x-Amzn-Invoked-Production-Variant": answer.headers.get(VARIANT_HEADER)
            or variant_name(endpoint_config),
        }
        for header in _FORWARDED.values():
            if header in answer.headers:
                out[header] = answer.headers[header]
        return 200, answer.content, out

    def _endpoint_config(self, endpoint: Mapping[str, Any]) -> dict[str, Any] | None:
        """The configuration the endpoint serves; None if its record cannot be read."""
        name = endpoint.get("EndpointConfigName")
        if not name:
            return None
        try:
            return self.sm.records.get(CONFIGS, str(name))
        except Exception as exc:  # the answer must not depend on reading it
            logger.warning("cannot read endpoint configuration %s: %s", name, exc)
            return None


def _no_context(
    handler: Callable[[Mapping[str, Any], Any], dict[str, Any]],
) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """A local handler ``(params, ctx)`` called without a task context."""
    return lambda params: handler(params, None)


def _sort_key(value: Any) -> tuple[int, float, str]:
    """Times sort as numbers, names and statuses as text."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, "" if value is None else str(value))


class ModelError(ApiError):
    """SageMaker Runtime's ModelError: the container answered with an error status."""

    def __init__(self, endpoint: str, status: int, body: str, log_path: str) -> None:
        super().__init__(
            "ModelError",
            f'Received client error ({status}) from primary with message "{body}". See '
            f"{log_path} for more information.",
            status=424,
        )
        self.fields = {
            "OriginalStatusCode": status,
            "OriginalMessage": body,
            "LogStreamArn": f"file://{log_path}" if log_path else "",
        }


__all__ = ["INVOKE_TIMEOUT_SECONDS", "KINDS", "ModelError", "SageMakerApi", "seconds"]
