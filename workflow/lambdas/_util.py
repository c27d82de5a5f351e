"""Small helpers shared by the handlers: env lookup, event fields, S3 URIs, ClientError codes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

from workflow.lambdas.errors import BadEventError, LambdaConfigError


def require_env(environ: Mapping[str, str], name: str, fix: str) -> str:
    """Return a non-empty environment variable or raise LambdaConfigError saying how to set it."""
    value = environ.get(name, "").strip()
    if not value:
        raise LambdaConfigError(f"environment variable {name} is not set; {fix}.")
    return value


def require_field(event: Mapping[str, Any], name: str, kind: type = str) -> Any:
    """Return `event[name]` when present and of type `kind`, else raise BadEventError."""
    if not isinstance(event, Mapping):
        raise BadEventError(
            f"the event must be a JSON object, got {type(event).__name__}; "
            "pass the state machine's Payload object."
        )
    value = event.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise BadEventError(
            f"the event has no {name!r} (keys: {sorted(event)}); "
            f'add "{name}" to the task\'s Payload in the state machine.'
        )
    if not isinstance(value, kind):
        raise BadEventError(
            f"event field {name!r} = {value!r} is a {type(value).__name__}, "
            f"expected {kind.__name__}; fix the task's Payload in the state machine."
        )
    return value


def split_s3_uri(uri: str, what: str) -> tuple[str, str]:
    """Split ``s3://bucket/key`` into (bucket, key) or raise BadEventError naming `what`."""
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise BadEventError(
            f"{what} = {uri!r} is not an S3 URI; pass one like 's3://bucket/prefix/'."
        )
    return parsed.netloc, parsed.path.lstrip("/")


def error_code(exc: BaseException) -> str:
    """Return the AWS error code of a botocore ClientError (or of a fake raising one), else ''."""
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        error = response.get("Error")
        if isinstance(error, Mapping):
            return str(error.get("Code", ""))
    return ""
