"""Mocked Task responses in AWS Step Functions Local's mock configuration format.

Format: https://docs.aws.amazon.com/step-functions/latest/dg/sfn-local-mock-cfg-file.html
(`StateMachines.<name>.TestCases.<case>` maps states to responses; `MockedResponses.<name>`
maps attempt numbers, or ranges such as "1-2", to a `Return` or a `Throw`).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from asl_builders import LAMBDA, machine, pass_state

from workflow.local.engine import FAILED, SUCCEEDED
from workflow.local.mocks import MockConfigError, load_mock_config

pytestmark = pytest.mark.integration

CONFIG: dict[str, Any] = {
    "StateMachines": {
        "sm": {
            "TestCases": {
                "HappyPath": {"Check": "Accurate"},
                "RetryPath": {"Check": "FlakyThenAccurate"},
                "Broken": {"Check": "AlwaysThrottled"},
            }
        }
    },
    "MockedResponses": {
        "Accurate": {"0": {"Return": {"StatusCode": 200, "Payload": {"error": 0.05}}}},
        "FlakyThenAccurate": {
            "0-1": {"Throw": {"Error": "Lambda.TooManyRequestsException", "Cause": "busy"}},
            "2": {"Return": {"StatusCode": 200, "Payload": {"error": 0.05}}},
        },
        "AlwaysThrottled": {
            "0": {"Throw": {"Error": "Lambda.TooManyRequestsException", "Cause": "busy"}}
        },
    },
}

DEFINITION = machine(
    {
        "Check": {
            "Type": "Task",
            "Resource": LAMBDA,
            "Parameters": {"FunctionName": "query-training-status", "Payload.$": "$"},
            "Retry": [
                {
                    "ErrorEquals": ["Lambda.TooManyRequestsException"],
                    "IntervalSeconds": 1,
                    "MaxAttempts": 2,
                }
            ],
            "ResultSelector": {"error.$": "$.Payload.error"},
            "Next": "Done",
        },
        "Done": pass_state(),
    }
)


def _run(engine, case: str):
    mocks = load_mock_config(CONFIG, "sm", case)
    execution = engine.start_execution(DEFINITION, {}, mocks=mocks)
    execution.wait(60)
    return execution


def test_return_is_the_service_response(make_engine):
    # The mocked Lambda returns the invoke response; no function is registered.
    assert _run(make_engine(time_scale=0), "HappyPath").output == {"error": 0.05}


def test_throw_per_attempt_with_ranges_and_retry(make_engine):
    # Attempts 0-1 throw (retried), attempt 2 returns.
    execution = _run(make_engine(time_scale=0), "RetryPath")
    assert execution.status == SUCCEEDED and len(execution.waits) == 2


def test_throw_beyond_the_defined_attempts(make_engine):
    execution = _run(make_engine(time_scale=0), "Broken")
    assert (execution.status, execution.error) == (FAILED, "States.Runtime")
    assert "defines no response for attempt 1 of state 'Check'" in execution.cause


@pytest.mark.parametrize(
    ("config", "machine_name", "case", "message"),
    [
        (CONFIG, "other", "HappyPath", "no StateMachines.'other'"),
        (CONFIG, "sm", "Nope", "has no 'Nope'"),
        ({**CONFIG, "MockedResponses": {}}, "sm", "HappyPath", "MockedResponses does not define"),
        (
            {**CONFIG, "MockedResponses": {"Accurate": {"0": {"Return": 1, "Throw": {}}}}},
            "sm",
            "HappyPath",
            "exactly one of 'Return' or 'Throw'",
        ),
        (
            {**CONFIG, "MockedResponses": {"Accurate": {"1": {"Return": 1}}}},
            "sm",
            "HappyPath",
            "numbered consecutively from 0",
        ),
    ],
)
def test_bad_mock_configurations_are_one_sentence(config, machine_name, case, message):
    with pytest.raises(MockConfigError, match=message) as info:
        load_mock_config(config, machine_name, case)
    assert info.value.exit_code == 2


def test_mock_config_file(tmp_path):
    path = tmp_path / "mocks.json"
    path.write_text(json.dumps(CONFIG))
    case = load_mock_config(path, "sm", "HappyPath")
    assert case.response("Check", 0).result == {"StatusCode": 200, "Payload": {"error": 0.05}}
    assert case.response("Other", 0) is None
