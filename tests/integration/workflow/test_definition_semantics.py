"""The rendered ASL, executed by the local engine with scripted fake services.

These tests run the exact document `render_json` produces through the engine that the local
runtime uses, with fakes that answer like AWS, and check the paths the issue specifies: the
build is skipped when the input carries ImageUri, a new endpoint is created and an existing one
updated, the poll loop waits for InService on this run's configuration, and every failure ends
in its named error after the failure notification.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from workflow.definition import render_definition
from workflow.local.model_registry import ModelRegistry
from workflow.local.store import LocalStore
from workflow.naming import execution_input

pytestmark = pytest.mark.integration
engine_module = pytest.importorskip("workflow.local.engine")
TaskFailed = engine_module.TaskFailed

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mask-r-cnn:built"
ARN = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/mask-r-cnn"


class FakeAws:
    """Scripted SageMaker, Lambda, SNS and SSM; records every request.

    The model registry is the local one (`workflow.local.model_registry`) in a store under the
    test's working folder, so a run leaves its model packages to inspect.
    """

    def __init__(self, engine: Any, config: Any, *, segm: float = 0.8, approve: bool = True,
                 endpoint_exists: bool = False, rollback: bool = False,
                 training_errors: list[str] | None = None) -> None:  # fmt: skip
        self.engine, self.config = engine, config
        self.segm, self.approve, self.rollback = segm, approve, rollback
        self.training_errors = list(training_errors or [])
        self.endpoint: dict[str, Any] | None = (
            {"EndpointConfigName": "old-config", "EndpointStatus": "InService", "EndpointArn": ARN}
            if endpoint_exists
            else None
        )
        self.calls: list[tuple[str, Any]] = []
        self.messages: list[dict[str, Any]] = []
        self.describes = 0
        self.build_status = "SUCCEEDED"
        self.build_polls = 0
        self.registry = ModelRegistry(LocalStore(Path.cwd() / "store"))
        self._register()

    def _later(self, function: Any, *args: Any) -> None:
        threading.Timer(0.05, function, args).start()

    def _register(self) -> None:
        engine, lambdas = self.engine, self.config.lambdas
        engine.register_lambda(lambdas.start_build, self.start_build)
        engine.register_lambda(lambdas.evaluate, self.evaluate)
        engine.register_lambda(lambdas.request_approval, self.request_approval)
        engine.register_service("sagemaker", "createTrainingJob", start=self.create_training,
                                poll=self.describe_training)  # fmt: skip
        engine.register_service("sagemaker", "createModel", start=self.record("createModel"))
        engine.register_service("sagemaker", "createTransformJob", start=self.record("transform"),
                                poll=lambda submitted, ctx: {"TransformJobStatus": "Completed"})  # fmt: skip
        engine.register_service("sagemaker", "createEndpointConfig",
                                start=self.record("createEndpointConfig"))  # fmt: skip
        engine.register_service("sagemaker", "createEndpoint", start=self.create_endpoint)
        engine.register_service("sagemaker", "updateEndpoint", start=self.update_endpoint)
        engine.register_service(
            "aws-sdk:sagemaker", "describeEndpoint", start=self.describe_endpoint
        )
        for action, handler in self.registry.handlers().items():
            engine.register_service("aws-sdk:sagemaker", action, self.recorded(action, handler))
        engine.register_service("sns", "publish", start=self.publish)
        engine.register_service("aws-sdk:ssm", "getParameter", start=self.get_parameter)
        engine.register_service("aws-sdk:codebuild", "batchGetBuilds", start=self.get_builds)

    def record(self, name: str) -> Any:
        def handler(params: dict[str, Any], ctx: Any) -> dict[str, Any]:
            self.calls.append((name, params))
            return {"Arn": f"arn:aws:sagemaker:us-east-1:123456789012:{name}/x"}

        return handler

    def recorded(self, name: str, handler: Any) -> Any:
        def record(params: dict[str, Any], ctx: Any) -> dict[str, Any]:
            self.calls.append((name, params))
            return dict(handler(params, ctx))

        return record

    def packages(self) -> list[dict[str, Any]]:
        """The registry's packages, oldest first, as DescribeModelPackage answers."""
        listed = self.registry.list_packages({"SortOrder": "Ascending", "MaxResults": 100})
        return [
            self.registry.describe_package({"ModelPackageName": s["ModelPackageArn"]})
            for s in listed["ModelPackageSummaryList"]
        ]

    def start_build(self, payload: Any, ctx: Any) -> dict[str, Any]:
        self.calls.append(("start_build", payload))
        self.build_polls = 0
        return {"BuildId": "b:1", "ImageUri": IMAGE}

    def get_builds(self, params: dict[str, Any], ctx: Any) -> dict[str, Any]:
        # https://docs.aws.amazon.com/codebuild/latest/APIReference/API_BatchGetBuilds.html
        self.calls.append(("batchGetBuilds", params))
        self.build_polls += 1
        status = self.build_status if self.build_polls >= 2 else "IN_PROGRESS"
        return {"Builds": [{"Id": params["Ids"][0], "BuildStatus": status,
                            "CurrentPhase": "COMPLETED" if self.build_polls >= 2 else "BUILD"}],
                "BuildsNotFound": []}  # fmt: skip

    def create_training(self, params: dict[str, Any], ctx: Any) -> dict[str, Any]:
        self.calls.append(("createTrainingJob", params))
        if self.training_errors:
            raise TaskFailed(self.training_errors.pop(0), "scripted failure")
        return {"TrainingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:training-job/x"}

    def describe_training(self, submitted: Any, ctx: Any) -> dict[str, Any]:
        return {"TrainingJobStatus": "Completed",
                "ModelArtifacts": {"S3ModelArtifacts": "s3://bucket/models/model.tar.gz"}}  # fmt: skip

    def evaluate(self, payload: Any, ctx: Any) -> dict[str, Any]:
        self.calls.append(("evaluate", payload))
        metrics = {"bbox_mAP": 0.5, "segm_mAP": self.segm, "images": 4, "predictions": 9}
        if "MetricsOutput" in payload:  # the evaluate Lambda writes them there
            metrics["MetricsUri"] = payload["MetricsOutput"]
        return metrics

    def request_approval(self, payload: Any, ctx: Any) -> dict[str, Any]:
        self.calls.append(("request_approval", payload))
        if self.approve:
            self._later(self.engine.send_task_success, ctx.task_token, {"approved": True})
        else:
            self._later(self.engine.send_task_failure, ctx.task_token, "Rejected", "not today")
        return {"ApprovalId": "a"}

    def create_endpoint(self, params: dict[str, Any], ctx: Any) -> dict[str, Any]:
        self.calls.append(("createEndpoint", params))
        self.endpoint = {
            "EndpointConfigName": params["EndpointConfigName"],
            "EndpointStatus": "Creating",
            "EndpointArn": ARN,
        }
        return {"EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/x"}

    def update_endpoint(self, params: dict[str, Any], ctx: Any) -> dict[str, Any]:
        self.calls.append(("updateEndpoint", params))
        assert self.endpoint is not None
        self.endpoint["EndpointStatus"] = "Updating"
        self.target = params["EndpointConfigName"]
        return {"EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/x"}

    def describe_endpoint(self, params: dict[str, Any], ctx: Any) -> dict[str, Any]:
        self.calls.append((f"describeEndpoint:{ctx.state_name}", params))
        if self.endpoint is None:
            raise TaskFailed("SageMaker.SageMakerException", 'Could not find endpoint "x".')
        if ctx.state_name == "DescribeEndpoint":
            self.describes += 1
            if self.describes >= 2:  # in service on the second poll
                self.endpoint["EndpointStatus"] = "InService"
                if self.endpoint.get("EndpointConfigName") != "old-config" or not self.rollback:
                    self.endpoint["EndpointConfigName"] = getattr(
                        self, "target", self.endpoint["EndpointConfigName"]
                    )
        return {"EndpointName": params["EndpointName"], **self.endpoint}

    def publish(self, params: dict[str, Any], ctx: Any) -> dict[str, Any]:
        self.messages.append({"State": ctx.state_name, **params})
        return {"MessageId": str(len(self.messages))}

    def get_parameter(self, params: dict[str, Any], ctx: Any) -> dict[str, Any]:
        self.calls.append(("getParameter", params))
        return {"Parameter": {"Name": params["Name"], "Value": json.dumps({"epochs": "3"})}}

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


def _run(
    config: Any,
    fake_kwargs: dict[str, Any] | None = None,
    image: str | None = None,
    **input_options: Any,
):
    engine = engine_module.LocalEngine(time_scale=0.001, poll_interval=0.05)
    fake = FakeAws(engine, config, **(fake_kwargs or {}))
    drop = input_options.pop("drop", ())
    data = execution_input(config, "abc1234def", image_uri=image, poll_seconds=1, **input_options)
    for key in drop:
        data.pop(key)
    execution = engine.start_execution(render_definition(config), data, name=data["JobName"])
    execution.wait(timeout=60)
    entered = [
        e["stateEnteredEventDetails"]["name"]
        for e in execution.history()
        if "stateEnteredEventDetails" in e
    ]
    return execution, fake, entered, data


def test_builds_the_image_and_creates_the_endpoint(make_config) -> None:
    execution, fake, entered, data = _run(make_config())
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert entered[:9] == ["CheckImage", "BuildImage", "WaitForBuild", "DescribeBuild",
                           "CheckBuild", "WaitForBuild", "DescribeBuild", "CheckBuild",
                           "UseBuiltImage"]  # fmt: skip
    # No task token reaches the build: the Lambda's payload has none, the build is polled.
    assert "TaskToken" not in dict(fake.calls)["start_build"]
    assert dict(fake.calls)["batchGetBuilds"] == {"Ids": ["b:1"]}
    assert "FindEndpoint" in entered and "CreateEndpoint" in entered
    assert "UpdateEndpoint" not in entered
    assert entered.count("WaitForEndpoint") == 2  # Creating, then InService
    training = dict(fake.calls)["createTrainingJob"]
    assert training["AlgorithmSpecification"]["TrainingImage"] == IMAGE
    assert training["TrainingJobName"] == data["TrainingJobName"]
    assert training["HyperParameters"] == data["HyperParameters"]
    assert training["Environment"] == {"SOURCE_COMMIT": "abc1234def"}
    model, deploy_model = [params for name, params in fake.calls if name == "createModel"]
    assert model["PrimaryContainer"] == {
        "Environment": {"SOURCE_COMMIT": "abc1234def"},
        "Image": IMAGE,
        "ModelDataUrl": "s3://bucket/models/model.tar.gz",
    }
    # The endpoint serves a model made from the approved package (API_ContainerDefinition).
    [package] = fake.packages()
    assert deploy_model["ModelName"] == data["DeployModelName"]
    assert deploy_model["PrimaryContainer"] == {"ModelPackageName": package["ModelPackageArn"]}
    assert package["ModelApprovalStatus"] == "Approved"
    variants = dict(fake.calls)["createEndpointConfig"]["ProductionVariants"]
    assert [v["ModelName"] for v in variants] == [data["DeployModelName"]]
    assert (
        dict(fake.calls)["transform"]["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]
        == data["TestImages"]
    )
    endpoint_config = dict(fake.calls)["createEndpointConfig"]
    assert endpoint_config["DataCaptureConfig"]["InitialSamplingPercentage"] == 10
    assert endpoint_config["DataCaptureConfig"]["DestinationS3Uri"].endswith("/data-capture")
    approval = dict(fake.calls)["request_approval"]
    assert approval["Metrics"]["segm_mAP"] == 0.8 and approval["ModelName"] == data["ModelName"]
    assert approval["TaskToken"] and approval["ExecutionArn"] == execution.arn
    [message] = fake.messages
    assert message["State"] == "NotifySuccess"
    assert data["ModelName"] in message["Message"] and "segm_mAP" in message["Message"]
    assert execution.output["Image"] == {"Uri": IMAGE}
    assert execution.output["Metrics"]["Payload"]["segm_mAP"] == 0.8
    # The registry is the record: the approved package names the image, artifact, commit, data.
    [package] = fake.packages()
    assert execution.output["ModelPackage"]["ModelPackageArn"] == package["ModelPackageArn"]
    assert package["ModelPackageArn"].endswith(":model-package/mask-r-cnn-mlops/1")
    assert package["ModelApprovalStatus"] == "Approved"
    assert json.loads(package["ApprovalDescription"]) == {"approved": True}
    assert package["InferenceSpecification"]["Containers"][0] == {
        "Environment": {"SOURCE_COMMIT": "abc1234def"},
        "Image": IMAGE,
        "ModelDataUrl": "s3://bucket/models/model.tar.gz",
    }
    assert package["MetadataProperties"] == {"CommitId": "abc1234def", "GeneratedBy": execution.arn}
    metadata = package["CustomerMetadataProperties"]
    assert metadata["TrainingData"] == data["TrainingData"]
    assert metadata["TrainingJobName"] == data["TrainingJobName"]
    assert json.loads(metadata["EvaluationMetrics"])["segm_mAP"] == 0.8
    # Registered after the gate, approved before the endpoint changes.
    names = fake.names()
    assert names.index("request_approval") < names.index("updateModelPackage")
    assert names.index("updateModelPackage") < names.index("createEndpointConfig")


def test_given_image_skips_the_build_and_updates_the_endpoint(make_config) -> None:
    execution, fake, entered, data = _run(
        make_config(), {"endpoint_exists": True}, image="repo:given"
    )
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert "BuildImage" not in entered and entered[1] == "UseGivenImage"
    assert "UpdateEndpoint" in entered and "CreateEndpoint" not in entered
    assert (
        dict(fake.calls)["createTrainingJob"]["AlgorithmSpecification"]["TrainingImage"]
        == "repo:given"
    )
    assert dict(fake.calls)["updateEndpoint"]["EndpointConfigName"] == data["EndpointConfigName"]


def _failure(fake: FakeAws) -> dict[str, Any]:
    [message] = [m for m in fake.messages if m["State"] == "NotifyFailure"]
    return json.loads(message["Message"])


def test_quality_gate_failure_is_named(make_config) -> None:
    execution, fake, entered, _ = _run(make_config(), {"segm": 0.1}, image="repo:x")
    assert (execution.status, execution.error) == ("FAILED", "QualityGateFailed")
    assert "RequestApproval" not in entered and "CreateEndpointConfig" not in entered
    failure = _failure(fake)
    assert failure["State"] == "QualityGate" and failure["Metrics"]["segm_mAP"] == 0.1
    assert "below this run's threshold (GateThreshold" in execution.cause
    assert "gate.threshold, 0.5 by default, on AWS" in execution.cause


def test_quality_gate_uses_the_inputs_threshold_not_the_configured_one(make_config) -> None:
    config = make_config()  # gate.threshold 0.5
    execution, _fake, entered, data = _run(config, {"segm": 0.1}, "repo:x", gate_threshold=0.05)
    assert data["GateThreshold"] == 0.05
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert "RequestApproval" in entered and "QualityGateNotMet" not in entered


@pytest.mark.parametrize(("metric", "threshold", "passes"), [(0.3, 0.3, True), (0.3, 0.31, False)])
def test_quality_gate_threshold_is_inclusive(make_config, metric, threshold, passes) -> None:
    execution, _fake, entered, _ = _run(
        make_config(gate__threshold=0.0), {"segm": metric}, "repo:x", gate_threshold=threshold
    )
    assert ("QualityGateNotMet" not in entered) is passes
    assert execution.status == ("SUCCEEDED" if passes else "FAILED")


def test_quality_gate_fails_above_the_metric_with_the_named_error(make_config) -> None:
    config = make_config(gate__threshold=0.0)
    execution, fake, entered, _ = _run(config, {"segm": 0.8}, "repo:x", gate_threshold=0.9)
    assert (execution.status, execution.error) == ("FAILED", "QualityGateFailed")
    assert entered[-4:] == ["QualityGate", "QualityGateNotMet", "NotifyFailure", "Failed"]
    assert _failure(fake)["Metrics"]["segm_mAP"] == 0.8


def test_quality_gate_fails_when_the_input_lacks_the_threshold(make_config) -> None:
    execution, fake, entered, data = _run(
        make_config(gate__threshold=0.0), {"segm": 0.8}, "repo:x", drop=("GateThreshold",)
    )
    assert "GateThreshold" not in data
    assert (execution.status, execution.error) == ("FAILED", "QualityGateFailed")
    assert "CreateEndpointConfig" not in entered
    assert _failure(fake)["State"] == "QualityGate"


def test_rejection_is_caught_notified_and_failed(make_config) -> None:
    execution, fake, entered, _ = _run(make_config(), {"approve": False}, image="repo:x")
    assert (execution.status, execution.error) == ("FAILED", "Rejected")
    assert entered[-3:] == ["ApprovalRejected", "NotifyFailure", "Failed"]
    failure = _failure(fake)
    assert (failure["State"], failure["Error"]) == ("RequestApproval", "Rejected")
    assert failure["Reason"] == "not today"
    # The registry records the rejection; the endpoint is never touched.
    [package] = fake.packages()
    assert package["ModelApprovalStatus"] == "Rejected"
    assert package["ApprovalDescription"] == "not today"
    assert not {"createEndpointConfig", "createEndpoint", "updateEndpoint"} & set(fake.names())
    assert not any(name.startswith("describeEndpoint") for name in fake.names())


def test_a_second_run_is_the_next_version_of_the_existing_group(make_config) -> None:
    config = make_config()
    first, *_ = _run(config, image="repo:x")
    second, fake, entered, _ = _run(config, {"endpoint_exists": True}, image="repo:x")
    assert first.status == second.status == "SUCCEEDED", (second.error, second.cause)
    # CreateModelPackageGroup failed (the group exists) and the run went on.
    assert entered.count("EnsureModelPackageGroup") == 1 and "RegisterModel" in entered
    assert second.output["ModelPackageGroup"]["Error"] == "SageMaker.SageMakerException"
    assert [p["ModelPackageVersion"] for p in fake.packages()] == [1, 2]


def test_auto_approval_without_the_approval_step(make_config) -> None:
    execution, fake, entered, _ = _run(make_config(approval__enabled=False), image="repo:x")
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert "RequestApproval" not in entered
    [package] = fake.packages()
    assert package["ModelApprovalStatus"] == "Approved"
    assert package["ApprovalDescription"] == "auto: gate passed"


def test_rolled_back_update_fails_with_deployment_rolled_back(make_config) -> None:
    # After an auto-rollback DescribeEndpoint answers InService on the previous configuration:
    # https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-blue-green.html
    execution, fake, entered, _ = _run(
        make_config(), {"endpoint_exists": True, "rollback": True}, image="repo:x"
    )
    assert (execution.status, execution.error) == ("FAILED", "DeploymentRolledBack")
    assert "EndpointRolledBack" in entered
    failure = _failure(fake)
    assert failure["State"] == "CheckEndpoint"
    assert failure["Cause"].startswith(
        "endpoint mask-r-cnn rolled back to configuration old-config "
    )
    update = dict(fake.calls)["updateEndpoint"]
    assert update["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TerminationWaitInSeconds"] == 120


def test_training_retries_transient_errors_then_fails_with_the_task_error(make_config) -> None:
    execution, fake, _entered, _ = _run(
        make_config(),
        {"training_errors": ["SageMaker.ThrottlingException", "States.TaskFailed"]},
        image="repo:x",
    )
    assert fake.names().count("createTrainingJob") == 2  # retried once, then a job failure
    assert (execution.status, execution.error) == ("FAILED", "Train.States.TaskFailed")
    assert execution.cause == "scripted failure"
    failure = _failure(fake)
    assert (failure["State"], failure["Error"]) == ("Train", "States.TaskFailed")


def test_a_validation_error_of_train_is_not_retried(make_config) -> None:
    """A reused training job name (a ValidationException) fails at once, without retries.

    SageMaker answers a reused name with ValidationException
    (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateTrainingJob.html), which
    the optimized integration reports as SageMaker.AmazonSageMakerException; retrying cannot help.
    """
    execution, fake, _entered, _ = _run(
        make_config(), {"training_errors": ["SageMaker.AmazonSageMakerException"]}, image="repo:x"
    )
    assert fake.names().count("createTrainingJob") == 1
    assert [w.state_name for w in execution.waits if w.state_name == "Train"] == []
    assert (execution.status, execution.error) == (
        "FAILED",
        "Train.SageMaker.AmazonSageMakerException",
    )


@pytest.mark.parametrize("status", ["FAILED", "FAULT", "STOPPED", "TIMED_OUT"])
def test_a_build_that_does_not_succeed_fails_the_run_with_build_failed(
    make_config, status: str
) -> None:
    # The end states of a build: BuildStatus of
    # https://docs.aws.amazon.com/codebuild/latest/APIReference/API_Build.html
    def script(fake: FakeAws) -> None:
        fake.build_status = status

    config = make_config()
    engine = engine_module.LocalEngine(time_scale=0.001, poll_interval=0.05)
    fake = FakeAws(engine, config)
    script(fake)
    data = execution_input(config, "abc1234def", poll_seconds=1)
    execution = engine.start_execution(render_definition(config), data, name=data["JobName"])
    execution.wait(timeout=60)
    assert execution.status == "FAILED"
    assert execution.error == "BuildFailed"
    failure = _failure(fake)
    assert (failure["State"], failure["BuildStatus"], failure["BuildId"]) == (
        "BuildImage",
        status,
        "b:1",
    )
    assert "createTrainingJob" not in fake.names()


def test_minimal_chain(make_config) -> None:
    config = make_config(evaluation__enabled=False, gate__enabled=False,
                         approval__enabled=False, registry__enabled=False,
                         notification__enabled=False)  # fmt: skip
    execution, fake, _entered, _ = _run(config)
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert fake.names()[:6] == ["start_build", "batchGetBuilds", "batchGetBuilds",
                                "createTrainingJob", "createModel",
                                "createEndpointConfig"]  # fmt: skip
    assert fake.messages == []


def test_ssm_hyperparameters_win(make_config) -> None:
    config = make_config(training__hyperparameters_ssm_parameter="/mask-r-cnn/hp")
    execution, fake, _entered, data = _run(config, image="repo:x")
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert dict(fake.calls)["getParameter"]["Name"] == "/mask-r-cnn/hp"
    hyper = dict(fake.calls)["createTrainingJob"]["HyperParameters"]
    assert hyper == {**data["HyperParameters"], "epochs": "3"}
