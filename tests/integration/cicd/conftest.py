"""A small CodeBuild (buildspec v0.2) emulator with fake `aws`, `docker` and build tools.

CodeBuild has no offline runner, so `run_buildspec` implements the parts of the v0.2 semantics
the kit relies on: every command of every phase runs in ONE bash instance (variables carry over),
a failing command ends its phase's commands, the phase's `finally` block still runs,
`CODEBUILD_BUILD_SUCCEEDING` turns 0 on failure, a failure in install or pre_build skips the later
phases, and a failure in build still runs post_build.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from helpers.buildspec import read_buildspec

REPO = Path(__file__).resolve().parents[3]
PHASES = ("install", "pre_build", "build", "post_build")

FAKE_AWS = r"""#!/usr/bin/env bash
printf '%s\n' "$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1:]))' "$@")" >> "$FAKE_LOG/aws.jsonl"
case "$1 $2" in
  "sts get-caller-identity") echo 123456789012 ;;
  "ecr get-login-password") echo fake-password ;;
  "stepfunctions describe-state-machine") echo '{"StartAt": "Deployed", "States": {}}' ;;
  "s3 cp") dest="${@: -1}"; mkdir -p "${dest%/}/reports" && echo "<testsuite/>" > "${dest%/}/reports/pytest.xml" ;;
esac
exit "${FAKE_AWS_RC:-0}"
"""
FAKE_DOCKER = r"""#!/usr/bin/env bash
[ -t 0 ] || cat > /dev/null
echo "$*" >> "$FAKE_LOG/docker.log"
case "$1" in
  login) exit "${FAKE_DOCKER_RC:-0}" ;;
  build) exit "${FAKE_BUILD_RC:-0}" ;;
esac
exit 0
"""
FAKE_PYTHON = r"""#!/usr/bin/env bash
if [ "$1 $2" = "-m pip" ]; then echo "$*" >> "$FAKE_LOG/pip.log"; exit "${FAKE_PIP_RC:-0}"; fi
exec "$REAL_PYTHON" "$@"
"""
FAKE_INVOKE = r"""import json, os, sys
with open(os.path.join(os.environ["FAKE_LOG"], "invoke_sfn.jsonl"), "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\n")
sys.exit(int(os.environ.get("FAKE_INVOKE_RC", "0")))
"""


@dataclass
class BuildResult:
    """What one emulated build did."""

    succeeded: bool
    phases: dict[str, str]
    output: str
    logs: Path
    source: Path

    def aws_calls(self) -> list[list[str]]:
        path = self.logs / "aws.jsonl"
        lines = path.read_text().splitlines() if path.exists() else []
        return [json.loads(line) for line in lines]

    def calls_of(self, service: str, command: str) -> list[list[str]]:
        return [c for c in self.aws_calls() if c[:2] == [service, command]]

    def option(self, call: list[str], name: str) -> str:
        return call[call.index(name) + 1]

    def invoke_calls(self) -> list[list[str]]:
        path = self.logs / "invoke_sfn.jsonl"
        return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []

    def docker_calls(self, command: str) -> list[str]:
        path = self.logs / "docker.log"
        lines = path.read_text().splitlines() if path.exists() else []
        return [line for line in lines if line.split()[0] == command]


def _script(spec: dict[str, Any]) -> str:
    """Translate the buildspec into one bash script with CodeBuild's phase transitions."""
    lines = [
        "set +e",
        "export CODEBUILD_BUILD_SUCCEEDING=1",
        "__skip=0",
    ]
    for phase in PHASES:
        body = spec["phases"].get(phase) or {}
        lines += [
            "if [ $__skip = 0 ]; then",
            "  __failed=0",
        ]
        for command in body.get("commands", []):
            lines += [
                "  if [ $__failed = 0 ]; then",
                f"    eval {shlex.quote(command)}",
                "    if [ $? != 0 ]; then __failed=1; export CODEBUILD_BUILD_SUCCEEDING=0; fi",
                "  fi",
            ]
        for command in body.get("finally", []):
            lines += [
                f"  eval {shlex.quote(command)}",
                "  if [ $? != 0 ]; then __failed=1; export CODEBUILD_BUILD_SUCCEEDING=0; fi",
            ]
        lines += [
            f"  if [ $__failed = 0 ]; then echo 'PHASE {phase} SUCCEEDED' >> \"$EMULATOR_PHASE_LOG\";"
            f" else echo 'PHASE {phase} FAILED' >> \"$EMULATOR_PHASE_LOG\"; fi",
        ]
        if phase in ("install", "pre_build"):
            lines.append("  if [ $__failed = 1 ]; then __skip=1; fi")
        lines.append("fi")
    lines.append('[ "$CODEBUILD_BUILD_SUCCEEDING" = 1 ]')
    return "\n".join(lines) + "\n"


def _write_exe(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


@pytest.fixture
def run_buildspec(tmp_path: Path) -> Callable[..., BuildResult]:
    """Factory: run buildspec.yml in a scratch source tree with fakes; env overrides per call."""

    def run(**env: str) -> BuildResult:
        source = tmp_path / "src"
        logs = tmp_path / "logs"
        bin_dir = tmp_path / "bin"
        logs.mkdir()
        # The real scripts the buildspec calls, fakes for what needs AWS or Docker.
        shutil.copytree(REPO / "scripts", source / "scripts")
        shutil.copytree(REPO / "infra", source / "infra")
        # The real build script, with fake docker and aws underneath.
        (source / "container").mkdir()
        for name in ("build_and_push.sh", "Dockerfile"):
            shutil.copy2(REPO / "container" / name, source / "container" / name)
        (source / "invoke_sfn.py").write_text(FAKE_INVOKE)
        _write_exe(bin_dir / "aws", FAKE_AWS)
        _write_exe(bin_dir / "docker", FAKE_DOCKER)
        _write_exe(bin_dir / "python", FAKE_PYTHON)
        environ = {
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "HOME": str(tmp_path),
            "REAL_PYTHON": sys.executable,
            "FAKE_LOG": str(logs),
            "AWS_DEFAULT_REGION": "us-east-1",
            "CODEBUILD_RESOLVED_SOURCE_VERSION": "0123456789abcdef0123456789abcdef01234567",
            "CODEBUILD_BUILD_ID": "mask-r-cnn-mlops-build:1111",
            "CODEBUILD_BUILD_URL": "https://console.aws.amazon.com/codebuild/build/1111",
            "CODEBUILD_SRC_DIR": str(source),
            "ECR_REPOSITORY": "mask-r-cnn",
            "STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:mask-r-cnn-mlops",
            **env,
        }  # fmt: skip
        script = tmp_path / "build.sh"
        script.write_text(_script(read_buildspec()))
        phase_log = tmp_path / "phases.log"
        phase_log.touch()
        environ["EMULATOR_PHASE_LOG"] = str(phase_log)
        result = subprocess.run(
            ["bash", str(script)], cwd=source, env=environ, capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
        phases = {}
        for line in phase_log.read_text().splitlines():
            _, phase, outcome = line.split()
            phases[phase] = outcome
        return BuildResult(
            succeeded=result.returncode == 0,
            phases=phases,
            output=result.stdout + result.stderr,
            logs=logs,
            source=source,
        )

    return run
