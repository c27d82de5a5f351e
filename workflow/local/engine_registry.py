"""The handler registry of a `LocalEngine`: local service integrations and Lambda functions.

Dispatch to a handler is one lookup on the engine instance (`service_handler`,
`lambda_function`); `missing_handlers` lists what a definition would reach without one.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from workflow.local.activities import is_activity_arn
from workflow.local.engine_types import (
    CancelFn,
    EngineEvent,
    LambdaFn,
    Listener,
    PollFn,
    ServiceHandler,
    StartFn,
    lambda_function_name,
    parse_service_resource,
)

logger = logging.getLogger(__name__)


def _iter_states(states: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for name, state in states.items():
        if not isinstance(state, Mapping):
            continue
        yield name, state
        if state.get("Type") == "Parallel":
            for branch in state.get("Branches") or []:
                yield from _iter_states(branch.get("States") or {})
        elif state.get("Type") == "Map":
            processor = state.get("ItemProcessor") or state.get("Iterator") or {}
            yield from _iter_states(processor.get("States") or {})


class HandlerRegistry:
    """Registered service handlers, Lambda functions and event listeners (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._services: dict[tuple[str, str], ServiceHandler] = {}
        self._lambdas: dict[str, LambdaFn] = {}
        self._listeners: list[Listener] = []

    # Registration ------------------------------------------------------------------------
    def register_service(
        self,
        service: str,
        action: str,
        start: StartFn,
        poll: PollFn | None = None,
        cancel: CancelFn | None = None,
    ) -> None:
        """Register the local implementation of a service integration.

        Args:
            service: `sagemaker`, `sns`, `codebuild`, ... or `aws-sdk:<service>` for
                `arn:aws:states:::aws-sdk:<service>:<action>` resources.
            action: The API action as written in the resource (`createTrainingJob`).
            start: `start(params, ctx) -> dict`, the API response.
            poll: Needed for `.sync` resources; see `ServiceHandler`.
            cancel: Called when a `.sync` task times out or its execution stops.
        """
        with self._lock:
            self._services[(service, action)] = ServiceHandler(start, poll, cancel)

    def register_lambda(self, function_name_or_arn: str, fn: LambdaFn) -> None:
        """Register a Python function as a Lambda function.

        `fn(payload, ctx) -> result` is found by the exact name or ARN a definition uses, or by
        the function name of an ARN (`arn:...:function:NAME[:qualifier]`).
        """
        with self._lock:
            self._lambdas[function_name_or_arn] = fn
            self._lambdas.setdefault(lambda_function_name(function_name_or_arn), fn)

    def on_event(self, callback: Listener) -> Callable[[], None]:
        """Call `callback(EngineEvent)` for every history event of every execution, live.

        The callback runs in the engine's threads; exceptions it raises are logged and ignored.

        Returns:
            A function that unregisters the callback.
        """
        with self._lock:
            self._listeners.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._listeners:
                    self._listeners.remove(callback)

        return unsubscribe

    def dispatch(self, event: EngineEvent) -> None:
        """Call every `on_event` listener with `event` (a listener's exception is logged)."""
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(event)
            except Exception:
                logger.exception("an on_event listener failed on %s", event.event.get("type"))

    def has_listeners(self) -> bool:
        """Return True when an `on_event` listener is registered."""
        return bool(self._listeners)

    def service_handler(self, service: str, action: str) -> ServiceHandler | None:
        """Return the handler registered for (service, action), or None."""
        with self._lock:
            return self._services.get((service, action))

    def lambda_function(self, reference: str) -> LambdaFn | None:
        """Return the function registered for a Lambda name or ARN (or its name), or None."""
        with self._lock:
            return self._lambdas.get(reference) or self._lambdas.get(
                lambda_function_name(reference)
            )

    # Validation --------------------------------------------------------------------------
    def missing_handlers(self, definition: str | Mapping[str, Any]) -> list[str]:
        """List the Task states whose resource has no registered local handler.

        Lambda functions named through a path (`FunctionName.$`) are only resolved at run time.
        """
        document = json.loads(definition) if isinstance(definition, str) else definition
        problems: list[str] = []
        for name, state in _iter_states(document.get("States") or {}):
            if state.get("Type") != "Task":
                continue
            resource = str(state.get("Resource", ""))
            if is_activity_arn(resource):
                continue  # a worker answers it (GetActivityTask), or a mock
            parsed = parse_service_resource(resource)
            if parsed is not None and parsed[0] == "lambda":
                function = (state.get("Parameters") or {}).get("FunctionName")
                if isinstance(function, str) and self.lambda_function(function) is None:
                    problems.append(f"state {name!r}: Lambda function {function!r}")
            elif parsed is not None:
                service, action, pattern = parsed
                handler = self.service_handler(service, action)
                if handler is None:
                    problems.append(f"state {name!r}: {service}:{action} ({resource})")
                elif pattern.startswith("sync") and handler.poll is None:
                    problems.append(
                        f"state {name!r}: {service}:{action} is registered without a poll "
                        f"function, which {resource} (.sync) needs"
                    )
            elif ":lambda:" in resource and ":function:" in resource:
                if self.lambda_function(resource) is None:
                    problems.append(f"state {name!r}: Lambda function {resource!r}")
            else:
                problems.append(f"state {name!r}: unsupported resource {resource!r}")
        return problems
