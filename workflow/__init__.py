"""MLOps workflow kit: one Step Functions state machine for AWS and for the local runtime.

The public API. Importing ``workflow`` loads nothing but this module: each name is imported
from its module on first use (``workflow.load_config`` loads pydantic, ``workflow.deploy``
boto3's helpers; the SageMaker and Step Functions SDKs load only when a definition is built)::

    from workflow import load_config, render_json, execution_input
    config = load_config()                      # workflow.yaml + MLOPS_* environment
    asl = render_json(config)                   # the exact document that is deployed
    data = execution_input(config, "abc1234")   # the input of one run

The command line is ``python -m workflow --help``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workflow.aws import (
        ExecutionResult,
        console_url,
        deploy,
        redrive,
        send_approval,
        start_execution,
        wait_for_execution,
    )
    from workflow.config import WorkflowConfig, load_config
    from workflow.definition import (
        StepId,
        WorkflowSteps,
        build_workflow,
        render_definition,
        render_json,
    )
    from workflow.errors import (
        AwsError,
        ConfigError,
        DefinitionError,
        ExecutionFailedError,
        NamingError,
        ValidationError,
        WorkflowError,
    )
    from workflow.naming import execution_input, job_name, resolve_commit
    from workflow.validate import validate_config, validate_definition

# Where each public name lives; `__getattr__` imports it from there on first use.
_EXPORTS: dict[str, str] = {
    "AwsError": "workflow.errors",
    "ConfigError": "workflow.errors",
    "DefinitionError": "workflow.errors",
    "ExecutionFailedError": "workflow.errors",
    "ExecutionResult": "workflow.aws",
    "NamingError": "workflow.errors",
    "StepId": "workflow.definition",
    "ValidationError": "workflow.errors",
    "WorkflowConfig": "workflow.config",
    "WorkflowError": "workflow.errors",
    "WorkflowSteps": "workflow.definition",
    "build_workflow": "workflow.definition",
    "console_url": "workflow.aws",
    "deploy": "workflow.aws",
    "execution_input": "workflow.naming",
    "job_name": "workflow.naming",
    "load_config": "workflow.config",
    "redrive": "workflow.aws",
    "render_definition": "workflow.definition",
    "render_json": "workflow.definition",
    "resolve_commit": "workflow.naming",
    "send_approval": "workflow.aws",
    "start_execution": "workflow.aws",
    "validate_config": "workflow.validate",
    "validate_definition": "workflow.validate",
    "wait_for_execution": "workflow.aws",
}


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use (PEP 562), then keep it here."""
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'workflow' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The module's names and the public API."""
    return sorted({*globals(), *_EXPORTS})


__all__ = [
    "AwsError",
    "ConfigError",
    "DefinitionError",
    "ExecutionFailedError",
    "ExecutionResult",
    "NamingError",
    "StepId",
    "ValidationError",
    "WorkflowConfig",
    "WorkflowError",
    "WorkflowSteps",
    "build_workflow",
    "console_url",
    "deploy",
    "execution_input",
    "job_name",
    "load_config",
    "redrive",
    "render_definition",
    "render_json",
    "resolve_commit",
    "send_approval",
    "start_execution",
    "validate_config",
    "validate_definition",
    "wait_for_execution",
]
