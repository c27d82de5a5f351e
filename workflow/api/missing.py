"""Task resources the local runtime has no handler for fail at their Task, as on AWS.

``run --local`` refuses such a definition before it starts; an API client expects AWS's
behaviour instead: StartExecution succeeds and the execution fails at that Task (where a Catch
can handle it). Before an execution starts, every Task state of the definition whose resource
has no handler gets one that fails the task with the reason and the fix:

- a Lambda function: ``Lambda.ResourceNotFoundException``, AWS's error for a missing function
  (https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html#API_Invoke_Errors);
- any other integration: ``States.TaskFailed`` naming the service action.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from workflow.local.engine import LocalEngine, TaskFailed, parse_service_resource


def fail_missing_tasks(engine: LocalEngine, definition: Mapping[str, Any]) -> list[str]:
    """Register failing handlers for the Task resources of ``definition`` that have none.

    Returns:
        One line per resource given a failing handler.
    """
    added = []
    for name, state in _tasks(definition):
        if not engine.missing_handlers({"StartAt": name, "States": {name: {**state, "End": True}}}):
            continue
        resource = str(state.get("Resource", ""))
        parsed = parse_service_resource(resource)
        if parsed is None or parsed[0] == "lambda":
            function = str((state.get("Parameters") or {}).get("FunctionName") or resource)
            engine.register_lambda(
                function,
                _failing(
                    "Lambda.ResourceNotFoundException",
                    f"Function not found: {function}. The local runtime has no Lambda function "
                    "of that name; register it with LocalEngine.register_lambda or name one the "
                    "kit provides.",
                ),
            )
            added.append(f"Lambda function {function}")
        else:
            service, action, _ = parsed
            fail = _failing(
                "States.TaskFailed",
                f"The local runtime does not implement {service}:{action}; register a handler "
                "with LocalEngine.register_service, or run this state machine on AWS.",
            )
            engine.register_service(service, action, fail, poll=fail)
            added.append(f"{service}:{action}")
    return added


def _tasks(machine: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for name, state in (machine.get("States") or {}).items():
        if not isinstance(state, Mapping):
            continue
        if state.get("Type") == "Task":
            yield str(name), {k: v for k, v in state.items() if k not in ("Next", "End")}
        for branch in state.get("Branches") or []:
            yield from _tasks(branch)
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if isinstance(processor, Mapping):
            yield from _tasks(processor)


def _failing(error: str, cause: str) -> Any:
    def fail(*_: Any) -> Any:
        raise TaskFailed(error, cause)

    return fail


__all__ = ["fail_missing_tasks"]
