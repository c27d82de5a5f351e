"""What importing the engine loads, each in a fresh interpreter: moto comes with LocalEngine()."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_light_import_keeps_moto_ec2_out():
    code = (
        "import sys; import workflow.local.engine; "
        "print('moto.ec2' in sys.modules, 'moto.batch.utils' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["False", "False"]


def test_package_import_does_not_import_moto():
    code = "import sys; import workflow.local; print('moto' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "False"


def test_engine_module_import_does_not_import_moto():
    code = "import sys; import workflow.local.engine; print('moto' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "False"  # the compat check and moto come with LocalEngine()
