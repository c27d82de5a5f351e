"""The parts of the template that follow the configuration: optional grants and alarms.

`add_configured_parts(template, config)` extends the rendered `infra/template.yaml` with what
only some configurations need: the SSM parameter grant of ``training.hyperparameters_ssm_parameter``,
the data capture grant, the model registry grants, and the endpoint's rollback alarms with the
grant to read them. Each is absent when its feature is off, so every role keeps least privilege.
"""

from __future__ import annotations

from typing import Any

from workflow.config import WorkflowConfig
from workflow.contracts import ENDPOINT_VARIANT_NAME
from workflow.errors import WorkflowError


class InfraError(WorkflowError):
    """The template cannot be rendered: a missing file, an unsubstitutable value, a bad option."""


def add_configured_parts(template: dict[str, Any], config: WorkflowConfig) -> None:
    """Add the grants and resources of the features ``config`` turns on to ``template``."""
    _grant_optional_integrations(template, config)
    _grant_data_capture(template, config)
    _grant_model_registry(template, config)
    _add_rollback_alarms(template, config)


def _inline_statements(template: dict[str, Any], role: str) -> list[dict[str, Any]]:
    """Return the statements of ``role``'s first inline policy, which the grants below extend.

    Raises:
        InfraError: The role has no inline policy (the template was edited).
    """
    properties = template["Resources"].get(role, {}).get("Properties", {})
    policies = properties.get("Policies") or []
    if not policies:
        raise InfraError(
            f"the template's {role} has no inline policy to extend; restore "
            "infra/template.yaml from the repository."
        )
    statements: list[dict[str, Any]] = policies[0]["PolicyDocument"]["Statement"]
    return statements


def _grant_optional_integrations(template: dict[str, Any], config: WorkflowConfig) -> None:
    """Add the state machine role's grants for states that only some configurations render."""
    parameter = config.training.hyperparameters_ssm_parameter
    if not parameter:
        return
    statements = _inline_statements(template, "StateMachineRole")
    # ReadHyperParameters (aws-sdk:ssm:getParameter, WithDecryption): only that parameter.
    # A SecureString under a customer managed key also needs kms:Decrypt on that key.
    statements.append(
        {
            "Effect": "Allow",
            "Action": "ssm:GetParameter",
            "Resource": {
                "Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/"
                + parameter.lstrip("/")
            },
        }
    )


def _grant_model_registry(template: dict[str, Any], config: WorkflowConfig) -> None:
    """Create the model package group and let the state machine keep it, and no other group.

    The template creates the group; EnsureModelPackageGroup creates it too when missing (a
    machine deployed without the stack, a group deleted by hand) (``registry.group_name``), RegisterModel adds a
    version to it and the approval states update that version: ``CreateModelPackageGroup`` on
    the group, ``CreateModelPackage`` on the group and its versions (SageMaker authorizes a
    versioned package against both), ``DescribeModelPackage`` and ``UpdateModelPackage`` on its
    versions, and with ``training.warm_start: last-approved`` ``ListModelPackages`` on the group.
    SageMaker lower-cases names in ARNs. Without the registry there is no grant.
    """
    if not config.registry.enabled:
        return
    # The group itself, kept when the stack goes (the registry is the record of what served):
    # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-sagemaker-modelpackagegroup.html
    template["Resources"]["ModelPackageGroup"] = {
        "Type": "AWS::SageMaker::ModelPackageGroup",
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": {
            "ModelPackageGroupName": config.registry.group_name,
            "ModelPackageGroupDescription": config.registry_group_description,
        },
    }
    statements = _inline_statements(template, "StateMachineRole")
    base = "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:"
    group = config.registry.group_name.lower()
    group_arn = {"Fn::Sub": f"{base}model-package-group/{group}"}
    versions_arn = {"Fn::Sub": f"{base}model-package/{group}/*"}
    statements.extend(
        [
            {
                "Effect": "Allow",
                "Action": ["sagemaker:CreateModelPackageGroup", "sagemaker:CreateModelPackage"],
                "Resource": group_arn,
            },
            {
                "Effect": "Allow",
                "Action": [
                    "sagemaker:CreateModelPackage",
                    "sagemaker:DescribeModelPackage",
                    "sagemaker:UpdateModelPackage",
                ],
                "Resource": versions_arn,
            },
        ]
    )
    if config.warm_starts:
        # FindWarmStart lists the group's approved versions (authorized against the group).
        statements.append(
            {"Effect": "Allow", "Action": "sagemaker:ListModelPackages", "Resource": group_arn}
        )


def _grant_data_capture(template: dict[str, Any], config: WorkflowConfig) -> None:
    """Let the SageMaker execution role write the endpoint's data capture, and nothing more.

    SageMaker writes the captures of an endpoint as the model's execution role, under
    ``<DestinationS3Uri>/<EndpointName>/<VariantName>/yyyy/mm/dd/hh/`` (README "Data capture"):
    ``s3:PutObject`` on that endpoint's folder of the destination the definition carries, no
    reads, no deletes. Without data capture there is no grant.
    """
    if not config.endpoint.data_capture.enabled:
        return
    statements = _inline_statements(template, "SageMakerExecutionRole")
    key = config.data_capture_uri[len(f"s3://{config.s3.bucket}/") :]
    statements.append(
        {
            "Effect": "Allow",
            "Action": "s3:PutObject",
            "Resource": {"Fn::Sub": "${ArtifactBucket.Arn}/" + key + "/${EndpointName}/*"},
        }
    )


# The rollback alarms: (metric, statistic, threshold key) per alarm. Endpoint metrics of
# AWS/SageMaker, per EndpointName and VariantName, sent every minute; ModelLatency in
# microseconds: https://docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html
_ALARM_METRICS = (
    ("Invocation5XXErrors", "Sum", "errors_threshold", "5XX answers of the model"),
    ("ModelLatency", "Average", "latency_threshold_microseconds", "mean model latency (µs)"),
)


def rollback_alarms(config: WorkflowConfig, endpoint_name: Any) -> list[dict[str, Any]]:
    """The rollback alarms of ``config`` as ``PutMetricAlarm`` parameters (none when off).

    One per metric of the endpoint's variant, named by ``WorkflowConfig.rollback_alarm_names``
    (the definition names the same ones); ``endpoint_name`` is the EndpointName dimension's
    value (the template passes ``{"Ref": "EndpointName"}``). A period without traffic sends no
    data point, which is not a breach. The template creates them on AWS; the local runtime puts
    the same ones into its local CloudWatch, so a local update watches what AWS would.
    """
    alarms = config.endpoint.deployment.alarms
    if not alarms.enabled:
        return []
    names = config.rollback_alarm_names
    specs = []
    for metric, statistic, threshold_key, what in _ALARM_METRICS:
        threshold = getattr(alarms, threshold_key)
        specs.append(
            {
                "AlarmName": names[metric],
                "AlarmDescription": (
                    f"Rolls back an update of the endpoint when the {what} reach {threshold} "
                    f"in {alarms.evaluation_periods} periods of {alarms.period_seconds} s."
                ),
                "Namespace": "AWS/SageMaker",
                "MetricName": metric,
                "Dimensions": [
                    {"Name": "EndpointName", "Value": endpoint_name},
                    {"Name": "VariantName", "Value": ENDPOINT_VARIANT_NAME},
                ],
                "Statistic": statistic,
                "Period": alarms.period_seconds,
                "EvaluationPeriods": alarms.evaluation_periods,
                "Threshold": threshold,
                "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                "TreatMissingData": "notBreaching",
            }
        )
    return specs


def _add_rollback_alarms(template: dict[str, Any], config: WorkflowConfig) -> None:
    """Create the alarms UpdateEndpoint's ``AutoRollbackConfiguration`` names, and let them be read.

    One ``AWS::CloudWatch::Alarm`` per :func:`rollback_alarms` entry. SageMaker reads the alarms
    during the deployment and needs ``cloudwatch:DescribeAlarms`` on them
    (https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-configuration.html):
    the state machine role (the caller of UpdateEndpoint) and the SageMaker execution role get
    it on these two alarms only. Without ``endpoint.deployment.alarms.enabled`` there is neither.
    """
    specs = rollback_alarms(config, {"Ref": "EndpointName"})
    if not specs:
        return
    resources = template["Resources"]
    for spec in specs:
        resources[f"RollbackAlarm{spec['MetricName']}"] = {
            "Type": "AWS::CloudWatch::Alarm",
            "Properties": spec,
        }
    names = config.rollback_alarm_names
    base = "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:"
    grant = {
        "Effect": "Allow",
        "Action": "cloudwatch:DescribeAlarms",
        "Resource": [{"Fn::Sub": base + name} for name in names.values()],
    }
    for role in ("StateMachineRole", "SageMakerExecutionRole"):
        _inline_statements(template, role).append(dict(grant))
