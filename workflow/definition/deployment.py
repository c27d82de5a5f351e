"""The stages after the model: evaluation, quality gate, approval and notification."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from workflow.definition.base import BuilderBase
from workflow.definition.names import (
    APPROVAL_GRACE_SECONDS,
    ERROR_QUALITY_GATE,
    ERROR_REJECTED,
    FAILURE_PATH,
    GATE_THRESHOLD_KEY,
    GATE_THRESHOLD_PATH,
    LAMBDA_TRANSIENT_ERRORS,
    METRICS_TIMEOUT_SECONDS,
    MODEL_QUALITY_NAME,
    SAGEMAKER_TRANSIENT_ERRORS,
    SNS_TRANSIENT_ERRORS,
    TRANSFORM_ACCEPT,
    TRANSFORM_CONTENT_TYPE,
    StepId,
    check_state_name,
)
from workflow.definition.stage import Stage, when


class DeploymentStages(BuilderBase):
    """The evaluation, gate, approval and success states (the endpoint: `endpoint.py`)."""

    def evaluation_stage(self) -> Any:
        """BatchTransform -> ComputeMetrics: the held-out images predicted, then scored."""
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
                    **self.metrics_output(),
                },
            },
            timeout_seconds=METRICS_TIMEOUT_SECONDS,
            result_path="$.Metrics",
        )
        self.retry(metrics, (*LAMBDA_TRANSIENT_ERRORS, "States.Timeout"), 2, 3)
        self.catch(metrics, StepId.COMPUTE_METRICS)
        return steps.Chain([transform, metrics])

    def metrics_output(self) -> dict[str, str]:
        """ComputeMetrics' ``MetricsOutput``: where the registry's ModelQuality document goes."""
        if not self.config.registry.enabled:
            return {}
        return {"MetricsOutput.$": f"States.Format('{{}}{MODEL_QUALITY_NAME}', $.TransformOutput)"}

    def gate(self) -> Stage:
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
        passed = rule.And(
            [
                rule.IsPresent(GATE_THRESHOLD_PATH, True),
                rule.IsNumeric(GATE_THRESHOLD_PATH, True),
                rule.IsPresent(variable, True),
                rule.IsNumeric(variable, True),
                rule.NumericGreaterThanEqualsPath(variable, GATE_THRESHOLD_PATH),
            ]
        )
        choice.default_choice(
            self.record_failure(
                StepId.QUALITY_GATE_NOT_MET,
                StepId.QUALITY_GATE,
                ERROR_QUALITY_GATE,
                f"{gate.metric} of the evaluation is below this run's threshold "
                f"({GATE_THRESHOLD_KEY} of the execution input: gate.threshold, "
                f"{gate.threshold:g} by default, on AWS; local.gate_threshold in local runs), "
                "or one of them is missing or not a number; "
                "the model is not deployed (see Metrics)",
                # Not the threshold: a Pass that reads a missing path fails with States.Runtime.
                {"Metrics.$": "$.Metrics.Payload"},
            )
        )
        return Stage(choice, [when(choice, passed)])

    def approval_step(self, before_rejected: Callable[[Any], Any] | None = None) -> Any:
        """RequestApproval; a rejection goes through ``before_rejected(ApprovalRejected)``."""
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
        if before_rejected is not None:
            rejected = before_rejected(rejected)
        approval.add_catch(
            self.steps.Catch(
                error_equals=[ERROR_REJECTED], next_step=rejected, result_path=FAILURE_PATH
            )
        )
        self.catch(approval, StepId.REQUEST_APPROVAL)
        return approval

    def success_stage(self) -> Any:
        """NotifySuccess (with notifications) -> Succeeded."""
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
        return self.steps.Chain([notify, succeeded])
