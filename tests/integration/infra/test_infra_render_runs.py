"""`python -m workflow infra` and the Lambda bundle, each run in a fresh interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from workflow import infra
from workflow.config import WorkflowConfig

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
TINY_ASL = json.dumps({"StartAt": "A", "States": {"A": {"Type": "Succeed"}}})


def test_bundle_holds_only_the_lambdas_and_imports_alone(
    config: WorkflowConfig, tmp_path: Path
) -> None:
    infra.write_rendered(config, tmp_path / "t.yaml", definition_json=TINY_ASL)
    bundle = tmp_path / "lambda"
    files = sorted(str(p.relative_to(bundle)) for p in bundle.rglob("*") if p.is_file())
    assert "requirements.txt" in files
    assert "workflow/lambdas/approval.py" in files
    assert "mask_r_cnn/metrics.py" in files  # the one COCO mAP, shared with the container
    assert not any(f.startswith("mask_r_cnn/") and f != "mask_r_cnn/metrics.py"
                   and f != "mask_r_cnn/__init__.py" for f in files)  # fmt: skip
    assert not any(
        f.startswith(("workflow/local", "workflow/commands", "workflow/config")) for f in files
    )
    requirements = (bundle / "requirements.txt").read_text().split()
    assert all("==" in line for line in requirements)
    assert {line.split("==")[0] for line in requirements} == {"pycocotools", "numpy"}
    # The bundle must import with nothing of the checkout on the path (as in the Lambda runtime).
    code = (
        "import workflow.lambdas.start_build, workflow.lambdas.approval, workflow.lambdas.evaluate;"
        "import workflow, sys; print(workflow.__file__)"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-S", "-c", f"import sys; sys.path[:0] = [{str(bundle)!r}]; {code}"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith(str(bundle))


def run_cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")}
    return subprocess.run(
        [sys.executable, "-m", "workflow", *args], capture_output=True, text=True, cwd=cwd, env=env,
        timeout=300,
    )  # fmt: skip


@pytest.mark.slow
def test_cli_prints_the_template_and_writes_it(tmp_path: Path) -> None:
    printed = run_cli("infra", "--set", "account_id=123456789012")
    assert printed.returncode == 0, printed.stderr
    template: dict[str, Any] = yaml.safe_load(printed.stdout)
    definition = template["Resources"]["StateMachine"]["Properties"]["Definition"]
    assert definition["StartAt"] != "NotRendered"
    out = tmp_path / "build" / "template.yaml"
    written = run_cli("infra", "--output", str(out))
    assert written.returncode == 0, written.stderr
    assert written.stdout.strip() == str(out)
    again = run_cli("infra", "--output", str(out))
    assert again.returncode == 1
    assert again.stderr.startswith("error: ") and "--force" in again.stderr
    assert "Traceback" not in again.stderr


def test_cli_prints_parameter_overrides() -> None:
    result = run_cli("infra", "--print-overrides", "infra/parameters.json")
    assert result.returncode == 0, result.stderr
    assert "ScheduleEnabled=false" in result.stdout.split()
    assert "NotificationEmail=" in result.stdout.split()
