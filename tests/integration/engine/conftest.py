"""Fixtures of the ASL contract suite: engines with scaled time, and a runner."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from workflow.local.engine import LocalEngine, LocalExecution

RUN_TIMEOUT = 60.0


@pytest.fixture
def make_engine() -> Iterator[Callable[..., LocalEngine]]:
    """Factory of engines with time scaled down 100x; stops what is still running at the end."""
    engines: list[LocalEngine] = []

    def make(**overrides: Any) -> LocalEngine:
        options: dict[str, Any] = {"time_scale": 0.01, "poll_interval": 0.5}
        options.update(overrides)
        engine = LocalEngine(**options)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        for execution in engine.executions:
            if not execution.done:
                execution.stop(error="TestTeardown")
                execution.wait(10)


@pytest.fixture
def engine(make_engine: Callable[..., LocalEngine]) -> LocalEngine:
    return make_engine()


@pytest.fixture
def run(engine: LocalEngine) -> Callable[..., LocalExecution]:
    """Run a definition to its end on the default engine and return the execution."""

    def _run(definition: dict[str, Any], payload: Any = None, **kwargs: Any) -> LocalExecution:
        execution = engine.start_execution(definition, payload, **kwargs)
        execution.wait(RUN_TIMEOUT)
        assert execution.done, f"execution still running after {RUN_TIMEOUT} s"
        return execution

    return _run


class TokenInbox:
    """Collects task tokens handed to a Lambda function; waits for them without timing asserts."""

    def __init__(self) -> None:
        self._tokens: list[str] = []
        self._cond = threading.Condition()

    def put(self, token: str) -> None:
        with self._cond:
            self._tokens.append(token)
            self._cond.notify_all()

    def take(self, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._tokens:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError("no task token arrived")
                self._cond.wait(remaining)
            return self._tokens.pop(0)


@pytest.fixture
def inbox() -> TokenInbox:
    return TokenInbox()
