"""The Step Functions Data Science SDK's AWS-verified integration scenarios, against the local API.

The SDK's own suite (tests/integ/test_state_machine_definition.py of
aws/aws-step-functions-data-science-sdk-python) runs each scenario on AWS: build the workflow with
the SDK's steps, ``create()``, ``execute()``, compare DescribeStateMachine's definition with the
expected ASL, ``get_output(wait=True)`` and delete the state machine. The same scenarios are
written again here (tiny inputs; the catch and retry cases use a training job whose image does
not exist, as the SDK's do) and must give the results they give on AWS.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

pytestmark = pytest.mark.integration

TRAINING = "arn:aws:states:::sagemaker:createTrainingJob.sync"


@pytest.fixture
def sdk(served, monkeypatch):
    monkeypatch.setenv("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    from stepfunctions import steps
    from stepfunctions.workflow import Workflow

    return served.client(), steps, Workflow


def _training_parameters(name: str) -> dict[str, Any]:
    return {
        "AlgorithmSpecification": {"TrainingImage": "not_an_image", "TrainingInputMode": "File"},
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/output/"},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        "ResourceConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1},
        "RoleArn": "arn:aws:iam::123456789012:role/SageMakerRole",
        "TrainingJobName": name,
    }


def _run(sfn, workflow, expected_asl, inputs=None) -> Any:
    """The SDK suite's check: create, execute, definition as built, output, delete."""
    workflow.create()
    execution = workflow.execute(inputs=inputs)
    described = sfn.describe_state_machine(stateMachineArn=execution.workflow.state_machine_arn)
    assert json.loads(described["definition"]) == expected_asl
    output = execution.get_output(wait=True)
    sfn.delete_state_machine(stateMachineArn=workflow.state_machine_arn)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            sfn.describe_state_machine(stateMachineArn=workflow.state_machine_arn)
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "StateMachineDoesNotExist"
            break
        time.sleep(0.1)
    return output


def test_pass(sdk, served):
    sfn, steps, Workflow = sdk
    asl = {
        "StartAt": "Pass",
        "States": {"Pass": {"Result": "Pass Result", "Type": "Pass", "End": True}},
    }
    workflow = Workflow(
        "Pass-Workflow", steps.Pass("Pass", result="Pass Result"), served.role, client=sfn
    )
    assert _run(sfn, workflow, asl) == "Pass Result"


def test_wait(sdk, served):
    sfn, steps, Workflow = sdk
    parameters = {"expirydate": "2019-09-04T01:59:00Z", "expiryseconds": 2}
    chain = steps.Chain(
        [
            steps.Pass("First", parameters=parameters),
            steps.Wait("Seconds", seconds=2),
            steps.Wait("Timestamp", timestamp="2019-09-04T01:59:00Z"),
            steps.Wait("TimestampPath", timestamp_path="$.expirydate"),
            steps.Wait("SecondsPath", seconds_path="$.expiryseconds"),
            steps.Pass("Final", result="Wait Result"),
        ]
    )
    asl = {
        "StartAt": "First",
        "States": {
            "First": {"Type": "Pass", "Parameters": parameters, "Next": "Seconds"},
            "Seconds": {"Seconds": 2, "Type": "Wait", "Next": "Timestamp"},
            "Timestamp": {
                "Timestamp": "2019-09-04T01:59:00Z",
                "Type": "Wait",
                "Next": "TimestampPath",
            },
            "TimestampPath": {
                "TimestampPath": "$.expirydate",
                "Type": "Wait",
                "Next": "SecondsPath",
            },
            "SecondsPath": {"SecondsPath": "$.expiryseconds", "Type": "Wait", "Next": "Final"},
            "Final": {"Type": "Pass", "Result": "Wait Result", "End": True},
        },
    }
    assert (
        _run(sfn, Workflow("Wait-Workflow", chain, served.role, client=sfn), asl) == "Wait Result"
    )


def test_parallel(sdk, served):
    sfn, steps, Workflow = sdk
    parallel = steps.Parallel("Parallel")
    parallel.add_branch(steps.Pass("Left Pass"))
    parallel.add_branch(steps.Pass("Right Pass"))
    chain = steps.Chain([parallel, steps.Pass("Final State", result="Parallel Result")])
    asl = {
        "StartAt": "Parallel",
        "States": {
            "Parallel": {
                "Type": "Parallel",
                "Next": "Final State",
                "Branches": [
                    {
                        "StartAt": "Left Pass",
                        "States": {"Left Pass": {"Type": "Pass", "End": True}},
                    },
                    {
                        "StartAt": "Right Pass",
                        "States": {"Right Pass": {"Type": "Pass", "End": True}},
                    },
                ],
            },
            "Final State": {"Type": "Pass", "Result": "Parallel Result", "End": True},
        },
    }
    workflow = Workflow("Parallel-Workflow", chain, served.role, client=sfn)
    assert _run(sfn, workflow, asl) == "Parallel Result"


def test_map(sdk, served):
    sfn, steps, Workflow = sdk
    mapped = steps.Map(
        "Map State", items_path="$.array", iterator=steps.Pass("Pass State"), max_concurrency=0
    )
    chain = steps.Chain([mapped, steps.Pass("Final State", result="Map Result")])
    asl = {
        "StartAt": "Map State",
        "States": {
            "Map State": {
                "ItemsPath": "$.array",
                "Iterator": {
                    "StartAt": "Pass State",
                    "States": {"Pass State": {"Type": "Pass", "End": True}},
                },
                "MaxConcurrency": 0,
                "Type": "Map",
                "Next": "Final State",
            },
            "Final State": {"Type": "Pass", "Result": "Map Result", "End": True},
        },
    }
    workflow = Workflow("Map-Workflow", chain, served.role, client=sfn)
    assert _run(sfn, workflow, asl, {"array": [1, 2, 3]}) == "Map Result"


def test_choice(sdk, served):
    sfn, steps, Workflow = sdk
    choice = steps.Choice("ChoiceState")
    choice.default_choice(steps.Fail("DefaultState", error="DefaultStateError", cause="No Matches"))
    choice.add_choice(
        steps.ChoiceRule.NumericEquals(variable="$.choice", value=1),
        steps.Pass("FirstMatchState", result="First Choice State"),
    )
    choice.add_choice(
        steps.ChoiceRule.NumericEquals(variable="$.choice", value=2),
        steps.Pass("SecondMatchState", result="Second Choice State"),
    )
    asl = {
        "StartAt": "ChoiceState",
        "States": {
            "ChoiceState": {
                "Type": "Choice",
                "Choices": [
                    {"Variable": "$.choice", "NumericEquals": 1, "Next": "FirstMatchState"},
                    {"Variable": "$.choice", "NumericEquals": 2, "Next": "SecondMatchState"},
                ],
                "Default": "DefaultState",
            },
            "DefaultState": {"Error": "DefaultStateError", "Cause": "No Matches", "Type": "Fail"},
            "FirstMatchState": {"Type": "Pass", "Result": "First Choice State", "End": True},
            "SecondMatchState": {"Type": "Pass", "Result": "Second Choice State", "End": True},
        },
    }
    workflow = Workflow("Choice-Workflow", choice, served.role, client=sfn)
    assert _run(sfn, workflow, asl, {"choice": 1}) == "First Choice State"


def test_catch(sdk, served):
    sfn, steps, Workflow = sdk
    parameters = _training_parameters("catch-job")
    task = steps.Task("TaskWithCatchState", resource=TRAINING, parameters=parameters)
    task.add_catch(
        steps.Catch(
            error_equals=["States.ALL"],
            next_step=steps.Pass("Catch All End", result="Catch Result"),
        )
    )
    asl = {
        "StartAt": "TaskWithCatchState",
        "States": {
            "TaskWithCatchState": {
                "Resource": TRAINING,
                "Parameters": parameters,
                "Type": "Task",
                "End": True,
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Catch All End"}],
            },
            "Catch All End": {"Type": "Pass", "Result": "Catch Result", "End": True},
        },
    }
    workflow = Workflow("Catch-Workflow", task, served.role, client=sfn)
    assert _run(sfn, workflow, asl) == "Catch Result"


def test_retry(sdk, served):
    sfn, steps, Workflow = sdk
    parameters = _training_parameters("retry-job")
    task = steps.Task("RetryStateName", resource=TRAINING, parameters=parameters)
    # "Starts.ALL" (sic, as in the SDK's test) matches no error: the job's failure ends the
    # execution and get_output() returns None.
    task.add_retry(
        steps.Retry(error_equals=["Starts.ALL"], interval_seconds=1, max_attempts=2, backoff_rate=2)
    )
    asl = {
        "StartAt": "RetryStateName",
        "States": {
            "RetryStateName": {
                "Resource": TRAINING,
                "Parameters": parameters,
                "Type": "Task",
                "End": True,
                "Retry": [
                    {
                        "ErrorEquals": ["Starts.ALL"],
                        "IntervalSeconds": 1,
                        "MaxAttempts": 2,
                        "BackoffRate": 2,
                    }
                ],
            }
        },
    }
    workflow = Workflow("Retry-Workflow", task, served.role, client=sfn)
    assert _run(sfn, workflow, asl) is None
