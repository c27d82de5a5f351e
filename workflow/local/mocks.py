"""Mocked Task responses in AWS Step Functions Local's mock configuration format.

A user unit-tests a workflow offline by mocking the Task states that call foreign code::

    {
      "StateMachines": {
        "retrain": {"TestCases": {"HappyPath": {"CheckAccuracy": "AccurateEnough"}}}
      },
      "MockedResponses": {
        "AccurateEnough": {
          "0": {"Throw": {"Error": "Lambda.TooManyRequestsException", "Cause": "busy"}},
          "1-2": {"Return": {"StatusCode": 200, "Payload": {"accuracy": 0.93}}}
        }
      }
    }

`StateMachines.<name>.TestCases.<case>` maps a state name to a response name; each response
maps attempt numbers (`"0"`, or a range `"1-2"`; attempt n is `$$.State.RetryCount` n) to a
`Return` (the service's response: for `lambda:invoke`, `{"StatusCode": 200, "Payload": ...}`)
or a `Throw` (`Error` and `Cause`, catchable as a task failure). A mocked state calls nothing.
Reference: https://docs.aws.amazon.com/step-functions/latest/dg/sfn-local-mock-cfg-file.html
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workflow.local.errors import EngineError


class MockConfigError(EngineError):
    """The mock configuration is not in AWS Step Functions Local's format."""

    exit_code = 2


@dataclass(frozen=True)
class MockedResponse:
    """One attempt's mocked response: a `Return` value, or a `Throw` error and cause."""

    result: Any = None
    error: str | None = None
    cause: str = ""


@dataclass(frozen=True)
class MockTestCase:
    """The mocked responses of one test case, per state name and attempt."""

    state_machine: str
    name: str
    states: Mapping[str, tuple[MockedResponse, ...]]

    def response(self, state_name: str, attempt: int) -> MockedResponse | None:
        """Return the mocked response of `state_name`'s attempt `attempt`, or None (not mocked).

        An attempt beyond the responses defined fails the task with `States.Runtime`, naming
        the state and attempt (Step Functions Local refuses it too).
        """
        responses = self.states.get(state_name)
        if responses is None:
            return None
        if attempt < len(responses):
            return responses[attempt]
        return MockedResponse(
            error="States.Runtime",
            cause=f"the mock configuration's test case {self.name!r} defines no response for "
            f"attempt {attempt} of state {state_name!r}; add a key such as "
            f'"{len(responses)}" to its mocked response',
        )


def _attempts(key: str, where: str) -> range:
    start, _, end = key.partition("-")
    try:
        first, last = int(start), int(end or start)
    except ValueError:
        first, last = -1, -2
    if first < 0 or last < first:
        raise MockConfigError(
            f'{where}: attempt key {key!r} is not a number or range; use e.g. "0" or "1-2"'
        )
    return range(first, last + 1)


def _response(body: Any, where: str) -> MockedResponse:
    if not isinstance(body, Mapping) or len(body) != 1 or not ({"Return", "Throw"} & set(body)):
        raise MockConfigError(
            f"{where} must be an object with exactly one of 'Return' or 'Throw', got {body!r}"
        )
    if "Return" in body:
        return MockedResponse(result=body["Return"])
    throw = body["Throw"]
    if not isinstance(throw, Mapping) or not isinstance(throw.get("Error"), str):
        raise MockConfigError(
            f"{where}.Throw must be an object with an 'Error' string (and a 'Cause'), got {throw!r}"
        )
    return MockedResponse(error=throw["Error"], cause=str(throw.get("Cause", "")))


def _responses(config: Mapping[str, Any], name: str, where: str) -> tuple[MockedResponse, ...]:
    attempts = (config.get("MockedResponses") or {}).get(name)
    if not isinstance(attempts, Mapping) or not attempts:
        raise MockConfigError(
            f"{where} uses mocked response {name!r}, which MockedResponses does not define"
        )
    by_attempt: dict[int, MockedResponse] = {}
    for key, body in attempts.items():
        response = _response(body, f"MockedResponses.{name}.{key}")
        for attempt in _attempts(str(key), f"MockedResponses.{name}"):
            by_attempt[attempt] = response
    expected = list(range(len(by_attempt)))
    if sorted(by_attempt) != expected:
        raise MockConfigError(
            f"MockedResponses.{name}: attempts {sorted(by_attempt)} must be numbered "
            "consecutively from 0"
        )
    return tuple(by_attempt[attempt] for attempt in expected)


def load_mock_config(
    source: Path | Mapping[str, Any], state_machine: str, test_case: str
) -> MockTestCase:
    """Read one test case of a mock configuration file (or dict).

    Raises:
        MockConfigError: The file is missing or not JSON, or the state machine, the test case
            or a response it names is not defined, or a response is malformed.
    """
    if isinstance(source, Mapping):
        config: Any = source
    else:
        try:
            config = json.loads(Path(source).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise MockConfigError(
                f"cannot read the mock configuration {str(source)!r} ({exc}); pass a JSON file "
                "in AWS Step Functions Local's format"
            ) from exc
    machines = config.get("StateMachines") if isinstance(config, Mapping) else None
    if not isinstance(machines, Mapping) or state_machine not in machines:
        known = sorted(machines) if isinstance(machines, Mapping) else []
        raise MockConfigError(
            f"the mock configuration has no StateMachines.{state_machine!r} (it defines "
            f"{known}); name the state machine with --name or add it to the file"
        )
    cases = (machines[state_machine] or {}).get("TestCases") or {}
    if test_case not in cases:
        raise MockConfigError(
            f"StateMachines.{state_machine}.TestCases has no {test_case!r} (it defines "
            f"{sorted(cases)}); pick one with --test-case"
        )
    where = f"StateMachines.{state_machine}.TestCases.{test_case}"
    states = {
        str(state): _responses(config, str(name), f"{where}.{state}")
        for state, name in (cases[test_case] or {}).items()
    }
    return MockTestCase(state_machine=state_machine, name=test_case, states=states)
