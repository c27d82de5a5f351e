"""The contracts of the workflow, each defined once: what the state machine, its runtimes, the
Lambdas and the CLI must agree on.

- State ids: `StepId` (the state names, validated by `check_state_name` when the definition is
  built).
- Error names the state machine ends with or catches: `ERROR_REJECTED` (the approval's
  ``SendTaskFailure``), `ERROR_BUILD`, `ERROR_QUALITY_GATE`, `ERROR_ENDPOINT`,
  `ERROR_ROLLED_BACK`; the endpoint's variant, `ENDPOINT_VARIANT_NAME`.
- The execution input: `ExecutionInput` (built by `workflow.naming.execution_input`), with
  `GATE_THRESHOLD_KEY` and the per-run SageMaker names of `RESOURCE_SUFFIXES`.
- SageMaker's name rule (`is_valid_name`, `SAGEMAKER_NAME_PATTERN`) and the part of a commit that
  names a run (`short_commit`).

The container's contract (metric definitions, exit codes, model files) is
``mask_r_cnn.contract``. This module imports nothing but the standard library and
`workflow.errors`, so the Lambda bundle carries it.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from typing import TypedDict

from workflow.errors import DefinitionError, NamingError

# --------------------------------------------------------------------------------------------
# State ids
# --------------------------------------------------------------------------------------------

MAX_STATE_NAME_LENGTH = 80


class StepId(str, enum.Enum):
    """The names of the states. ``<name>Failed`` are the failure markers of the Task states."""

    CHECK_IMAGE = "CheckImage"
    BUILD_IMAGE = "BuildImage"
    WAIT_FOR_BUILD = "WaitForBuild"
    DESCRIBE_BUILD = "DescribeBuild"
    CHECK_BUILD = "CheckBuild"
    BUILD_NOT_SUCCEEDED = "BuildNotSucceeded"
    USE_BUILT_IMAGE = "UseBuiltImage"
    USE_GIVEN_IMAGE = "UseGivenImage"
    READ_HYPERPARAMETERS = "ReadHyperParameters"
    MERGE_HYPERPARAMETERS = "MergeHyperParameters"
    FIND_WARM_START = "FindWarmStart"
    CHECK_WARM_START = "CheckWarmStart"
    DESCRIBE_WARM_START = "DescribeWarmStart"
    WARM_START_CHANNELS = "WarmStartChannels"
    COLD_START_CHANNELS = "ColdStartChannels"
    TRAIN = "Train"
    CREATE_MODEL = "CreateModel"
    BATCH_TRANSFORM = "BatchTransform"
    COMPUTE_METRICS = "ComputeMetrics"
    QUALITY_GATE = "QualityGate"
    QUALITY_GATE_NOT_MET = "QualityGateNotMet"
    ENSURE_MODEL_PACKAGE_GROUP = "EnsureModelPackageGroup"
    REGISTER_MODEL = "RegisterModel"
    REQUEST_APPROVAL = "RequestApproval"
    REJECT_MODEL_PACKAGE = "RejectModelPackage"
    APPROVAL_REJECTED = "ApprovalRejected"
    APPROVE_MODEL_PACKAGE = "ApproveModelPackage"
    CREATE_MODEL_FROM_PACKAGE = "CreateModelFromPackage"
    CREATE_ENDPOINT_CONFIG = "CreateEndpointConfig"
    FIND_ENDPOINT = "FindEndpoint"
    CREATE_ENDPOINT = "CreateEndpoint"
    UPDATE_ENDPOINT = "UpdateEndpoint"
    WAIT_FOR_ENDPOINT = "WaitForEndpoint"
    DESCRIBE_ENDPOINT = "DescribeEndpoint"
    CHECK_ENDPOINT = "CheckEndpoint"
    ENDPOINT_NOT_IN_SERVICE = "EndpointNotInService"
    ENDPOINT_ROLLED_BACK = "EndpointRolledBack"
    REJECT_ROLLED_BACK_PACKAGE = "RejectRolledBackPackage"
    NOTIFY_SUCCESS = "NotifySuccess"
    SUCCEEDED = "Succeeded"
    NOTIFY_FAILURE = "NotifyFailure"
    FAILED = "Failed"

    def failed(self) -> str:
        """Return the name of this Task's failure marker, e.g. ``TrainFailed``."""
        return f"{self.value}Failed"


_STATE_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")


def check_state_name(name: str) -> str:
    """Return ``name`` when it is a valid state name (≤ 80 of [A-Za-z0-9_-]), else raise.

    Step Functions allows more characters, but names stay plain so that they are safe in
    CloudWatch metrics, ARNs of map runs and the history shown by the CLI.

    Raises:
        DefinitionError: When the name is empty, too long or holds other characters.
    """
    if not _STATE_NAME.fullmatch(name):
        raise DefinitionError(
            f"state name {name!r} is invalid; use 1-{MAX_STATE_NAME_LENGTH} letters, digits, '_' "
            "and '-'"
        )
    return name


# --------------------------------------------------------------------------------------------
# Error names (the execution ends with one of them, or with the error of the task that failed)
# --------------------------------------------------------------------------------------------

ERROR_BUILD = "BuildFailed"
ERROR_QUALITY_GATE = "QualityGateFailed"
ERROR_REJECTED = "Rejected"
ERROR_ENDPOINT = "EndpointFailed"
# UpdateEndpoint ended InService on the endpoint's previous configuration: SageMaker rolled the
# blue/green deployment back (an alarm of AutoRollbackConfiguration fired, or the new fleet failed).
ERROR_ROLLED_BACK = "DeploymentRolledBack"

# The one production variant of every endpoint configuration (the rollback alarms' dimension).
ENDPOINT_VARIANT_NAME = "AllTraffic"

# --------------------------------------------------------------------------------------------
# The execution input
# --------------------------------------------------------------------------------------------

# The quality gate's threshold travels in the execution input.
GATE_THRESHOLD_KEY = "GateThreshold"

# Appended to the run's base name (JobName) for each SageMaker resource; the longest one bounds
# how long the base name may be.
RESOURCE_SUFFIXES: Mapping[str, str] = {
    "TrainingJobName": "",
    "ModelName": "-model",
    "EndpointConfigName": "-config",
    "TransformJobName": "-eval",
    # The model the endpoint serves when the registry is on: created from the approved package.
    "DeployModelName": "-deploy",
}


class _RequiredInput(TypedDict):
    CommitId: str
    JobName: str
    TrainingJobName: str
    ModelName: str
    EndpointConfigName: str
    TransformJobName: str
    DeployModelName: str
    EndpointName: str
    EndpointPollSeconds: int
    GateThreshold: float
    HyperParameters: dict[str, str]
    TrainingData: str
    ValidationData: str
    TestData: str
    TestImages: str
    OutputPath: str
    CheckpointPath: str
    TransformOutput: str


class ExecutionInput(_RequiredInput, total=False):
    """The input of one execution (docs/architecture.md, "Execution input").

    ``ImageUri`` is present when the image is given; without it the state machine builds one.
    """

    ImageUri: str


# --------------------------------------------------------------------------------------------
# SageMaker names and commits
# --------------------------------------------------------------------------------------------

# SageMaker resource names (training job, model, endpoint, endpoint config, transform job):
# https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateTrainingJob.html
# (TrainingJobName: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}).
MAX_NAME_LENGTH = 63
SAGEMAKER_NAME_PATTERN = r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
_SAGEMAKER_NAME = re.compile(SAGEMAKER_NAME_PATTERN)
COMMIT_LENGTH = 7


def is_valid_name(name: str) -> bool:
    """Return True when ``name`` is a valid SageMaker resource name (≤ 63 of [a-zA-Z0-9-])."""
    return bool(_SAGEMAKER_NAME.fullmatch(name))


def short_commit(commit_id: str) -> str:
    """Return the part of a commit ID used in names: 7 lower-case characters of [a-z0-9].

    Raises:
        NamingError: When the commit ID holds no letter or digit.
    """
    cleaned = re.sub(r"[^a-zA-Z0-9]", "", commit_id).lower()
    if not cleaned:
        raise NamingError(
            f"commit ID {commit_id!r} holds no letter or digit; pass a git commit SHA "
            "(e.g. --commit abc1234)"
        )
    return cleaned[:COMMIT_LENGTH]


__all__ = [
    "COMMIT_LENGTH",
    "ENDPOINT_VARIANT_NAME",
    "ERROR_ENDPOINT",
    "ERROR_QUALITY_GATE",
    "ERROR_REJECTED",
    "ERROR_ROLLED_BACK",
    "GATE_THRESHOLD_KEY",
    "MAX_NAME_LENGTH",
    "MAX_STATE_NAME_LENGTH",
    "RESOURCE_SUFFIXES",
    "SAGEMAKER_NAME_PATTERN",
    "ExecutionInput",
    "StepId",
    "check_state_name",
    "is_valid_name",
    "short_commit",
]
