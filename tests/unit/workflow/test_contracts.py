"""The workflow's contracts hold where they are used: one definition, every user agrees."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from workflow.contracts import (
    ERROR_REJECTED,
    GATE_THRESHOLD_KEY,
    ExecutionInput,
    StepId,
    check_state_name,
    is_valid_name,
)
from workflow.errors import ConfigError
from workflow.naming import execution_input

NOW = dt.datetime(2026, 11, 21, 19, 30, 0, tzinfo=dt.timezone.utc)


def test_execution_input_has_the_contract_shape(make_config: Any) -> None:
    config = make_config()
    required = ExecutionInput.__required_keys__
    optional = ExecutionInput.__optional_keys__
    without_image = execution_input(config, "abc1234", now=NOW)
    assert set(without_image) == required
    with_image = execution_input(config, "abc1234", image_uri="x.dkr.ecr/r:t", now=NOW)
    assert set(with_image) == required | optional == required | {"ImageUri"}
    assert GATE_THRESHOLD_KEY in required


@pytest.mark.parametrize(
    "name", ["a", "mask-r-cnn", "a--b", "-a", "a-", "a_b", "a" * 63, "a" * 64, "Ünicode"]
)
def test_endpoint_name_key_follows_the_sagemaker_name_rule(make_config: Any, name: str) -> None:
    try:
        accepted = make_config(endpoint__name=name).endpoint.name == name
    except ConfigError:
        accepted = False
    assert accepted == is_valid_name(name)


def test_every_state_id_is_a_valid_state_name() -> None:
    for step in StepId:
        assert check_state_name(step.value) == step.value
        assert check_state_name(step.failed()) == step.failed()


def test_the_rejection_is_the_error_the_machine_catches(make_config: Any) -> None:
    from workflow.definition import render_definition

    states = render_definition(make_config())["States"]
    catch = states[StepId.REQUEST_APPROVAL.value]["Catch"]
    assert catch[0]["ErrorEquals"] == [ERROR_REJECTED]
