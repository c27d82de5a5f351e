"""The stages up to the model: the image (given or built), the hyperparameters, Train, CreateModel."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mask_r_cnn.contract import METRIC_DEFINITIONS

from workflow.definition.base import BuilderBase
from workflow.definition.names import (
    CHECKPOINT_LOCAL_PATH,
    CODEBUILD_SDK_TRANSIENT_ERRORS,
    ERROR_BUILD,
    LAMBDA_TRANSIENT_ERRORS,
    SAGEMAKER_SDK_TRANSIENT_ERRORS,
    SAGEMAKER_TRANSIENT_ERRORS,
    SSM_TRANSIENT_ERRORS,
    StepId,
    check_state_name,
)
from workflow.definition.registry import APPROVED
from workflow.definition.sdk import bind, select_result
from workflow.definition.stage import Stage


class TrainingStages(BuilderBase):
    """The image, hyperparameter, training and model states."""

    def image_stage(self) -> Stage:
        """CheckImage: the given image, or a build that the state machine polls.

        The build is started by the start_build Lambda, which returns the build's id and the
        image URI it will push, and then watched with ``batchGetBuilds`` in a Wait/Choice loop.
        Nothing in the build answers the state machine, so the build needs no ``SendTask*``
        right and no task token ever reaches it (an approval token in the execution history is
        of no use to code that runs in the build).
        """
        steps, config = self.steps, self.config
        build = self.sdk.lambda_step(
            check_state_name(StepId.BUILD_IMAGE.value),
            comment=(
                "starts the CodeBuild project through the start_build Lambda; returns the build "
                "id and the image URI the build pushes"
            ),
            parameters={
                "FunctionName": config.lambdas.start_build,
                "Payload": {
                    "CommitId": self.run["CommitId"],
                    "ProjectName": config.codebuild_project,
                    "ExecutionArn.$": "$$.Execution.Id",
                },
            },
            result_path="$.Build",
        )
        select_result(build, {"BuildId.$": "$.Payload.BuildId", "ImageUri.$": "$.Payload.ImageUri"})
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
        build.next(self.build_wait(use_built))
        check = steps.Choice(
            check_state_name(StepId.CHECK_IMAGE.value),
            comment="skips the build when the execution input already carries ImageUri",
        )
        check.add_choice(steps.ChoiceRule.IsPresent("$.ImageUri", True), next_step=use_given)
        check.default_choice(build)
        return Stage(check, [use_built.next, use_given.next])

    def build_wait(self, succeeded: Any) -> Any:
        """Return WaitForBuild: poll ``batchGetBuilds`` until the build leaves IN_PROGRESS."""
        steps, rule = self.steps, self.steps.ChoiceRule
        wait, describe = self.poll_loop(
            StepId.WAIT_FOR_BUILD,
            StepId.DESCRIBE_BUILD,
            "aws-sdk:codebuild:batchGetBuilds",
            {"Ids.$": "States.Array($.Build.BuildId)"},
            "$.BuildPoll",
            (
                "polls in the state machine itself, as the endpoint wait does",
                "reads the build's status and phase",
            ),
        )
        # The one build, whole: "$.Builds[0].BuildStatus" would do, but moto's interpreter
        # (local runs) answers a path that indexes and then selects a field with a list.
        select_result(describe, {"Build.$": "$.Builds[0]"})
        self.retry(describe, CODEBUILD_SDK_TRANSIENT_ERRORS, 5, 5)
        self.catch(describe, StepId.DESCRIBE_BUILD)
        status = "$.BuildPoll.Build.BuildStatus"
        check = steps.Choice(
            check_state_name(StepId.CHECK_BUILD.value),
            comment="SUCCEEDED: use the image; IN_PROGRESS: wait; anything else: fail",
        )
        check.add_choice(rule.StringEquals(status, "SUCCEEDED"), next_step=succeeded)
        check.add_choice(rule.StringEquals(status, "IN_PROGRESS"), next_step=wait)
        check.default_choice(
            self.record_failure(
                StepId.BUILD_NOT_SUCCEEDED,
                StepId.BUILD_IMAGE,
                ERROR_BUILD,
                "the image build failed, stopped or timed out (see BuildStatus); read the log of "
                "the build BuildId in the CodeBuild console",
                {"BuildId.$": "$.Build.BuildId", "BuildStatus.$": status},
            )
        )
        describe.next(check)
        return wait

    def hyperparameter_stage(self) -> Any:
        """ReadHyperParameters -> MergeHyperParameters: the SSM values over the input's."""
        parameter = self.config.training.hyperparameters_ssm_parameter
        if parameter is None:
            raise self.switched_off(
                "the hyperparameter stage", "training.hyperparameters_ssm_parameter"
            )
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
        return self.steps.Chain([read, merge])

    def warm_start_stage(self) -> Stage:
        """FindWarmStart ... Warm/ColdStartChannels: the states that choose the training channels.

        With ``training.warm_start: last-approved`` the newest ``Approved`` package of the model
        package group (ListModelPackages sorted by CreationTime, descending:
        https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ListModelPackages.html)
        gives its ``ModelDataUrl`` (DescribeModelPackage) as a third channel, ``pretrained``,
        from which the container starts; with none approved yet the job trains from scratch.
        """
        if not self.config.warm_starts:
            raise self.switched_off(
                "the warm start", "training.warm_start: last-approved and registry.enabled"
            )
        steps, rule = self.steps, self.steps.ChoiceRule
        find = steps.Task(
            check_state_name(StepId.FIND_WARM_START.value),
            resource=self.resource("aws-sdk:sagemaker:listModelPackages"),
            comment="the newest approved model of the group: the warm start of this training",
            parameters={
                "ModelPackageGroupName": self.config.registry.group_name,
                # The API's default is Unversioned, which a group's versions are not.
                "ModelPackageType": "Versioned",
                "ModelApprovalStatus": APPROVED,
                "SortBy": "CreationTime",
                "SortOrder": "Descending",
                "MaxResults": 1,
            },
            result_path="$.WarmStart",
        )
        select_result(find, {"Packages.$": "$.ModelPackageSummaryList"})
        self.retry(find, SAGEMAKER_SDK_TRANSIENT_ERRORS, 2, 4)
        describe = steps.Task(
            check_state_name(StepId.DESCRIBE_WARM_START.value),
            resource=self.resource("aws-sdk:sagemaker:describeModelPackage"),
            comment="the approved model's artifact (model.tar.gz)",
            parameters={"ModelPackageName.$": "$.WarmStart.Packages[0].ModelPackageArn"},
            result_path="$.WarmStart",
        )
        select_result(
            describe,
            {
                "ModelPackageArn.$": "$.ModelPackageArn",
                "ModelDataUrl.$": "$.InferenceSpecification.Containers[0].ModelDataUrl",
            },
        )
        self.retry(describe, SAGEMAKER_SDK_TRANSIENT_ERRORS, 2, 4)
        self.catch(describe, StepId.DESCRIBE_WARM_START)
        data = self.data_channels()
        pretrained = self.channel("pretrained", {"S3Uri.$": "$.WarmStart.ModelDataUrl"})
        warm = steps.Pass(
            check_state_name(StepId.WARM_START_CHANNELS.value),
            comment="trains from the approved model: its model.tar.gz is the pretrained channel",
            parameters={"Channels": [*data, pretrained]},
            result_path="$.TrainingChannels",
        )
        cold = steps.Pass(
            check_state_name(StepId.COLD_START_CHANNELS.value),
            comment="no approved model yet: trains from scratch",
            parameters={"Channels": data},
            result_path="$.TrainingChannels",
        )
        # SageMaker's own (unmodelled) errors, e.g. a group that the template did not create
        # yet, mean nothing to start from: the job trains from scratch, the cause kept at
        # $.WarmStart. Other errors (access denied) fail the run.
        self.catch_expected(
            find, StepId.FIND_WARM_START, "SageMaker.SageMakerException", cold, "$.WarmStart"
        )
        check = steps.Choice(
            check_state_name(StepId.CHECK_WARM_START.value),
            comment="warm start only when the group has an approved model",
        )
        check.add_choice(rule.IsPresent("$.WarmStart.Packages[0]", True), next_step=describe)
        check.default_choice(cold)
        find.next(check)
        describe.next(warm)
        return Stage(find, [warm.next, cold.next])

    @staticmethod
    def channel(name: str, uri: Mapping[str, Any]) -> dict[str, Any]:
        """One ``InputDataConfig`` entry for an S3 prefix.

        ``uri`` is the prefix's field as the state writes it: ``{"S3Uri": placeholder}`` for an
        execution input (the SDK renders the placeholder as a path), or ``{"S3Uri.$": path}``
        for a value read from the state's input.
        """
        source = {"S3DataType": "S3Prefix", "S3DataDistributionType": "FullyReplicated", **uri}
        return {"ChannelName": name, "DataSource": {"S3DataSource": source}}

    def data_channels(self) -> list[dict[str, Any]]:
        """The training and validation channels, from the execution input."""
        return [
            self.channel("training", {"S3Uri": self.run["TrainingData"]}),
            self.channel("validation", {"S3Uri": self.run["ValidationData"]}),
        ]

    def training_step(self) -> Any:
        """Train: the SDK's TrainingStep (createTrainingJob.sync) in the execution's image."""
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
        train = self.steps.TrainingStep(
            check_state_name(StepId.TRAIN.value),
            estimator=estimator,
            job_name=self.run["TrainingJobName"],
            hyperparameters=self.run["HyperParameters"],
            output_data_config_path=self.run["OutputPath"],
            comment="trains Mask R-CNN in the BYOC image; checkpoints make spot restarts resume",
            parameters={
                "InputDataConfig": self.data_channels(),
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
        if self.config.warm_starts:
            bind(train, ("InputDataConfig",), "$.TrainingChannels.Channels")
        if self.config.training.hyperparameters_ssm_parameter is not None:
            bind(train, ("HyperParameters",), "$.ResolvedHyperParameters.Values")
        self.retry(train, SAGEMAKER_TRANSIENT_ERRORS, 10, 3)
        self.catch(train, StepId.TRAIN)
        return train

    def model_step(self) -> Any:
        """CreateModel: the SDK's ModelStep, the trained artifact in the execution's image."""
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
        self.retry(step, SAGEMAKER_TRANSIENT_ERRORS, 5, 4)
        self.catch(step, StepId.CREATE_MODEL)
        return step
