"""The names of the state machine: states (`StepId`), named errors, paths and time budgets.

Also the error names Step Functions reports for transient failures of each integration, which
the Retry fields list.
"""

from __future__ import annotations

import enum
import re

from workflow.errors import DefinitionError

MAX_STATE_NAME_LENGTH = 80
CHECKPOINT_LOCAL_PATH = "/opt/ml/checkpoints"
TRANSFORM_CONTENT_TYPE = "application/x-image"
TRANSFORM_ACCEPT = "application/json"
BUILD_TIMEOUT_SECONDS = 2 * 60 * 60
# The build and the endpoint are polled at the execution input's interval (local runs: 1 s).
POLL_SECONDS_PATH = "$.EndpointPollSeconds"
METRICS_TIMEOUT_SECONDS = 900
APPROVAL_GRACE_SECONDS = 300
ENDPOINT_DEPLOY_BUDGET_SECONDS = 2 * 60 * 60

# Error names Step Functions reports for transient failures of each integration.
LAMBDA_TRANSIENT_ERRORS = (
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
)
# Not "SageMaker.AmazonSageMakerException": SageMaker's validation errors (a job name that exists
# already, a bad parameter) arrive under that generic name too, and retrying them only delays the
# failure (three retries of Train took 70 s) without a chance of success.
SAGEMAKER_TRANSIENT_ERRORS = (
    "SageMaker.ThrottlingException",
    "ThrottlingException",
    "ServiceUnavailable",
)
SAGEMAKER_SDK_TRANSIENT_ERRORS = (
    "SageMaker.ThrottlingException",
    "SageMaker.ServiceUnavailableException",
    "SageMaker.InternalFailureException",
    "ThrottlingException",
)
# batchGetBuilds through aws-sdk: CodeBuild models no throttling error, so throttling and
# service faults arrive as the service's base exception.
CODEBUILD_SDK_TRANSIENT_ERRORS = (
    "CodeBuild.CodeBuildException",
    "ThrottlingException",
)
# DescribeEndpoint of a missing endpoint through aws-sdk fails with this name (not modelled).
ENDPOINT_MISSING_ERROR = "SageMaker.SageMakerException"
SNS_TRANSIENT_ERRORS = (
    "SNS.ThrottledException",
    "SNS.InternalErrorException",
    "SNS.KMSThrottlingException",
    "ThrottlingException",
)
SSM_TRANSIENT_ERRORS = (
    "Ssm.ThrottlingException",
    "Ssm.InternalServerErrorException",
    "Ssm.TooManyUpdatesException",
    "ThrottlingException",
)

# Named errors of the state machine (the execution ends with one of them, or with the error of
# the task that failed).
ERROR_BUILD = "BuildFailed"
ERROR_QUALITY_GATE = "QualityGateFailed"
ERROR_REJECTED = "Rejected"
ERROR_ENDPOINT = "EndpointFailed"

FAILURE_PATH = "$.Failure"
# The quality gate's threshold travels in the execution input (workflow.naming.execution_input).
GATE_THRESHOLD_KEY = "GateThreshold"
GATE_THRESHOLD_PATH = f"$.{GATE_THRESHOLD_KEY}"


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
    TRAIN = "Train"
    CREATE_MODEL = "CreateModel"
    BATCH_TRANSFORM = "BatchTransform"
    COMPUTE_METRICS = "ComputeMetrics"
    QUALITY_GATE = "QualityGate"
    QUALITY_GATE_NOT_MET = "QualityGateNotMet"
    REQUEST_APPROVAL = "RequestApproval"
    APPROVAL_REJECTED = "ApprovalRejected"
    CREATE_ENDPOINT_CONFIG = "CreateEndpointConfig"
    FIND_ENDPOINT = "FindEndpoint"
    CREATE_ENDPOINT = "CreateEndpoint"
    UPDATE_ENDPOINT = "UpdateEndpoint"
    WAIT_FOR_ENDPOINT = "WaitForEndpoint"
    DESCRIBE_ENDPOINT = "DescribeEndpoint"
    CHECK_ENDPOINT = "CheckEndpoint"
    ENDPOINT_NOT_IN_SERVICE = "EndpointNotInService"
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
    """
    if not _STATE_NAME.fullmatch(name):
        raise DefinitionError(
            f"state name {name!r} is invalid; use 1-{MAX_STATE_NAME_LENGTH} letters, digits, '_' "
            "and '-'"
        )
    return name
