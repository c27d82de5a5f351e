"""The rendered template: least privilege, the issue's resources, names from config."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from workflow.config import WorkflowConfig

# Actions that have no resource type in IAM, so "*" is their only form.
STAR_ONLY_ACTIONS = {
    "ecr:GetAuthorizationToken",
    "states:SendTaskSuccess",
    "states:SendTaskFailure",
    "cloudwatch:PutMetricData",
}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def resources_of(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {n: r for n, r in template["Resources"].items() if r["Type"] == kind}


def test_definition_is_the_rendered_asl_with_substitutions(
    rendered: dict[str, Any], definition_json: str, config: WorkflowConfig
) -> None:
    machine = rendered["Resources"]["StateMachine"]["Properties"]
    embedded = json.dumps(machine["Definition"])
    substitutions = machine["DefinitionSubstitutions"]
    used = set(re.findall(r"\$\{(\w+)\}", embedded))
    assert used and used <= set(substitutions)
    assert config.account_id not in embedded
    # Putting the configured values back gives exactly what `render` prints.
    values = {
        "SageMakerRoleArn": config.roles.sagemaker,
        "StartBuildFunction": config.lambdas.start_build,
        "RequestApprovalFunction": config.lambdas.request_approval,
        "EvaluateFunction": config.lambdas.evaluate,
        "BuildProject": config.codebuild_project,
        "NotificationTopicArn": config.notification.topic_arn,
        "ArtifactBucket": config.s3.bucket,
        "ImageRepositoryUri": config.image_repository_uri,
    }
    restored = re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], embedded)
    assert json.loads(restored) == json.loads(definition_json)


def test_substitutions_point_at_the_stack_resources(rendered: dict[str, Any]) -> None:
    subs = rendered["Resources"]["StateMachine"]["Properties"]["DefinitionSubstitutions"]
    assert subs["SageMakerRoleArn"] == {"Fn::GetAtt": ["SageMakerExecutionRole", "Arn"]}
    assert subs["StartBuildFunction"] == {"Ref": "StartBuildFunction"}
    assert subs["NotificationTopicArn"] == {"Ref": "NotificationTopic"}
    assert subs["BuildProject"] == {"Ref": "BuildProject"}


def test_names_default_to_the_configuration(
    rendered: dict[str, Any], config: WorkflowConfig
) -> None:
    params = {k: v.get("Default") for k, v in rendered["Parameters"].items()}
    assert params["Name"] == config.name
    assert params["StartBuildFunctionName"] == config.lambdas.start_build
    assert params["RequestApprovalFunctionName"] == config.lambdas.request_approval
    assert params["EvaluateFunctionName"] == config.lambdas.evaluate
    assert params["CodeBuildProjectName"] == config.codebuild_project
    assert params["ImageRepositoryName"] == config.ecr_repository
    assert params["EndpointName"] == config.endpoint.name
    assert params["ArtifactPrefix"] == config.s3.prefix
    assert params["ArtifactBucketName"] == ""  # derived <name>-<account>-<region>, as config does
    assert config.s3.bucket == f"{config.name}-{config.account_id}-{config.region}"
    resources = rendered["Resources"]
    role_names = {
        "SageMakerExecutionRole": config.roles.sagemaker,
        "StateMachineRole": config.roles.state_machine,
    }
    for resource, arn in role_names.items():
        assert resources[resource]["Properties"]["RoleName"] == {
            "Fn::Sub": "${Name}-" + arn.rsplit("/", 1)[1].removeprefix(config.name + "-")
        }
    topic = resources["NotificationTopic"]["Properties"]["TopicName"]
    assert topic == {
        "Fn::Sub": "${Name}-"
        + config.notification.topic_arn.rsplit(":", 1)[1].removeprefix(config.name + "-")
    }
    assert resources["StateMachine"]["Properties"]["StateMachineName"] == {"Ref": "Name"}


def test_explicit_bucket_becomes_the_parameter_default(make_config: Any) -> None:
    from workflow.infra import render_template

    config = make_config(**{"s3.bucket": "my-own-bucket"})
    template = render_template(
        config, definition_json='{"StartAt": "A", "States": {"A": {"Type": "Succeed"}}}'
    )
    assert template["Parameters"]["ArtifactBucketName"]["Default"] == "my-own-bucket"


def test_no_administrator_access_and_no_managed_policies(rendered: dict[str, Any]) -> None:
    text = json.dumps(rendered)
    assert "AdministratorAccess" not in text
    assert "PowerUserAccess" not in text
    for resource in rendered["Resources"].values():
        assert "ManagedPolicyArns" not in resource.get("Properties", {})


def test_no_wildcard_actions_or_service_wide_grants(all_statements: list) -> None:
    for name, statement in all_statements:
        for action in as_list(statement["Action"]):
            assert (action != "*" and not action.endswith(":*")) or statement["Effect"] == "Deny", (
                name,
                action,
            )
            assert action != "sagemaker:*"


def test_star_resources_only_for_actions_without_resource_types(all_statements: list) -> None:
    for name, statement in all_statements:
        if statement["Effect"] != "Allow" or as_list(statement["Resource"]) != ["*"]:
            continue
        assert set(as_list(statement["Action"])) <= STAR_ONLY_ACTIONS, (name, statement)


def test_pass_role_only_hands_the_sagemaker_role_to_sagemaker(all_statements: list) -> None:
    passes = [(n, s) for n, s in all_statements if "iam:PassRole" in as_list(s["Action"])]
    assert len(passes) == 1
    name, statement = passes[0]
    assert name == "StateMachineRole"
    assert statement["Resource"] == {"Fn::GetAtt": ["SageMakerExecutionRole", "Arn"]}
    assert statement["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
    }
    assert as_list(statement["Action"]) == ["iam:PassRole"]


def test_sagemaker_grants_are_scoped_to_the_pipeline_names(all_statements: list) -> None:
    for _, statement in all_statements:
        actions = as_list(statement["Action"])
        if any(a.startswith("sagemaker:") for a in actions):
            for resource in as_list(statement["Resource"]):
                assert ":sagemaker:" in resource["Fn::Sub"]
                assert resource["Fn::Sub"].endswith(
                    (
                        "${Name}-*",
                        "${EndpointName}",
                        # the model registry: the kit's group and its versions (group_name)
                        ":model-package-group/mask-r-cnn-mlops",
                        ":model-package/mask-r-cnn-mlops/*",
                    )
                )


def test_bucket_is_encrypted_versioned_private_and_tls_only(rendered: dict[str, Any]) -> None:
    bucket = rendered["Resources"]["ArtifactBucket"]["Properties"]
    rule = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("aws:kms", "AES256")
    assert bucket["VersioningConfiguration"]["Status"] == "Enabled"
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert len(bucket["PublicAccessBlockConfiguration"]) == 4
    policy = rendered["Resources"]["ArtifactBucketPolicy"]["Properties"]["PolicyDocument"]
    (deny,) = policy["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_ecr_scans_on_push_with_immutable_tags(rendered: dict[str, Any]) -> None:
    repo = rendered["Resources"]["ImageRepository"]["Properties"]
    assert repo["ImageScanningConfiguration"] == {"ScanOnPush": True}
    assert repo["ImageTagMutability"] == "IMMUTABLE"


def test_codebuild_is_privileged_and_uses_the_repository_buildspec(
    rendered: dict[str, Any],
) -> None:
    project = rendered["Resources"]["BuildProject"]["Properties"]
    assert project["Environment"]["PrivilegedMode"] is True
    assert project["Source"]["BuildSpec"] == "buildspec.yml"
    names = {v["Name"] for v in project["Environment"]["EnvironmentVariables"]}
    assert {"STATE_MACHINE_ARN", "MLOPS_NAME", "MLOPS_ACCOUNT_ID", "MLOPS_S3__BUCKET"} <= names
    group = rendered["Resources"]["TestReportGroup"]["Properties"]
    assert group["Name"] == {"Fn::Sub": "${CodeBuildProjectName}-tests"}


def test_schedule_is_disabled_by_default(rendered: dict[str, Any]) -> None:
    assert rendered["Parameters"]["ScheduleEnabled"]["Default"] == "false"
    rule = rendered["Resources"]["RetrainingSchedule"]["Properties"]
    assert rule["State"] == {"Fn::If": ["ScheduleOn", "ENABLED", "DISABLED"]}
    assert rendered["Conditions"]["ScheduleOn"] == {
        "Fn::Equals": [{"Ref": "ScheduleEnabled"}, "true"]
    }


def test_every_issue_resource_is_present(rendered: dict[str, Any]) -> None:
    kinds = {r["Type"] for r in rendered["Resources"].values()}
    assert {
        "AWS::S3::Bucket", "AWS::ECR::Repository", "AWS::CodeBuild::Project",
        "AWS::Serverless::Function", "AWS::Serverless::HttpApi", "AWS::SNS::Topic",
        "AWS::StepFunctions::StateMachine", "AWS::Events::Rule", "AWS::IAM::Role",
        "AWS::SecretsManager::Secret",
    } <= kinds  # fmt: skip
    handlers = {
        r["Properties"]["Handler"]
        for r in resources_of(rendered, "AWS::Serverless::Function").values()
    }
    assert handlers == {
        "workflow.lambdas.start_build.handler",
        "workflow.lambdas.approval.request_handler",
        "workflow.lambdas.approval.api_handler",
        "workflow.lambdas.evaluate.handler",
    }
    api = rendered["Resources"]["ApprovalApiFunction"]["Properties"]["Events"]
    assert {e["Properties"]["Method"] for e in api.values()} == {"GET", "POST"}


def test_rendered_file_is_plain_yaml(rendered_file: Path) -> None:
    data = yaml.safe_load(rendered_file.read_text())
    assert data["Transform"] == "AWS::Serverless-2016-10-31"
    assert data["Globals"]["Function"]["CodeUri"] == "lambda/"


def test_without_ssm_hyperparameters_there_is_no_ssm_grant(all_statements: list) -> None:
    assert not [s for _, s in all_statements if "ssm:" in json.dumps(s["Action"])]


def _sagemaker_role_statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    role = template["Resources"]["SageMakerExecutionRole"]["Properties"]
    return [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]


def _capture_writes(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        s
        for s in statements
        if any("data-capture" in json.dumps(r) for r in as_list(s["Resource"]))
    ]


def test_sagemaker_role_writes_data_capture_under_its_prefix_only(
    rendered: dict[str, Any], all_statements: list
) -> None:
    # SageMaker writes an endpoint's captures as the model's execution role, under
    # <DestinationS3Uri>/<EndpointName>/...; only PutObject there, nothing read or deleted.
    (grant,) = _capture_writes([s for _, s in all_statements])
    assert grant in _sagemaker_role_statements(rendered)
    assert grant == {
        "Effect": "Allow",
        "Action": "s3:PutObject",
        "Resource": {"Fn::Sub": "${ArtifactBucket.Arn}/mask-r-cnn/data-capture/${EndpointName}/*"},
    }
    states = rendered["Resources"]["StateMachine"]["Properties"]["Definition"]["States"]
    capture = states["CreateEndpointConfig"]["Parameters"]["DataCaptureConfig"]
    assert capture["DestinationS3Uri"] == "s3://${ArtifactBucket}/mask-r-cnn/data-capture"


def test_no_data_capture_grant_when_capture_is_off(make_config: Any) -> None:
    from workflow.definition import render_json
    from workflow.infra import render_template

    config = make_config(**{"endpoint.data_capture.enabled": "false"})
    template = render_template(config, render_json(config))
    assert _capture_writes(_sagemaker_role_statements(template)) == []


def _registry_grants(template: dict[str, Any]) -> list[dict[str, Any]]:
    role = template["Resources"]["StateMachineRole"]["Properties"]
    return [
        s
        for p in role["Policies"]
        for s in p["PolicyDocument"]["Statement"]
        if "model-package" in json.dumps(s["Resource"])
    ]


def test_state_machine_keeps_its_model_package_group_only(rendered: dict[str, Any]) -> None:
    base = "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:"
    assert _registry_grants(rendered) == [
        {
            "Effect": "Allow",
            "Action": ["sagemaker:CreateModelPackageGroup", "sagemaker:CreateModelPackage"],
            "Resource": {"Fn::Sub": base + "model-package-group/mask-r-cnn-mlops"},
        },
        {
            "Effect": "Allow",
            "Action": [
                "sagemaker:CreateModelPackage",
                "sagemaker:DescribeModelPackage",
                "sagemaker:UpdateModelPackage",
            ],
            "Resource": {"Fn::Sub": base + "model-package/mask-r-cnn-mlops/*"},
        },
        {  # FindWarmStart (training.warm_start: last-approved)
            "Effect": "Allow",
            "Action": "sagemaker:ListModelPackages",
            "Resource": {"Fn::Sub": base + "model-package-group/mask-r-cnn-mlops"},
        },
    ]
    states = rendered["Resources"]["StateMachine"]["Properties"]["Definition"]["States"]
    assert states["RegisterModel"]["Parameters"]["ModelPackageGroupName"] == "mask-r-cnn-mlops"


def test_registry_grant_follows_the_group_and_goes_with_the_registry(make_config: Any) -> None:
    from workflow.definition import render_json
    from workflow.infra import render_template

    config = make_config(**{"registry.group_name": "Team-Models"})
    grants = _registry_grants(render_template(config, render_json(config)))
    assert [g["Resource"]["Fn::Sub"].rsplit(":", 1)[1] for g in grants] == [
        "model-package-group/team-models",  # SageMaker lower-cases names in ARNs
        "model-package/team-models/*",
        "model-package-group/team-models",  # ListModelPackages for the warm start
    ]
    config = make_config(**{"registry.group_name": "Team-Models", "training.warm_start": "none"})
    grants = _registry_grants(render_template(config, render_json(config)))
    assert "sagemaker:ListModelPackages" not in json.dumps(grants)
    config = make_config(**{"registry.enabled": "false"})
    assert _registry_grants(render_template(config, render_json(config))) == []
