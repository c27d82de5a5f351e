"""The SageMaker model registry: the model package group, the run's package and its decision.

Every run registers its model as a version of one model package group (``registry.group_name``)
with ``ModelApprovalStatus: PendingManualApproval``, carrying the image, the artifact, the commit,
the data set locations and the evaluation's metrics; the approval's decision sets the package's
status (``Approved`` or ``Rejected``, with the decision as ``ApprovalDescription``). So "which
model is live, from which commit and data, approved by whom" is one ``DescribeModelPackage``
away: https://docs.aws.amazon.com/sagemaker/latest/dg/model-registry.html.
"""

from __future__ import annotations

from typing import Any

from workflow.definition.base import BuilderBase
from workflow.definition.names import (
    MODEL_PACKAGE_GROUP_EXISTS_ERROR,
    MODEL_PACKAGE_PATH,
    SAGEMAKER_SDK_TRANSIENT_ERRORS,
    SAGEMAKER_TRANSIENT_ERRORS,
    TRANSFORM_ACCEPT,
    TRANSFORM_CONTENT_TYPE,
    StepId,
    check_state_name,
)

APPROVED = "Approved"
REJECTED = "Rejected"
PENDING = "PendingManualApproval"


class RegistryStages(BuilderBase):
    """EnsureModelPackageGroup, RegisterModel, ApproveModelPackage and RejectModelPackage."""

    def register_stage(self) -> Any:
        """EnsureModelPackageGroup -> RegisterModel.

        The group is created when missing: CreateModelPackageGroup of an existing group fails
        with SageMaker's (unmodelled) ValidationException, which the ``aws-sdk`` integration
        reports as ``SageMaker.SageMakerException`` and which goes on to RegisterModel. Any
        other problem with the group then fails RegisterModel with SageMaker's message.
        """
        steps, config = self.steps, self.config
        group = config.registry.group_name
        ensure = steps.Task(
            check_state_name(StepId.ENSURE_MODEL_PACKAGE_GROUP.value),
            resource=self.resource("aws-sdk:sagemaker:createModelPackageGroup"),
            comment="creates the model package group of this kit; an existing one is kept",
            parameters={
                "ModelPackageGroupName": group,
                "ModelPackageGroupDescription": config.registry_group_description,
            },
            result_path="$.ModelPackageGroup",
        )
        self.retry(ensure, SAGEMAKER_SDK_TRANSIENT_ERRORS, 2, 4)
        metadata = {
            "TrainingJobName.$": "$.TrainingJobName",
            "ModelName.$": "$.ModelName",
            "TrainingData.$": "$.TrainingData",
            "ValidationData.$": "$.ValidationData",
            "TestData.$": "$.TestData",
        }
        if config.evaluation.enabled:
            metadata["EvaluationMetrics.$"] = "States.JsonToString($.Metrics.Payload)"
        register = steps.Task(
            check_state_name(StepId.REGISTER_MODEL.value),
            resource=self.resource("aws-sdk:sagemaker:createModelPackage"),
            comment="registers this run's model as the next version of the group, pending approval",
            parameters={
                "ModelPackageGroupName": group,
                "ModelPackageDescription.$": (
                    "States.Format('Mask R-CNN of commit {} trained by {}', $.CommitId, "
                    "$$.Execution.Id)"
                ),
                "ModelApprovalStatus": PENDING,
                "InferenceSpecification": {
                    "Containers": [
                        {
                            "Image.$": "$.Image.Uri",
                            "ModelDataUrl.$": "$.Training.ModelArtifacts.S3ModelArtifacts",
                            "Environment": {"SOURCE_COMMIT.$": "$.CommitId"},
                        }
                    ],
                    "SupportedContentTypes": [TRANSFORM_CONTENT_TYPE],
                    "SupportedResponseMIMETypes": [TRANSFORM_ACCEPT],
                    "SupportedRealtimeInferenceInstanceTypes": [config.endpoint.instance_type],
                    "SupportedTransformInstanceTypes": [config.evaluation.instance_type],
                },
                "MetadataProperties": {
                    "CommitId.$": "$.CommitId",
                    "GeneratedBy.$": "$$.Execution.Id",
                },
                "CustomerMetadataProperties": metadata,
                **self.model_metrics(),
            },
            result_path=MODEL_PACKAGE_PATH,
        )
        self.retry(register, SAGEMAKER_SDK_TRANSIENT_ERRORS, 2, 4)
        self.catch(register, StepId.REGISTER_MODEL)
        self.catch_expected(
            ensure,
            StepId.ENSURE_MODEL_PACKAGE_GROUP,
            MODEL_PACKAGE_GROUP_EXISTS_ERROR,
            register,
            "$.ModelPackageGroup",
        )
        return steps.Chain([ensure, register])

    def model_metrics(self) -> dict[str, Any]:
        """CreateModelPackage's ``ModelMetrics``: the evaluation's JSON as model quality.

        ComputeMetrics writes it and answers its URI (``MetricsUri``):
        https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ModelMetrics.html and
        https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_MetricsSource.html.
        """
        if not self.config.evaluation.enabled:
            return {}
        statistics = {"ContentType": "application/json", "S3Uri.$": "$.Metrics.Payload.MetricsUri"}
        return {"ModelMetrics": {"ModelQuality": {"Statistics": statistics}}}

    def approve_package_step(self) -> Any:
        """UpdateModelPackage ``Approved``: the approval's answer, or the automatic decision."""
        config = self.config
        if config.approval.enabled:
            description = {"ApprovalDescription.$": "States.JsonToString($.Approval)"}
            comment = "records the reviewer's approval in the model registry"
        else:
            reason = "gate passed" if config.gate.enabled else "approval disabled"
            description = {"ApprovalDescription": f"auto: {reason}"}
            comment = f"approves the package automatically ({reason})"
        approve = self.steps.Task(
            check_state_name(StepId.APPROVE_MODEL_PACKAGE.value),
            resource=self.resource("aws-sdk:sagemaker:updateModelPackage"),
            comment=comment,
            parameters={
                "ModelPackageArn.$": f"{MODEL_PACKAGE_PATH}.ModelPackageArn",
                "ModelApprovalStatus": APPROVED,
                **description,
            },
            result_path="$.ModelPackageDecision",
        )
        self.retry(approve, SAGEMAKER_SDK_TRANSIENT_ERRORS, 2, 4)
        self.catch(approve, StepId.APPROVE_MODEL_PACKAGE)
        return approve

    def package_model_step(self) -> Any:
        """CreateModelFromPackage: the model the endpoint serves, made from the approved package.

        ``PrimaryContainer.ModelPackageName`` is the package's ARN; SageMaker takes the image,
        the artifact and the environment from its ``InferenceSpecification``, so what serves is
        what was approved:
        https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ContainerDefinition.html.
        """
        model = self.steps.Task(
            check_state_name(StepId.CREATE_MODEL_FROM_PACKAGE.value),
            resource=self.resource("sagemaker:createModel"),
            comment="creates the endpoint's model from the approved model package",
            parameters={
                "ModelName": self.run["DeployModelName"],
                "ExecutionRoleArn": self.config.roles.sagemaker,
                "PrimaryContainer": {"ModelPackageName.$": f"{MODEL_PACKAGE_PATH}.ModelPackageArn"},
            },
            result_path="$.DeployModel",
        )
        self.retry(model, SAGEMAKER_TRANSIENT_ERRORS, 5, 4)
        self.catch(model, StepId.CREATE_MODEL_FROM_PACKAGE)
        return model

    def approved_model_stage(self) -> Any:
        """ApproveModelPackage -> CreateModelFromPackage: the model the endpoint will serve."""
        return self.steps.Chain([self.approve_package_step(), self.package_model_step()])

    def reject_package_step(
        self,
        rejected: Any,
        step_id: StepId = StepId.REJECT_MODEL_PACKAGE,
        comment: str = "records the rejection and its reason in the model registry",
    ) -> Any:
        """UpdateModelPackage ``Rejected`` with the failure's cause, then ``rejected``.

        The run ends as it would without the registry even when the registry cannot be updated
        (the error is kept at ``$.ModelPackageDecision``): the endpoint is untouched either way.
        """
        reject = self.steps.Task(
            check_state_name(step_id.value),
            resource=self.resource("aws-sdk:sagemaker:updateModelPackage"),
            comment=comment,
            parameters={
                "ModelPackageArn.$": f"{MODEL_PACKAGE_PATH}.ModelPackageArn",
                "ModelApprovalStatus": REJECTED,
                "ApprovalDescription.$": "$.Failure.Cause",
            },
            result_path="$.ModelPackageDecision",
        )
        self.retry(reject, SAGEMAKER_SDK_TRANSIENT_ERRORS, 2, 4)
        reject.add_catch(
            self.steps.Catch(
                error_equals=["States.ALL"],
                next_step=rejected,
                result_path="$.ModelPackageDecision",
            )
        )
        reject.next(rejected)
        return reject

    def rollback_tail(self) -> Any:
        """With the registry, a rolled-back package becomes ``Rejected`` (the cause says why).

        UpdateModelPackage sets any of the three statuses on a package, ``Approved`` included
        (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_UpdateModelPackage.html),
        so the registry never shows a model as approved that the endpoint refused to keep.
        """
        if not self.config.registry.enabled:
            return super().rollback_tail()
        return self.reject_package_step(
            self.notify_failure,
            StepId.REJECT_ROLLED_BACK_PACKAGE,
            "records the rollback in the model registry: the package is Rejected with the cause",
        )
