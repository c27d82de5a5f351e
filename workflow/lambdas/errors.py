"""Errors the Lambda handlers raise; Step Functions sees the class name as the error name.

    WorkflowError (workflow.errors)
    └── LambdaError             root of the handlers' errors; never raised itself
        ├── LambdaConfigError       a required environment variable is missing or malformed
        ├── BadEventError           the state machine passed an event without a required field
        └── EvaluationError         the batch transform output or the test set cannot be evaluated

Each message is one sentence naming the bad value and the fix, as the state machine's `Cause`.
"""

from __future__ import annotations

from workflow.errors import WorkflowError


class LambdaError(WorkflowError):
    """Root of the errors raised by `workflow.lambdas` handlers."""


class LambdaConfigError(LambdaError):
    """A required environment variable of the function is missing or malformed."""


class BadEventError(LambdaError):
    """The event lacks a field the handler needs, or a field has the wrong type."""


class EvaluationError(LambdaError):
    """The transform output or the test annotations are missing, unreadable or mismatched."""
