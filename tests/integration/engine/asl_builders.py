"""Small builders shared by the ASL contract test files."""

from __future__ import annotations

import threading
import time
from typing import Any

LAMBDA = "arn:aws:states:::lambda:invoke"


def machine(states: dict[str, Any], **top: Any) -> dict[str, Any]:
    """Return a state machine starting at the first state of `states`."""
    return {"StartAt": next(iter(states)), "States": states, **top}


def pass_state(parameters: Any = None, **fields: Any) -> dict[str, Any]:
    """Return a Pass state (End unless Next is given)."""
    state: dict[str, Any] = {"Type": "Pass", **fields}
    if parameters is not None:
        state["Parameters"] = parameters
    if "Next" not in state:
        state["End"] = True
    return state


def one_pass(parameters: Any, **fields: Any) -> dict[str, Any]:
    """Return a machine of one Pass state with these Parameters."""
    return machine({"P": pass_state(parameters, **fields)})


def lambda_task(function: str, **fields: Any) -> dict[str, Any]:
    """Return a `lambda:invoke` Task of `function` with the state input as payload."""
    state: dict[str, Any] = {
        "Type": "Task",
        "Resource": LAMBDA,
        "Parameters": {"FunctionName": function, "Payload.$": "$"},
        **fields,
    }
    if "Next" not in state:
        state["End"] = True
    return state


class ConcurrencyProbe:
    """A Lambda function that echoes its payload and records how many calls overlapped."""

    def __init__(self, seconds: float = 0.05) -> None:
        self.seconds = seconds
        self.peak = 0
        self._active = 0
        self._lock = threading.Lock()

    def __call__(self, payload: Any, _ctx: Any) -> Any:
        with self._lock:
            self._active += 1
            self.peak = max(self.peak, self._active)
        time.sleep(self.seconds)
        with self._lock:
            self._active -= 1
        return payload
