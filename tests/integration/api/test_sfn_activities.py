"""boto3 against the local API: activities, and activity Task states answered by a worker thread.

A worker polls ``GetActivityTask`` and answers with ``SendTaskSuccess``/``SendTaskFailure``/
``SendTaskHeartbeat``, as https://docs.aws.amazon.com/step-functions/latest/dg/concepts-activities.html
describes. Each expected value cites the AWS page it comes from.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from workflow.api import ApiServer, LocalAwsApi
from workflow.local.engine import LocalEngine

pytestmark = pytest.mark.integration

CONCEPTS = "https://docs.aws.amazon.com/step-functions/latest/dg/concepts-activities.html"
API = "https://docs.aws.amazon.com/step-functions/latest/apireference"
ERRORS = "https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html"
ROLE = "arn:aws:iam::123456789012:role/StepFunctionsRole"


@pytest.fixture
def sfn() -> Iterator[Any]:
    """A boto3 Step Functions client on a local API whose GetActivityTask holds 2 s, not 60."""
    import boto3

    server = ApiServer(LocalAwsApi(LocalEngine(time_scale=0.01))).start()
    server.app.stepfunctions.activities.poll_seconds = 2.0
    yield boto3.client(
        "stepfunctions",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",  # pragma: allowlist secret
    )
    server.stop()


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def _machine(sfn: Any, activity_arn: str, **task: Any) -> str:
    definition = {
        "StartAt": "Work",
        "States": {
            "Work": {
                "Type": "Task",
                "Resource": activity_arn,
                "Catch": [
                    {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Handled"}
                ],
                "End": True,
                **task,
            },
            "Handled": {"Type": "Pass", "End": True},
        },
    }
    return str(
        sfn.create_state_machine(
            name="activity-machine", definition=json.dumps(definition), roleArn=ROLE
        )["stateMachineArn"]
    )


def _worker(sfn: Any, activity_arn: str, answer: Callable[[Any, dict[str, Any]], None]) -> Any:
    """Start a worker thread that takes one task and answers it; return (thread, seen)."""
    seen: dict[str, Any] = {}

    def work() -> None:
        for _ in range(10):
            task = sfn.get_activity_task(activityArn=activity_arn, workerName="worker-1")
            if task.get("taskToken"):
                seen.update(task)
                answer(sfn, task)
                return

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread, seen


def _events(sfn: Any, arn: str) -> dict[str, dict[str, Any]]:
    history = sfn.get_execution_history(executionArn=arn)["events"]
    return {event["type"]: event for event in history}


def test_worker_success_gives_the_task_output_and_aws_history_events(
    sfn: Any, wait: Callable[..., dict[str, Any]]
) -> None:
    activity = sfn.create_activity(name="train")["activityArn"]
    machine = _machine(sfn, activity, TimeoutSeconds=30)

    def succeed(client: Any, task: dict[str, Any]) -> None:
        client.send_task_success(
            taskToken=task["taskToken"],
            output=json.dumps({"doubled": 2 * json.loads(task["input"])["n"]}),
        )

    thread, seen = _worker(sfn, activity, succeed)
    arn = sfn.start_execution(stateMachineArn=machine, input=json.dumps({"n": 21}))["executionArn"]
    thread.join(20)
    described = wait(sfn, arn)

    # GetActivityTask returns the input as a JSON string (API_GetActivityTask.html).
    assert json.loads(seen["input"]) == {"n": 21}
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == {"doubled": 42}
    events = _events(sfn, arn)
    # ActivityScheduled (resource, input, timeoutInSeconds), ActivityStarted (workerName),
    # ActivitySucceeded (output): API_HistoryEvent.html and the ActivityScheduledEventDetails,
    # ActivityStartedEventDetails and ActivitySucceededEventDetails pages of {API}.
    scheduled = events["ActivityScheduled"]["activityScheduledEventDetails"]
    assert scheduled["resource"] == activity
    assert json.loads(scheduled["input"]) == {"n": 21}
    assert scheduled["timeoutInSeconds"] == 30
    assert events["ActivityStarted"]["activityStartedEventDetails"] == {"workerName": "worker-1"}
    succeeded = events["ActivitySucceeded"]["activitySucceededEventDetails"]
    assert json.loads(succeeded["output"]) == {"doubled": 42}


def test_worker_failure_error_and_cause_are_caught_by_catch(
    sfn: Any, wait: Callable[..., dict[str, Any]]
) -> None:
    activity = sfn.create_activity(name="evaluate")["activityArn"]
    machine = _machine(sfn, activity)

    def fail(client: Any, task: dict[str, Any]) -> None:
        client.send_task_failure(
            taskToken=task["taskToken"], error="ModelTooWeak", cause="accuracy 0.41 < 0.80"
        )

    thread, _ = _worker(sfn, activity, fail)
    arn = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
    thread.join(20)
    described = wait(sfn, arn)

    # SendTaskFailure's error and cause reach the Catch's ResultPath as Error and Cause
    # ({API}/API_SendTaskFailure.html; {ERRORS}, "Error output").
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == {
        "error": {"Error": "ModelTooWeak", "Cause": "accuracy 0.41 < 0.80"}
    }
    failed = _events(sfn, arn)["ActivityFailed"]["activityFailedEventDetails"]
    assert failed == {"error": "ModelTooWeak", "cause": "accuracy 0.41 < 0.80"}


def test_missed_heartbeat_times_the_activity_out(
    sfn: Any, wait: Callable[..., dict[str, Any]]
) -> None:
    activity = sfn.create_activity(name="slow")["activityArn"]
    definition = {
        "StartAt": "Work",
        "States": {
            "Work": {
                "Type": "Task",
                "Resource": activity,
                "TimeoutSeconds": 30,
                "HeartbeatSeconds": 1,
                "Catch": [
                    {
                        "ErrorEquals": ["States.HeartbeatTimeout"],
                        "ResultPath": "$.error",
                        "Next": "Handled",
                    }
                ],
                "End": True,
            },
            # 300 s at the engine's time scale 0.01: the execution still runs for 3 s.
            "Handled": {"Type": "Wait", "Seconds": 300, "End": True},
        },
    }
    machine = sfn.create_state_machine(
        name="heartbeat", definition=json.dumps(definition), roleArn=ROLE
    )["stateMachineArn"]
    answered = threading.Event()
    late: list[str] = []

    def beat_once(client: Any, task: dict[str, Any]) -> None:
        client.send_task_heartbeat(taskToken=task["taskToken"])  # then goes silent
        answered.set()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "ActivityTimedOut" not in _events(client, arn):
            time.sleep(0.05)
        try:  # the worker answers after its task timed out
            client.send_task_success(taskToken=task["taskToken"], output="{}")
        except ClientError as exc:
            late.append(str(exc.response["Error"]["Code"]))

    arn = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
    thread, _ = _worker(sfn, activity, beat_once)
    thread.join(20)
    described = wait(sfn, arn)

    assert answered.is_set()
    # SendTaskSuccess for a task that timed out: TaskTimedOut ({API}/API_SendTaskSuccess.html).
    assert late == ["TaskTimedOut"]
    # A missed heartbeat is caught by States.HeartbeatTimeout ({ERRORS}); the history records
    # ActivityTimedOut, as SendTaskHeartbeat's page says ({API}/API_SendTaskHeartbeat.html).
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"])["error"]["Error"] == "States.Timeout"
    timed_out = _events(sfn, arn)["ActivityTimedOut"]["activityTimedOutEventDetails"]
    assert timed_out["error"] == "States.Timeout"


def test_activity_that_does_not_exist_fails_the_execution(
    sfn: Any, wait: Callable[..., dict[str, Any]]
) -> None:
    missing = "arn:aws:states:us-east-1:123456789012:activity:never-created"
    machine = _machine(sfn, missing)
    arn = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
    described = wait(sfn, arn)

    # States.Runtime is not caught by States.ALL ({ERRORS}): the execution fails.
    assert described["status"] == "FAILED"
    assert described["error"] == "States.Runtime"
    assert missing in described["cause"]
    scheduled = _events(sfn, arn)["ActivityScheduleFailed"]  # {API}/API_HistoryEvent.html
    assert scheduled["activityScheduleFailedEventDetails"]["error"] == "States.Runtime"


def test_get_activity_task_without_a_task_returns_no_token(sfn: Any) -> None:
    activity = sfn.create_activity(name="idle")["activityArn"]
    # "If no task is available within 60 seconds, the poll returns a taskToken with a null
    # string" ({API}/API_GetActivityTask.html); this server holds 2 s instead of 60.
    task = sfn.get_activity_task(activityArn=activity, workerName="w")
    assert not task.get("taskToken")
    assert not task.get("input")


def test_create_is_idempotent_by_name_and_keeps_the_first_tags(sfn: Any) -> None:
    first = sfn.create_activity(name="prep", tags=[{"key": "team", "value": "ml"}])
    again = sfn.create_activity(name="prep", tags=[{"key": "team", "value": "other"}])
    # "CreateActivity is an idempotent API ... based on the activity name. If a following
    # request has different tags values, Step Functions will ignore these differences"
    # ({API}/API_CreateActivity.html).
    assert again["activityArn"] == first["activityArn"]
    assert again["creationDate"] == first["creationDate"]
    assert first["activityArn"] == "arn:aws:states:us-east-1:123456789012:activity:prep"
    tags = sfn.list_tags_for_resource(resourceArn=first["activityArn"])["tags"]
    assert tags == [{"key": "team", "value": "ml"}]
    # TagResource/UntagResource take activity ARNs ({API}/API_TagResource.html).
    sfn.tag_resource(resourceArn=first["activityArn"], tags=[{"key": "stage", "value": "dev"}])
    sfn.untag_resource(resourceArn=first["activityArn"], tagKeys=["team"])
    tags = sfn.list_tags_for_resource(resourceArn=first["activityArn"])["tags"]
    assert tags == [{"key": "stage", "value": "dev"}]
    described = sfn.describe_activity(activityArn=first["activityArn"])
    # DescribeActivity: activityArn, name, creationDate ({API}/API_DescribeActivity.html).
    assert (described["activityArn"], described["name"]) == (first["activityArn"], "prep")
    assert described["creationDate"] == first["creationDate"]


def test_list_pages_and_delete(sfn: Any) -> None:
    arns = [sfn.create_activity(name=f"a{i}")["activityArn"] for i in range(3)]
    # ListActivities pages with maxResults and nextToken ({API}/API_ListActivities.html).
    page1 = sfn.list_activities(maxResults=2)
    page2 = sfn.list_activities(maxResults=2, nextToken=page1["nextToken"])
    listed = [a["activityArn"] for a in page1["activities"] + page2["activities"]]
    assert sorted(listed) == sorted(arns)
    assert len(page1["activities"]) == 2
    assert "nextToken" not in page2
    paginated = sfn.get_paginator("list_activities").paginate(PaginationConfig={"PageSize": 1})
    assert sum(len(p["activities"]) for p in paginated) == 3

    sfn.delete_activity(activityArn=arns[0])  # {API}/API_DeleteActivity.html
    with pytest.raises(ClientError) as exc:
        sfn.describe_activity(activityArn=arns[0])
    assert _code(exc) == "ActivityDoesNotExist"  # {API}/API_DescribeActivity.html, Errors
    assert len(sfn.list_activities()["activities"]) == 2


@pytest.mark.parametrize(
    ("call", "code"),
    [
        # InvalidName: {API}/API_CreateActivity.html, Errors (no whitespace, no ':').
        (lambda s: s.create_activity(name="has space"), "InvalidName"),
        (lambda s: s.create_activity(name="a:b"), "InvalidName"),
        # InvalidArn: {API}/API_DescribeActivity.html, API_DeleteActivity.html,
        # API_GetActivityTask.html, Errors.
        (lambda s: s.describe_activity(activityArn="not-an-arn"), "InvalidArn"),
        (lambda s: s.delete_activity(activityArn="arn:aws:states:us-east-1:1:x:y"), "InvalidArn"),
        (lambda s: s.get_activity_task(activityArn="arn:aws:sns:us-east-1:1:t"), "InvalidArn"),
        # ActivityDoesNotExist: {API}/API_GetActivityTask.html, Errors.
        (
            lambda s: s.get_activity_task(
                activityArn="arn:aws:states:us-east-1:123456789012:activity:nobody"
            ),
            "ActivityDoesNotExist",
        ),
    ],
)
def test_aws_error_codes(sfn: Any, call: Callable[[Any], Any], code: str) -> None:
    with pytest.raises(ClientError) as exc:
        call(sfn)
    assert _code(exc) == code
