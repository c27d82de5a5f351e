"""start_build against moto's CodeBuild: one build, token and commit in its environment."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from workflow.lambdas import start_build
from workflow.lambdas.errors import BadEventError, LambdaConfigError

COMMIT = "0123456789abcdef0123456789abcdef01234567"


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


def test_starts_one_build_with_token_commit_and_tag(aws: Any, project: str) -> None:
    event = {"TaskToken": "token-123", "CommitId": COMMIT, "ImageTag": "0123456-20261121193000"}
    result = start_build.handler(event, None, environ={"CODEBUILD_PROJECT": project})
    (request,) = aws.calls_of("codebuild", "StartBuild")
    assert request["projectName"] == project
    assert request["sourceVersion"] == COMMIT
    env = {v["name"]: v["value"] for v in request["environmentVariablesOverride"]}
    assert env == {
        "TASK_TOKEN": "token-123",
        "COMMIT_ID": COMMIT,
        "IMAGE_TAG": "0123456-20261121193000",
    }
    builds = aws.client("codebuild").list_builds_for_project(projectName=project)["ids"]
    assert builds == [result["BuildId"]]
    assert result["ImageTag"] == "0123456-20261121193000"
    # The project is used as it is: never deleted or recreated.
    assert aws.calls_of("codebuild", "DeleteProject") == []
    assert aws.calls_of("codebuild", "CreateProject") == []


def test_default_tag_is_short_commit_plus_utc_timestamp(aws: Any, project: str) -> None:
    result = start_build.handler(
        {"TaskToken": "t", "CommitId": COMMIT}, None, environ={"CODEBUILD_PROJECT": project}
    )
    short, stamp = result["ImageTag"].split("-")
    assert short == COMMIT[:7]
    assert len(stamp) == 14 and stamp.isdigit()


def test_short_or_symbolic_commit_is_not_a_source_version(aws: Any, project: str) -> None:
    start_build.handler(
        {"TaskToken": "t", "CommitId": "local"}, None, environ={"CODEBUILD_PROJECT": project}
    )
    (request,) = aws.calls_of("codebuild", "StartBuild")
    assert "sourceVersion" not in request


def test_image_tag_sanitises_the_commit() -> None:
    now = datetime(2026, 11, 21, 19, 30, 0, tzinfo=timezone.utc)
    assert start_build.image_tag("feature/x y", now) == "feature-20261121193000"
    assert start_build.image_tag("", now) == "unknown-20261121193000"


def test_missing_project_is_a_config_error(aws: Any) -> None:
    with pytest.raises(LambdaConfigError, match="CODEBUILD_PROJECT is not set"):
        start_build.handler({"TaskToken": "t", "CommitId": COMMIT}, None, environ={})


@pytest.mark.parametrize("missing", ["TaskToken", "CommitId"])
def test_missing_event_field_is_a_bad_event(aws: Any, missing: str) -> None:
    event = {"TaskToken": "t", "CommitId": COMMIT}
    del event[missing]
    with pytest.raises(BadEventError, match=f"no '{missing}'"):
        start_build.handler(event, None, environ={"CODEBUILD_PROJECT": "p"})
    assert aws.calls_of("codebuild", "StartBuild") == []


def test_invalid_image_tag_is_refused(aws: Any) -> None:
    with pytest.raises(BadEventError, match="ImageTag = '-bad' is not a valid image tag"):
        start_build.handler(
            {"TaskToken": "t", "CommitId": COMMIT, "ImageTag": "-bad"},
            None,
            environ={"CODEBUILD_PROJECT": "p"},
        )
