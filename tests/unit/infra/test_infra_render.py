"""workflow.infra and `python -m workflow infra`: substitutions, the bundle, parameters, the CLI."""

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

REPO = Path(__file__).resolve().parents[3]
TINY_ASL = json.dumps({"StartAt": "A", "States": {"A": {"Type": "Succeed"}}})


def test_unknown_account_specific_value_is_refused(config: WorkflowConfig) -> None:
    asl = {"StartAt": "A", "States": {"A": {"Type": "Task", "Parameters": {
        "QueueUrl": f"https://sqs.eu-west-1.amazonaws.com/{config.account_id}/q"}}}}  # fmt: skip
    with pytest.raises(
        infra.InfraError,
        match=r"\$\.States\.A\.Parameters\.QueueUrl = .* names account 123456789012",
    ):
        infra.substitute_definition(asl, config)


def test_placeholder_syntax_in_the_asl_is_refused(config: WorkflowConfig) -> None:
    asl = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": "${oops}", "End": True}}}
    with pytest.raises(infra.InfraError, match=r"contains '\$\{'"):
        infra.substitute_definition(asl, config)


def test_free_text_mentioning_names_is_left_alone(config: WorkflowConfig) -> None:
    comment = f"{config.name}: uses {config.lambdas.evaluate} (see docs)"
    asl = {"Comment": comment, "StartAt": "A", "States": {"A": {"Type": "Succeed"}}}
    assert infra.substitute_definition(asl, config)["Comment"] == comment


def test_bucket_uris_are_substituted(config: WorkflowConfig) -> None:
    asl = {
        "StartAt": "A",
        "States": {"A": {"Type": "Pass", "Result": f"s3://{config.s3.bucket}/x/", "End": True}},
    }
    result = infra.substitute_definition(asl, config)
    assert result["States"]["A"]["Result"] == "s3://${ArtifactBucket}/x/"


def test_write_refuses_to_overwrite_and_force_replaces(
    config: WorkflowConfig, tmp_path: Path
) -> None:
    out = tmp_path / "t.yaml"
    infra.write_rendered(config, out, definition_json=TINY_ASL)
    marker = tmp_path / "lambda" / "stale.txt"
    marker.write_text("old")
    with pytest.raises(
        infra.InfraError, match="already exist; choose another --output or pass --force"
    ):
        infra.write_rendered(config, out, definition_json=TINY_ASL)
    infra.write_rendered(config, out, force=True, definition_json=TINY_ASL)
    assert not marker.exists()
    assert yaml.safe_load(out.read_text())["Resources"]["StateMachine"]["Properties"][
        "Definition"
    ] == json.loads(TINY_ASL)


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


def test_repository_parameters_file_is_valid() -> None:
    values = infra.read_parameters(REPO / "infra" / "parameters.json", infra.load_template())
    assert values["ScheduleEnabled"] == "false"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[{"ParameterKey": "Nmae", "ParameterValue": "x"}]', r"unknown parameters \['Nmae'\]"),
        ('{"Name": "x"}', "must be a JSON list"),
        ("[", "is not JSON"),
    ],
)
def test_bad_parameters_file_is_refused(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "p.json"
    path.write_text(content)
    with pytest.raises(infra.InfraError, match=message):
        infra.read_parameters(path, infra.load_template())


def test_missing_template_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(infra.InfraError, match="does not exist; run from a checkout"):
        infra.load_template(tmp_path / "nope.yaml")


def run_cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")}
    return subprocess.run(
        [sys.executable, "-m", "workflow", *args], capture_output=True, text=True, cwd=cwd, env=env,
        timeout=300,
    )  # fmt: skip


@pytest.mark.integration
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


@pytest.mark.integration
def test_cli_prints_parameter_overrides() -> None:
    result = run_cli("infra", "--print-overrides", "infra/parameters.json")
    assert result.returncode == 0, result.stderr
    assert "ScheduleEnabled=false" in result.stdout.split()
    assert "NotificationEmail=" in result.stdout.split()
