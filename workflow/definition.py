"""The state machine: configuration -> Step Functions Data Science SDK steps -> ASL JSON.

Pure: building never calls AWS. The SageMaker SDK objects the `stepfunctions` steps need (an
`Estimator`, a `Model`, a `Transformer`) get a session whose boto session holds placeholder
credentials and refuses to send any request, so rendering works with no AWS account and no
network. `render_json(config)` is the exact string `deploy` sends and the local runtime runs.

The states, in order (each optional stage switches off in the configuration)::

    CheckImage            Choice: ImageUri in the execution input? -> UseGivenImage
    BuildImage            lambda:invoke.waitForTaskToken (start_build -> CodeBuild); -> $.Build
    UseBuiltImage         Pass $.Build.ImageUri -> $.Image.Uri
    UseGivenImage         Pass $.ImageUri       -> $.Image.Uri
    ReadHyperParameters   aws-sdk:ssm:getParameter        (training.hyperparameters_ssm_parameter)
    MergeHyperParameters  Pass: JsonMerge(input, SSM JSON) -> $.ResolvedHyperParameters.Values
    Train                 sagemaker:createTrainingJob.sync -> $.Training
    CreateModel           sagemaker:createModel             -> $.Model
    BatchTransform        sagemaker:createTransformJob.sync -> $.Transform      (evaluation)
    ComputeMetrics        lambda:invoke (evaluate)          -> $.Metrics         (evaluation)
    QualityGate           Choice: <metric> >= $.GateThreshold, else QualityGateNotMet (gate)
    RequestApproval       lambda:invoke.waitForTaskToken    -> $.Approval        (approval)
    CreateEndpointConfig  sagemaker:createEndpointConfig    -> $.EndpointConfig
    FindEndpoint          aws-sdk:sagemaker:describeEndpoint; missing -> CreateEndpoint
    UpdateEndpoint        sagemaker:updateEndpoint (blue/green in place) -> $.Endpoint
    CreateEndpoint        sagemaker:createEndpoint          -> $.Endpoint
    WaitForEndpoint       Wait SecondsPath $.EndpointPollSeconds
    DescribeEndpoint      aws-sdk:sagemaker:describeEndpoint -> $.EndpointStatus
    CheckEndpoint         Choice: InService with this run's config -> NotifySuccess;
                          Failed/OutOfService/rolled back -> EndpointNotInService; else wait
    NotifySuccess         sns:publish                                          (notification)
    Succeeded             Succeed

Failures: every Task retries throttling and transient service errors with backoff and catches
everything else into ``<State>Failed``, a Pass that records ``{State, Error, Cause,
ExecutionError, ...}`` at ``$.Failure``; the gate (``QualityGateFailed``), the endpoint
(``EndpointFailed``) and the approval's rejection (``ApprovalRejected``: ``Rejected``) record
their named errors the same way. Then ``NotifyFailure`` (sns:publish) and ``Failed``, a Fail state
whose ``ErrorPath``/``CausePath`` raise ``$.Failure.ExecutionError``: the named error, or
``<State>.<error>`` for a task's error (``Train.States.TaskFailed``; a Fail state may not raise a
``States.*`` name itself).
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mask_r_cnn.contract import METRIC_DEFINITIONS

from workflow.config import WorkflowConfig
from workflow.contracts import (
    ERROR_ENDPOINT,
    ERROR_QUALITY_GATE,
    ERROR_REJECTED,
    GATE_THRESHOLD_KEY,
    StepId,
    check_state_name,
)
from workflow.errors import DefinitionError

if TYPE_CHECKING:
    from stepfunctions.workflow import Workflow

logger = logging.getLogger(__name__)

CHECKPOINT_LOCAL_PATH = "/opt/ml/checkpoints"
TRANSFORM_CONTENT_TYPE = "application/x-image"
TRANSFORM_ACCEPT = "application/json"
BUILD_TIMEOUT_SECONDS = 2 * 60 * 60
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
SAGEMAKER_TRANSIENT_ERRORS = (
    "SageMaker.AmazonSageMakerException",
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

FAILURE_PATH = "$.Failure"
GATE_THRESHOLD_PATH = f"$.{GATE_THRESHOLD_KEY}"


@dataclass(frozen=True)
class _Sdk:
    """The SDK classes, imported once (the import costs seconds)."""

    steps: Any
    inputs: Any
    workflow_cls: Any
    estimator_cls: Any
    model_cls: Any
    transformer_cls: Any
    session_cls: Any
    boto3: Any
    lambda_step: Any
    sns_step: Any


_SDK: _Sdk | None = None


@contextlib.contextmanager
def _quiet_sdk_import() -> Iterator[None]:
    """Import sagemaker/stepfunctions offline and silently.

    Importing `sagemaker` builds a default JumpStart session, which probes the EC2 instance
    metadata service when no credentials are configured, prints a deprecation notice and logs
    config-file lookups to *stdout*. Here the probe is disabled (only while importing) and those
    messages are silenced, so `render` prints nothing but the ASL document.
    """
    saved = {
        key: os.environ.get(key)
        for key in ("AWS_EC2_METADATA_DISABLED", "SAGEMAKER_SUPPRESS_V2_WARNING")
    }
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    quiet = [logging.getLogger(n) for n in ("sagemaker.config", "sagemaker.jumpstart", "sagemaker")]
    levels = [lg.level for lg in quiet]
    root_level = logging.getLogger().level
    for lg in quiet:
        lg.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        for lg, level in zip(quiet, levels, strict=True):
            lg.setLevel(level)
        # stepfunctions sets the root logger to ERROR at import; leave the caller's level alone.
        logging.getLogger().setLevel(root_level)


def _sdk() -> _Sdk:
    global _SDK
    if _SDK is None:
        with _quiet_sdk_import():
            import boto3
            import sagemaker.session
            from sagemaker.estimator import Estimator
            from sagemaker.model import Model
            from sagemaker.transformer import Transformer
            from stepfunctions import inputs, steps
            from stepfunctions.steps import LambdaStep
            from stepfunctions.steps.service import SnsPublishStep
            from stepfunctions.workflow import Workflow
        _SDK = _Sdk(
            steps=steps,
            inputs=inputs,
            workflow_cls=Workflow,
            estimator_cls=Estimator,
            model_cls=Model,
            transformer_cls=Transformer,
            session_cls=sagemaker.session.Session,
            boto3=boto3,
            lambda_step=LambdaStep,
            sns_step=SnsPublishStep,
        )
    return _SDK


def aws_partition(region: str) -> str:
    """Return the AWS partition of a region (``aws``, ``aws-cn``, ``aws-us-gov``, ...)."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    if region.startswith("us-iso-"):
        return "aws-iso"
    if region.startswith("us-isob-"):
        return "aws-iso-b"
    return "aws"


@contextlib.contextmanager
def _partition_of(region: str) -> Iterator[None]:
    """Make the SDK's integration ARNs use the configured region's partition.

    SDK 2.3.0 derives the partition from the *environment's* default region and re-reads
    botocore's endpoint data (about 1 MB of JSON) for every step; the configured region is the
    right source, and a plain function is instant.
    """
    from stepfunctions.steps import integration_resources

    original = integration_resources.get_aws_partition
    partition = aws_partition(region)
    integration_resources.get_aws_partition = lambda: partition
    try:
        yield
    finally:
        integration_resources.get_aws_partition = original


def _refuse_request(**_: Any) -> None:
    raise DefinitionError(
        "the state machine was built offline and cannot call AWS; pass a real boto3 client "
        "(build_workflow(config, client=boto3.client('stepfunctions'))) or use "
        "'python -m workflow deploy'"
    )


_OFFLINE_SESSIONS: dict[tuple[str, str], Any] = {}


def _offline_boto_session(sdk: _Sdk, region: str) -> Any:
    """A boto3 session that never resolves credentials and refuses to send requests."""
    session = sdk.boto3.Session(
        aws_access_key_id="offline-render",
        aws_secret_access_key="offline-render",
        region_name=region,
    )
    session.events.register("before-send", _refuse_request)
    return session


def _offline_sagemaker_session(sdk: _Sdk, config: WorkflowConfig) -> Any:
    """A SageMaker session for the SDK objects; cached, since creating one loads models."""
    key = (config.region, config.s3.bucket)
    if key not in _OFFLINE_SESSIONS:
        with _quiet_sdk_import():
            session = sdk.session_cls(
                boto_session=_offline_boto_session(sdk, config.region),
                default_bucket=config.s3.bucket,
                # A given config skips reading the user's and admin's SDK config files, whose
                # defaults (tags, VPC, KMS keys) would otherwise leak into the document.
                sagemaker_config={"SchemaVersion": "1.0"},
            )
        # Empty now: the SDK re-validates a non-empty config on every lookup (slow).
        session.sagemaker_config = {}
        _OFFLINE_SESSIONS[key] = session
    return _OFFLINE_SESSIONS[key]


def _bind(state: Any, keys: tuple[str, ...], path: str) -> None:
    """Make ``Parameters.<keys>`` read ``path`` from the state data (``"<key>.$": path``).

    The SDK only accepts state-data placeholders that come from the previous step's output, but
    the image and the training artifacts are kept at fixed paths of the state data by earlier
    states, so the SDK's static value is replaced here by the path.
    """
    target = state.fields["parameters"]
    for key in keys[:-1]:
        target = target.setdefault(key, {})
    target.pop(keys[-1], None)
    target[f"{keys[-1]}.$"] = path


class _Builder:
    """Builds the steps of one configuration (one instance per build)."""

    def __init__(self, config: WorkflowConfig, sdk: _Sdk) -> None:
        self.config = config
        self.sdk = sdk
        self.steps = sdk.steps
        self.session = _offline_sagemaker_session(sdk, config)
        names = (
            "CommitId", "JobName", "TrainingJobName", "ModelName", "EndpointConfigName",
            "TransformJobName", "EndpointName", "HyperParameters", "TrainingData",
            "ValidationData", "TestData", "TestImages", "OutputPath", "CheckpointPath", "TransformOutput",
        )  # fmt: skip
        self.run = sdk.inputs.ExecutionInput(schema={n: str for n in names})
        self.failure_states: dict[str, Any] = {}
        self.notify_failure: Any = None

    # -- helpers ---------------------------------------------------------------------------

    def resource(self, integration: str) -> str:
        """The ARN of a service integration, e.g. ``aws-sdk:sagemaker:describeEndpoint``."""
        return f"arn:{aws_partition(self.config.region)}:states:::{integration}"

    def retry(self, state: Any, errors: tuple[str, ...], interval: int, attempts: int) -> None:
        state.add_retry(
            self.steps.Retry(
                error_equals=list(errors),
                interval_seconds=interval,
                max_attempts=attempts,
                backoff_rate=2.0,
            )
        )

    def catch(self, state: Any, step_id: StepId, errors: tuple[str, ...] = ("States.ALL",)) -> None:
        """Route the errors of ``state`` to its failure marker, then the failure handling."""
        marker = self.failure_states.get(step_id.value)
        if marker is None:
            marker = self.steps.Pass(
                check_state_name(step_id.failed()),
                comment=f"records the failure of {step_id.value} at {FAILURE_PATH}",
                parameters={
                    "State": step_id.value,
                    "Error.$": f"{FAILURE_PATH}.Error",
                    "Cause.$": f"{FAILURE_PATH}.Cause",
                    # A Fail state may not raise a 'States.*' name (States.TaskFailed of a
                    # failed job): the execution ends with '<State>.<error>' instead.
                    "ExecutionError.$": (
                        f"States.Format('{step_id.value}.{{}}', {FAILURE_PATH}.Error)"
                    ),
                    "Execution.$": "$$.Execution.Id",
                    "CommitId.$": "$.CommitId",
                },
                result_path=FAILURE_PATH,
            )
            marker.next(self.notify_failure)
            self.failure_states[step_id.value] = marker
        state.add_catch(
            self.steps.Catch(error_equals=list(errors), next_step=marker, result_path=FAILURE_PATH)
        )

    # -- failure handling ------------------------------------------------------------------

    def build_failure_tail(self) -> Any:
        """Return the first state of the failure handling (NotifyFailure or Failed)."""
        failed = _fail_with_path_class()(
            check_state_name(StepId.FAILED.value),
            comment="ends the execution with the recorded error and cause",
            error_path=f"{FAILURE_PATH}.ExecutionError",
            cause_path=f"{FAILURE_PATH}.Cause",
        )
        if not self.config.notification.enabled:
            return failed
        notify = self.sdk.sns_step(
            check_state_name(StepId.NOTIFY_FAILURE.value),
            comment="tells the team which state failed, with the error and the cause",
            parameters={
                "TopicArn": self.config.notification.topic_arn,
                "Subject": f"{self.config.name}: execution failed"[:100],
                "Message.$": f"States.JsonToString({FAILURE_PATH})",
            },
            result_path="$.FailureNotification",
        )
        self.retry(notify, SNS_TRANSIENT_ERRORS, 2, 4)
        # A failed notification must not hide the original error: go on to Failed.
        notify.add_catch(
            self.steps.Catch(
                error_equals=["States.ALL"], next_step=failed, result_path="$.NotificationError"
            )
        )
        notify.next(failed)
        return notify

    def record_failure(
        self, step_id: StepId, decided_by: StepId, error: str, cause: str, extra: dict[str, str]
    ) -> Any:
        """A Pass that records a named failure (no Task error to catch) and fails the run."""
        state = self.steps.Pass(
            check_state_name(step_id.value),
            comment=f"records the named error {error}",
            parameters={
                "State": decided_by.value,
                "Error": error,
                "Cause": cause,
                "ExecutionError": error,
                "Execution.$": "$$.Execution.Id",
                "CommitId.$": "$.CommitId",
                **extra,
            },
            result_path=FAILURE_PATH,
        )
        state.next(self.notify_failure)
        return state

    # -- the stages ------------------------------------------------------------------------

    def image_stage(self, train_entry: Any) -> Any:
        steps, config = self.steps, self.config
        build = self.sdk.lambda_step(
            check_state_name(StepId.BUILD_IMAGE.value),
            wait_for_callback=True,
            comment=(
                "starts the CodeBuild project through the start_build Lambda and waits for the "
                "build's task token answer {ImageUri}"
            ),
            parameters={
                "FunctionName": config.lambdas.start_build,
                "Payload": {
                    "TaskToken.$": "$$.Task.Token",
                    "CommitId": self.run["CommitId"],
                    "ProjectName": config.codebuild_project,
                    "ExecutionArn.$": "$$.Execution.Id",
                },
            },
            timeout_seconds=BUILD_TIMEOUT_SECONDS,
            result_path="$.Build",
        )
        self.retry(build, LAMBDA_TRANSIENT_ERRORS, 2, 6)
        self.catch(build, StepId.BUILD_IMAGE)
        use_built = steps.Pass(
            check_state_name(StepId.USE_BUILT_IMAGE.value),
            comment="the built image is the one to train and serve",
            parameters={"Uri.$": "$.Build.ImageUri"},
            result_path="$.Image",
        )
        use_given = steps.Pass(
            check_state_name(StepId.USE_GIVEN_IMAGE.value),
            comment="the execution input names the image (CodeBuild started this execution)",
            parameters={"Uri.$": "$.ImageUri"},
            result_path="$.Image",
        )
        build.next(use_built)
        use_built.next(train_entry)
        use_given.next(train_entry)
        check = steps.Choice(
            check_state_name(StepId.CHECK_IMAGE.value),
            comment="skips the build when the execution input already carries ImageUri",
        )
        check.add_choice(steps.ChoiceRule.IsPresent("$.ImageUri", True), next_step=use_given)
        check.default_choice(build)
        return check

    def hyperparameter_stage(self, train: Any) -> Any:
        """Return the first state of training: the SSM read when configured, else ``train``."""
        parameter = self.config.training.hyperparameters_ssm_parameter
        if parameter is None:
            return train
        read = self.steps.Task(
            check_state_name(StepId.READ_HYPERPARAMETERS.value),
            resource=self.resource("aws-sdk:ssm:getParameter"),
            comment="reads the hyperparameters kept in SSM Parameter Store (a JSON object)",
            parameters={"Name": parameter, "WithDecryption": True},
            result_path="$.HyperParameterStore",
        )
        self.retry(read, SSM_TRANSIENT_ERRORS, 2, 4)
        self.catch(read, StepId.READ_HYPERPARAMETERS)
        merge = self.steps.Pass(
            check_state_name(StepId.MERGE_HYPERPARAMETERS.value),
            comment="the SSM values win over the execution input's HyperParameters",
            parameters={
                "Values.$": (
                    "States.JsonMerge($.HyperParameters, "
                    "States.StringToJson($.HyperParameterStore.Parameter.Value), false)"
                )
            },
            result_path="$.ResolvedHyperParameters",
        )
        read.next(merge)
        merge.next(train)
        return read

    def training_step(self) -> Any:
        config, training = self.config, self.config.training
        estimator = self.sdk.estimator_cls(
            # The SDK writes the estimator's image into the request; the real one comes from the
            # execution ($.Image.Uri) through `parameters` below.
            image_uri=f"{config.image_repository_uri}:latest",
            role=config.roles.sagemaker,
            instance_count=training.instance_count,
            instance_type=training.instance_type,
            volume_size=training.volume_size_gb,
            max_run=training.max_runtime_seconds,
            use_spot_instances=training.spot,
            max_wait=training.max_wait_seconds if training.spot else None,
            output_path=config.s3.uri("models"),
            metric_definitions=[dict(m) for m in METRIC_DEFINITIONS],
            sagemaker_session=self.session,
            debugger_hook_config=False,
            disable_profiler=True,
        )
        channel = {"S3DataType": "S3Prefix", "S3DataDistributionType": "FullyReplicated"}
        train = self.steps.TrainingStep(
            check_state_name(StepId.TRAIN.value),
            estimator=estimator,
            job_name=self.run["TrainingJobName"],
            hyperparameters=self.run["HyperParameters"],
            output_data_config_path=self.run["OutputPath"],
            comment="trains Mask R-CNN in the BYOC image; checkpoints make spot restarts resume",
            parameters={
                "InputDataConfig": [
                    {
                        "ChannelName": "training",
                        "DataSource": {
                            "S3DataSource": {**channel, "S3Uri": self.run["TrainingData"]}
                        },
                    },
                    {
                        "ChannelName": "validation",
                        "DataSource": {
                            "S3DataSource": {**channel, "S3Uri": self.run["ValidationData"]}
                        },
                    },
                ],
                "CheckpointConfig": {
                    "S3Uri": self.run["CheckpointPath"],
                    "LocalPath": CHECKPOINT_LOCAL_PATH,
                },
                "Environment": {"SOURCE_COMMIT": self.run["CommitId"]},
            },
            result_path="$.Training",
        )
        # The SDK hard-codes the estimator's image: the execution's image replaces it.
        _bind(train, ("AlgorithmSpecification", "TrainingImage"), "$.Image.Uri")
        if self.config.training.hyperparameters_ssm_parameter is not None:
            _bind(train, ("HyperParameters",), "$.ResolvedHyperParameters.Values")
        return train

    def model_step(self) -> Any:
        model = self.sdk.model_cls(
            image_uri=f"{self.config.image_repository_uri}:latest",
            model_data=self.config.s3.uri("models") + "model.tar.gz",
            role=self.config.roles.sagemaker,
            env={"SOURCE_COMMIT": self.run["CommitId"]},
            sagemaker_session=self.session,
        )
        step = self.steps.ModelStep(
            check_state_name(StepId.CREATE_MODEL.value),
            model=model,
            model_name=self.run["ModelName"],
            comment="registers the trained artifacts with the same image as a SageMaker model",
            result_path="$.Model",
        )
        _bind(step, ("PrimaryContainer", "Image"), "$.Image.Uri")
        _bind(
            step, ("PrimaryContainer", "ModelDataUrl"), "$.Training.ModelArtifacts.S3ModelArtifacts"
        )
        return step

    def evaluation_stage(self, after: Any) -> Any:
        config, steps = self.config, self.steps
        transformer = self.sdk.transformer_cls(
            model_name=self.run["ModelName"],
            instance_count=1,
            instance_type=config.evaluation.instance_type,
            output_path=config.s3.uri("transform"),
            accept=TRANSFORM_ACCEPT,
            sagemaker_session=self.session,
        )
        transform = steps.TransformStep(
            check_state_name(StepId.BATCH_TRANSFORM.value),
            transformer=transformer,
            job_name=self.run["TransformJobName"],
            model_name=self.run["ModelName"],
            data=self.run["TestImages"],
            content_type=TRANSFORM_CONTENT_TYPE,
            comment="predicts the held-out test images with the new model",
            parameters={"TransformOutput": {"S3OutputPath": self.run["TransformOutput"]}},
            result_path="$.Transform",
        )
        self.retry(transform, SAGEMAKER_TRANSIENT_ERRORS, 5, 4)
        self.catch(transform, StepId.BATCH_TRANSFORM)
        metrics = self.sdk.lambda_step(
            check_state_name(StepId.COMPUTE_METRICS.value),
            comment="bbox and segm mAP of the transform output against the test annotations",
            parameters={
                "FunctionName": config.lambdas.evaluate,
                "Payload": {
                    "TransformOutput": self.run["TransformOutput"],
                    "TestData": self.run["TestData"],
                    "TransformJobName": self.run["TransformJobName"],
                },
            },
            timeout_seconds=METRICS_TIMEOUT_SECONDS,
            result_path="$.Metrics",
        )
        self.retry(metrics, (*LAMBDA_TRANSIENT_ERRORS, "States.Timeout"), 2, 3)
        self.catch(metrics, StepId.COMPUTE_METRICS)
        transform.next(metrics)
        if config.gate.enabled:
            metrics.next(self.gate(after))
        else:
            metrics.next(after)
        return transform

    def gate(self, after: Any) -> Any:
        """The quality gate: the metric must reach the execution input's ``GateThreshold``.

        The threshold is read from the state data (``$.GateThreshold``, which every state before
        the gate leaves in place), not written into the document, so the same ASL serves AWS runs
        (``gate.threshold``) and local runs (``local.gate_threshold``). A missing or non-numeric
        metric or threshold fails the gate too.
        """
        gate = self.config.gate
        variable = f"$.Metrics.Payload.{gate.metric}"
        choice = self.steps.Choice(
            check_state_name(StepId.QUALITY_GATE.value),
            comment=(
                f"deploys only when {gate.metric} >= {GATE_THRESHOLD_PATH} (the execution "
                f"input's {GATE_THRESHOLD_KEY}; gate.threshold = {gate.threshold:g} by default)"
            ),
        )
        rule = self.steps.ChoiceRule
        choice.add_choice(
            rule.And(
                [
                    rule.IsPresent(GATE_THRESHOLD_PATH, True),
                    rule.IsNumeric(GATE_THRESHOLD_PATH, True),
                    rule.IsPresent(variable, True),
                    rule.IsNumeric(variable, True),
                    rule.NumericGreaterThanEqualsPath(variable, GATE_THRESHOLD_PATH),
                ]
            ),
            next_step=after,
        )
        choice.default_choice(
            self.record_failure(
                StepId.QUALITY_GATE_NOT_MET,
                StepId.QUALITY_GATE,
                ERROR_QUALITY_GATE,
                f"{gate.metric} of the evaluation is below this run's threshold "
                f"({GATE_THRESHOLD_KEY} of the execution input; gate.threshold = "
                f"{gate.threshold:g} by default), or one of them is missing or not a number; "
                "the model is not deployed (see Metrics)",
                # Not the threshold: a Pass that reads a missing path fails with States.Runtime.
                {"Metrics.$": "$.Metrics.Payload"},
            )
        )
        return choice

    def approval_step(self) -> Any:
        config = self.config
        payload: dict[str, Any] = {
            "TaskToken.$": "$$.Task.Token",
            "ExecutionArn.$": "$$.Execution.Id",
            "CommitId": self.run["CommitId"],
            "ModelName": self.run["ModelName"],
            "EndpointName": self.run["EndpointName"],
        }
        if config.evaluation.enabled:
            payload["Metrics.$"] = "$.Metrics.Payload"
        approval = self.sdk.lambda_step(
            check_state_name(StepId.REQUEST_APPROVAL.value),
            wait_for_callback=True,
            comment="mails signed approve/reject links and waits; a rejection is 'Rejected'",
            parameters={"FunctionName": config.lambdas.request_approval, "Payload": payload},
            timeout_seconds=config.approval.link_ttl_seconds + APPROVAL_GRACE_SECONDS,
            result_path="$.Approval",
        )
        self.retry(approval, LAMBDA_TRANSIENT_ERRORS, 2, 6)
        rejected = self.record_failure(
            StepId.APPROVAL_REJECTED,
            StepId.REQUEST_APPROVAL,
            ERROR_REJECTED,
            "the deployment was rejected by the approver; see Reason",
            {"Reason.$": f"{FAILURE_PATH}.Cause"},
        )
        approval.add_catch(
            self.steps.Catch(
                error_equals=[ERROR_REJECTED], next_step=rejected, result_path=FAILURE_PATH
            )
        )
        self.catch(approval, StepId.REQUEST_APPROVAL)
        return approval

    def endpoint_stage(self, success: Any) -> Any:
        config, steps, rule = self.config, self.steps, self.steps.ChoiceRule
        endpoint_config = steps.EndpointConfigStep(
            check_state_name(StepId.CREATE_ENDPOINT_CONFIG.value),
            endpoint_config_name=self.run["EndpointConfigName"],
            model_name=self.run["ModelName"],
            initial_instance_count=config.endpoint.initial_instance_count,
            instance_type=config.endpoint.instance_type,
            comment="a new endpoint configuration per run: the endpoint switches to it",
            result_path="$.EndpointConfig",
        )
        self.retry(endpoint_config, SAGEMAKER_TRANSIENT_ERRORS, 5, 4)
        self.catch(endpoint_config, StepId.CREATE_ENDPOINT_CONFIG)

        describe_parameters = {"EndpointName": self.run["EndpointName"]}
        find = steps.Task(
            check_state_name(StepId.FIND_ENDPOINT.value),
            resource=self.resource("aws-sdk:sagemaker:describeEndpoint"),
            comment="does the endpoint exist? yes: update it in place; no: create it",
            parameters=describe_parameters,
            result_path="$.ExistingEndpoint",
        )
        self.retry(find, SAGEMAKER_SDK_TRANSIENT_ERRORS, 2, 4)

        create = steps.EndpointStep(
            check_state_name(StepId.CREATE_ENDPOINT.value),
            endpoint_name=self.run["EndpointName"],
            endpoint_config_name=self.run["EndpointConfigName"],
            comment="creates the endpoint (first deployment)",
            result_path="$.Endpoint",
        )
        update = steps.EndpointStep(
            check_state_name(StepId.UPDATE_ENDPOINT.value),
            endpoint_name=self.run["EndpointName"],
            endpoint_config_name=self.run["EndpointConfigName"],
            update=True,
            comment=(
                "switches the live endpoint to the new configuration; SageMaker deploys "
                "blue/green and keeps serving the old model until the new one is healthy"
            ),
            result_path="$.Endpoint",
        )
        for state, step_id in ((create, StepId.CREATE_ENDPOINT), (update, StepId.UPDATE_ENDPOINT)):
            self.retry(state, SAGEMAKER_TRANSIENT_ERRORS, 5, 4)
            self.catch(state, step_id)
        find.add_catch(
            steps.Catch(
                error_equals=[ENDPOINT_MISSING_ERROR],
                next_step=create,
                result_path="$.ExistingEndpoint",
            )
        )
        self.catch(find, StepId.FIND_ENDPOINT)

        wait = steps.Wait(
            check_state_name(StepId.WAIT_FOR_ENDPOINT.value),
            comment="polls in the state machine itself, not in a Lambda with a 15-minute limit",
            seconds_path="$.EndpointPollSeconds",
        )
        describe = steps.Task(
            check_state_name(StepId.DESCRIBE_ENDPOINT.value),
            resource=self.resource("aws-sdk:sagemaker:describeEndpoint"),
            comment="reads EndpointStatus and the configuration the endpoint runs",
            parameters=describe_parameters,
            result_path="$.EndpointStatus",
        )
        # While polling, the endpoint exists: any SageMaker error here is transient.
        self.retry(describe, (*SAGEMAKER_SDK_TRANSIENT_ERRORS, ENDPOINT_MISSING_ERROR), 5, 5)
        self.catch(describe, StepId.DESCRIBE_ENDPOINT)

        status = "$.EndpointStatus.EndpointStatus"
        check = steps.Choice(
            check_state_name(StepId.CHECK_ENDPOINT.value),
            comment="InService on this run's configuration: done; Failed or rolled back: fail",
        )
        check.add_choice(
            rule.And(
                [
                    rule.StringEquals(status, "InService"),
                    rule.StringEqualsPath(
                        "$.EndpointStatus.EndpointConfigName", "$.EndpointConfigName"
                    ),
                ]
            ),
            next_step=success,
        )
        not_in_service = self.record_failure(
            StepId.ENDPOINT_NOT_IN_SERVICE,
            StepId.CHECK_ENDPOINT,
            ERROR_ENDPOINT,
            "the endpoint failed, went out of service or rolled back to its previous "
            "configuration; see Endpoint.FailureReason and the endpoint's CloudWatch logs",
            {"Endpoint.$": "$.EndpointStatus"},
        )
        check.add_choice(
            rule.Or(
                [
                    rule.StringEquals(status, "Failed"),
                    rule.StringEquals(status, "OutOfService"),
                    rule.StringEquals(status, "Deleting"),
                    rule.StringEquals(status, "InService"),  # but on another configuration
                ]
            ),
            next_step=not_in_service,
        )
        check.default_choice(wait)

        endpoint_config.next(find)
        find.next(update)
        create.next(wait)
        update.next(wait)
        wait.next(describe)
        describe.next(check)
        return endpoint_config

    def success_stage(self) -> Any:
        succeeded = self.steps.Succeed(check_state_name(StepId.SUCCEEDED.value))
        if not self.config.notification.enabled:
            return succeeded
        config = self.config
        metrics = ", metrics {}" if config.evaluation.enabled else ""
        arguments = "$.ModelName, $.EndpointName, $.CommitId, $$.Execution.Id"
        if config.evaluation.enabled:
            arguments += ", States.JsonToString($.Metrics.Payload)"
        notify = self.sdk.sns_step(
            check_state_name(StepId.NOTIFY_SUCCESS.value),
            comment="tells the team which model now serves, with its metrics and commit",
            parameters={
                "TopicArn": config.notification.topic_arn,
                "Subject": f"{config.name}: model deployed"[:100],
                "Message.$": (
                    "States.Format('Model {} is in service on endpoint {} (commit {}, "
                    f"execution {{}}){metrics}.', {arguments})"
                ),
            },
            result_path="$.SuccessNotification",
        )
        self.retry(notify, SNS_TRANSIENT_ERRORS, 2, 4)
        self.catch(notify, StepId.NOTIFY_SUCCESS)
        notify.next(succeeded)
        return notify

    def build(self) -> Any:
        """Return the first state of the whole machine."""
        config = self.config
        self.notify_failure = self.build_failure_tail()

        success = self.success_stage()
        deploy = self.endpoint_stage(success)
        after_evaluation = deploy
        if config.approval.enabled:
            approval = self.approval_step()
            approval.next(deploy)
            after_evaluation = approval

        model = self.model_step()
        self.retry(model, SAGEMAKER_TRANSIENT_ERRORS, 5, 4)
        self.catch(model, StepId.CREATE_MODEL)
        if config.evaluation.enabled:
            model.next(self.evaluation_stage(after_evaluation))
        else:
            model.next(after_evaluation)

        train = self.training_step()
        self.retry(train, SAGEMAKER_TRANSIENT_ERRORS, 10, 3)
        self.catch(train, StepId.TRAIN)
        train.next(model)
        first = self.hyperparameter_stage(train)
        return self.image_stage(first)


_FAIL_CLS: Any = None


def _fail_with_path_class() -> Any:
    """A `Fail` state that also accepts ``ErrorPath`` and ``CausePath`` (ASL, 2023).

    SDK 2.3.0 predates these fields; the subclass only widens the allowed fields, and the SDK
    renders ``error_path`` as ``ErrorPath``.
    """
    global _FAIL_CLS
    if _FAIL_CLS is None:
        steps = _sdk().steps

        class _ExtraField(enum.Enum):
            ERROR_PATH = "error_path"
            CAUSE_PATH = "cause_path"

        class FailWithPath(steps.Fail):  # type: ignore[misc,name-defined]
            def allowed_fields(self) -> list[Any]:
                return [*super().allowed_fields(), _ExtraField.ERROR_PATH, _ExtraField.CAUSE_PATH]

        _FAIL_CLS = FailWithPath
    return _FAIL_CLS


def timeout_seconds(config: WorkflowConfig) -> int:
    """The execution's time limit: every stage's own limit plus the endpoint's deployment."""
    training = config.training
    total = BUILD_TIMEOUT_SECONDS + (
        training.max_wait_seconds if training.spot else training.max_runtime_seconds
    )
    if config.evaluation.enabled:
        total += 2 * 60 * 60 + METRICS_TIMEOUT_SECONDS
    if config.approval.enabled:
        total += config.approval.link_ttl_seconds + APPROVAL_GRACE_SECONDS
    return total + ENDPOINT_DEPLOY_BUDGET_SECONDS


def build_workflow(config: WorkflowConfig, client: Any = None) -> Workflow:
    """Build the `stepfunctions` Workflow of this configuration, without calling AWS.

    Args:
        config: The configuration.
        client: A boto3 Step Functions client for ``Workflow.create()/execute()``. Default: an
            offline client that refuses to send requests (rendering needs none).

    Returns:
        The SDK workflow; ``workflow.definition`` is the graph of steps.

    Raises:
        DefinitionError: When a state name is invalid.
    """
    sdk = _sdk()
    with _quiet_sdk_import(), _partition_of(config.region):
        builder = _Builder(config, sdk)
        start = builder.build()
        if client is None:
            client = _offline_sagemaker_session(sdk, config).boto_session.client("stepfunctions")
        workflow = sdk.workflow_cls(
            name=config.name,
            definition=start,
            role=config.roles.state_machine,
            timeout_seconds=timeout_seconds(config),
            comment=(
                f"{config.name}: build the image, train, evaluate, approve and deploy Mask R-CNN "
                "(generated by 'python -m workflow render'; do not edit by hand)"
            ),
            client=client,
        )
    return workflow


def render_definition(config: WorkflowConfig) -> dict[str, Any]:
    """Return the ASL document of this configuration as a dict."""
    document: dict[str, Any] = json.loads(build_workflow(config).definition.to_json())
    for name in document["States"]:
        check_state_name(name)
    document["States"] = _in_reading_order(document["States"])
    return document


def _in_reading_order(states: dict[str, Any]) -> dict[str, Any]:
    """Order the states as the machine runs them: main path, failure markers, failure tail.

    JSON object order has no meaning to Step Functions; a fixed order keeps diffs readable.
    """
    tail = (StepId.NOTIFY_FAILURE.value, StepId.FAILED.value)
    main = [s.value for s in StepId if s.value in states and s.value not in tail]
    markers = [s.failed() for s in StepId if s.failed() in states]
    rest = sorted(set(states) - set(main) - set(markers) - set(tail))
    order = [*main, *markers, *rest, *(t for t in tail if t in states)]
    return {name: states[name] for name in order}


def render_json(config: WorkflowConfig) -> str:
    """Return the ASL document as the exact JSON string that is deployed (2-space indent)."""
    return json.dumps(render_definition(config), indent=2, ensure_ascii=False)


__all__ = [
    "ERROR_ENDPOINT",
    "ERROR_QUALITY_GATE",
    "ERROR_REJECTED",
    "METRIC_DEFINITIONS",
    "StepId",
    "build_workflow",
    "check_state_name",
    "render_definition",
    "render_json",
    "timeout_seconds",
]
