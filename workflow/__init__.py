"""MLOps workflow kit: one Step Functions state machine for AWS and for the local runtime.

The public API (importing it loads the typed configuration's pydantic and boto3; the SageMaker
and Step Functions SDKs load only when a definition is built)::

    from workflow import load_config, render_json, execution_input
    config = load_config()                      # workflow.yaml + MLOPS_* environment
    asl = render_json(config)                   # the exact document that is deployed
    data = execution_input(config, "abc1234")   # the input of one run

The command line is ``python -m workflow --help``.
"""

from __future__ import annotations

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
from workflow.definition import StepId, build_workflow, render_definition, render_json
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
