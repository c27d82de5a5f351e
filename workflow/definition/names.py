"""The names of the state machine: paths, time budgets and the transient error names.

The state ids (`StepId`) and the named errors are contracts (`workflow.contracts`); they are
re-exported here for the definition modules.

Also the error names Step Functions reports for transient failures of each integration, which
the Retry fields list.
"""

from __future__ import annotations

from workflow.contracts import (
    ENDPOINT_VARIANT_NAME,
    ERROR_BUILD,
    ERROR_ENDPOINT,
    ERROR_QUALITY_GATE,
    ERROR_REJECTED,
    ERROR_ROLLED_BACK,
    GATE_THRESHOLD_KEY,
    MAX_STATE_NAME_LENGTH,
    StepId,
    check_state_name,
)

CHECKPOINT_LOCAL_PATH = "/opt/ml/checkpoints"
TRANSFORM_CONTENT_TYPE = "application/x-image"
TRANSFORM_ACCEPT = "application/json"
# Data capture records these content types as JSON text and everything else (the images the
# endpoint receives) as base64, as SageMaker does with CaptureContentTypeHeader:
# https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CaptureContentTypeHeader.html
CAPTURE_JSON_CONTENT_TYPES = ("application/json",)
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
# CreateModelPackageGroup of an existing group: SageMaker's ValidationException, unmodelled too.
MODEL_PACKAGE_GROUP_EXISTS_ERROR = "SageMaker.SageMakerException"
# The evaluation's metrics as a JSON document under the run's TransformOutput: the model
# package's ModelMetrics.ModelQuality.Statistics (an S3 URI; API_ModelQuality).
MODEL_QUALITY_NAME = "model-quality.json"
# Where RegisterModel keeps CreateModelPackage's answer ({"ModelPackageArn": ...}).
MODEL_PACKAGE_PATH = "$.ModelPackage"
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


FAILURE_PATH = "$.Failure"
GATE_THRESHOLD_PATH = f"$.{GATE_THRESHOLD_KEY}"

__all__ = [
    "ENDPOINT_VARIANT_NAME",
    "ERROR_BUILD",
    "ERROR_ENDPOINT",
    "ERROR_QUALITY_GATE",
    "ERROR_REJECTED",
    "ERROR_ROLLED_BACK",
    "GATE_THRESHOLD_KEY",
    "MAX_STATE_NAME_LENGTH",
    "StepId",
    "check_state_name",
]
