"""The kit's step factories: the stages a data scientist chains with the SDK's ``Chain([...])``.

::

    from stepfunctions.steps import Chain
    from workflow.definition import WorkflowSteps

    kit = WorkflowSteps(config)
    chain = Chain([kit.image(), kit.training(), kit.model(), kit.evaluation(),
                   kit.endpoint_config(), kit.endpoint(), kit.success()])
    workflow = kit.workflow(chain)

Each factory returns Data Science SDK states (a ``TrainingStep``, a ``ModelStep``, an
``EndpointConfigStep``, ...) with their Retry and Catch fields, or a chainable group of them
(`Stage`). The optional stages (hyperparameters from SSM, warm start, quality gate, model
registry, approval, notifications) are added to the chain in the same way, and the configuration
says which ones the machine has: `chain` is the whole chain of a configuration, the one
``build_workflow`` renders and deploys, and `workflow` refuses a chain that lacks a stage the
configuration switches on or has one it switches off. Any other SDK state may be chained in
between.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING, Any

from workflow.config import WorkflowConfig
from workflow.definition.deployment import DeploymentStages
from workflow.definition.endpoint import EndpointStages
from workflow.definition.names import (
    APPROVAL_GRACE_SECONDS,
    BUILD_TIMEOUT_SECONDS,
    ENDPOINT_DEPLOY_BUDGET_SECONDS,
    METRICS_TIMEOUT_SECONDS,
    StepId,
)
from workflow.definition.registry import RegistryStages
from workflow.definition.sdk import (
    load_sdk,
    offline_sagemaker_session,
    partition_of,
    quiet_sdk_import,
)
from workflow.definition.training import TrainingStages
from workflow.errors import DefinitionError

if TYPE_CHECKING:
    from stepfunctions.workflow import Workflow

# The kit's own state names; a chain may add states of any other name.
KIT_STATE_NAMES = frozenset([s.value for s in StepId] + [s.failed() for s in StepId])

# Each factory of `WorkflowSteps` and the first state it makes, in the order they run.
FACTORY_ENTRIES = {
    "image": StepId.CHECK_IMAGE,
    "hyperparameters": StepId.READ_HYPERPARAMETERS,
    "warm_start": StepId.FIND_WARM_START,
    "training": StepId.TRAIN,
    "model": StepId.CREATE_MODEL,
    "evaluation": StepId.BATCH_TRANSFORM,
    "gate": StepId.QUALITY_GATE,
    "registration": StepId.ENSURE_MODEL_PACKAGE_GROUP,
    "approval": StepId.REQUEST_APPROVAL,
    "approved_model": StepId.APPROVE_MODEL_PACKAGE,
    "endpoint_config": StepId.CREATE_ENDPOINT_CONFIG,
    "endpoint": StepId.FIND_ENDPOINT,
    "success": StepId.SUCCEEDED,
}


class _Builder(TrainingStages, DeploymentStages, EndpointStages, RegistryStages):
    """The stages of one configuration (one instance per state machine)."""

    def __init__(self, config: WorkflowConfig, sdk: Any) -> None:
        super().__init__(config, sdk)
        self.notify_failure = self.build_failure_tail()

    def approval(self) -> Any:
        """RequestApproval; with the registry a rejection also rejects the package."""
        registry = self.config.registry.enabled
        return self.approval_step(self.reject_package_step if registry else None)


def switched_on(config: WorkflowConfig) -> list[str]:
    """The factories (`WorkflowSteps` methods) this configuration switches on, in order."""
    optional = {
        "hyperparameters": config.training.hyperparameters_ssm_parameter is not None,
        "warm_start": config.warm_starts,
        "evaluation": config.evaluation.enabled,
        "gate": config.evaluation.enabled and config.gate.enabled,  # it reads the metrics
        "registration": config.registry.enabled,
        "approval": config.approval.enabled,
        "approved_model": config.registry.enabled,
    }
    return [name for name in FACTORY_ENTRIES if optional.get(name, True)]


def timeout_seconds(config: WorkflowConfig) -> int:
    """The execution's time limit: every stage's own limit plus the endpoint's deployment."""
    training = config.training
    total = BUILD_TIMEOUT_SECONDS + (
        training.max_wait_seconds if training.spot else training.max_runtime_seconds
    )
    if config.evaluation.enabled:
        total += 2 * 60 * 60 + METRICS_TIMEOUT_SECONDS
    if config.approval.enabled:
        total += config.approval.link_ttl_seconds + APPROVAL_GRACE_SECONDS
    # The blue/green update may take MaximumExecutionTimeoutInSeconds beyond provisioning.
    return (
        total
        + ENDPOINT_DEPLOY_BUDGET_SECONDS
        + config.endpoint.deployment.max_execution_timeout_seconds
    )


class WorkflowSteps:
    """The step factories of one configuration; nothing calls AWS while building.

    Each factory may be called once per instance (a state machine has each state once).
    """

    def __init__(self, config: WorkflowConfig) -> None:
        """Prepare the factories of ``config`` (imports the SDK offline, once per process)."""
        self.config = config
        self._sdk = load_sdk()
        with self._building():
            self._builder = _Builder(config, self._sdk)

    @contextlib.contextmanager
    def _building(self) -> Iterator[None]:
        # The SDK writes integration ARNs at construction: the configured region's partition.
        with quiet_sdk_import(), partition_of(self.config.region):
            yield

    def _make(self, factory: Callable[[], Any]) -> Any:
        with self._building():
            return factory()

    # -- the stages, in the order they run ---------------------------------------------------

    def image(self) -> Any:
        """CheckImage: the execution's ImageUri, or the build Lambda step and its wait loop."""
        return self._make(self._builder.image_stage)

    def hyperparameters(self) -> Any:
        """ReadHyperParameters -> MergeHyperParameters (training.hyperparameters_ssm_parameter)."""
        return self._make(self._builder.hyperparameter_stage)

    def warm_start(self) -> Any:
        """FindWarmStart ...: the last approved model as the ``pretrained`` channel, if any."""
        return self._make(self._builder.warm_start_stage)

    def training(self) -> Any:
        """Train: the SDK's ``TrainingStep`` (createTrainingJob.sync)."""
        return self._make(self._builder.training_step)

    def model(self) -> Any:
        """CreateModel: the SDK's ``ModelStep``."""
        return self._make(self._builder.model_step)

    def evaluation(self) -> Any:
        """BatchTransform (the SDK's ``TransformStep``) -> ComputeMetrics (a ``LambdaStep``)."""
        return self._make(self._builder.evaluation_stage)

    def gate(self) -> Any:
        """QualityGate: on only when the metric reaches the execution's ``GateThreshold``."""
        return self._make(self._builder.gate)

    def registration(self) -> Any:
        """EnsureModelPackageGroup -> RegisterModel (the model registry, pending approval)."""
        return self._make(self._builder.register_stage)

    def approval(self) -> Any:
        """RequestApproval: a ``LambdaStep`` that waits for the approver's answer."""
        return self._make(self._builder.approval)

    def approved_model(self) -> Any:
        """ApproveModelPackage -> CreateModelFromPackage (with the registry)."""
        return self._make(self._builder.approved_model_stage)

    def endpoint_config(self) -> Any:
        """CreateEndpointConfig: the SDK's ``EndpointConfigStep``."""
        return self._make(self._builder.endpoint_config_step)

    def endpoint(self) -> Any:
        """FindEndpoint -> the SDK's ``EndpointStep`` (create, or update blue/green) -> wait."""
        return self._make(self._builder.endpoint_stage)

    def success(self) -> Any:
        """NotifySuccess (with notifications) -> Succeeded."""
        return self._make(self._builder.success_stage)

    # -- whole machines ------------------------------------------------------------------------

    def chain(self) -> Any:
        """The SDK ``Chain`` of every stage this configuration switches on, in order."""
        return self._sdk.steps.Chain([getattr(self, name)() for name in switched_on(self.config)])

    def workflow(self, chain: Any, client: Any = None) -> Workflow:
        """The SDK ``Workflow`` of ``chain``, after checking it against the configuration.

        Args:
            chain: the first state of the machine, usually ``Chain([...])`` of the factories.
            client: a boto3 Step Functions client for ``Workflow.create()/execute()``. Default:
                an offline client that refuses to send requests.

        Raises:
            DefinitionError: the chain lacks a kit state the configuration switches on, has one
                it switches off, or a state name is used twice.
        """
        workflow = self.unchecked_workflow(chain, client)
        reference = WorkflowSteps(self.config)
        expected = KIT_STATE_NAMES & _state_names(reference.unchecked_workflow(reference.chain()))
        present = KIT_STATE_NAMES & _state_names(workflow)
        if missing := expected - present:
            raise DefinitionError(
                f"the chain lacks {_listed(missing)}, which this configuration switches on; add "
                "those factories (WorkflowSteps.chain() has them all, in order) or switch their "
                "stages off in the configuration"
            )
        if extra := present - expected:
            raise DefinitionError(
                f"the chain has {_listed(extra)}, which this configuration switches off; leave "
                "those factories out or switch their stages on in the configuration"
            )
        return workflow

    def unchecked_workflow(self, chain: Any, client: Any = None) -> Workflow:
        """The SDK ``Workflow`` of ``chain`` as it is (`workflow` without the check)."""
        config = self.config
        with self._building():
            if client is None:
                client = offline_sagemaker_session(self._sdk, config).boto_session.client(
                    "stepfunctions"
                )
            try:
                return self._sdk.workflow_cls(
                    name=config.name,
                    definition=chain,
                    role=config.roles.state_machine,
                    timeout_seconds=timeout_seconds(config),
                    comment=(
                        f"{config.name}: build the image, train, evaluate, approve and deploy "
                        "Mask R-CNN (generated by 'python -m workflow render'; do not edit by "
                        "hand)"
                    ),
                    client=client,
                )
            except ValueError as exc:  # the SDK's graph check: a state name used twice
                raise DefinitionError(f"the chain is not a valid state machine: {exc}") from None


def _state_names(workflow: Any) -> set[str]:
    return set(workflow.definition.states)


def _listed(names: AbstractSet[str]) -> str:
    """The factories whose first states are among ``names``, else the names themselves."""
    factories = [f"{name}()" for name, step in FACTORY_ENTRIES.items() if step.value in names]
    if factories:
        return "the states of " + ", ".join(factories)
    order = {name: i for i, name in enumerate(s.value for s in StepId)}
    return ", ".join(sorted(names, key=lambda n: (order.get(n.removesuffix("Failed"), 0), n)))
