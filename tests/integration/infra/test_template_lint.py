"""cfn-lint on the source template and on a planted error; the rendered SSM grant.

cfn-lint and checkov over the rendered template of every configuration variant (the default
included) are in tests/reliability/test_infra_security.py, one process each.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

CFN_LINT = Path(sys.executable).with_name("cfn-lint")


def test_cfn_lint_passes_on_the_source_template() -> None:
    result = subprocess.run(
        [str(CFN_LINT), "infra/template.yaml"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_catches_a_planted_error(rendered_file: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    text = rendered_file.read_text().replace(
        "ImageTagMutability: IMMUTABLE", "ImageTagMutability: SOMETIMES"
    )
    bad.write_text(text)
    result = subprocess.run([str(CFN_LINT), str(bad)], capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "SOMETIMES" in result.stdout


def test_ssm_hyperparameters_get_a_scoped_grant(make_config: Any, tmp_path: Path) -> None:
    from workflow.definition import render_json
    from workflow.infra import render_template, write_rendered

    config = make_config(
        **{
            "training.hyperparameters_ssm_parameter": "/mask-r-cnn/hyperparameters",
            "training.spot": "true",
        }
    )
    template = render_template(config, render_json(config))
    written = write_rendered(config, tmp_path / "t.yaml", definition_json=render_json(config))
    lint = subprocess.run(
        [str(CFN_LINT), str(written)], capture_output=True, text=True, timeout=300
    )
    assert lint.returncode == 0, lint.stdout
    role = template["Resources"]["StateMachineRole"]["Properties"]["Policies"][0]
    (grant,) = [s for s in role["PolicyDocument"]["Statement"] if s["Action"] == "ssm:GetParameter"]
    assert grant["Resource"]["Fn::Sub"].endswith(":parameter/mask-r-cnn/hyperparameters")
    states = template["Resources"]["StateMachine"]["Properties"]["Definition"]["States"]
    assert "ReadHyperParameters" in states
