"""scripts/*.sh: syntax, shellcheck (when installed), and their usage errors."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
SCRIPTS = sorted((REPO / "scripts").glob("*.sh"))


def run(
    *args: str, env: dict[str, str] | None = None, cwd: Path = REPO
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), capture_output=True, text=True, timeout=60, cwd=cwd,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_parses_and_is_executable(script: Path) -> None:
    assert script.stat().st_mode & 0o111
    assert script.read_text().startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in script.read_text()
    assert run("bash", "-n", str(script)).returncode == 0


def test_shellcheck_is_clean() -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (apt-get install -y shellcheck)")
    result = run("shellcheck", *map(str, SCRIPTS))
    assert result.returncode == 0, result.stdout


def test_docker_engine_usage_and_host(tmp_path: Path) -> None:
    script = str(REPO / "scripts" / "docker-engine.sh")
    bad = run(script, "restart")
    assert bad.returncode == 2 and "usage:" in bad.stderr and "'restart'" in bad.stderr
    host = run(script, "host", env={"MLOPS_DOCKER_DIR": str(tmp_path / "engine")})
    assert host.stdout.strip() == f"unix://{tmp_path}/engine/docker.sock"
    status = run(script, "status", env={"MLOPS_DOCKER_DIR": str(tmp_path / "engine")})
    assert status.returncode == 1  # nothing answers on a fresh socket path
    stop = run(script, "stop", env={"MLOPS_DOCKER_DIR": str(tmp_path / "engine")})
    assert stop.returncode == 0 and "no engine started by this script" in stop.stderr


def test_base_image_needs_an_engine(tmp_path: Path) -> None:
    if shutil.which("docker") is None:
        pytest.skip("no docker CLI on PATH")
    result = run(
        str(REPO / "scripts" / "build-base-image.sh"),
        env={"DOCKER_HOST": f"unix://{tmp_path}/absent.sock"},
    )
    assert result.returncode == 2
    assert "no Docker engine answers" in result.stderr and "docker-engine.sh start" in result.stderr


def test_build_image_needs_a_tag() -> None:
    result = run(str(REPO / "scripts" / "build-image.sh"))
    assert result.returncode == 2 and "usage:" in result.stderr
