"""Unit tests of the engine's pure parts, the compat check and the patch guards."""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

import pytest

from workflow.local.engine import (
    EngineCompatError,
    EngineError,
    ExecutionRecord,
    LocalEngine,
    RedriveError,
    lambda_function_name,
    normalise_event,
    parse_service_resource,
    plan_redrive,
)
from workflow.local.interpreter import fixes
from workflow.local.interpreter import host as mp_host
from workflow.local.interpreter import moto_api as mp
from workflow.local.interpreter import patches as mp_patches


def test_check_compat_passes_on_the_pinned_moto():
    mp.check_compat()
    assert mp.MOTO_VERSION == "5.2.5"


def test_check_compat_names_a_version_change(monkeypatch):
    monkeypatch.setattr(mp.moto, "__version__", "5.3.0")
    with pytest.raises(EngineCompatError) as info:
        mp.check_compat()
    message = str(info.value)
    assert "moto is 5.3.0" in message and "moto[stepfunctions,server]==5.2.5" in message
    assert info.value.exit_code == 2


def test_check_compat_names_a_moved_private_name(monkeypatch):
    monkeypatch.delattr(mp.state_task_factory, "state_task_service_for")
    with pytest.raises(EngineCompatError, match="state_task_service_for is missing"):
        mp.check_compat()


def test_patches_are_applied_once_and_refuse_foreign_targets(monkeypatch):
    LocalEngine()
    factory = mp.state_task_factory.state_task_service_for
    LocalEngine()
    mp_patches.apply_engine_patches()
    assert mp.state_task_factory.state_task_service_for is factory
    assert {
        "factory",
        "lambda",
        "nested-states-errors",
        "states-all",
        "choice-no-match",
        "sticky-terminal-state",
        "retry-sleep",
        "wait-sleep",
        "definite-paths",
        "intrinsic-literals",
        "context-state",
        "context-path-comparators",
    } <= mp_patches.applied_patches()
    # a patch checks its target's identity before replacing it
    monkeypatch.setattr(mp.branches_decl, "CustomErrorName", object())
    with pytest.raises(EngineCompatError, match=r"branches_decl\.CustomErrorName"):
        fixes.fix_nested_states_errors()


def test_engine_silences_moto_error_logs():
    LocalEngine()
    assert logging.getLogger("moto.stepfunctions.parser").level == logging.CRITICAL


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        (
            "arn:aws:states:::sagemaker:createTrainingJob.sync",
            ("sagemaker", "createTrainingJob", "sync"),
        ),
        (
            "arn:aws:states:::lambda:invoke.waitForTaskToken",
            ("lambda", "invoke", "waitForTaskToken"),
        ),
        ("arn:aws:states:::aws-sdk:ssm:getParameter", ("aws-sdk:ssm", "getParameter", "")),
        ("arn:aws-cn:states:::sns:publish", ("sns", "publish", "")),
        ("arn:aws:lambda:us-east-1:1:function:f", None),
        ("arn:aws:states:us-east-1:1:activity:a", None),
    ],
)
def test_parse_service_resource(resource, expected):
    assert parse_service_resource(resource) == expected


@pytest.mark.parametrize(
    ("reference", "name"),
    [
        ("evaluate", "evaluate"),
        ("evaluate:prod", "evaluate"),
        ("arn:aws:lambda:us-east-1:123456789012:function:evaluate", "evaluate"),
        ("arn:aws:lambda:us-east-1:123456789012:function:evaluate:$LATEST", "evaluate"),
        ("123456789012:function:evaluate", "evaluate"),
    ],
)
def test_lambda_function_name(reference, name):
    assert lambda_function_name(reference) == name


def test_client_error_names():
    assert mp_host.client_error_name("sagemaker", "ResourceNotFound", sdk=False) == (
        "SageMaker.ResourceNotFound"
    )
    assert mp_host.client_error_name("ssm", "ParameterNotFound", sdk=True) == (
        "Ssm.ParameterNotFoundException"
    )
    assert mp_host.client_error_name("newsvc", "Boom", sdk=True) == "Newsvc.BoomException"


def test_error_name_for_keeps_states_names_catchable():
    assert type(mp_host.error_name_for("States.TaskFailed")).__name__ == "StatesErrorName"
    assert mp_host.error_name_for("States.Unknown").error_name == "States.Unknown"
    assert type(mp_host.error_name_for("Custom")).__name__ == "CustomErrorName"


def test_normalise_event_shapes_like_boto():
    raw = {
        "id": 2,
        "previousEventId": 1,
        "type": "PassStateEntered",
        "timestamp": "2026-11-21T19:30:00.123Z",
        "stateEnteredEventDetails": {"name": "P"},
    }
    event = normalise_event(raw, id_offset=10)
    assert event["type"] == "PassStateEntered" and type(event["type"]) is str
    assert event["timestamp"] == dt.datetime(
        2026, 11, 21, 19, 30, 0, 123000, tzinfo=dt.timezone.utc
    )
    assert (event["id"], event["previousEventId"]) == (12, 11)
    assert normalise_event({**raw, "previousEventId": 0}, 10)["previousEventId"] == 0


def test_missing_handlers_lists_every_unresolved_state():
    engine = LocalEngine()
    engine.register_lambda("known", lambda p, c: p)
    definition = {
        "StartAt": "A",
        "States": {
            "A": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "known"},
                "Next": "B",
            },
            "B": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName.$": "$.fn"},
                "Next": "C",
            },
            "C": {
                "Type": "Parallel",
                "End": True,
                "Branches": [
                    {
                        "StartAt": "D",
                        "States": {
                            "D": {
                                "Type": "Task",
                                "Resource": "arn:aws:states:us-east-1:1:stateMachine:x",
                                "Next": "E",
                            },
                            # An activity is answered by a worker (or a mock), not a handler.
                            "E": {
                                "Type": "Task",
                                "Resource": "arn:aws:states:us-east-1:1:activity:x",
                                "End": True,
                            },
                        },
                    }
                ],
            },
        },
    }
    assert engine.missing_handlers(definition) == [
        "state 'D': unsupported resource 'arn:aws:states:us-east-1:1:stateMachine:x'"
    ]


@pytest.mark.parametrize(
    ("definition", "match"),
    [
        ("{not json", "not JSON"),
        ({"States": {}}, "no 'StartAt'"),
        (
            {"StartAt": "Nope", "States": {"A": {"Type": "Pass", "End": True}}},
            "Invalid State Machine Definition: document: StartAt 'Nope' is not a state",
        ),
    ],
)
def test_bad_definitions_are_one_clear_error(definition, match):
    with pytest.raises(EngineError, match=match):
        LocalEngine().start_execution(definition)


def test_bad_engine_options_and_inputs():
    with pytest.raises(ValueError, match="time_scale"):
        LocalEngine(time_scale=-1)
    with pytest.raises(ValueError, match="poll_interval"):
        LocalEngine(poll_interval=0)
    with pytest.raises(EngineError, match="not JSON-serialisable"):
        LocalEngine().start_execution(
            {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}, {"x": object()}
        )


def _event(id_: int, prev: int, type_: str, **details: Any) -> dict[str, Any]:
    return {
        "id": id_,
        "previousEventId": prev,
        "type": type_,
        "timestamp": "2026-11-21T19:30:00.000Z",
        **details,
    }


def test_plan_redrive_from_a_history():
    definition = json.dumps(
        {
            "StartAt": "A",
            "States": {
                "A": {"Type": "Pass", "Next": "M"},
                "M": {
                    "Type": "Map",
                    "Iterator": {
                        "StartAt": "T",
                        "States": {
                            "T": {
                                "Type": "Task",
                                "Resource": "arn:aws:states:::sns:publish",
                                "End": True,
                            }
                        },
                    },
                    "End": True,
                },
            },
        }
    )
    history = [
        _event(1, 0, "ExecutionStarted"),
        _event(2, 0, "PassStateEntered", stateEnteredEventDetails={"name": "A", "input": "{}"}),
        _event(3, 2, "PassStateExited", stateExitedEventDetails={"name": "A", "output": "{}"}),
        _event(
            4,
            3,
            "MapStateEntered",
            stateEnteredEventDetails={"name": "M", "input": '{"xs": [1, 2]}'},
        ),
        _event(5, 4, "TaskStateEntered", stateEnteredEventDetails={"name": "T", "input": "1"}),
        _event(6, 5, "TaskScheduled", taskScheduledEventDetails={"parameters": '{"M": 1}'}),
        _event(7, 6, "TaskStarted"),
        _event(8, 7, "TaskSucceeded", taskSucceededEventDetails={"output": '{"id": "m1"}'}),
        _event(9, 4, "TaskStateEntered", stateEnteredEventDetails={"name": "T", "input": "2"}),
        _event(10, 9, "TaskScheduled", taskScheduledEventDetails={"parameters": '{"M": 2}'}),
        _event(11, 10, "TaskFailed", taskFailedEventDetails={"error": "E"}),
        _event(12, 11, "ExecutionFailed"),
    ]
    record = ExecutionRecord(
        name="n",
        arn="arn",
        state_machine_name="sm",
        definition=definition,
        input={"xs": [1, 2]},
        start_time="t",
        status="FAILED",
        history=history,
    )
    plan = plan_redrive(record)
    assert (plan.start_at, plan.state_input, plan.redrive_count) == ("M", {"xs": [1, 2]}, 1)
    assert {key: list(queue) for key, queue in plan.replays.items()} == {
        ("T", "task", '{"M":1}'): [{"id": "m1"}]
    }
    with pytest.raises(RedriveError, match="only FAILED, TIMED_OUT or ABORTED"):
        plan_redrive(ExecutionRecord(**{**record.__dict__, "status": "SUCCEEDED"}))


@pytest.mark.parametrize("name", ["a b", "x/y", "", "a" * 81, "tab\there"])
def test_execution_names_aws_refuses_are_refused(name):
    engine = LocalEngine()
    with pytest.raises(EngineError, match="not valid on AWS"):
        engine.start_execution(
            {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}, name=name
        )
    assert engine.executions == []


def test_data_fixes_refuse_foreign_targets(monkeypatch):
    from workflow.local.interpreter import data_fixes

    monkeypatch.setattr(mp.json_path, "extract_json", lambda path, data: data)
    with pytest.raises(EngineCompatError, match=r"json_path\.extract_json"):
        data_fixes.fix_definite_paths()
    monkeypatch.setattr(mp.state_module, "StateData", dict)
    with pytest.raises(EngineCompatError, match=r"state\.StateData"):
        data_fixes.fix_context_state()


@pytest.mark.parametrize(
    ("literal", "value", "parts"),
    [
        ("it\\'s {}", "it's {}", ["it's ", ""]),
        ("\\{\\} {}", "{} {}", ["{} ", ""]),
        ("a\\\\b", "a\\b", ["a\\b"]),
        ("{}-{}", "{}-{}", ["", "-", ""]),
    ],
)
def test_decode_intrinsic_string(literal, value, parts):
    # https://docs.aws.amazon.com/step-functions/latest/dg/intrinsic-functions.html
    # ("Reserved characters in intrinsic functions")
    from workflow.local.interpreter.data_fixes import decode_intrinsic_string

    assert decode_intrinsic_string(literal) == (value, parts)


def test_quote_null_arguments_leaves_strings_alone():
    from workflow.local.interpreter.data_fixes import quote_null_arguments

    quoted = quote_null_arguments("States.Array(null, 'null', $.null, States.Format('{}', null))")
    assert quoted.count("'null'") == 1 and "$.null" in quoted
    assert quoted.count("\ue000null\ue000") == 2


def test_only_the_seam_imports_moto():
    # One seam over moto: nothing outside workflow/local/interpreter imports it (the local AWS
    # API, workflow.api, serves the engine itself, not moto's server).
    import re
    from pathlib import Path

    import workflow

    root = Path(workflow.__file__).parent
    pattern = re.compile(r"^\s*(import moto\b|from moto\b)", re.MULTILINE)
    importers = sorted(
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if pattern.search(path.read_text(encoding="utf-8"))
    )
    outside = [p for p in importers if not p.startswith("local/interpreter/")]
    assert outside == []
