"""Activity Task states on the engine: the cases where moto's `StateTaskActivity` is corrected.

The worker side is `LocalEngine.get_activity_task` (what the API's GetActivityTask calls).
Behaviour: https://docs.aws.amazon.com/step-functions/latest/dg/concepts-activities.html.
"""

from __future__ import annotations

import json
import time

import pytest

from workflow.local.engine import LocalEngine, TaskTokenError

pytestmark = pytest.mark.integration

ERRORS = "https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html"


def _task(arn: str, **fields: object) -> dict[str, object]:
    return {"StartAt": "Work", "States": {"Work": {"Type": "Task", "Resource": arn, **fields}}}


def test_no_worker_before_timeout_seconds_is_states_timeout() -> None:
    engine = LocalEngine()
    arn = engine.activities.create("nobody-polls").arn
    execution = engine.start_execution(_task(arn, TimeoutSeconds=1, End=True)).wait(10)
    # TimeoutSeconds: "If the task runs longer than the specified seconds, this state fails
    # with a States.Timeout error name" ({ERRORS}); moto raised AttributeError (States.Runtime).
    assert (execution.status, execution.error) == ("FAILED", "States.Timeout")
    kinds = [event["type"] for event in execution.history()]
    assert kinds[-3:] == ["ActivityScheduled", "ActivityTimedOut", "ExecutionFailed"]
    # The task that timed out is not handed to a later worker.
    assert engine.get_activity_task(arn, "late", timeout=0.2) is None


def test_a_workers_states_error_keeps_its_name() -> None:
    engine = LocalEngine()
    arn = engine.activities.create("fails").arn
    catch = [{"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.e", "Next": "Done"}]
    definition = _task(arn, Catch=catch, End=True)
    definition["States"]["Done"] = {"Type": "Pass", "End": True}  # type: ignore[index]
    execution = engine.start_execution(definition)
    task = engine.get_activity_task(arn, "w", timeout=5)
    assert task is not None
    engine.send_task_failure(task.token, "States.TaskFailed", "the worker gave up")
    execution.wait(10)
    # A `States.*` error name from SendTaskFailure is matched by ErrorEquals ({ERRORS});
    # moto's CustomErrorName raised ValueError on it.
    assert execution.status == "SUCCEEDED"
    assert execution.output["e"] == {"Error": "States.TaskFailed", "Cause": "the worker gave up"}


def test_stop_while_waiting_for_a_worker_aborts_at_once() -> None:
    engine = LocalEngine()
    arn = engine.activities.create("stopped").arn
    execution = engine.start_execution(_task(arn, End=True))
    time.sleep(0.2)
    started = time.monotonic()
    execution.stop(error="Operator", cause="no longer needed")
    execution.wait(10)
    assert execution.status == "ABORTED"
    assert time.monotonic() - started < 5  # moto's start wait ignored StopExecution
    assert engine.get_activity_task(arn, "late", timeout=0.2) is None


def test_heartbeats_keep_a_slow_worker_alive_and_late_answers_are_refused() -> None:
    engine = LocalEngine()
    arn = engine.activities.create("slow").arn
    execution = engine.start_execution(
        _task(arn, HeartbeatSeconds=1, TimeoutSeconds=30, End=True), {"n": 1}
    )
    task = engine.get_activity_task(arn, "w", timeout=5)
    assert task is not None
    for _ in range(3):  # 1.5 s of work, more than HeartbeatSeconds
        time.sleep(0.5)
        engine.send_task_heartbeat(task.token)
    engine.send_task_success(task.token, {"done": True})
    execution.wait(10)
    assert (execution.status, execution.output) == ("SUCCEEDED", {"done": True})

    second = engine.start_execution(_task(arn, HeartbeatSeconds=1, TimeoutSeconds=30, End=True))
    task = engine.get_activity_task(arn, "w", timeout=5)
    assert task is not None
    second.wait(10)
    assert second.error == "States.Timeout"
    with pytest.raises(TaskTokenError):
        engine.send_task_success(task.token, {"too": "late"})


def test_jsonata_arguments_and_output_of_an_activity_task() -> None:
    engine = LocalEngine()
    arn = engine.activities.create("jsonata").arn
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "Work",
        "States": {
            "Work": {
                "Type": "Task",
                "Resource": arn,
                "Arguments": {"m": "{% $states.input.n * 2 %}"},
                "Output": "{% $states.result.r %}",
                "End": True,
            }
        },
    }
    execution = engine.start_execution(definition, {"n": 4})
    task = engine.get_activity_task(arn, "w", timeout=5)
    assert task is not None
    # The worker gets the evaluated Arguments as its input; Output reads $states.result
    # (https://docs.aws.amazon.com/step-functions/latest/dg/transforming-data.html).
    assert json.loads(task.input) == {"m": 8}
    engine.send_task_success(task.token, {"r": "ok"})
    assert execution.wait(10).output == "ok"
