"""The image's executables in git, and build_and_push.sh run with fake aws, docker and git."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
CONTAINER = REPO / "container"


def test_train_and_serve_entry_points_are_tracked_as_executable() -> None:
    listing = subprocess.run(
        [
            "git",
            "ls-files",
            "-s",
            "container/mask_r_cnn/train",
            "container/mask_r_cnn/serve",
            "container/build_and_push.sh",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    modes = [line.split()[0] for line in listing.splitlines()]
    assert modes == ["100755"] * 3, listing


STUBS = {
    "aws": """#!/bin/bash
echo "aws $*" >> "$CALLS"
case "$1 $2" in
  "sts get-caller-identity") echo 123456789012 ;;
  "ecr describe-repositories") exit "${DESCRIBE_RC:-0}" ;;
  "ecr create-repository") echo '{}' ;;
  "ecr get-login-password") echo s3cret ;;
  "configure get") exit 1 ;;
  *) echo "unexpected aws $*" >&2; exit 9 ;;
esac
""",
    "docker": """#!/bin/bash
if [ "$1" = login ]; then echo "docker $* stdin=$(cat)" >> "$CALLS"; else echo "docker $*" >> "$CALLS"; fi
echo "docker output that must not reach stdout"
""",
    "git": """#!/bin/bash
case "$*" in
  *rev-parse*) echo abc123def456 ;;
  *status*) echo "${GIT_STATUS:-}" ;;
esac
""",
}


def _run(
    tmp_path: Path, *args: str, **env: str
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, body in STUBS.items():
        (bin_dir / name).write_text(body)
        (bin_dir / name).chmod(0o755)
    calls = tmp_path / "calls.log"
    calls.write_text("")
    environ = {
        "PATH": f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin",
        "CALLS": str(calls),
        "AWS_DEFAULT_REGION": "eu-west-1",
        **env,
    }
    result = subprocess.run(
        ["bash", str(CONTAINER / "build_and_push.sh"), *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result, calls.read_text().splitlines()


def test_build_and_push_creates_repo_logs_in_tags_with_commit_and_prints_only_the_uri(
    tmp_path: Path,
) -> None:
    result, calls = _run(
        tmp_path,
        "-t",
        "latest",
        "--build-arg",
        "INSTALL_TORCH=1",
        "--build-arg",
        "BASE_IMAGE=debian:12",
        DESCRIBE_RC="254",
    )
    assert result.returncode == 0, result.stderr
    uri = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/mask-r-cnn:abc123def456"
    assert result.stdout == uri + "\n"
    assert "docker output that must not reach stdout" in result.stderr
    assert any(
        c.startswith("aws ecr create-repository --region eu-west-1 --repository-name mask-r-cnn")
        for c in calls
    )
    login = next(c for c in calls if c.startswith("docker login"))
    assert (
        login
        == "docker login --username AWS --password-stdin 123456789012.dkr.ecr.eu-west-1.amazonaws.com stdin=s3cret"
    )
    build = next(c for c in calls if c.startswith("docker build"))
    assert "--build-arg INSTALL_TORCH=1 --build-arg BASE_IMAGE=debian:12" in build
    assert "--build-arg SOURCE_COMMIT=abc123def456" in build
    assert f"-t {uri}" in build
    assert f"docker tag {uri} {uri.replace('abc123def456', 'latest')}" in calls
    assert [c for c in calls if c.startswith("docker push")] == [
        f"docker push {uri}",
        f"docker push {uri.replace('abc123def456', 'latest')}",
    ]
    assert not any("get-login " in c for c in calls)


def test_existing_repository_is_not_created_again(tmp_path: Path) -> None:
    result, calls = _run(tmp_path, "-r", "team/maskrcnn", "--region", "us-west-2")
    assert result.returncode == 0, result.stderr
    assert (
        result.stdout == "123456789012.dkr.ecr.us-west-2.amazonaws.com/team/maskrcnn:abc123def456\n"
    )
    assert not any("create-repository" in c for c in calls)


def test_no_push_builds_locally_without_aws(tmp_path: Path) -> None:
    result, calls = _run(tmp_path, "--no-push", SOURCE_COMMIT="feedbeef")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "mask-r-cnn:feedbeef\n"
    assert not any(c.startswith("aws") for c in calls)
    assert not any(c.startswith("docker push") for c in calls)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--bogus"], "unknown argument '--bogus'"),
        (["-t"], "-t needs a value"),
        (["--build-arg", "NOEQUALS"], "is not NAME=VALUE"),
        (["-r", "Bad_Name"], "is not a valid ECR name"),
    ],
)
def test_bad_arguments_print_usage_and_exit_2(tmp_path: Path, args: list[str], words: str) -> None:
    result, calls = _run(tmp_path, *args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert words in result.stderr
    assert not any(c.startswith("docker") for c in calls)
