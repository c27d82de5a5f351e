"""The typed configuration: one frozen pydantic model per section of `workflow.yaml`.

A key is one typed field with its default here and one row in README 'Configuration'. Types and
checks come from `workflow.config.checks`; a key whose default derives from ``name``,
``account_id`` and ``region`` is required here and filled by `derived_defaults` when it is unset.
Build a `WorkflowConfig` with `workflow.config.load_config`, which layers the sources.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, PrivateAttr
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from workflow.config.checks import (
    ACCOUNT,
    BUCKET,
    CODEBUILD,
    ECR,
    EMAIL,
    ENDPOINT,
    INSTANCE,
    LAMBDA,
    MODEL_PACKAGE_GROUP,
    NAME,
    PREFIX,
    REGION,
    ROLE,
    SSM,
    TOPIC,
    Choice,
    Flag,
    Hyperparameters,
    ImageFolders,
    Integer,
    Multiple,
    Number,
    Pattern,
    Range,
    ShapeRange,
    Text,
)

ENV_PREFIX = "MLOPS_"
ENV_SEPARATOR = "__"
ENV_CONFIG = "MLOPS_CONFIG"
DEFAULT_CONFIG_FILE = "workflow.yaml"

GateMetric = Literal["bbox_mAP", "segm_mAP"]
ApproveMode = Literal["auto", "manual"]
WarmStart = Literal["none", "last-approved"]
DeploymentStrategy = Literal["canary", "linear", "all_at_once"]

Role = Annotated[Text, AfterValidator(ROLE)]
Lambda = Annotated[Text, AfterValidator(LAMBDA)]
InstanceType = Annotated[Text, AfterValidator(INSTANCE)]
Count = Annotated[Integer, AfterValidator(Range(1, 100))]
Seconds = Annotated[Integer, AfterValidator(Range(1, 2419200, " seconds"))]
Fraction = Annotated[Number, AfterValidator(Range(0.0, 1.0))]
DatasetCount = Annotated[Integer, AfterValidator(Range(1, 100000))]


class Section(BaseModel):
    """A section of `workflow.yaml`: frozen, and unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class RolesConfig(Section):
    """IAM role ARNs (derived: ``arn:aws:iam::<account_id>:role/<name>-<key>``)."""

    state_machine: Role
    sagemaker: Role


class S3Config(Section):
    """Where data, models, checkpoints and transform output live."""

    bucket: Annotated[Text, AfterValidator(BUCKET)]  # derived: <name>-<account_id>-<region>
    prefix: Annotated[Text, AfterValidator(PREFIX)] = "mask-r-cnn"

    def uri(self, *parts: str) -> str:
        """Return ``s3://bucket/prefix/part/.../`` (a trailing slash: a folder)."""
        keys = [p.strip("/") for p in (self.prefix, *parts) if p and p.strip("/")]
        return f"s3://{self.bucket}/" + "".join(f"{k}/" for k in keys)


class LambdasConfig(Section):
    """Lambda function names or ARNs (derived: ``<name>-start-build`` etc.)."""

    start_build: Lambda
    request_approval: Lambda
    evaluate: Lambda


class TrainingConfig(Section):
    """The SageMaker training job."""

    instance_type: InstanceType = "ml.g4dn.xlarge"
    instance_count: Count = 1
    volume_size_gb: Annotated[Integer, AfterValidator(Range(1, 16384, " GB"))] = 50
    max_runtime_seconds: Seconds = 86400
    spot: Flag = False
    max_wait_seconds: Seconds = 172800  # managed spot only
    hyperparameters: Hyperparameters = {
        "epochs": "10",
        "backbone": "resnet50_fpn",
        "batch_size": "4",
        "lr": "0.005",
    }
    # An SSM parameter (a JSON object of strings) merged over the hyperparameters at run time.
    hyperparameters_ssm_parameter: Annotated[Text, AfterValidator(SSM)] | None = None
    # last-approved: each training job starts from the model of the newest approved package of
    # registry.group_name (its model.tar.gz as the pretrained channel), from scratch while the
    # group has none; none: always from scratch. Needs the registry: with registry.enabled
    # false there are no approved packages and every job trains from scratch.
    warm_start: Annotated[WarmStart, BeforeValidator(Choice(get_args(WarmStart)))] = "last-approved"


class EvaluationConfig(Section):
    """The batch transform of the held-out images and the metrics Lambda."""

    enabled: Flag = True
    instance_type: InstanceType = "ml.m5.xlarge"


class GateConfig(Section):
    """The quality gate: ``metric >= threshold`` or the execution fails."""

    enabled: Flag = True
    metric: Annotated[GateMetric, BeforeValidator(Choice(get_args(GateMetric)))] = "segm_mAP"
    threshold: Fraction = 0.5


class ApprovalConfig(Section):
    """The manual approval (a task token sent by e-mail)."""

    enabled: Flag = True
    email: Annotated[Text, AfterValidator(EMAIL)] | None = None
    # The template's ApprovalLinkTtlSeconds takes 300 to 604800 (infra/template.yaml).
    link_ttl_seconds: Annotated[Integer, AfterValidator(Range(300, 604800, " seconds"))] = 86400


class RegistryConfig(Section):
    """The SageMaker model registry: each run's model is a versioned package of one group.

    https://docs.aws.amazon.com/sagemaker/latest/dg/model-registry.html
    """

    enabled: Flag = True
    # derived: <name>; the state machine creates the group when it is missing.
    group_name: Annotated[Text, AfterValidator(MODEL_PACKAGE_GROUP)]


class NotificationConfig(Section):
    """The SNS notifications on success and failure."""

    enabled: Flag = True
    topic_arn: Annotated[Text, AfterValidator(TOPIC)]  # derived: <name>-notifications topic


class DataCaptureConfig(Section):
    """SageMaker data capture of the endpoint's requests and responses (``DataCaptureConfig``).

    https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-data-capture-endpoint.html
    """

    enabled: Flag = True
    # CreateEndpointConfig's InitialSamplingPercentage takes 0 to 100.
    sampling_percentage: Annotated[Integer, AfterValidator(Range(0, 100, " percent"))] = 10
    # A key prefix under s3.prefix: captures go to s3://<bucket>/<s3.prefix>/<destination_prefix>.
    destination_prefix: Annotated[Text, AfterValidator(PREFIX)] = "data-capture"


def baking_seconds(strategy: str, linear_step: int, wait: int, termination_wait: int) -> int:
    """Return the baking periods of one update: each traffic step's wait plus the final one."""
    steps = {"canary": 1, "linear": -(-100 // linear_step), "all_at_once": 0}[strategy]
    return wait * steps + termination_wait


class RollbackAlarmsConfig(Section):
    """The CloudWatch alarms that roll an endpoint update back (``AutoRollbackConfiguration``).

    The template creates one alarm per metric of the endpoint's variant (AWS/SageMaker
    ``Invocation5XXErrors``, Sum; ``ModelLatency``, Average, in microseconds):
    https://docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html and
    https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-configuration.html.
    """

    enabled: Flag = True
    # An alarm when a period holds at least this many 5XX answers of the model.
    errors_threshold: Annotated[Integer, AfterValidator(Range(1, 1000000, " errors"))] = 1
    # An alarm when the mean ModelLatency of a period reaches this (5 s; a CPU Mask R-CNN).
    latency_threshold_microseconds: Annotated[
        Integer, AfterValidator(Range(1000, 3600000000, " microseconds"))
    ] = 5000000
    # SageMaker sends endpoint metrics every minute: whole minutes. Up to an hour times 24
    # periods keeps the alarm's window within CloudWatch's one day.
    period_seconds: Annotated[
        Integer, AfterValidator(Range(60, 3600, " seconds")), AfterValidator(Multiple(60, " s"))
    ] = 60
    evaluation_periods: Annotated[Integer, AfterValidator(Range(1, 24))] = 2


class DeploymentConfig(Section):
    """How UpdateEndpoint shifts traffic to the new model (``DeploymentConfig``).

    Blue/green: SageMaker starts a new fleet and shifts traffic to it all at once, as a canary
    then the rest, or in linear steps, rolling back when an alarm fires:
    https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-blue-green.html and
    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_BlueGreenUpdatePolicy.html.
    Canary and linear need two instances or more; with one the update is all at once.
    """

    strategy: Annotated[
        DeploymentStrategy, BeforeValidator(Choice(get_args(DeploymentStrategy)))
    ] = "canary"
    # CanarySize (CAPACITY_PERCENT): at most 50 % of the variant's instances
    # (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_TrafficRoutingConfig.html).
    canary_percent: Annotated[Integer, AfterValidator(Range(1, 50, " percent"))] = 50
    # LinearStepSize (CAPACITY_PERCENT): 10 to 50 % of the variant's instances.
    linear_step_percent: Annotated[Integer, AfterValidator(Range(10, 50, " percent"))] = 50
    # WaitIntervalInSeconds, the baking period of each step: 0 to 3600.
    wait_seconds: Annotated[Integer, AfterValidator(Range(0, 3600, " seconds"))] = 300
    # TerminationWaitInSeconds, the final baking period before the old fleet goes: 0 to 3600.
    termination_wait_seconds: Annotated[Integer, AfterValidator(Range(0, 3600, " seconds"))] = 120
    # MaximumExecutionTimeoutInSeconds: 600 to 28800, more than the waits above.
    max_execution_timeout_seconds: Annotated[
        Integer, AfterValidator(Range(600, 28800, " seconds"))
    ] = 7200
    alarms: RollbackAlarmsConfig = RollbackAlarmsConfig()

    def baking_seconds(self) -> int:
        """The baking periods of one update: each traffic step's wait plus the final one."""
        return baking_seconds(
            self.strategy,
            self.linear_step_percent,
            self.wait_seconds,
            self.termination_wait_seconds,
        )


class EndpointConfig(Section):
    """The real-time endpoint, created once and then updated in place."""

    name: Annotated[Text, AfterValidator(ENDPOINT)] = "mask-r-cnn"
    instance_type: InstanceType = "ml.m5.xlarge"
    initial_instance_count: Count = 1
    poll_seconds: Annotated[Integer, AfterValidator(Range(1, 3600, " seconds"))] = 30
    data_capture: DataCaptureConfig = DataCaptureConfig()
    deployment: DeploymentConfig = DeploymentConfig()


class DatasetConfig(Section):
    """Size of the synthetic data set of local runs."""

    train: DatasetCount = 2000
    validation: DatasetCount = 16
    test: DatasetCount = 32
    size: Annotated[Integer, AfterValidator(Range(32, 4096, " pixels"))] = 96
    seed: Annotated[Integer, AfterValidator(Range(0, 2**32 - 1))] = 0
    # Shapes per training image, drawn uniformly (null: the 0-4 of the held-out splits, which
    # this never changes). Crowded training images show the model more shapes that others
    # partly hide, the case it finds hardest.
    train_shapes: ShapeRange = (2, 5)


class LocalConfig(Section):
    """Settings of the local runtime; they never change the ASL document."""

    root: Text = ".mlops"
    poll_seconds: Annotated[Integer, AfterValidator(Range(0, 3600, " seconds"))] = 1
    approve: Annotated[ApproveMode, BeforeValidator(Choice(get_args(ApproveMode)))] = "auto"
    # The quality gate's threshold in local runs (segm mAP on the held-out test split).
    gate_threshold: Fraction = 0.2
    # The demo: two minutes of real training on 2 CPU cores. A CPU-fit Mask R-CNN (a half-width
    # ResNet-18 with a 32-channel FPN, narrow heads, anchors derived from the boxes, one RoIAlign
    # sample per bin, 150 RPN proposals per image) with fused AdamW (beta2 0.95), bfloat16
    # autocast where the CPU has it, and the peak lr until the last tenth of the run, then a
    # linear decay to 0 at max_steps or max_seconds, whichever comes first (940 steps take about
    # 2 minutes on 2 quiet AVX512-BF16 cores). Merged over training.hyperparameters for local
    # runs.
    hyperparameters: Hyperparameters = {
        "epochs": "100",
        "max_steps": "940",
        "max_seconds": "115",
        "backbone": "resnet18_fpn",
        "backbone_width": "32",
        "fpn_channels": "32",
        "box_head_channels": "256",
        "mask_head_channels": "64",
        "mask_head_layers": "2",
        "anchor_sizes": "auto",
        "optimizer": "adamw",
        "lr": "0.001",
        "adam_beta2": "0.95",
        "lr_schedule": "wsd",
        "warmup_steps": "20",
        "batch_size": "4",
        "min_size": "128",
        "max_size": "128",
        "fast": "true",
        "box_samples_per_image": "64",
        "rpn_train_proposals": "150",
        "roi_sampling_ratio": "1",
        "detections_per_image": "20",
        "score_threshold": "0.3",
        "num_workers": "0",
        "amp": "true",
    }
    dataset: DatasetConfig = DatasetConfig()
    # Images that are not the kit's (not local/... nor ecr_repository): image URI -> folder
    # holding its mask_r_cnn/train and mask_r_cnn/serve, run as that image's code.
    images: ImageFolders = {}
    # Multiplies the waits of a local blue/green endpoint update (WaitIntervalInSeconds,
    # TerminationWaitInSeconds, MaximumExecutionTimeoutInSeconds): 0.01 turns 10 minutes into 6 s.
    deployment_time_scale: Fraction = 0.01


class WorkflowConfig(BaseSettings):
    """The whole configuration, validated. Build it with `load_config`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_SEPARATOR,
        yaml_file=DEFAULT_CONFIG_FILE,
        extra="forbid",
        frozen=True,
    )

    name: Annotated[Text, AfterValidator(NAME)] = "mask-r-cnn-mlops"
    region: Annotated[Text, AfterValidator(REGION)] = "us-east-1"
    account_id: Annotated[Text, AfterValidator(ACCOUNT)] = "000000000000"  # derives ARNs only
    roles: RolesConfig
    s3: S3Config
    ecr_repository: Annotated[Text, AfterValidator(ECR)] = "mask-r-cnn"
    codebuild_project: Annotated[Text, AfterValidator(CODEBUILD)]  # derived: <name>-build
    lambdas: LambdasConfig
    training: TrainingConfig = TrainingConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    gate: GateConfig = GateConfig()
    approval: ApprovalConfig = ApprovalConfig()
    registry: RegistryConfig
    notification: NotificationConfig
    endpoint: EndpointConfig = EndpointConfig()
    local: LocalConfig = LocalConfig()

    _source: str = PrivateAttr(default="defaults")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Take values from the constructor only: `load_config` layers file, env and flags.

        The layering keeps the documented rules that pydantic-settings' deep merge does not: a
        whole mapping replaces (``training.hyperparameters: {...}``) while one entry patches
        (``MLOPS_TRAINING__HYPERPARAMETERS__EPOCHS``), and each value remembers its source.
        """
        return (init_settings,)

    @property
    def source(self) -> str:
        """Where the configuration came from: a file name, or ``defaults``."""
        return self._source

    @property
    def image_repository_uri(self) -> str:
        """The ECR repository URI of the BYOC image (without tag)."""
        return f"{self.account_id}.dkr.ecr.{self.region}.amazonaws.com/{self.ecr_repository}"

    @property
    def data_capture_uri(self) -> str:
        """The ``DestinationS3Uri`` of the endpoint's data capture (no trailing slash)."""
        return self.s3.uri(self.endpoint.data_capture.destination_prefix).rstrip("/")

    @property
    def rollback_alarm_names(self) -> dict[str, str]:
        """The name of each rollback alarm by its AWS/SageMaker metric (template and definition)."""
        base = f"{self.name}-{self.endpoint.name}"
        return {
            "Invocation5XXErrors": f"{base}-5xx-errors",
            "ModelLatency": f"{base}-model-latency",
        }

    @property
    def warm_starts(self) -> bool:
        """Whether training starts from the registry's last approved model (which needs it)."""
        return self.training.warm_start == "last-approved" and self.registry.enabled

    @property
    def registry_group_description(self) -> str:
        """The model package group's description (template and definition)."""
        return f"Mask R-CNN models of {self.name}"

    @property
    def state_machine_arn(self) -> str:
        """The ARN the state machine has once deployed."""
        return f"arn:aws:states:{self.region}:{self.account_id}:stateMachine:{self.name}"

    def to_dict(self) -> dict[str, Any]:
        """Return the configuration as plain data (the shape of `workflow.yaml`)."""
        return self.model_dump()

    def __eq__(self, other: object) -> bool:
        """Compare the values; where they came from (`source`) does not count."""
        if not isinstance(other, WorkflowConfig):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]  # mappings inside: not hashable


def derived_defaults(name: str, region: str, account: str) -> dict[str, str]:
    """Return the default of each key that derives from ``name``, ``region`` and ``account_id``."""
    return {
        "roles.state_machine": f"arn:aws:iam::{account}:role/{name}-state_machine",
        "roles.sagemaker": f"arn:aws:iam::{account}:role/{name}-sagemaker",
        "s3.bucket": f"{name}-{account}-{region}",
        "codebuild_project": f"{name}-build",
        "lambdas.start_build": f"{name}-start-build",
        "lambdas.request_approval": f"{name}-request-approval",
        "lambdas.evaluate": f"{name}-evaluate",
        "registry.group_name": name,
        "notification.topic_arn": f"arn:aws:sns:{region}:{account}:{name}-notifications",
    }


# The checks of the keys the derived defaults are made of (`loader` derives only from good ones).
DERIVED_FROM: Mapping[str, Pattern] = {"name": NAME, "region": REGION, "account_id": ACCOUNT}


def _spot_waits_long_enough(spot: bool, max_wait: int, max_runtime: int) -> str | None:
    if spot and max_wait < max_runtime:
        return (
            f"is less than training.max_runtime_seconds ({max_runtime}); "
            "managed spot needs max_wait_seconds >= max_runtime_seconds"
        )
    return None


def _gate_reads_the_evaluation(gate_enabled: bool, evaluation_enabled: bool) -> str | None:
    if gate_enabled and not evaluation_enabled:
        return (
            "needs evaluation.enabled = true (the gate reads the evaluation's metrics); set "
            "gate.enabled: false or evaluation.enabled: true"
        )
    return None


def _deployment_outlasts_its_waits(
    strategy: str, linear_step: int, wait: int, termination_wait: int, timeout: int
) -> str | None:
    waits = baking_seconds(strategy, linear_step, wait, termination_wait)
    if timeout <= waits:
        return (
            f"is not more than the deployment's baking periods ({waits} s: wait_seconds per "
            "traffic step plus termination_wait_seconds), which SageMaker requires; raise it or "
            "shorten the waits"
        )
    return None


# Rules between keys: (the key a problem names, the keys the rule reads, the rule). `loader`
# applies them to every rule whose keys are valid, so they are reported with the other problems.
CROSS_CHECKS: tuple[tuple[str, tuple[str, ...], Callable[..., str | None]], ...] = (
    (
        "training.max_wait_seconds",
        ("training.spot", "training.max_wait_seconds", "training.max_runtime_seconds"),
        _spot_waits_long_enough,
    ),
    ("gate.enabled", ("gate.enabled", "evaluation.enabled"), _gate_reads_the_evaluation),
    (
        "endpoint.deployment.max_execution_timeout_seconds",
        tuple(
            f"endpoint.deployment.{key}"
            for key in (
                "strategy",
                "linear_step_percent",
                "wait_seconds",
                "termination_wait_seconds",
                "max_execution_timeout_seconds",
            )
        ),
        _deployment_outlasts_its_waits,
    ),
)
