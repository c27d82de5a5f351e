"""Step Functions ``TestState``: run one state on the local engine and report what it did.

As https://docs.aws.amazon.com/step-functions/latest/apireference/API_TestState.html has it: the
request gives the ``definition`` of one state (or of a whole state machine plus ``stateName``),
its ``input``, an ``inspectionLevel`` (``INFO``; ``DEBUG`` and ``TRACE`` add ``inspectionData``)
and optionally a ``mock`` result or error instead of calling the Task's service. The answer has
``status`` (``SUCCEEDED``, ``FAILED``, ``RETRIABLE`` or ``CAUGHT_ERROR``), ``output`` or
``error``/``cause``, and ``nextState``.

The state runs in a harness machine whose transition targets are ``Succeed`` states, without
its ``Retry`` (TestState never retries; a matching retrier makes the status ``RETRIABLE``).
``inspectionData`` holds the state's data flow (``input``, ``afterInputPath``,
``afterParameters``, ``result``, ``afterResultSelector``, ``afterResultPath``): what the history
shows, and the steps it does not show evaluated by the engine as one-field Pass states;
TRACE adds nothing here because no HTTP Task is served locally. ``variables`` are refused: the
local engine cannot read ``$variables``.
"""

from __future__ import annotations

import copy
import json
import threading
from typing import Any

from workflow.api.errors import ApiError, validation
from workflow.local.engine import (
    EngineError,
    LocalEngine,
    LocalExecution,
    TaskFailed,
    lambda_function_name,
    parse_service_resource,
)

LEVELS = ("INFO", "DEBUG", "TRACE")
RUN_TIMEOUT_SECONDS = 60.0


def test_state(engine: LocalEngine, body: dict[str, Any]) -> dict[str, Any]:
    """Run the TestState request ``body`` on ``engine`` (or a mocking engine) and answer it."""
    name, state = _state_of(body)
    level = str(body.get("inspectionLevel") or "INFO")
    if level not in LEVELS:
        raise validation(
            f"1 validation error detected: Value '{level}' at 'inspectionLevel' failed to "
            f"satisfy constraint: Member must satisfy enum value set: [{', '.join(LEVELS)}]"
        )
    state_input = _json(body.get("input"), "input", default={})
    if body.get("variables"):
        # moto 5.2.5's interpreter stores Assign but fails on reading a $variable.
        raise validation(
            "variables are not supported locally: the local engine cannot read $variables; "
            "test the state with its values in the input instead"
        )
    runner = _mocking_engine(engine, state, body["mock"]) if body.get("mock") else engine
    document = _harness(name, state)
    try:
        execution = runner.start_execution(document, state_input, state_machine_name="TestState")
    except EngineError as exc:
        raise validation(f"the state cannot run locally: {exc}") from exc
    execution.wait(RUN_TIMEOUT_SECONDS)
    if not execution.done:
        execution.stop(error="States.Timeout", cause="TestState ran out of time")
        execution.wait(10)
    return _answer(runner, execution, name, state, level)


def _state_of(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    text = body.get("definition")
    document = _json(text, "definition", default=None)
    if not isinstance(document, dict):
        raise ApiError("InvalidDefinition", "Invalid State Machine Definition: not a JSON object")
    wanted = body.get("stateName")
    if wanted:
        states = document.get("States") or {}
        if wanted not in states:
            raise validation(f"stateName '{wanted}' is not a top-level state of the definition")
        return str(wanted), copy.deepcopy(states[wanted])
    if "States" in document:
        raise validation("a whole state machine definition needs stateName to pick the state")
    if "Type" not in document:
        raise ApiError("InvalidDefinition", "Invalid State Machine Definition: no 'Type'")
    return "TestState", copy.deepcopy(document)


def _json(text: Any, member: str, default: Any) -> Any:
    if text is None or text == "":
        return default
    try:
        return json.loads(str(text))
    except ValueError as exc:
        code = "InvalidExecutionInput" if member == "input" else "InvalidDefinition"
        raise ApiError(code, f"{member} is not JSON: {exc}") from exc


def _targets(state: dict[str, Any]) -> list[str]:
    targets = [state.get("Next"), state.get("Default")]
    targets += [rule.get("Next") for rule in state.get("Choices") or []]
    targets += [catcher.get("Next") for catcher in state.get("Catch") or []]
    return [t for t in targets if isinstance(t, str)]


def _harness(name: str, state: dict[str, Any]) -> dict[str, Any]:
    tested = {k: v for k, v in state.items() if k != "Retry"}
    states: dict[str, Any] = {t: {"Type": "Succeed"} for t in _targets(state) if t != name}
    states[name] = tested
    return {"StartAt": name, "States": states}


def _mocking_engine(engine: LocalEngine, state: dict[str, Any], mock: Any) -> LocalEngine:
    if state.get("Type") != "Task" or not isinstance(mock, dict):
        raise validation("mock is only supported for Task states (pass 'result' or 'errorOutput')")
    error = mock.get("errorOutput")
    result = None if error else _json(mock.get("result"), "mock.result", default=None)
    runner = LocalEngine(
        region=engine.region, account_id=engine.account_id, time_scale=engine.time_scale
    )

    def answer(params: Any, ctx: Any) -> Any:
        if error:
            raise TaskFailed(str(error.get("error") or "States.TaskFailed"), error.get("cause"))
        if ctx.task_token:
            token = ctx.task_token
            threading.Timer(0.05, runner.send_task_success, (token, result)).start()
            return {}
        return result

    resource = str(state.get("Resource", ""))
    parsed = parse_service_resource(resource)
    if parsed is None or parsed[0] == "lambda":
        function = (state.get("Parameters") or {}).get("FunctionName") or resource
        runner.register_lambda(lambda_function_name(str(function)), _lambda_mock(answer))
        runner.register_lambda(str(function), _lambda_mock(answer))
    else:
        service, action, _ = parsed
        runner.register_service(service, action, answer, poll=lambda submitted, ctx: submitted)
    return runner


def _lambda_mock(answer: Any) -> Any:
    def invoke(payload: Any, ctx: Any) -> Any:
        result = answer(payload, ctx)
        return result.get("Payload", result) if isinstance(result, dict) else result

    return invoke


def _answer(
    runner: LocalEngine, execution: LocalExecution, name: str, state: dict[str, Any], level: str
) -> dict[str, Any]:
    events = execution.history()
    data: dict[str, Any] = {}
    entered = exited = False
    failure: dict[str, Any] | None = None
    next_state = None
    for event in events:
        kind = str(event["type"])
        details: dict[str, Any] = next(
            (v for k, v in event.items() if k.endswith("EventDetails")), {}
        )
        if kind.endswith("StateEntered"):
            if details.get("name") == name:
                entered = True
                data["input"] = details.get("input")
            elif entered and next_state is None:
                next_state = details.get("name")
        elif kind.endswith("StateExited") and details.get("name") == name:
            exited = True
            data["output"] = details.get("output")
        elif entered and not exited and kind == "TaskScheduled":
            data["afterParameters"] = details.get("parameters")
        elif entered and not exited and kind.endswith("Succeeded") and "output" in details:
            data["result"] = details.get("output")
        elif entered and not exited and kind.endswith("Failed") and "error" in details:
            failure = {"error": details.get("error"), "cause": details.get("cause")}
    out: dict[str, Any] = {}
    if execution.status == "SUCCEEDED":
        out["status"] = "CAUGHT_ERROR" if failure else "SUCCEEDED"
        out["output"] = data.get("output", json.dumps(execution.output))
        if failure:
            out.update({k: v for k, v in failure.items() if v is not None})
        if next_state:
            out["nextState"] = next_state
    else:
        error, cause = execution.error, execution.cause
        out["status"] = "RETRIABLE" if _retriable(state, error) else "FAILED"
        out.update({k: v for k, v in (("error", error), ("cause", cause)) if v is not None})
    if level != "INFO":
        # the one-field evaluations run on an engine of their own: no handlers, no listeners
        evaluator = LocalEngine(region=runner.region, account_id=runner.account_id)
        out["inspectionData"] = _inspection(evaluator, state, data)
    return out


def _retriable(state: dict[str, Any], error: str | None) -> bool:
    for retrier in state.get("Retry") or []:
        errors = retrier.get("ErrorEquals") or []
        if (
            error in errors
            or "States.ALL" in errors
            or ("States.TaskFailed" in errors and error not in (None, "States.Timeout"))
        ):
            return bool(retrier.get("MaxAttempts", 3) != 0)
    return False


def _inspection(engine: LocalEngine, state: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """The data-flow steps of the state; a step the history does not show is evaluated by the
    engine itself, as a Pass state applying that one field."""
    raw = data.get("input")
    inspection = {"input": raw}
    input_path = state.get("InputPath", "$")
    if raw is not None:
        inspection["afterInputPath"] = (
            raw if input_path == "$" else _apply(engine, {"InputPath": input_path}, raw)
        )
    if "afterParameters" in data:
        inspection["afterParameters"] = data["afterParameters"]
    elif "Parameters" not in state:
        inspection["afterParameters"] = inspection.get("afterInputPath")
    result = data.get("result")
    if result is not None:
        inspection["result"] = result
        selector = state.get("ResultSelector")
        selected = result if selector is None else _apply(engine, {"Parameters": selector}, result)
        inspection["afterResultSelector"] = selected
        if selected is not None and raw is not None:
            placed = {"Result": json.loads(selected), "ResultPath": state.get("ResultPath", "$")}
            inspection["afterResultPath"] = _apply(engine, placed, raw)
    elif "output" in data and state.get("OutputPath", "$") == "$":
        inspection["afterResultPath"] = data["output"]
    return {k: v for k, v in inspection.items() if v is not None}


def _apply(engine: LocalEngine, fields: dict[str, Any], state_input: str) -> str | None:
    """Run a Pass state with ``fields`` on ``state_input`` (JSON text); return its output."""
    document = {"StartAt": "Step", "States": {"Step": {"Type": "Pass", **fields, "End": True}}}
    try:
        execution = engine.start_execution(document, json.loads(state_input))
    except (EngineError, ValueError):
        return None
    execution.wait(RUN_TIMEOUT_SECONDS)
    return json.dumps(execution.output) if execution.status == "SUCCEEDED" else None


__all__ = ["LEVELS", "test_state"]
