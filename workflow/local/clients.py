"""Local boto3-style clients for the Lambda handlers (``workflow.lambdas.clients``).

The local runtime installs :class:`LocalClients` with
``workflow.lambdas.clients.set_client_factory(LocalClients(...))``; the Lambda code then runs
unchanged. Only the methods the handlers call exist (docs/architecture.md, "Lambda clients"):

- ``s3``: ``get_object``, ``put_object``, ``head_object``, ``list_objects_v2`` on the local store
  (``put_object`` refuses to overwrite, as the store never does);
- ``sns``: ``publish`` into the outbox;
- ``codebuild``: ``start_build`` on the local builder;
- ``stepfunctions``: ``send_task_success``, ``send_task_failure``, ``send_task_heartbeat`` on the
  local engine;
- ``secretsmanager``: ``get_secret_value`` and ``ssm``: ``get_parameter`` from in-memory values
  given by the runtime (the approval signing key, for instance).

Errors are ``botocore.exceptions.ClientError`` with AWS's error codes, as boto3 raises them.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from workflow.local.build import LocalBuilder
from workflow.local.sns import Outbox
from workflow.local.store import LocalStore, ObjectExistsError, StoreError


def client_error(code: str, message: str, operation: str, status: int = 400) -> ClientError:
    """Return a ClientError shaped like boto3's."""
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        operation,
    )


class LocalS3:
    """The S3 calls of the Lambdas, on the local store."""

    def __init__(self, store: LocalStore) -> None:
        self.store = store

    def _uri(self, bucket: str, key: str) -> str:
        return f"s3://{bucket}/{key}"

    def get_object(self, Bucket: str, Key: str, **_: Any) -> dict[str, Any]:
        """Return ``{"Body": <stream>, "ContentLength"}`` or raise NoSuchKey."""
        try:
            data = self.store.get_bytes(self._uri(Bucket, Key))
        except StoreError as exc:
            raise client_error("NoSuchKey", str(exc), "GetObject", 404) from exc
        return {"Body": io.BytesIO(data), "ContentLength": len(data)}

    def head_object(self, Bucket: str, Key: str, **_: Any) -> dict[str, Any]:
        """Return the size of an object or raise 404."""
        path = self.store.path(self._uri(Bucket, Key))
        if not path.is_file():
            raise client_error("404", f"no object s3://{Bucket}/{Key}", "HeadObject", 404)
        return {"ContentLength": path.stat().st_size}

    def put_object(self, Bucket: str, Key: str, Body: Any = b"", **_: Any) -> dict[str, Any]:
        """Write a new object; an existing key is refused (the store never overwrites)."""
        if hasattr(Body, "read"):
            Body = Body.read()
        data = Body.encode() if isinstance(Body, str) else bytes(Body)
        try:
            self.store.put_bytes(self._uri(Bucket, Key), data)
        except ObjectExistsError as exc:
            raise client_error("PreconditionFailed", str(exc), "PutObject", 412) from exc
        return {"ETag": f'"{len(data):x}"'}

    def list_objects_v2(
        self,
        Bucket: str,
        Prefix: str = "",
        ContinuationToken: str | None = None,
        MaxKeys: int = 1000,
        **_: Any,
    ) -> dict[str, Any]:
        """List the objects under a prefix, 1000 (``MaxKeys``) per page."""
        objects = self.store.list(self._uri(Bucket, Prefix))
        start = int(ContinuationToken or 0)
        page = objects[start : start + MaxKeys]
        contents = []
        for uri in page:
            path = self.store.path(uri)
            stat = path.stat()
            contents.append(
                {
                    "Key": uri[len(f"s3://{Bucket}/") :],
                    "Size": stat.st_size,
                    "LastModified": datetime.fromtimestamp(stat.st_mtime, timezone.utc),
                    "ETag": _etag(path),
                    "StorageClass": "STANDARD",
                }
            )
        response: dict[str, Any] = {
            "Name": Bucket,
            "Prefix": Prefix,
            "KeyCount": len(contents),
            "MaxKeys": MaxKeys,
            "IsTruncated": start + MaxKeys < len(objects),
        }
        if contents:
            response["Contents"] = contents
        if response["IsTruncated"]:
            response["NextContinuationToken"] = str(start + MaxKeys)
        return response


def _etag(path: Path) -> str:
    """The ETag S3 gives an object uploaded in one part: its MD5, quoted."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return f'"{digest.hexdigest()}"'


class LocalSns:
    """``sns.publish`` into the outbox."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    def publish(
        self, TopicArn: str = "", Message: str = "", Subject: str | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """Append the message to the outbox."""
        message_id = self.outbox.publish(
            TopicArn or str(kwargs.get("TargetArn", "")), Message, Subject, source="lambda"
        )
        return {"MessageId": message_id}


class LocalCodeBuild:
    """``codebuild.start_build`` on the local builder."""

    def __init__(self, builder: LocalBuilder) -> None:
        self.builder = builder

    def start_build(self, **request: Any) -> dict[str, Any]:
        """Start a local build."""
        return self.builder.start_build(**request)


class TaskTokens:
    """The engine's task-token calls, as the Lambdas see them (``stepfunctions`` client)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def send_task_success(self, taskToken: str, output: str) -> dict[str, Any]:
        """Resume the task waiting on ``taskToken`` with ``output`` (a JSON string)."""
        try:
            value = json.loads(output)
        except ValueError as exc:
            raise client_error(
                "InvalidOutput", f"output is not JSON: {exc}", "SendTaskSuccess"
            ) from exc
        self._call("SendTaskSuccess", lambda: self.engine.send_task_success(taskToken, value))
        return {}

    def send_task_failure(self, taskToken: str, error: str = "", cause: str = "") -> dict[str, Any]:
        """Fail the task waiting on ``taskToken``."""
        self._call(
            "SendTaskFailure", lambda: self.engine.send_task_failure(taskToken, error, cause)
        )
        return {}

    def send_task_heartbeat(self, taskToken: str) -> dict[str, Any]:
        """Report that the task waiting on ``taskToken`` is alive."""
        self._call("SendTaskHeartbeat", lambda: self.engine.send_task_heartbeat(taskToken))
        return {}

    @staticmethod
    def _call(operation: str, send: Callable[[], Any]) -> None:
        try:
            send()
        except ClientError:
            raise
        except Exception as exc:  # the engine's unknown-token error -> AWS's code
            raise client_error("TaskDoesNotExist", str(exc), operation) from exc


class LocalSecrets:
    """``secretsmanager.get_secret_value`` from in-memory secrets."""

    def __init__(self, secrets: Mapping[str, str]) -> None:
        self.secrets = dict(secrets)

    def get_secret_value(self, SecretId: str, **_: Any) -> dict[str, Any]:
        """Return ``{"SecretString"}`` or raise ResourceNotFoundException."""
        if SecretId not in self.secrets:
            raise client_error(
                "ResourceNotFoundException",
                f"Secrets Manager can't find the specified secret {SecretId!r} (local secrets: "
                f"{sorted(self.secrets)}).",
                "GetSecretValue",
            )
        return {"Name": SecretId, "SecretString": self.secrets[SecretId]}


class LocalSsm:
    """``ssm.get_parameter`` from in-memory parameters."""

    def __init__(self, parameters: Mapping[str, str]) -> None:
        self.parameters = dict(parameters)

    def get_parameter(self, Name: str, WithDecryption: bool = False, **_: Any) -> dict[str, Any]:
        """Return ``{"Parameter": {"Name", "Value", "Type"}}`` or raise ParameterNotFound."""
        if Name not in self.parameters:
            raise client_error(
                "ParameterNotFound",
                f"parameter {Name!r} does not exist locally (local parameters: "
                f"{sorted(self.parameters)}).",
                "GetParameter",
            )
        return {"Parameter": {"Name": Name, "Value": self.parameters[Name], "Type": "String"}}


class LocalClients:
    """The client factory the runtime installs: ``factory(service_name) -> client``.

    Args:
        store: The local store (``s3``).
        outbox: The SNS outbox (``sns``).
        builder: The local builder (``codebuild``); ``None`` when builds are not wired.
        engine: The local engine (``stepfunctions``); ``None`` when tokens are not wired.
        secrets: Secrets Manager values by id.
        parameters: SSM parameter values by name.
    """

    def __init__(
        self,
        store: LocalStore,
        outbox: Outbox,
        builder: LocalBuilder | None = None,
        engine: Any = None,
        secrets: Mapping[str, str] | None = None,
        parameters: Mapping[str, str] | None = None,
    ) -> None:
        self._clients: dict[str, Any] = {
            "s3": LocalS3(store),
            "sns": LocalSns(outbox),
            "secretsmanager": LocalSecrets(secrets or {}),
            "ssm": LocalSsm(parameters or {}),
        }
        if builder is not None:
            self._clients["codebuild"] = LocalCodeBuild(builder)
        if engine is not None:
            self._clients["stepfunctions"] = TaskTokens(engine)

    def __call__(self, service_name: str) -> Any:
        """Return the local client of a service.

        Raises:
            KeyError: For a service the local runtime does not provide.
        """
        try:
            return self._clients[service_name]
        except KeyError:
            raise KeyError(
                f"the local runtime has no {service_name!r} client (it provides "
                f"{sorted(self._clients)}); the Lambda handlers must only use those."
            ) from None
