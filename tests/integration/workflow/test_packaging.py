"""`pip install .` (no extras) is the authoring and AWS client: render, validate, deploy and start
run without torch, moto or the serving stack; those come with the `[local]` extra."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
LOCAL_ONLY = ("torch", "torchvision", "moto", "flask", "gunicorn", "pycocotools", "PIL", "psutil")
# Importing a name set to None in sys.modules raises ImportError, as if it were not installed.
BLOCK = f"import sys\nfor name in {LOCAL_ONLY!r}:\n    sys.modules[name] = None\n"


def _run(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCK + code],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_base_dependencies_hold_no_local_runtime() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    base = " ".join(project["dependencies"])
    for name in ("torch", "moto", "flask", "gunicorn", "pycocotools"):
        assert name not in base, f"{name} is a base dependency; it belongs in [local]"
    local = " ".join(project["optional-dependencies"]["local"])
    for name in ("torch", "torchvision", "moto", "flask", "gunicorn", "pycocotools"):
        assert name in local


@pytest.mark.parametrize("command", [["render"], ["validate"], ["--help"]])
def test_authoring_commands_run_without_the_local_extra(command: list[str], tmp_path: Path) -> None:
    code = f"from workflow.cli import main\nraise SystemExit(main({command!r}))\n"
    result = _run(code, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    if command == ["render"]:
        assert '"StartAt"' in result.stdout


def test_aws_client_modules_import_without_the_local_extra() -> None:
    code = (
        "import workflow.aws, workflow.definition, workflow.validate\n"
        "import workflow.commands.deploy, workflow.commands.start, workflow.commands.approve\n"
        "import invoke_sfn\n"
    )
    result = _run(code, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
