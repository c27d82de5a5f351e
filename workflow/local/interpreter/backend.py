"""Fixes for moto's own Step Functions backend, used only by the served API (notebooks).

- `start-time` (`backend.execution.Execution.get_start_execution_details`): a `datetime`
  leaked into `$$.Execution.StartTime`, which then failed `describe_execution` once it reached
  the output; AWS gives an ISO string `...123Z`.
- `unnamed-execution` (`models.StepFunctionsParserBackend.start_execution`): `StartExecution`
  without a name gave an ARN ending in `:None`; AWS generates a UUID.
- `invalid-definition` (`models.StepFunctionsParserBackend._validate_definition`):
  CreateStateMachine/UpdateStateMachine accepted what AWS refuses (a state without Next/End,
  an unreachable state, fields of another state type) or answered with a Python repr and an
  empty error code (its `InvalidDefinition` sets `code`, which moto's `AWSError` ignores); they
  answer `InvalidDefinition` with one sentence per problem, as the engine does.
- `backend-worker` (`Execution._get_start_execution_worker`, a hook): served executions run
  through the engine's worker, set with `set_backend_worker_factory`.
"""

# This module replaces attributes of moto's untyped private modules on purpose.
# mypy: disable-error-code="method-assign,attr-defined,no-untyped-call,arg-type"

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from collections.abc import Callable
from typing import Any, Final

from workflow.asl_structure import structure_problems
from workflow.local.engine_types import aws_timestamp
from workflow.local.interpreter.moto_api import (
    EvaluationDetails,
    ExecutionDetails,
    defined_in,
    expect_target,
)
from workflow.local.interpreter.patches import Patch, apply_engine_patches, apply_patches

WorkerFactory = Callable[[Any, Any], Any]


class _ServedWorkers:
    """The factory served executions use (one served engine per process, see `server`)."""

    lock = threading.Lock()
    factory: WorkerFactory | None = None


def set_backend_worker_factory(factory: WorkerFactory | None) -> None:
    """Make moto's backend build execution workers with `factory(details, comm)` (None: moto's).

    Used by `workflow.local.server` so that executions started over HTTP run through a
    `LocalEngine`.
    """
    with _ServedWorkers.lock:
        _ServedWorkers.factory = factory


def _fix_start_time() -> None:
    from moto.stepfunctions.parser.backend import execution as backend_execution

    cls = backend_execution.Execution
    original = cls.get_start_execution_details
    expect_target(defined_in(original, backend_execution), "Execution.get_start_execution_details")

    def get_start_execution_details(self: Any) -> ExecutionDetails:
        details = original(self)
        start = details.start_time
        if isinstance(start, dt.datetime):
            start = aws_timestamp(start)
        return ExecutionDetails(
            arn=details.arn,
            name=details.name,
            role_arn=details.role_arn,
            inpt=details.inpt,
            start_time=start,
        )

    cls.get_start_execution_details = get_start_execution_details


def _fix_unnamed_execution() -> None:
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    original = StepFunctionsParserBackend.start_execution
    expect_target(
        defined_in(original, "moto.stepfunctions.parser.models"),
        "StepFunctionsParserBackend.start_execution",
    )

    def start_execution(
        self: Any,
        state_machine_arn: str,
        name: str | None = None,
        execution_input: str | None = None,
        trace_header: str | None = None,
    ) -> Any:
        return original(
            self, state_machine_arn, name or str(uuid.uuid4()), execution_input, trace_header
        )

    StepFunctionsParserBackend.start_execution = start_execution


def _fix_invalid_definition() -> None:
    from moto.core.exceptions import AWSError
    from moto.stepfunctions.parser import models
    from moto.stepfunctions.parser.api import InvalidDefinition as MotoInvalidDefinition

    class InvalidDefinition(AWSError):
        TYPE = "InvalidDefinition"
        STATUS = 400

    cls = models.StepFunctionsParserBackend
    original = cls._validate_definition
    expect_target(defined_in(original, models), "StepFunctionsParserBackend._validate_definition")

    def _validate_definition(definition: str) -> None:
        try:
            document = json.loads(definition)
        except ValueError as exc:
            raise InvalidDefinition(
                f"Invalid State Machine Definition: the definition is not JSON ({exc})"
            ) from exc
        problems = structure_problems(document)
        if problems:
            raise InvalidDefinition("Invalid State Machine Definition: " + "; ".join(problems))
        try:
            original(definition)
        except MotoInvalidDefinition as exc:
            raise InvalidDefinition(f"Invalid State Machine Definition: {exc}") from exc

    cls._validate_definition = staticmethod(_validate_definition)


def _hook_backend_worker() -> None:
    from moto.stepfunctions.parser.backend import execution as backend_execution

    cls = backend_execution.Execution
    original = cls._get_start_execution_worker
    expect_target(defined_in(original, backend_execution), "Execution._get_start_execution_worker")

    def _get_start_execution_worker(self: Any) -> Any:
        with _ServedWorkers.lock:
            factory = _ServedWorkers.factory
        if factory is None:
            return original(self)
        details = EvaluationDetails(
            aws_execution_details=self._get_start_aws_execution_details(),
            execution_details=self.get_start_execution_details(),
            state_machine_details=self.get_start_state_machine_details(),
        )
        return factory(details, self._get_start_execution_worker_comm())

    cls._get_start_execution_worker = _get_start_execution_worker


BACKEND_PATCHES: Final[tuple[Patch, ...]] = (
    ("start-time", _fix_start_time),
    ("unnamed-execution", _fix_unnamed_execution),
    ("invalid-definition", _fix_invalid_definition),
    ("backend-worker", _hook_backend_worker),
)


def apply_backend_patches() -> None:
    """Apply the engine patches and the fixes for moto's own Step Functions backend."""
    apply_engine_patches()
    apply_patches(BACKEND_PATCHES)
