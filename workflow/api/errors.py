"""The errors of the local AWS API, shaped as AWS's JSON protocols answer them.

Every handler raises :class:`ApiError` with AWS's error code (``ExecutionDoesNotExist``,
``InvalidArn``, ``ValidationException``, ...); the application turns it into the JSON body and
the headers botocore reads the code from (``__type`` and ``x-amzn-ErrorType``), never HTML.
"""

from __future__ import annotations

from workflow.errors import WorkflowError


class ApiError(WorkflowError):
    """One AWS API error: its code, message and HTTP status.

    Attributes:
        code: AWS's error code, e.g. ``StateMachineDoesNotExist``.
        message: The message a client shows.
        status: The HTTP status (400 for client faults).
    """

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def validation(message: str) -> ApiError:
    """Return a ``ValidationException`` (a request that breaks the API's constraints)."""
    return ApiError("ValidationException", message)


def require(body: dict[str, object], name: str) -> object:
    """Return the required member ``name`` of a request, or raise a ``ValidationException``."""
    value = body.get(name)
    if value is None or value == "":
        raise validation(
            f"1 validation error detected: Value null at '{name}' failed to satisfy "
            "constraint: Member must not be null"
        )
    return value


__all__ = ["ApiError", "require", "validation"]
