"""buildspec.yml: v0.2 structure and the scripts it calls exist (its runs: tests/integration)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]
PHASE_KEYS = {"run-as", "on-failure", "runtime-versions", "commands", "finally"}
TOP_KEYS = {"version", "run-as", "env", "proxy", "batch", "phases", "reports", "artifacts", "cache"}


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


def test_buildspec_never_sends_a_task_result() -> None:
    text = (REPO / "buildspec.yml").read_text()
    assert "send-task" not in text and "TASK_TOKEN" not in text
