"""Redrive of an execution that failed inside an inline Map or a Parallel state.

AWS: "For workflows that include an Inline Map or Parallel state, RedriveExecution API action
reschedules and redrives only the iterations and branches that failed or aborted", and a
redrive "continues the failed execution from the unsuccessful step ... Step Functions preserves
the results and execution history of the successful steps, and doesn't rerun these steps"
(https://docs.aws.amazon.com/step-functions/latest/apireference/API_RedriveExecution.html,
https://docs.aws.amazon.com/step-functions/latest/dg/redrive-executions.html). So the iterations
and branches that succeeded are not run again (their recorded outputs are kept, no new events),
and a failed one continues from its unsuccessful state: the Pass, Wait and Task states it had
finished are not run again, and a Wait is not waited again.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from workflow.local.engine import FAILED, SUCCEEDED, LocalEngine, TaskFailed

pytestmark = pytest.mark.integration

SSM = "arn:aws:states:::aws-sdk:ssm:getParameter"


class Work:
    """A handler that fails for the values in `broken` and counts its calls per value."""

    def __init__(self, engine: LocalEngine) -> None:
        self.calls: Counter[Any] = Counter()
        self.broken: set[Any] = set()
        engine.register_service("aws-sdk:ssm", "getParameter", self)

    def __call__(self, params: dict[str, Any], ctx: Any) -> dict[str, Any]:
        self.calls[params["v"]] += 1
        if params["v"] in self.broken:
            raise TaskFailed("Work.Failed", f"value {params['v']}")
        return {"done": params["v"]}


def _redriven_part(execution: Any) -> list[dict[str, Any]]:
    history = execution.history()
    start = max(i for i, e in enumerate(history) if e["type"] == "ExecutionRedriven")
    return history[start + 1 :]


def _entered(events: list[dict[str, Any]]) -> list[str]:
    return [
        e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e
    ]


MAP = {
    "StartAt": "Each",
    "States": {
        "Each": {
            "Type": "Map",
            "ItemsPath": "$.items",
            "MaxConcurrency": 1,
            "ItemProcessor": {
                "StartAt": "Prepare",
                "States": {
                    "Prepare": {"Type": "Pass", "Parameters": {"v.$": "$.v"}, "Next": "Pause"},
                    "Pause": {"Type": "Wait", "Seconds": 30, "Next": "First"},
                    "First": {
                        "Type": "Task",
                        "Resource": SSM,
                        "Parameters": {"v.$": "States.Format('first-{}', $.v)"},
                        "ResultPath": "$.first",
                        "Next": "Second",
                    },
                    "Second": {
                        "Type": "Task",
                        "Resource": SSM,
                        "Parameters": {"v.$": "$.v"},
                        "End": True,
                    },
                },
            },
            "End": True,
        }
    },
}


@pytest.fixture
def engine() -> LocalEngine:
    return LocalEngine(time_scale=0.001)


def test_map_redrives_only_failed_iterations_from_their_failed_state(engine: LocalEngine) -> None:
    work = Work(engine)
    work.broken = {2}
    # MaxConcurrency 1: iteration 0 succeeds, iteration 1 fails at "Second", iteration 2
    # never starts.
    first = engine.start_execution(MAP, {"items": [{"v": 1}, {"v": 2}, {"v": 3}]}).wait(30)
    assert (first.status, first.error) == (FAILED, "Work.Failed")
    assert work.calls[3] == 0
    before = Counter(work.calls)

    work.broken = set()
    second = engine.redrive(first).wait(30)
    assert second.status == SUCCEEDED, (second.error, second.cause)
    assert second.output == [{"done": 1}, {"done": 2}, {"done": 3}]
    again = work.calls - before
    assert again == Counter({2: 1, "first-3": 1, 3: 1})
    redriven = _redriven_part(second)
    indexes = [
        e["mapIterationStartedEventDetails"]["index"]
        for e in redriven
        if e["type"] == "MapIterationStarted"
    ]
    assert indexes == [1, 2]  # iteration 0 is not rescheduled
    # Iteration 1 continues at "Second"; iteration 2 runs for the first time, from its start.
    assert _entered(redriven) == ["Each", "Second", "Prepare", "Pause", "First", "Second"]
    assert [w.state_name for w in second.waits] == ["Pause"]  # only iteration 2's Wait


def test_a_second_redrive_keeps_the_iterations_of_every_earlier_attempt(
    engine: LocalEngine,
) -> None:
    work = Work(engine)
    work.broken = {2}
    first = engine.start_execution(MAP, {"items": [{"v": 1}, {"v": 2}]}).wait(30)
    second = engine.redrive(first).wait(30)  # still broken
    assert second.status == FAILED
    work.broken = set()
    third = engine.redrive(second).wait(30)
    assert third.status == SUCCEEDED, (third.error, third.cause)
    assert third.output == [{"done": 1}, {"done": 2}]
    # value 1 ran once in all (attempt 1); value 2 failed twice, then succeeded.
    assert work.calls[1] == 1 and work.calls[2] == 3 and work.calls["first-2"] == 1


PARALLEL = {
    "StartAt": "Both",
    "States": {
        "Both": {
            "Type": "Parallel",
            "Branches": [
                {
                    "StartAt": "Left",
                    "States": {
                        "Left": {
                            "Type": "Task",
                            "Resource": SSM,
                            "Parameters": {"v": "L"},
                            "End": True,
                        }
                    },
                },
                {
                    "StartAt": "RightPrepare",
                    "States": {
                        "RightPrepare": {
                            "Type": "Pass",
                            "Result": {"v": "R"},
                            "Next": "RightPause",
                        },
                        "RightPause": {"Type": "Wait", "Seconds": 30, "Next": "Right"},
                        "Right": {
                            "Type": "Task",
                            "Resource": SSM,
                            "Parameters": {"v.$": "$.v"},
                            "End": True,
                        },
                    },
                },
            ],
            "Next": "Done",
        },
        "Done": {"Type": "Pass", "End": True},
    },
}


def test_parallel_redrives_only_the_failed_branch_from_its_failed_state(
    engine: LocalEngine,
) -> None:
    work = Work(engine)
    work.broken = {"R"}
    first = engine.start_execution(PARALLEL, {}).wait(30)
    assert (first.status, first.error) == (FAILED, "Work.Failed")
    work.broken = set()
    second = engine.redrive(first).wait(30)
    assert second.status == SUCCEEDED, (second.error, second.cause)
    # The branch results keep the order of Branches.
    assert second.output == [{"done": "L"}, {"done": "R"}]
    assert work.calls == Counter({"L": 1, "R": 2})
    entered = _entered(_redriven_part(second))
    assert entered == ["Both", "Right", "Done"]
    assert [w.state_name for w in second.waits] == []
