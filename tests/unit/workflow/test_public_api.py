from __future__ import annotations

import subprocess
import sys

import workflow


def test_all_names_exist() -> None:
    for name in workflow.__all__:
        assert getattr(workflow, name) is not None, name
    assert sorted(workflow.__all__) == workflow.__all__


def test_import_loads_only_the_standard_library(repo_root) -> None:
    code = (
        "import sys, workflow; "
        "print(sorted(m.split('.')[0] for m in sys.modules if m.split('.')[0] in "
        "{'yaml', 'boto3', 'botocore', 'sagemaker', 'stepfunctions', 'moto', 'torch'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=repo_root, check=True).stdout  # fmt: skip
    assert out.strip() == "[]"
