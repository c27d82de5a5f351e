"""The step factories: a data scientist's ``Chain([...])`` gives the document the kit deploys."""

from __future__ import annotations

import json
import re

import pytest
from helpers.definition_variants import MINIMAL, VARIANTS

from workflow.definition import WorkflowSteps, render_definition
from workflow.errors import DefinitionError


def document(workflow) -> dict:
    """The ASL of an SDK workflow (dicts compare regardless of the order of their states)."""
    return json.loads(workflow.definition.to_json())


# The factories each golden variant's configuration switches on, as a notebook chains them.
AUTHORED = {
    "full": (
        "image", "warm_start", "training", "model", "evaluation", "gate", "registration",
        "approval", "approved_model", "endpoint_config", "endpoint", "success",
    ),
    "minimal": ("image", "training", "model", "endpoint_config", "endpoint", "success"),
    "ssm_spot": (
        "image", "hyperparameters", "warm_start", "training", "model", "evaluation", "gate",
        "registration", "approved_model", "endpoint_config", "endpoint", "success",
    ),
}  # fmt: skip


def authored_chain(kit: WorkflowSteps, variant: str):
    from stepfunctions.steps import Chain

    return Chain([getattr(kit, factory)() for factory in AUTHORED[variant]])


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_an_authored_chain_is_the_document_the_kit_deploys(variant: str, make_config) -> None:
    """Chain([...]) of the factories renders the golden document of its configuration."""
    config = make_config(VARIANTS[variant])
    kit = WorkflowSteps(config)
    assert document(kit.workflow(authored_chain(kit, variant))) == render_definition(config)


def test_the_core_chain_of_the_issue(make_config) -> None:
    """Build Lambda step, TrainingStep, ModelStep, evaluation, EndpointConfigStep, EndpointStep."""
    from stepfunctions.steps import (
        Chain,
        EndpointConfigStep,
        LambdaStep,
        ModelStep,
        TrainingStep,
        TransformStep,
    )

    config = make_config({**MINIMAL, "evaluation.enabled": True})
    kit = WorkflowSteps(config)
    image, training, model, evaluation = kit.image(), kit.training(), kit.model(), kit.evaluation()
    endpoint_config, endpoint = kit.endpoint_config(), kit.endpoint()
    chain = Chain([image, training, model, evaluation, endpoint_config, endpoint, kit.success()])
    states = document(kit.workflow(chain))["States"]

    assert isinstance(training, TrainingStep) and isinstance(model, ModelStep)
    assert isinstance(endpoint_config, EndpointConfigStep)
    assert [type(s) for s in evaluation] == [TransformStep, LambdaStep]
    # The endpoint stage: FindEndpoint, then the SDK's EndpointStep (create or update).
    assert endpoint.state_id == "FindEndpoint"
    assert states["CreateEndpoint"]["Resource"].endswith(":states:::sagemaker:createEndpoint")
    assert states["UpdateEndpoint"]["Resource"].endswith(":states:::sagemaker:updateEndpoint")
    # Both ways out of the image stage lead to Train; the metrics to the endpoint configuration.
    assert states["UseGivenImage"]["Next"] == states["UseBuiltImage"]["Next"] == "Train"
    assert states["BuildImage"]["Resource"].endswith(":states:::lambda:invoke")
    assert states["Train"]["Next"] == "CreateModel"
    assert states["CreateModel"]["Next"] == "BatchTransform"
    assert states["ComputeMetrics"]["Next"] == "CreateEndpointConfig"
    assert states["CreateEndpointConfig"]["Next"] == "FindEndpoint"
    # The endpoint stage goes on through CheckEndpoint's first rule (in service here).
    first_rule = states["CheckEndpoint"]["Choices"][0]
    assert first_rule["Next"] == "Succeeded"
    assert first_rule["And"][0] == {
        "Variable": "$.EndpointStatus.EndpointStatus",
        "StringEquals": "InService",
    }


def test_a_state_of_ones_own_is_chained_in_between(make_config) -> None:
    from stepfunctions.steps import Chain, Pass

    config = make_config(MINIMAL)
    kit = WorkflowSteps(config)
    record = Pass("RecordModel", parameters={"ModelName.$": "$.ModelName"}, result_path="$.Record")
    chain = Chain(
        [
            kit.image(),
            kit.training(),
            kit.model(),
            record,
            kit.endpoint_config(),
            kit.endpoint(),
            kit.success(),
        ]
    )
    states = document(kit.workflow(chain))["States"]
    assert states["CreateModel"]["Next"] == "RecordModel"
    assert states["RecordModel"]["Next"] == "CreateEndpointConfig"
    expected = render_definition(config)["States"]
    assert set(states) - set(expected) == {"RecordModel"}


def test_the_gate_goes_on_only_through_its_rule(make_config) -> None:
    """QualityGate's only rule leads on; its default records QualityGateNotMet."""
    kit = WorkflowSteps(make_config())
    states = document(kit.workflow(authored_chain(kit, "full")))["States"]
    gate = states["QualityGate"]
    assert len(gate["Choices"]) == 1
    assert gate["Choices"][0]["Next"] == "EnsureModelPackageGroup"
    assert gate["Default"] == "QualityGateNotMet"


def test_a_chain_without_a_stage_the_configuration_has_is_refused(make_config) -> None:
    from stepfunctions.steps import Chain

    kit = WorkflowSteps(make_config())  # the full configuration: evaluation, gate, registry, ...
    chain = Chain([kit.image(), kit.training(), kit.model(), kit.endpoint_config(), kit.endpoint()])
    with pytest.raises(
        DefinitionError,
        match=re.escape(
            "the chain lacks the states of warm_start(), evaluation(), gate(), registration(), "
            "approval(), approved_model(), success(), which this configuration switches on"
        ),
    ):
        kit.workflow(chain)


def test_a_stage_the_configuration_switches_off_is_refused(make_config) -> None:
    from stepfunctions.steps import Chain

    full = WorkflowSteps(make_config())
    kit = WorkflowSteps(make_config(MINIMAL))
    chain = Chain(
        [
            kit.image(),
            kit.training(),
            kit.model(),
            full.registration(),
            kit.endpoint_config(),
            kit.endpoint(),
            kit.success(),
        ]
    )
    with pytest.raises(
        DefinitionError, match=re.escape("the chain has the states of registration(), which this")
    ):
        kit.workflow(chain)


@pytest.mark.parametrize(
    ("factory", "key"),
    [
        ("hyperparameters", "training.hyperparameters_ssm_parameter"),
        ("warm_start", "training.warm_start: last-approved and registry.enabled"),
    ],
)
def test_a_factory_needs_its_settings(factory: str, key: str, make_config) -> None:
    kit = WorkflowSteps(make_config(MINIMAL))
    with pytest.raises(DefinitionError, match=f"switched off in this configuration \\({key}\\)"):
        getattr(kit, factory)()


def test_a_state_name_used_twice_is_a_clear_error(make_config) -> None:
    from stepfunctions.steps import Chain, Pass

    kit = WorkflowSteps(make_config(MINIMAL))
    chain = Chain([kit.image(), kit.training(), Pass("Train"), kit.model(), kit.endpoint_config()])
    with pytest.raises(DefinitionError, match=r"not a valid state machine: .*'Train'"):
        kit.workflow(chain)
