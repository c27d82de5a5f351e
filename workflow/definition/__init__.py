"""The state machine: configuration -> Step Functions Data Science SDK steps -> ASL JSON.

Pure: building never calls AWS. The SageMaker SDK objects the `stepfunctions` steps need (an
`Estimator`, a `Model`, a `Transformer`) get a session whose boto session holds placeholder
credentials and refuses to send any request, so rendering works with no AWS account and no
network. `render_json(config)` is the exact string `deploy` sends and the local runtime runs.

The states, in order (each optional stage switches off in the configuration)::

    CheckImage            Choice: ImageUri in the execution input? -> UseGivenImage
    BuildImage            lambda:invoke (start_build -> CodeBuild) -> $.Build {BuildId, ImageUri}
    WaitForBuild          Wait SecondsPath $.EndpointPollSeconds
    DescribeBuild         aws-sdk:codebuild:batchGetBuilds -> $.BuildPoll.Build
    CheckBuild            Choice: SUCCEEDED -> UseBuiltImage; IN_PROGRESS -> wait;
                          else BuildNotSucceeded (BuildFailed). No token reaches the build.
    UseBuiltImage         Pass $.Build.ImageUri -> $.Image.Uri
    UseGivenImage         Pass $.ImageUri       -> $.Image.Uri
    ReadHyperParameters   aws-sdk:ssm:getParameter        (training.hyperparameters_ssm_parameter)
    MergeHyperParameters  Pass: JsonMerge(input, SSM JSON) -> $.ResolvedHyperParameters.Values
    Train                 sagemaker:createTrainingJob.sync -> $.Training
    CreateModel           sagemaker:createModel             -> $.Model
    BatchTransform        sagemaker:createTransformJob.sync -> $.Transform      (evaluation)
    ComputeMetrics        lambda:invoke (evaluate)          -> $.Metrics         (evaluation)
    QualityGate           Choice: <metric> >= $.GateThreshold, else QualityGateNotMet (gate)
    EnsureModelPackageGroup aws-sdk:sagemaker:createModelPackageGroup; exists -> on (registry)
    RegisterModel         aws-sdk:sagemaker:createModelPackage -> $.ModelPackage (registry)
    RequestApproval       lambda:invoke.waitForTaskToken    -> $.Approval        (approval)
                          Rejected -> RejectModelPackage (updateModelPackage Rejected, registry)
    ApproveModelPackage   aws-sdk:sagemaker:updateModelPackage Approved      (registry)
    CreateEndpointConfig  sagemaker:createEndpointConfig    -> $.EndpointConfig
    FindEndpoint          aws-sdk:sagemaker:describeEndpoint; missing -> CreateEndpoint
    UpdateEndpoint        sagemaker:updateEndpoint, DeploymentConfig (blue/green: canary, linear or
                          all at once; alarms roll back) -> $.Endpoint
    CreateEndpoint        sagemaker:createEndpoint          -> $.Endpoint
    WaitForEndpoint       Wait SecondsPath $.EndpointPollSeconds
    DescribeEndpoint      aws-sdk:sagemaker:describeEndpoint -> $.EndpointStatus
    CheckEndpoint         Choice: InService with this run's config -> NotifySuccess;
                          InService on another after an update -> EndpointRolledBack
                          (DeploymentRolledBack); Failed/OutOfService -> EndpointNotInService
                          (EndpointFailed); else wait
    NotifySuccess         sns:publish                                          (notification)
    Succeeded             Succeed

Failures: every Task retries throttling and transient service errors with backoff and catches
everything else into ``<State>Failed``, a Pass that records ``{State, Error, Cause,
ExecutionError, ...}`` at ``$.Failure``; the gate (``QualityGateFailed``), the endpoint
(``EndpointFailed``, ``DeploymentRolledBack``) and the approval's rejection (``ApprovalRejected``: ``Rejected``) record
their named errors the same way. Then ``NotifyFailure`` (sns:publish) and ``Failed``, a Fail state
whose ``ErrorPath``/``CausePath`` raise ``$.Failure.ExecutionError``: the named error, or
``<State>.<error>`` for a task's error (``Train.States.TaskFailed``; a Fail state may not raise a
``States.*`` name itself).

Modules: :mod:`.names` (states, named errors, paths, time budgets), :mod:`.sdk` (the SDK,
imported offline), :mod:`.base` (Retry/Catch and failure handling), :mod:`.training` and
:mod:`.deployment` and :mod:`.registry` (the stages), :mod:`.stage` (chaining a stage of several
states), :mod:`.factories` (`WorkflowSteps`: the step factories a notebook chains with the SDK's
``Chain([...])``, and the configuration's whole chain), :mod:`.render` (the ASL document).
"""

from __future__ import annotations

from mask_r_cnn.contract import METRIC_DEFINITIONS

from workflow.definition.factories import WorkflowSteps, timeout_seconds
from workflow.definition.names import (
    ERROR_BUILD,
    ERROR_ENDPOINT,
    ERROR_QUALITY_GATE,
    ERROR_REJECTED,
    GATE_THRESHOLD_KEY,
    MAX_STATE_NAME_LENGTH,
    StepId,
    check_state_name,
)
from workflow.definition.render import build_workflow, render_definition, render_json
from workflow.definition.sdk import aws_partition

__all__ = [
    "ERROR_BUILD",
    "ERROR_ENDPOINT",
    "ERROR_QUALITY_GATE",
    "ERROR_REJECTED",
    "GATE_THRESHOLD_KEY",
    "MAX_STATE_NAME_LENGTH",
    "METRIC_DEFINITIONS",
    "StepId",
    "WorkflowSteps",
    "aws_partition",
    "build_workflow",
    "check_state_name",
    "render_definition",
    "render_json",
    "timeout_seconds",
]
