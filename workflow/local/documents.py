"""``exec``: run any ASL document on the local engine with every local handler.

`run_document` wires a `LocalRuntime`, registers the caller's own Lambda functions, runs the
document (with Step Functions Local's mocks when given) and returns how it ended; the command
line prints it (`workflow.commands.exec`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from workflow.config import WorkflowConfig
from workflow.errors import ConfigError


@dataclass(frozen=True)
class DocumentOutcome:
    """How one execution of a document ended.

    Attributes:
        status: ``SUCCEEDED``, ``FAILED``, ``TIMED_OUT`` or ``ABORTED``.
        output: the execution's output (when it succeeded).
        state: the first state that failed, if any.
        error: the error name (else the status).
        cause: the cause ("" when none).
    """

    status: str
    output: Any
    state: str | None
    error: str
    cause: str

    @property
    def succeeded(self) -> bool:
        """Whether the execution SUCCEEDED."""
        return self.status == "SUCCEEDED"


def load_lambda(spec: str) -> tuple[str, Callable[..., Any]]:
    """Load ``NAME=module:function`` into ``(NAME, function)``.

    Raises:
        ConfigError: The spec is malformed, or the function cannot be imported or called.
    """
    name, _, target = spec.partition("=")
    module_name, _, attribute = target.partition(":")
    if not (name and module_name and attribute):
        raise ConfigError(
            [
                f"--lambda {spec!r} is not NAME=module:function; e.g. --lambda evaluate=my_pkg.fn:handler"
            ]
        )
    try:
        function = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            [f"--lambda {spec!r}: cannot load {target!r} ({exc}); check PYTHONPATH and the name"]
        ) from exc
    if not callable(function):
        raise ConfigError([f"--lambda {spec!r}: {target!r} is not a function"])
    return name, function


def run_document(
    config: WorkflowConfig,
    definition: Mapping[str, Any],
    document: Any,
    *,
    name: str | None = None,
    approve: str | None = None,
    timeout: float | None = None,
    lambdas: Sequence[tuple[str, Callable[..., Any]]] = (),
    mocks: Any = None,
    keep_endpoints: bool = False,
) -> DocumentOutcome:
    """Run ``definition`` with input ``document``; progress goes to stderr.

    Args:
        config: the configuration (``local.*``: the store, approvals, jobs).
        definition: the ASL document.
        document: the execution input.
        name: the execution name (default: a UUID).
        approve: how approval tasks are answered (default: ``local.approve``).
        timeout: stop the execution (``States.Timeout``) after this many seconds.
        lambdas: ``(name, function)`` pairs registered as Lambda functions.
        mocks: a test case of a mock configuration (`workflow.local.mocks.load_mock_config`).
        keep_endpoints: leave the endpoints the execution created running.

    Raises:
        EngineError: the document is one AWS refuses (InvalidDefinition); nothing ran.
    """
    from workflow.history import failing_state
    from workflow.local.report import Progress
    from workflow.local.runtime import LocalRuntime

    progress = Progress()
    runtime = LocalRuntime(config, approve=approve, log_sink=progress.log_sink, say=progress.print)
    runtime.engine.check_definition(definition)  # InvalidDefinition: exit 2, nothing ran
    unsubscribe = runtime.engine.on_event(progress)
    try:
        runtime.install()
        for lambda_name, function in lambdas:
            runtime.engine.register_lambda(lambda_name, function)
        execution = runtime.engine.start_execution(definition, document, name=name, mocks=mocks)
        progress.start_heartbeat()
        try:
            execution.wait(timeout)
            if not execution.done:
                execution.stop("States.Timeout", f"exec --timeout {timeout:g} s passed")
                execution.wait(60)
        except KeyboardInterrupt:
            execution.stop("Interrupted", "stopped with Ctrl-C")
            execution.wait(60)
    finally:
        progress.stop_heartbeat()
        unsubscribe()
        runtime.close(keep_endpoints=keep_endpoints)
    if execution.status == "SUCCEEDED":
        return DocumentOutcome(execution.status, execution.output, None, "", "")
    state, error, cause = failing_state(execution.history())
    return DocumentOutcome(
        execution.status,
        None,
        state,
        execution.error or error or execution.status,
        execution.cause or cause or "",
    )
