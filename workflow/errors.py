"""The exceptions of the `workflow` package.

Every error the package raises on purpose derives from `WorkflowError`, so entry points can
print one line (`error: ...`) for expected failures and keep tracebacks for bugs::

    WorkflowError
    ├── ConfigError          configuration problems, all of them at once (`problems`)
    ├── NamingError          a commit ID or resource name that cannot be used
    ├── DefinitionError      the state machine cannot be built from the configuration
    ├── ValidationError      the ASL document failed the offline checks (`problems`)
    └── AwsError             a Step Functions call failed (deploy, start, approve, redrive)
        └── ExecutionFailedError   an execution ended in FAILED, TIMED_OUT or ABORTED

`exit_code` tells the CLI which status to return: 2 for usage and configuration errors, 1 for
runtime failures.
"""

from __future__ import annotations

from collections.abc import Iterable


class WorkflowError(Exception):
    """Root of every expected error raised by the `workflow` package."""

    exit_code: int = 1

    def lines(self) -> list[str]:
        """Return the message as the lines the CLI prints, one problem per line."""
        return [str(self)]


class _ProblemsError(WorkflowError):
    """An error that carries several independent problems, each one actionable sentence."""

    def __init__(self, problems: Iterable[str], *, source: str = "") -> None:
        self.problems: list[str] = list(problems)
        self.source = source
        if not self.problems:
            raise ValueError(f"{type(self).__name__} needs at least one problem")
        prefix = f"{source}: " if source else ""
        if len(self.problems) == 1:
            message = prefix + self.problems[0]
        else:
            count = f"{len(self.problems)} problems"
            message = f"{prefix}{count}:\n" + "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(message)

    def lines(self) -> list[str]:
        """Return one line per problem, each prefixed with the source when there is one."""
        prefix = f"{self.source}: " if self.source else ""
        return [prefix + p for p in self.problems]


class ConfigError(_ProblemsError):
    """The configuration (file, `MLOPS_*` environment, CLI flags) has one or more problems.

    Attributes:
        problems: One sentence per problem, each naming the key, the bad value and the fix.
        source: Where the configuration came from (a file name), for the message prefix.
    """

    exit_code = 2


class NamingError(WorkflowError):
    """A commit ID or derived resource name cannot be used."""

    exit_code = 2


class DefinitionError(WorkflowError):
    """The state machine cannot be built from this configuration."""


class ValidationError(_ProblemsError):
    """The ASL document failed the offline checks.

    Attributes:
        problems: One line per problem, each naming the state and the field.
    """


class AwsError(WorkflowError):
    """A call to AWS (or the local emulator) failed; the message names the call and the fix."""


class ExecutionFailedError(AwsError):
    """A Step Functions execution ended in a state other than SUCCEEDED.

    Attributes:
        execution_arn: The execution.
        status: FAILED, TIMED_OUT or ABORTED.
        error: The error name of the failure, when Step Functions reports one.
        cause: The cause of the failure, when Step Functions reports one.
    """

    def __init__(
        self, execution_arn: str, status: str, error: str | None = None, cause: str | None = None
    ) -> None:
        self.execution_arn = execution_arn
        self.status = status
        self.error = error
        self.cause = cause
        detail = f": {error}" if error else ""
        if cause:
            detail += f" ({cause[:300]})"
        super().__init__(
            f"execution {execution_arn} ended {status}{detail}; read its history with "
            "'aws stepfunctions get-execution-history' or fix the cause and run "
            "'python -m workflow redrive <arn>'"
        )


__all__ = [
    "AwsError",
    "ConfigError",
    "DefinitionError",
    "ExecutionFailedError",
    "NamingError",
    "ValidationError",
    "WorkflowError",
]
