"""buildspec.yml: v0.2 structure, the scripts it calls exist, and its behaviour in an emulator."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]
COMMIT = "0123456789abcdef0123456789abcdef01234567"
PHASE_KEYS = {"run-as", "on-failure", "runtime-versions", "commands", "finally"}
TOP_KEYS = {"version", "run-as", "env", "proxy", "batch", "phases", "reports", "artifacts", "cache"}
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mask-r-cnn"


def commands(spec: dict[str, Any]) -> list[str]:
    found = []
    for phase in spec["phases"].values():
        found += phase.get("commands", []) + phase.get("finally", [])
    return found


# --- structure -------------------------------------------------------------------------------


def test_version_and_sections(buildspec: dict[str, Any]) -> None:
    assert buildspec["version"] == 0.2
    assert set(buildspec) <= TOP_KEYS
    assert list(buildspec["phases"]) == ["install", "pre_build", "build", "post_build"]
    for name, phase in buildspec["phases"].items():
        assert set(phase) <= PHASE_KEYS, name
        assert phase["commands"], name
        assert all(
            isinstance(c, str) and c.strip() for c in phase["commands"] + phase.get("finally", [])
        )
    assert buildspec["env"]["shell"] == "bash"


def test_install_installs_only_what_invoke_sfn_needs(buildspec: dict[str, Any]) -> None:
    installs = [c for c in buildspec["phases"]["install"]["commands"] if "pip install" in c]
    assert installs == [
        "python -m pip install --quiet --disable-pip-version-check -r infra/invoke-requirements.txt",
        "python -m pip install --quiet --disable-pip-version-check --no-deps -e .",
    ]
    lock = dict(
        line.split("==", 1) for line in (REPO / "requirements.lock").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )  # fmt: skip
    pins = [
        line.split("==", 1)
        for line in (REPO / "infra" / "invoke-requirements.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    names = {name.lower() for name, _ in pins}
    assert names == {
        "boto3",
        "botocore",
        "jmespath",
        "python-dateutil",
        "pyyaml",
        "s3transfer",
        "six",
        "urllib3",
        # The typed configuration (workflow.config) the start path loads.
        "pydantic",
        "pydantic_core",
        "pydantic-settings",
        "annotated-types",
        "typing-inspection",
        "typing_extensions",
        "python-dotenv",
        # The command line (workflow.cli) invoke_sfn.py calls.
        "click",
    }
    for name, version in pins:
        assert lock.get(name) == version, f"{name}=={version} differs from requirements.lock"


def test_pre_build_logs_in_with_get_login_password(buildspec: dict[str, Any]) -> None:
    pre = " ".join(buildspec["phases"]["pre_build"]["commands"])
    assert (
        "aws ecr get-login-password" in pre
        and "docker login --username AWS --password-stdin" in pre
    )
    assert "aws ecr get-login " not in pre  # removed in AWS CLI v2
    assert "CODEBUILD_RESOLVED_SOURCE_VERSION" in pre


def test_reports_and_artifacts(buildspec: dict[str, Any]) -> None:
    report = buildspec["reports"]["tests"]
    assert report["file-format"] == "JUNITXML"
    assert report["files"]
    assert buildspec["artifacts"]["base-directory"] == "build/artifacts"
    finals = " ".join(buildspec["phases"]["post_build"]["finally"])
    assert "state-machine.asl.json" in finals and "notebooks" in finals


def test_every_repository_file_it_calls_exists(buildspec: dict[str, Any]) -> None:
    text = "\n".join(commands(buildspec))
    referenced = set(
        re.findall(r"(?<![\w/.-])((?:scripts|container|infra)/[\w./-]+|[\w-]+\.py)\b", text)
    )
    assert {"container/build_and_push.sh", "invoke_sfn.py",
            "infra/invoke-requirements.txt"} <= referenced  # fmt: skip
    for relative in sorted(referenced):
        path = REPO / relative
        assert path.is_file(), f"buildspec.yml calls {relative}, which does not exist"
        if relative.endswith(".sh"):
            assert path.stat().st_mode & 0o111, f"{relative} is not executable"


def test_no_privileged_assumption_or_credentials(buildspec: dict[str, Any]) -> None:
    text = (REPO / "buildspec.yml").read_text()
    assert "AKIA" not in text and "aws_secret_access_key" not in text.lower()
    assert "privileged" not in json.dumps(buildspec).lower()  # the template sets it


# --- behaviour ---------------------------------------------------------------------------------


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


def test_buildspec_never_sends_a_task_result() -> None:
    text = (REPO / "buildspec.yml").read_text()
    assert "send-task" not in text and "TASK_TOKEN" not in text


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
