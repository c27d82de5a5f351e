"""The builder's helpers: integration ARNs, Retry and Catch fields, and the failure handling."""

from __future__ import annotations

from typing import Any

from workflow.config import WorkflowConfig
from workflow.definition.names import (
    FAILURE_PATH,
    POLL_SECONDS_PATH,
    SNS_TRANSIENT_ERRORS,
    StepId,
    check_state_name,
)
from workflow.definition.sdk import (
    Sdk,
    aws_partition,
    fail_with_path_class,
    offline_sagemaker_session,
)
from workflow.errors import DefinitionError


class BuilderBase:
    """What every stage uses: the configuration, the SDK, the execution input, failure markers."""

    def __init__(self, config: WorkflowConfig, sdk: Sdk) -> None:
        self.config = config
        self.sdk = sdk
        self.steps = sdk.steps
        self.session = offline_sagemaker_session(sdk, config)
        names = (
            "CommitId", "JobName", "TrainingJobName", "ModelName", "EndpointConfigName",
            "TransformJobName", "DeployModelName", "EndpointName", "HyperParameters", "TrainingData",
            "ValidationData", "TestData", "TestImages", "OutputPath", "CheckpointPath", "TransformOutput",
        )  # fmt: skip
        self.run = sdk.inputs.ExecutionInput(schema={n: str for n in names})
        self.failure_states: dict[str, Any] = {}
        self.notify_failure: Any = None

    def switched_off(self, stage: str, keys: str) -> DefinitionError:
        """The error for a factory of a stage that this configuration switches off."""
        return DefinitionError(
            f"{stage} is switched off in this configuration ({keys}); switch it on there, or "
            "leave its factory out of the chain"
        )

    def rollback_tail(self) -> Any:
        """The state after a rolled-back deployment is recorded (the registry adds one)."""
        return self.notify_failure

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

    def poll_loop(
        self,
        wait_id: StepId,
        describe_id: StepId,
        integration: str,
        parameters: dict[str, Any],
        result_path: str,
        comments: tuple[str, str],
    ) -> tuple[Any, Any]:
        """Return a Wait (``POLL_SECONDS_PATH``) and the Task it leads to, which reads a status."""
        wait = self.steps.Wait(
            check_state_name(wait_id.value), comment=comments[0], seconds_path=POLL_SECONDS_PATH
        )
        describe = self.steps.Task(
            check_state_name(describe_id.value),
            resource=self.resource(integration),
            comment=comments[1],
            parameters=parameters,
            result_path=result_path,
        )
        wait.next(describe)
        return wait, describe

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

    def catch_expected(
        self, state: Any, step_id: StepId, error: str, next_step: Any, result_path: str
    ) -> None:
        """Route ``error`` of ``state`` on to ``next_step`` (an expected answer), others to failure."""
        state.add_catch(
            self.steps.Catch(error_equals=[error], next_step=next_step, result_path=result_path)
        )
        self.catch(state, step_id)

    # -- failure handling ------------------------------------------------------------------

    def build_failure_tail(self) -> Any:
        """Return the first state of the failure handling (NotifyFailure or Failed)."""
        failed = fail_with_path_class()(
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
        self,
        step_id: StepId,
        decided_by: StepId,
        error: str,
        cause: str,
        extra: dict[str, str],
        *,
        dynamic_cause: bool = False,
    ) -> Any:
        """A Pass that records a named failure (no Task error to catch) and fails the run.

        ``cause`` is the text, or with ``dynamic_cause`` an expression (``States.Format(...)``)
        of the state data.
        """
        cause_field = {"Cause.$": cause} if dynamic_cause else {"Cause": cause}
        state = self.steps.Pass(
            check_state_name(step_id.value),
            comment=f"records the named error {error}",
            parameters={
                "State": decided_by.value,
                "Error": error,
                **cause_field,
                "ExecutionError": error,
                "Execution.$": "$$.Execution.Id",
                "CommitId.$": "$.CommitId",
                **extra,
            },
            result_path=FAILURE_PATH,
        )
        state.next(self.notify_failure)
        return state
