"""A local run's execution input: building it generates the synthetic data set (a process)."""

from __future__ import annotations

import io

import pytest

from workflow.notebook.local_api import LocalStepFunctions

pytestmark = pytest.mark.integration


def test_local_execution_input_carries_the_local_gate_threshold(make_session):
    overrides = {
        "gate.threshold": 0.6,
        "local.gate_threshold": 0.1,
        "local.dataset": {"train": 1, "validation": 1, "test": 1, "size": 32},
    }
    with LocalStepFunctions(make_session(overrides=overrides), stream=io.StringIO()) as local:
        document = local.execution_input(commit="abc1234", image_uri="local/x:1")
        assert document["GateThreshold"] == 0.1  # local runs: local.gate_threshold
        assert document["HyperParameters"]["backbone"] == "resnet18_fpn"
        assert document["TestData"].endswith("/test/") and "synthetic-" in document["TestData"]
