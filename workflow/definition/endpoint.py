"""The endpoint stage: its configuration, create-or-update with a deployment policy, the wait.

A new endpoint configuration per run; the endpoint is created once (all at once) and then
updated in place with ``DeploymentConfig``: a blue/green update whose traffic shifts all at
once, as a canary or linearly, rolled back by SageMaker when one of the template's CloudWatch
alarms fires (https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails.html). The
wait loop tells the three ends apart: in service on this run's configuration (success), in
service on another one after an update (``DeploymentRolledBack``), failed or out of service
(``EndpointFailed``).
"""

from __future__ import annotations

from typing import Any

from workflow.definition.base import BuilderBase
from workflow.definition.names import (
    CAPTURE_JSON_CONTENT_TYPES,
    ENDPOINT_MISSING_ERROR,
    ENDPOINT_VARIANT_NAME,
    ERROR_ENDPOINT,
    ERROR_ROLLED_BACK,
    SAGEMAKER_SDK_TRANSIENT_ERRORS,
    SAGEMAKER_TRANSIENT_ERRORS,
    StepId,
    check_state_name,
)
from workflow.definition.stage import Stage, when

# TrafficRoutingConfig.Type per endpoint.deployment.strategy:
# https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_TrafficRoutingConfig.html
TRAFFIC_ROUTING_TYPES = {"canary": "CANARY", "linear": "LINEAR", "all_at_once": "ALL_AT_ONCE"}
# A canary is at most half the fleet and a linear step 10-50 % of it: one instance cannot be split.
MIN_INSTANCES_TO_SHIFT = 2


class EndpointStages(BuilderBase):
    """CreateEndpointConfig, FindEndpoint, Create/UpdateEndpoint and the wait loop."""

    def data_capture_config(self) -> dict[str, Any] | None:
        """CreateEndpointConfig's ``DataCaptureConfig``, or None when capture is off.

        The shape of the SageMaker API (not the SDK's ``DataCaptureConfig`` object, which wants a
        session): requests and responses, sampled at ``endpoint.data_capture.sampling_percentage``
        into ``s3://<bucket>/<s3.prefix>/<destination_prefix>``. See
        https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DataCaptureConfig.html.
        """
        capture = self.config.endpoint.data_capture
        if not capture.enabled:
            return None
        return {
            "EnableCapture": True,
            "InitialSamplingPercentage": capture.sampling_percentage,
            "DestinationS3Uri": self.config.data_capture_uri,
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {"JsonContentTypes": list(CAPTURE_JSON_CONTENT_TYPES)},
        }

    def traffic_routing(self) -> dict[str, Any]:
        """``TrafficRoutingConfiguration`` of ``endpoint.deployment`` (capacity in percent).

        Canary and linear shifting split the new fleet (CanarySize at most 50 %, LinearStepSize
        10-50 % of the variant's instances), so an endpoint of one instance is updated all at
        once; its alarms still watch the final baking period (``TerminationWaitInSeconds``).
        https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_TrafficRoutingConfig.html
        and https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CapacitySize.html.
        """
        deployment = self.config.endpoint.deployment
        strategy = deployment.strategy
        if self.config.endpoint.initial_instance_count < MIN_INSTANCES_TO_SHIFT:
            strategy = "all_at_once"
        if strategy == "all_at_once":
            return {"Type": TRAFFIC_ROUTING_TYPES[strategy], "WaitIntervalInSeconds": 0}
        routing: dict[str, Any] = {
            "Type": TRAFFIC_ROUTING_TYPES[strategy],
            "WaitIntervalInSeconds": deployment.wait_seconds,
        }
        if strategy == "canary":
            size = {"Type": "CAPACITY_PERCENT", "Value": deployment.canary_percent}
            routing["CanarySize"] = size
        else:
            size = {"Type": "CAPACITY_PERCENT", "Value": deployment.linear_step_percent}
            routing["LinearStepSize"] = size
        return routing

    def deployment_config(self) -> dict[str, Any]:
        """UpdateEndpoint's ``DeploymentConfig``: the blue/green policy and the rollback alarms.

        https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DeploymentConfig.html,
        https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_BlueGreenUpdatePolicy.html
        and https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_AutoRollbackConfig.html;
        the alarms are the template's (``WorkflowConfig.rollback_alarm_names``).
        """
        deployment = self.config.endpoint.deployment
        config: dict[str, Any] = {
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": self.traffic_routing(),
                "TerminationWaitInSeconds": deployment.termination_wait_seconds,
                "MaximumExecutionTimeoutInSeconds": deployment.max_execution_timeout_seconds,
            }
        }
        if deployment.alarms.enabled:
            names = self.config.rollback_alarm_names.values()
            config["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": n} for n in names]}
        return config

    def endpoint_config_step(self) -> Any:
        """CreateEndpointConfig: the SDK's EndpointConfigStep, with data capture when on."""
        config, steps = self.config, self.steps
        endpoint_config = steps.EndpointConfigStep(
            check_state_name(StepId.CREATE_ENDPOINT_CONFIG.value),
            endpoint_config_name=self.run["EndpointConfigName"],
            # With the registry, the model made from the approved package (CreateModelFromPackage).
            model_name=self.run["DeployModelName" if config.registry.enabled else "ModelName"],
            initial_instance_count=config.endpoint.initial_instance_count,
            instance_type=config.endpoint.instance_type,
            variant_name=ENDPOINT_VARIANT_NAME,
            comment="a new endpoint configuration per run: the endpoint switches to it",
            result_path="$.EndpointConfig",
        )
        capture = self.data_capture_config()
        if capture is not None:
            parameters = dict(endpoint_config.parameters)
            endpoint_config.update_parameters({**parameters, "DataCaptureConfig": capture})
        self.retry(endpoint_config, SAGEMAKER_TRANSIENT_ERRORS, 5, 4)
        self.catch(endpoint_config, StepId.CREATE_ENDPOINT_CONFIG)
        return endpoint_config

    def endpoint_stage(self) -> Stage:
        """FindEndpoint -> Update/CreateEndpoint (the SDK's EndpointStep) -> the wait loop.

        The stage goes on from CheckEndpoint once the endpoint is in service on this run's
        configuration.
        """
        config, steps = self.config, self.steps
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
            comment="creates the endpoint (first deployment: all traffic at once)",
            result_path="$.Endpoint",
        )
        routing = self.traffic_routing()["Type"]
        rollback = (
            " or rolls back when an alarm fires"
            if config.endpoint.deployment.alarms.enabled
            else ""
        )
        update = steps.EndpointStep(
            check_state_name(StepId.UPDATE_ENDPOINT.value),
            endpoint_name=self.run["EndpointName"],
            endpoint_config_name=self.run["EndpointConfigName"],
            update=True,
            comment=(
                f"switches the live endpoint to the new configuration blue/green ({routing}); "
                f"the old fleet serves until the new one takes all traffic{rollback}"
            ),
            result_path="$.Endpoint",
        )
        update.update_parameters(
            {**dict(update.parameters), "DeploymentConfig": self.deployment_config()}
        )
        for state, step_id in ((create, StepId.CREATE_ENDPOINT), (update, StepId.UPDATE_ENDPOINT)):
            self.retry(state, SAGEMAKER_TRANSIENT_ERRORS, 5, 4)
            self.catch(state, step_id)
        self.catch_expected(
            find, StepId.FIND_ENDPOINT, ENDPOINT_MISSING_ERROR, create, "$.ExistingEndpoint"
        )

        wait, describe = self.poll_loop(
            StepId.WAIT_FOR_ENDPOINT,
            StepId.DESCRIBE_ENDPOINT,
            "aws-sdk:sagemaker:describeEndpoint",
            describe_parameters,
            "$.EndpointStatus",
            (
                "polls in the state machine itself, not in a Lambda with a 15-minute limit",
                "reads EndpointStatus and the configuration the endpoint runs",
            ),
        )
        # While polling, the endpoint exists: any SageMaker error here is transient.
        self.retry(describe, (*SAGEMAKER_SDK_TRANSIENT_ERRORS, ENDPOINT_MISSING_ERROR), 5, 5)
        self.catch(describe, StepId.DESCRIBE_ENDPOINT)

        find.next(update)
        create.next(wait)
        update.next(wait)
        check, in_service = self.endpoint_check(wait)
        describe.next(check)
        return Stage(find, [when(check, in_service)])

    def endpoint_check(self, wait: Any) -> tuple[Any, Any]:
        """CheckEndpoint (success, rolled back, failed, or wait again) and its success rule.

        After a rolled-back blue/green update DescribeEndpoint answers ``InService`` with the
        endpoint's previous ``EndpointConfigName`` (traffic went back to the old fleet,
        https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-blue-green.html)
        and a ``FailureReason`` ("the status is InService but update operation fails":
        https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_EndpointMetadata.html).
        Only an update can roll back: FindEndpoint found the endpoint (``EndpointArn``), whereas a
        first deployment leaves FindEndpoint's error there. ``UpdateRollbackFailed`` (the
        rollback itself failed) is a failed endpoint; ``RollingBack`` and ``SystemUpdating``
        wait.
        """
        steps, rule = self.steps, self.steps.ChoiceRule
        status = "$.EndpointStatus.EndpointStatus"
        check = steps.Choice(
            check_state_name(StepId.CHECK_ENDPOINT.value),
            comment=(
                "InService on this run's configuration: done; InService on another after an "
                "update: rolled back; Failed, OutOfService or UpdateRollbackFailed: failed; "
                "else wait"
            ),
        )
        # The success rule is added first when the stage is chained (`when`).
        in_service_here = rule.And(
            [
                rule.StringEquals(status, "InService"),
                rule.StringEqualsPath(
                    "$.EndpointStatus.EndpointConfigName", "$.EndpointConfigName"
                ),
            ]
        )
        rolled_back = self.record_failure(
            StepId.ENDPOINT_ROLLED_BACK,
            StepId.CHECK_ENDPOINT,
            ERROR_ROLLED_BACK,
            (
                "States.Format('endpoint {} rolled back to configuration {} instead of {}: a "
                "rollback alarm fired or the new fleet failed; the previous model still serves "
                "(see Endpoint.FailureReason)', $.EndpointStatus.EndpointName, "
                "$.EndpointStatus.EndpointConfigName, $.EndpointConfigName)"
            ),
            {"Endpoint.$": "$.EndpointStatus"},
            dynamic_cause=True,
        )
        rolled_back.next(self.rollback_tail())
        check.add_choice(
            rule.And(
                [
                    rule.StringEquals(status, "InService"),
                    rule.IsPresent("$.ExistingEndpoint.EndpointArn", True),
                ]
            ),
            next_step=rolled_back,
        )
        not_in_service = self.record_failure(
            StepId.ENDPOINT_NOT_IN_SERVICE,
            StepId.CHECK_ENDPOINT,
            ERROR_ENDPOINT,
            "the endpoint failed or went out of service; see Endpoint.FailureReason and the "
            "endpoint's CloudWatch logs",
            {"Endpoint.$": "$.EndpointStatus"},
        )
        check.add_choice(
            rule.Or(
                [
                    rule.StringEquals(status, "Failed"),
                    rule.StringEquals(status, "OutOfService"),
                    rule.StringEquals(status, "Deleting"),
                    rule.StringEquals(status, "UpdateRollbackFailed"),
                    rule.StringEquals(status, "InService"),  # a new endpoint on another config
                ]
            ),
            next_step=not_in_service,
        )
        check.default_choice(wait)
        return check, in_service_here
