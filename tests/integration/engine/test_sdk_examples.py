"""The Step Functions Data Science SDK's published example workflows, built with the SDK.

- hello world (amazon-sagemaker-examples, step-functions-data-science-sdk/hello_world_workflow):
  Pass -> Choice on `IsHelloWorldExample` -> Wait 3 s -> Parallel of two Pass branches -> a
  Lambda that base64-encodes "HelloWorld" -> Succeed; its Lambda is the user's own function.
- model retraining (automate_model_retraining_workflow): the decision logic after training, a
  Lambda reporting the training metrics, then `NumericLessThan 0.1` on
  `$['Payload']['trainingMetrics'][0]['Value']` to deploy, else Fail; the Lambda and the
  SageMaker calls are mocked (Step Functions Local's mock format).

Expected outputs follow the AWS semantics the examples rely on: a Task's result replaces its
input when there is no ResultPath
(https://docs.aws.amazon.com/step-functions/latest/dg/input-output-resultpath.html), a Lambda
task's result is the Invoke response with the function's value in `Payload`
(https://docs.aws.amazon.com/step-functions/latest/dg/connect-lambda.html), and a definite
path selects one value (https://docs.aws.amazon.com/step-functions/latest/dg/amazon-states-language-paths.html).
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest

from workflow.local.engine import FAILED, SUCCEEDED
from workflow.local.mocks import load_mock_config

pytestmark = pytest.mark.integration

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from stepfunctions import steps
    from stepfunctions.inputs import ExecutionInput


def hello_world_definition(function_name: str) -> dict[str, Any]:
    start = steps.Pass(state_id="MyPassState")
    choice = steps.Choice(state_id="Is this Hello World example?")
    wait = steps.Wait(state_id="Wait for 3 seconds", seconds=3)
    parallel = steps.Parallel("MyParallelState")
    parallel.add_branch(steps.Pass(state_id="Hello"))
    parallel.add_branch(steps.Pass(state_id="World"))
    call = steps.LambdaStep(
        state_id="Convert HelloWorld to Base64",
        parameters={"FunctionName": function_name, "Payload": {"input": "HelloWorld"}},
    )
    call.add_retry(
        steps.Retry(
            error_equals=["States.TaskFailed"],
            interval_seconds=15,
            max_attempts=2,
            backoff_rate=4.0,
        )
    )
    call.add_catch(
        steps.Catch(error_equals=["States.TaskFailed"], next_step=steps.Fail("LambdaTaskFailed"))
    )
    happy = steps.Chain([wait, parallel, call, steps.Succeed("HelloWorldSuccessful")])
    choice.add_choice(
        rule=steps.ChoiceRule.BooleanEquals(
            variable=start.output()["IsHelloWorldExample"], value=True
        ),
        next_step=happy,
    )
    choice.add_choice(
        steps.ChoiceRule.BooleanEquals(variable=start.output()["IsHelloWorldExample"], value=False),
        next_step=steps.Fail("HelloWorldFailed"),
    )
    return _graph(steps.Chain([start, choice]))


def _graph(chain: Any) -> dict[str, Any]:
    """Return the ASL document the SDK's `Workflow(definition=chain).definition` renders."""
    from stepfunctions.steps.states import Graph

    return json.loads(Graph(chain).to_json())


def test_hello_world_with_its_lambda_registered(make_engine):
    engine = make_engine(time_scale=0)
    from sdk_example_lambdas import encode

    engine.register_lambda("hello-base64", encode)
    definition = hello_world_definition("hello-base64")
    execution = engine.start_execution(definition, {"IsHelloWorldExample": True}).wait(60)
    assert execution.status == SUCCEEDED
    assert execution.output["StatusCode"] == 200
    assert execution.output["Payload"] == {
        "statusCode": 200,
        "input": "HelloWorld",
        "output": "SGVsbG9Xb3JsZA==",
    }
    assert [w.seconds for w in execution.waits] == [3]  # the Wait state, not slept here
    sad = engine.start_execution(definition, {"IsHelloWorldExample": False}).wait(60)
    assert (sad.status, sad.error) == (FAILED, None)  # Fail("HelloWorldFailed") has no Error


def retraining_decision_definition() -> dict[str, Any]:
    execution_input = ExecutionInput(
        schema={"ModelName": str, "EndpointName": str, "LambdaFunctionName": str}
    )
    query = steps.compute.LambdaStep(
        "Query Training Results",
        parameters={
            "FunctionName": execution_input["LambdaFunctionName"],
            "Payload": {"TrainingJobName.$": "$.TrainingJobName"},
        },
    )
    check = steps.states.Choice("Accuracy > 90%")
    config = steps.EndpointConfigStep(
        "Create Model Endpoint Config",
        endpoint_config_name=execution_input["ModelName"],
        model_name=execution_input["ModelName"],
        initial_instance_count=1,
        instance_type="ml.m4.xlarge",
    )
    endpoint = steps.EndpointStep(
        "Update Model Endpoint",
        endpoint_name=execution_input["EndpointName"],
        endpoint_config_name=execution_input["ModelName"],
        update=False,
    )
    fail = steps.states.Fail(
        "Model Accuracy Too Low", comment="Validation accuracy lower than threshold"
    )
    check.add_choice(
        rule=steps.choice_rule.ChoiceRule.NumericLessThan(
            variable=query.output()["Payload"]["trainingMetrics"][0]["Value"], value=0.1
        ),
        next_step=config,
    )
    check.default_choice(next_step=fail)
    config.next(endpoint)
    return _graph(steps.Chain([query, check]))


def _mocks(error_rate: float) -> dict[str, Any]:
    return {
        "StateMachines": {"retrain": {"TestCases": {"Case": {
            "Query Training Results": "Metrics",
            "Create Model Endpoint Config": "ConfigCreated",
            "Update Model Endpoint": "EndpointCreated",
        }}}},
        "MockedResponses": {
            "Metrics": {"0": {"Return": {"StatusCode": 200, "Payload": {"trainingMetrics": [
                {"MetricName": "validation:error", "Value": error_rate}]}}}},
            "ConfigCreated": {"0": {"Return": {"EndpointConfigArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/m"}}},
            "EndpointCreated": {"0": {"Return": {"EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/churn"}}},
        },
    }  # fmt: skip


@pytest.mark.parametrize(("error_rate", "deployed"), [(0.05, True), (0.2, False)])
def test_model_retraining_decision_with_its_lambda_mocked(make_engine, error_rate, deployed):
    engine = make_engine(time_scale=0)
    definition = retraining_decision_definition()
    payload = {
        "TrainingJobName": "regression-1",
        "ModelName": "CustomerChurn-1",
        "EndpointName": "CustomerChurn",
        "LambdaFunctionName": "query_training_status",
    }
    mocks = load_mock_config(_mocks(error_rate), "retrain", "Case")
    execution = engine.start_execution(definition, payload, mocks=mocks).wait(60)
    if deployed:
        # Validation error 0.05 < 0.1: AWS deploys (moto 5.2.5 unpatched went to "too low").
        assert execution.status == SUCCEEDED
        assert execution.output == {
            "EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/churn"
        }
    else:
        assert execution.status == FAILED
        entered = [
            e["stateEnteredEventDetails"]["name"]
            for e in execution.history()
            if "stateEnteredEventDetails" in e
        ]
        assert entered[-1] == "Model Accuracy Too Low"
