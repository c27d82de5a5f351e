"""The errors of the local runtime's engine, and `TaskFailed`, which handlers raise.

    WorkflowError
    └── EngineError              an expected error of the local engine
        ├── InvalidDefinitionError   the document is not valid ASL (AWS: InvalidDefinition)
        ├── UnknownResourceError     a Task resource has no local handler (inspection only)
        ├── TaskTokenError           no running task waits for this task token
        ├── RedriveError             the execution cannot be redriven
        └── EngineCompatError        the installed moto lacks the private API the engine uses

`TaskFailed` is not a `WorkflowError`: a service handler or Lambda function raises it to fail
its Task state with an ASL error name, which `Retry` and `Catch` match.
"""

from __future__ import annotations

from workflow.errors import WorkflowError

__all__ = [
    "EngineCompatError",
    "EngineError",
    "InvalidDefinitionError",
    "RedriveError",
    "TaskFailed",
    "TaskTokenError",
    "UnknownResourceError",
]


class EngineError(WorkflowError):
    """An expected error of the local engine (bad definition, missing handler, bad token)."""


class InvalidDefinitionError(EngineError):
    """The document is not valid ASL; AWS refuses it with `InvalidDefinition` before any run.

    Attributes:
        problems: One sentence per problem, each naming the state and the field.
    """

    exit_code = 2

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("Invalid State Machine Definition: " + "; ".join(problems))

    def lines(self) -> list[str]:
        """Return one line per problem, as the CLI prints them."""
        return [f"Invalid State Machine Definition: {problem}" for problem in self.problems]


class UnknownResourceError(EngineError):
    """The definition uses Task resources that have no registered local handler.

    Attributes:
        problems: One line per unresolved state.
    """

    exit_code = 2

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            "the local engine has no handler for "
            + "; ".join(problems)
            + " (register one with LocalEngine.register_service/register_lambda)"
        )


class TaskTokenError(EngineError):
    """No running task waits for this task token (unknown, already answered or timed out)."""


class RedriveError(EngineError):
    """The execution cannot be redriven (it is running, it succeeded, or its record is bad)."""


class EngineCompatError(EngineError):
    """The installed moto does not provide the private ASL interpreter API the engine uses."""

    exit_code = 2


class TaskFailed(Exception):
    """Raise from a service handler or Lambda function to fail the Task with an ASL error.

    The error name is what `Retry`/`Catch` match on (`States.TaskFailed`, `SageMaker.X`, ...).

    Args:
        error: The ASL error name, e.g. ``"SageMaker.ResourceNotFound"``.
        cause: The error cause (AWS puts the Describe* JSON here for failed `.sync` jobs).
    """

    def __init__(self, error: str, cause: str = "") -> None:
        super().__init__(f"{error}: {cause}" if cause else error)
        self.error = error
        self.cause = cause
