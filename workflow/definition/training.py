"""The stages up to the model: the image (given or built), the hyperparameters, Train, CreateModel."""

from __future__ import annotations

from typing import Any

from mask_r_cnn.contract import METRIC_DEFINITIONS

from workflow.definition.base import BuilderBase
from workflow.definition.names import (
    BUILD_TIMEOUT_SECONDS,
    CHECKPOINT_LOCAL_PATH,
    LAMBDA_TRANSIENT_ERRORS,
    SSM_TRANSIENT_ERRORS,
    StepId,
    check_state_name,
)
from workflow.definition.sdk import bind


class TrainingStages(BuilderBase):
    """The image, hyperparameter, training and model states."""

    def image_stage(self, train_entry: Any) -> Any:
        steps, config = self.steps, self.config
        build = self.sdk.lambda_step(
            check_state_name(StepId.BUILD_IMAGE.value),
            wait_for_callback=True,
            comment=(
                "starts the CodeBuild project through the start_build Lambda and waits for the "
                "build's task token answer {ImageUri}"
            ),
            parameters={
                "FunctionName": config.lambdas.start_build,
                "Payload": {
                    "TaskToken.$": "$$.Task.Token",
                    "CommitId": self.run["CommitId"],
                    "ProjectName": config.codebuild_project,
                    "ExecutionArn.$": "$$.Execution.Id",
                },
            },
            timeout_seconds=BUILD_TIMEOUT_SECONDS,
            result_path="$.Build",
        )
        self.retry(build, LAMBDA_TRANSIENT_ERRORS, 2, 6)
        self.catch(build, StepId.BUILD_IMAGE)
        use_built = steps.Pass(
            check_state_name(StepId.USE_BUILT_IMAGE.value),
            comment="the built image is the one to train and serve",
            parameters={"Uri.$": "$.Build.ImageUri"},
            result_path="$.Image",
        )
        use_given = steps.Pass(
            check_state_name(StepId.USE_GIVEN_IMAGE.value),
            comment="the execution input names the image (CodeBuild started this execution)",
            parameters={"Uri.$": "$.ImageUri"},
            result_path="$.Image",
        )
        build.next(use_built)
        use_built.next(train_entry)
        use_given.next(train_entry)
        check = steps.Choice(
            check_state_name(StepId.CHECK_IMAGE.value),
            comment="skips the build when the execution input already carries ImageUri",
        )
        check.add_choice(steps.ChoiceRule.IsPresent("$.ImageUri", True), next_step=use_given)
        check.default_choice(build)
        return check

    def hyperparameter_stage(self, train: Any) -> Any:
        """Return the first state of training: the SSM read when configured, else ``train``."""
        parameter = self.config.training.hyperparameters_ssm_parameter
        if parameter is None:
            return train
        read = self.steps.Task(
            check_state_name(StepId.READ_HYPERPARAMETERS.value),
            resource=self.resource("aws-sdk:ssm:getParameter"),
            comment="reads the hyperparameters kept in SSM Parameter Store (a JSON object)",
            parameters={"Name": parameter, "WithDecryption": True},
            result_path="$.HyperParameterStore",
        )
        self.retry(read, SSM_TRANSIENT_ERRORS, 2, 4)
        self.catch(read, StepId.READ_HYPERPARAMETERS)
        merge = self.steps.Pass(
            check_state_name(StepId.MERGE_HYPERPARAMETERS.value),
            comment="the SSM values win over the execution input's HyperParameters",
            parameters={
                "Values.$": (
                    "States.JsonMerge($.HyperParameters, "
                    "States.StringToJson($.HyperParameterStore.Parameter.Value), false)"
                )
            },
            result_path="$.ResolvedHyperParameters",
        )
        read.next(merge)
        merge.next(train)
        return read

    def training_step(self) -> Any:
        config, training = self.config, self.config.training
        estimator = self.sdk.estimator_cls(
            # The SDK writes the estimator's image into the request; the real one comes from the
            # execution ($.Image.Uri) through `parameters` below.
            image_uri=f"{config.image_repository_uri}:latest",
            role=config.roles.sagemaker,
            instance_count=training.instance_count,
            instance_type=training.instance_type,
            volume_size=training.volume_size_gb,
            max_run=training.max_runtime_seconds,
            use_spot_instances=training.spot,
            max_wait=training.max_wait_seconds if training.spot else None,
            output_path=config.s3.uri("models"),
            metric_definitions=[dict(m) for m in METRIC_DEFINITIONS],
            sagemaker_session=self.session,
            debugger_hook_config=False,
            disable_profiler=True,
        )
        channel = {"S3DataType": "S3Prefix", "S3DataDistributionType": "FullyReplicated"}
        train = self.steps.TrainingStep(
            check_state_name(StepId.TRAIN.value),
            estimator=estimator,
            job_name=self.run["TrainingJobName"],
            hyperparameters=self.run["HyperParameters"],
            output_data_config_path=self.run["OutputPath"],
            comment="trains Mask R-CNN in the BYOC image; checkpoints make spot restarts resume",
            parameters={
                "InputDataConfig": [
                    {
                        "ChannelName": "training",
                        "DataSource": {
                            "S3DataSource": {**channel, "S3Uri": self.run["TrainingData"]}
                        },
                    },
                    {
                        "ChannelName": "validation",
                        "DataSource": {
                            "S3DataSource": {**channel, "S3Uri": self.run["ValidationData"]}
                        },
                    },
                ],
                "CheckpointConfig": {
                    "S3Uri": self.run["CheckpointPath"],
                    "LocalPath": CHECKPOINT_LOCAL_PATH,
                },
                "Environment": {"SOURCE_COMMIT": self.run["CommitId"]},
            },
            result_path="$.Training",
        )
        # The SDK hard-codes the estimator's image: the execution's image replaces it.
        bind(train, ("AlgorithmSpecification", "TrainingImage"), "$.Image.Uri")
        if self.config.training.hyperparameters_ssm_parameter is not None:
            bind(train, ("HyperParameters",), "$.ResolvedHyperParameters.Values")
        return train

    def model_step(self) -> Any:
        model = self.sdk.model_cls(
            image_uri=f"{self.config.image_repository_uri}:latest",
            model_data=self.config.s3.uri("models") + "model.tar.gz",
            role=self.config.roles.sagemaker,
            env={"SOURCE_COMMIT": self.run["CommitId"]},
            sagemaker_session=self.session,
        )
        step = self.steps.ModelStep(
            check_state_name(StepId.CREATE_MODEL.value),
            model=model,
            model_name=self.run["ModelName"],
            comment="registers the trained artifacts with the same image as a SageMaker model",
            result_path="$.Model",
        )
        bind(step, ("PrimaryContainer", "Image"), "$.Image.Uri")
        bind(
            step, ("PrimaryContainer", "ModelDataUrl"), "$.Training.ModelArtifacts.S3ModelArtifacts"
        )
        return step
