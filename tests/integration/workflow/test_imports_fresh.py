"""What a fresh interpreter imports: the CLI's help and the public package load nothing heavy."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_help_imports_no_heavy_module(repo_root) -> None:
    code = (
        "import sys; from workflow.cli import build_cli; build_cli(); "
        "heavy = [m for m in ('torch', 'sagemaker', 'stepfunctions', 'moto', 'boto3', 'botocore') "
        "if m in sys.modules]; print(heavy)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=repo_root, check=True)  # fmt: skip
    assert result.stdout.strip() == "[]"


def test_import_loads_only_the_standard_library(repo_root) -> None:
    code = (
        "import sys, workflow; "
        "print(sorted(m.split('.')[0] for m in sys.modules if m.split('.')[0] in "
        "{'yaml', 'pydantic', 'pydantic_settings', 'boto3', 'botocore', 'sagemaker', 'stepfunctions', 'moto', 'torch'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=repo_root, check=True).stdout  # fmt: skip
    assert out.strip() == "[]"
