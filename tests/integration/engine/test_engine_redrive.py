"""Redrive: resume a failed execution from its unsuccessful step (AWS RedriveExecution)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from workflow.local.engine import (
    FAILED,
    SUCCEEDED,
    TIMED_OUT,
    ExecutionRecord,
    LocalEngine,
    RedriveError,
    TaskFailed,
)

pytestmark = pytest.mark.integration

LAMBDA = "arn:aws:states:::lambda:invoke"
TRAIN_SYNC = "arn:aws:states:::sagemaker:createTrainingJob.sync"


class Flaky:
    """Registered Lambda functions that fail until `heal()` and count their calls."""

    def __init__(self, engine: LocalEngine, names: list[str]) -> None:
        self.calls: Counter[str] = Counter()
        self.broken: set[Any] = set()
        for name in names:
            engine.register_lambda(name, self._make(name))

    def _make(self, name: str) -> Any:
        def fn(payload: Any, ctx: Any) -> Any:
            self.calls[name] += 1
            if (name, json.dumps(payload, sort_keys=True)) in self.broken or name in self.broken:
                raise RuntimeError(f"{name} broke")
            return {"by": name, "in": payload}

        return fn

    def heal(self) -> None:
        self.broken.clear()


def test_redrive_resumes_at_the_failed_state(engine):
    flaky = Flaky(engine, ["prepare", "train", "deploy"])
    flaky.broken.add("train")
    definition = {
        "StartAt": "Prepare",
        "States": {
            "Prepare": {
                "Type": "Task",
                "Resource": LAMBDA,
                "Parameters": {"FunctionName": "prepare", "Payload.$": "$"},
                "ResultSelector": {"p.$": "$.Payload"},
                "ResultPath": "$.prepare",
                "Next": "Wait",
            },
            "Wait": {"Type": "Wait", "Seconds": 60, "Next": "Train"},
            "Train": {
                "Type": "Task",
                "Resource": LAMBDA,
                "Parameters": {"FunctionName": "train", "Payload": {"name.$": "$$.Execution.Name"}},
                "ResultSelector": {"p.$": "$.Payload"},
                "ResultPath": "$.train",
                "Next": "Deploy",
            },
            "Deploy": {
                "Type": "Task",
                "Resource": LAMBDA,
                "Parameters": {"FunctionName": "deploy", "Payload.$": "$.train.p"},
                "ResultSelector": {"p.$": "$.Payload"},
                "ResultPath": "$.deploy",
                "End": True,
            },
        },
    }
    first = engine.start_execution(definition, {"x": 1}, name="run-1").wait(60)
    assert (first.status, first.error) == (FAILED, "RuntimeError")
    flaky.heal()
    second = engine.redrive(first).wait(60)
    assert second.status == SUCCEEDED, (second.error, second.cause)
    assert (second.name, second.arn, second.redrive_count) == (first.name, first.arn, 1)
    assert flaky.calls == Counter({"prepare": 1, "train": 2, "deploy": 1})
    assert second.output["prepare"]["p"] == {"by": "prepare", "in": {"x": 1}}
    assert second.output["train"]["p"]["in"] == {"name": "run-1"}
    assert [w.state_name for w in second.waits] == []  # the Wait that succeeded is not re-run
    history = second.history()
    types = [e["type"] for e in history]
    assert types.count("ExecutionFailed") == 1 and types.count("ExecutionRedriven") == 1
    redriven = types.index("ExecutionRedriven")
    assert types[redriven - 1] == "ExecutionFailed" and types[-1] == "ExecutionSucceeded"
    assert [e["id"] for e in history] == list(range(1, len(history) + 1))
    assert history[redriven]["executionRedrivenEventDetails"] == {"redriveCount": 1}
    entered = [
        e["stateEnteredEventDetails"]["name"]
        for e in history[redriven:]
        if "stateEnteredEventDetails" in e
    ]
    assert entered == ["Train", "Deploy"]
    assert first.status == FAILED  # the first attempt keeps its own record


def test_redrive_of_a_map_reruns_only_the_failed_iterations(engine):
    calls: Counter[Any] = Counter()
    broken = {2}

    def work(payload: Any, ctx: Any) -> Any:
        calls[payload["v"]] += 1
        if payload["v"] in broken:
            raise TaskFailed("Work.Failed", f"item {payload['v']}")
        return {"done": payload["v"]}

    def start(params: dict[str, Any], ctx: Any) -> dict[str, Any]:
        calls[f"train-{params['TrainingJobName']}"] += 1
        return {"arn": params["TrainingJobName"]}

    engine.register_lambda("work", work)
    engine.register_service(
        "sagemaker",
        "createTrainingJob",
        start,
        lambda submitted, ctx: {"Status": "Completed", **submitted},
    )
    definition = {
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "MaxConcurrency": 1,
                "Parameters": {"v.$": "$$.Map.Item.Value"},
                "Iterator": {
                    "StartAt": "Train",
                    "States": {
                        "Train": {
                            "Type": "Task",
                            "Resource": TRAIN_SYNC,
                            "Parameters": {"TrainingJobName.$": "States.Format('job-{}', $.v)"},
                            "ResultPath": "$.t",
                            "Next": "Work",
                        },
                        "Work": {
                            "Type": "Task",
                            "Resource": LAMBDA,
                            "Parameters": {"FunctionName": "work", "Payload.$": "$"},
                            "OutputPath": "$.Payload",
                            "End": True,
                        },
                    },
                },
                "End": True,
            }
        },
    }
    first = engine.start_execution(definition, {"items": [1, 2, 3]}).wait(60)
    assert (first.status, first.error) == (FAILED, "Work.Failed")
    before = Counter(calls)
    broken.clear()
    second = engine.redrive(first).wait(60)
    assert second.status == SUCCEEDED, (second.error, second.cause)
    assert second.output == [{"done": 1}, {"done": 2}, {"done": 3}]
    again = calls - before
    # item 1 succeeded and is replayed; item 2 failed and runs again; item 3 never ran
    assert again == Counter({2: 1, 3: 1, "train-job-3": 1})


def test_redrive_from_a_saved_record_in_another_engine(make_engine):
    first_engine = make_engine()
    Flaky(first_engine, ["a", "b"]).broken.add("b")
    definition = {
        "StartAt": "A",
        "States": {
            "A": {
                "Type": "Task",
                "Resource": LAMBDA,
                "Parameters": {"FunctionName": "a"},
                "ResultPath": "$.a",
                "Next": "B",
            },
            "B": {
                "Type": "Task",
                "Resource": LAMBDA,
                "Parameters": {"FunctionName": "b"},
                "ResultPath": "$.b",
                "End": True,
            },
        },
    }
    first = first_engine.start_execution(definition, {"k": "v"}, name="saved").wait(60)
    assert first.status == FAILED
    saved = json.loads(json.dumps(first.to_record().to_dict()))
    second_engine = make_engine()
    flaky = Flaky(second_engine, ["a", "b"])
    second = second_engine.start_execution(
        definition, redrive_from=ExecutionRecord.from_dict(saved)
    ).wait(60)
    assert second.status == SUCCEEDED
    assert flaky.calls == Counter({"b": 1})
    assert second.output["k"] == "v" and second.output["a"]["Payload"]["by"] == "a"
    assert second.start_time == first.start_time


def test_redrive_inside_a_choice_loop(engine):
    polls = Counter()

    def describe(params: dict[str, Any], ctx: Any) -> dict[str, Any]:
        polls["describe"] += 1
        if polls["describe"] == 3 and not polls["healed"]:
            raise TaskFailed("SageMaker.ThrottlingException", "slow down")
        return {"EndpointStatus": "InService" if polls["describe"] >= 4 else "Creating"}

    engine.register_service("aws-sdk:sagemaker", "describeEndpoint", describe)
    definition = {
        "StartAt": "Describe",
        "States": {
            "Describe": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:sagemaker:describeEndpoint",
                "Parameters": {"EndpointName": "ep"},
                "ResultPath": "$.ep",
                "Next": "Ready?",
            },
            "Ready?": {
                "Type": "Choice",
                "Choices": [
                    {"Variable": "$.ep.EndpointStatus", "StringEquals": "InService", "Next": "Done"}
                ],
                "Default": "Pause",
            },
            "Pause": {"Type": "Wait", "Seconds": 30, "Next": "Describe"},
            "Done": {"Type": "Succeed"},
        },
    }
    first = engine.start_execution(definition, {"n": 1}).wait(60)
    assert (first.status, first.error) == (FAILED, "SageMaker.ThrottlingException")
    polls["healed"] = 1
    second = engine.redrive(first).wait(60)
    assert second.status == SUCCEEDED
    assert second.output == {"n": 1, "ep": {"EndpointStatus": "InService"}}
    assert polls["describe"] == 4


def test_redrive_after_a_timeout_and_refusals(engine):
    engine.register_service(
        "sagemaker", "createTrainingJob", lambda p, c: {"id": 1}, lambda s, c: None
    )
    definition = {
        "StartAt": "T",
        "TimeoutSeconds": 1,
        "States": {"T": {"Type": "Task", "Resource": TRAIN_SYNC, "Parameters": {}, "End": True}},
    }
    timed_out = engine.start_execution(definition).wait(60)
    assert timed_out.status == TIMED_OUT
    engine.register_service(
        "sagemaker", "createTrainingJob", lambda p, c: {"id": 2}, lambda s, c: {"done": s["id"]}
    )
    redriven = engine.redrive(timed_out).wait(60)
    assert redriven.status == SUCCEEDED and redriven.output == {"done": 2}
    with pytest.raises(RedriveError, match="SUCCEEDED"):
        engine.redrive(redriven)
    with pytest.raises(RedriveError, match="lacks"):
        ExecutionRecord.from_dict({"name": "x"})
