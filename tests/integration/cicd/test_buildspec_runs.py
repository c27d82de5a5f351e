"""buildspec.yml's behaviour in an emulator: phases, fakes for aws, docker and pip."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

pytestmark = pytest.mark.integration

COMMIT = "0123456789abcdef0123456789abcdef01234567"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mask-r-cnn"


EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:mask-r-cnn-mlops:run-1"


def test_state_machine_build_pushes_the_tag_it_was_given_and_answers_nothing(
    run_buildspec: Any,
) -> None:
    """The state machine polls the build: the build sends no task result, and starts nothing."""
    result = run_buildspec(
        PIPELINE_EXECUTION_ARN=EXECUTION, COMMIT_ID=COMMIT, IMAGE_TAG="0123456-20261121193000"
    )
    assert result.succeeded, result.output
    assert result.calls_of("stepfunctions", "send-task-success") == []
    assert result.calls_of("stepfunctions", "send-task-failure") == []
    assert result.invoke_calls() == []  # the state machine is already running
    (build,) = result.docker_calls("build")
    # exactly the URI start_build returned to the state machine: <repository>:IMAGE_TAG
    assert f"-t {IMAGE}:0123456-20261121193000" in build
    assert "--build-arg SOURCE_COMMIT=0123456-20261121193000" in build
    assert result.docker_calls("push") == [f"push {IMAGE}:0123456-20261121193000"]
    artifacts = result.source / "build" / "artifacts"
    info = json.loads((artifacts / "build-info.json").read_text())
    assert info["image"] == f"{IMAGE}:0123456-20261121193000"
    assert json.loads((artifacts / "state-machine.asl.json").read_text())["StartAt"] == "Deployed"


@pytest.mark.parametrize(
    ("fake", "failed_phase"),
    [("FAKE_PIP_RC", "install"), ("FAKE_DOCKER_RC", "pre_build"), ("FAKE_BUILD_RC", "build")],
)
def test_state_machine_build_fails_in_any_phase_without_answering(
    run_buildspec: Any, fake: str, failed_phase: str
) -> None:
    """A failed build is a FAILED build (batchGetBuilds reads it); nothing is sent."""
    result = run_buildspec(PIPELINE_EXECUTION_ARN=EXECUTION, **{fake: "1"})
    assert not result.succeeded
    assert result.phases[failed_phase] == "FAILED"
    assert result.calls_of("stepfunctions", "send-task-failure") == []
    assert result.calls_of("stepfunctions", "send-task-success") == []
    assert result.invoke_calls() == []
    if failed_phase != "build":  # CodeBuild skips the later phases
        assert "build" not in result.phases
        assert result.docker_calls("build") == []


def test_jenkins_build_runs_invoke_sfn_and_waits(run_buildspec: Any) -> None:
    result = run_buildspec(COMMIT_ID=COMMIT, CI_EVIDENCE_URI="s3://bucket/mask-r-cnn/ci/abc/")
    assert result.succeeded, result.output
    (args,) = result.invoke_calls()
    assert args[:2] == ["--image-uri", args[1]] and args[1].startswith(f"{IMAGE}:0123456-")
    assert args[2:] == ["--commit", COMMIT]
    assert not result.calls_of("stepfunctions", "send-task-success")
    assert not result.calls_of("stepfunctions", "send-task-failure")
    (copy,) = result.calls_of("s3", "cp")
    assert copy[copy.index("--recursive") + 1 :][-2:] == [
        "s3://bucket/mask-r-cnn/ci/abc/",
        "ci-evidence/",
    ]
    assert (result.source / "ci-evidence" / "reports" / "pytest.xml").is_file()


def test_failed_execution_fails_the_build(run_buildspec: Any) -> None:
    result = run_buildspec(COMMIT_ID=COMMIT, FAKE_INVOKE_RC="1")
    assert not result.succeeded
    assert result.phases["post_build"] == "FAILED"
    assert len(result.invoke_calls()) == 1


def test_failed_image_build_does_not_start_the_state_machine(run_buildspec: Any) -> None:
    result = run_buildspec(FAKE_BUILD_RC="1")
    assert not result.succeeded
    assert result.invoke_calls() == []
    assert (result.source / "build" / "artifacts" / "build-info.json").is_file()


def test_image_tag_is_short_commit_plus_utc_timestamp(run_buildspec: Any) -> None:
    result = run_buildspec()
    (push,) = result.docker_calls("push")
    tag = push.split(":")[-1]
    assert re.fullmatch(r"0123456-\d{14}", tag), tag
    login = result.calls_of("ecr", "get-login-password")
    assert login and result.option(login[0], "--region") == "us-east-1"
