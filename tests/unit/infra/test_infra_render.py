"""workflow.infra: substitutions, writing, parameters (its CLI and bundle: tests/integration)."""

from __future__ import annotations

import json
from pathlib import Path

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
