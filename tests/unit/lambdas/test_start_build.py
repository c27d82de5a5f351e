"""start_build against moto's CodeBuild: one build, commit and tag in its environment, no token."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from workflow.lambdas import start_build
from workflow.lambdas.errors import BadEventError, LambdaConfigError

COMMIT = "0123456789abcdef0123456789abcdef01234567"
REPOSITORY = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mask-r-cnn"
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:mlops:run-1"


def env(project: str = "p") -> dict[str, str]:
    return {"CODEBUILD_PROJECT": project, "IMAGE_REPOSITORY_URI": REPOSITORY}


@pytest.fixture
def project(aws: Any) -> str:
    iam = aws.client("iam")
    role = iam.create_role(RoleName="codebuild", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    aws.client("codebuild").create_project(
        name="mlops-build",
        source={
            "type": "CODECOMMIT",
            "location": "https://git-codecommit.us-east-1.amazonaws.com/v1/repos/r",
        },
        artifacts={"type": "NO_ARTIFACTS"},
        environment={
            "type": "LINUX_CONTAINER",
            "image": "aws/codebuild/standard:7.0",
            "computeType": "BUILD_GENERAL1_SMALL",
            "privilegedMode": True,
        },
        serviceRole=role,
    )
    return "mlops-build"


def test_starts_one_build_with_commit_and_tag_and_returns_the_image(aws: Any, project: str) -> None:
    event = {"CommitId": COMMIT, "ImageTag": "0123456-20261121193000", "ExecutionArn": EXECUTION}
    result = start_build.handler(event, None, environ=env(project))
    (request,) = aws.calls_of("codebuild", "StartBuild")
    assert request["projectName"] == project
    assert request["sourceVersion"] == COMMIT
    variables = {v["name"]: v["value"] for v in request["environmentVariablesOverride"]}
    assert variables == {
        "COMMIT_ID": COMMIT,
        "IMAGE_TAG": "0123456-20261121193000",
        "PIPELINE_EXECUTION_ARN": EXECUTION,
    }
    builds = aws.client("codebuild").list_builds_for_project(projectName=project)["ids"]
    assert builds == [result["BuildId"]]
    assert result["ImageTag"] == "0123456-20261121193000"
    assert result["ImageUri"] == f"{REPOSITORY}:0123456-20261121193000"
    # The project is used as it is: never deleted or recreated.
    assert aws.calls_of("codebuild", "DeleteProject") == []
    assert aws.calls_of("codebuild", "CreateProject") == []


def test_default_tag_is_short_commit_plus_utc_timestamp(aws: Any, project: str) -> None:
    result = start_build.handler({"CommitId": COMMIT}, None, environ=env(project))
    short, stamp = result["ImageTag"].split("-")
    assert short == COMMIT[:7]
    assert len(stamp) == 14 and stamp.isdigit()


def test_short_or_symbolic_commit_is_not_a_source_version(aws: Any, project: str) -> None:
    start_build.handler({"CommitId": "local"}, None, environ=env(project))
    (request,) = aws.calls_of("codebuild", "StartBuild")
    assert "sourceVersion" not in request


def test_image_tag_sanitises_the_commit() -> None:
    now = datetime(2026, 11, 21, 19, 30, 0, tzinfo=timezone.utc)
    assert start_build.image_tag("feature/x y", now) == "feature-20261121193000"
    assert start_build.image_tag("", now) == "unknown-20261121193000"


def test_missing_project_is_a_config_error(aws: Any) -> None:
    with pytest.raises(LambdaConfigError, match="CODEBUILD_PROJECT is not set"):
        start_build.handler({"CommitId": COMMIT}, None, environ={})


def test_missing_repository_is_a_config_error(aws: Any) -> None:
    with pytest.raises(LambdaConfigError, match="IMAGE_REPOSITORY_URI is not set"):
        start_build.handler({"CommitId": COMMIT}, None, environ={"CODEBUILD_PROJECT": "p"})
    assert aws.calls_of("codebuild", "StartBuild") == []


def test_missing_commit_is_a_bad_event(aws: Any) -> None:
    with pytest.raises(BadEventError, match="no 'CommitId'"):
        start_build.handler({"ExecutionArn": EXECUTION}, None, environ=env())
    assert aws.calls_of("codebuild", "StartBuild") == []


def test_a_task_token_never_reaches_the_build(aws: Any) -> None:
    """An old definition that still passes its token is refused before any build starts."""
    with pytest.raises(BadEventError, match="carries a TaskToken"):
        start_build.handler({"TaskToken": "t", "CommitId": COMMIT}, None, environ=env())
    assert aws.calls_of("codebuild", "StartBuild") == []


def test_invalid_image_tag_is_refused(aws: Any) -> None:
    with pytest.raises(BadEventError, match="ImageTag = '-bad' is not a valid image tag"):
        start_build.handler(
            {"CommitId": COMMIT, "ImageTag": "-bad"},
            None,
            environ=env(),
        )
