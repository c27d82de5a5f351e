"""The Jenkinsfile's programs: the evidence script's usage error, npm-groovy-lint if installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]


def test_publish_evidence_script_refuses_a_bad_destination(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(REPO / "scripts" / "publish-ci-evidence.sh"), "bucket-without-scheme"],
        capture_output=True, text=True, cwd=tmp_path, timeout=30,
    )  # fmt: skip
    assert result.returncode == 2
    assert "usage:" in result.stderr and "bucket-without-scheme" in result.stderr


@pytest.mark.slow
def test_npm_groovy_lint_finds_no_error_or_warning() -> None:
    lint = shutil.which("npm-groovy-lint")
    if lint is None:
        pytest.skip(
            "npm-groovy-lint is not on PATH; `make tools` installs it into .tools/bin "
            "(needs Node 20 and Java 17)"
        )
    result = subprocess.run(
        [lint, "--failon", "warning", "--noserver", "--output", "txt", "Jenkinsfile"],
        capture_output=True, text=True, cwd=REPO, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
