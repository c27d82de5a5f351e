# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 2. Author and run the workflow
#
# Author the state machine as a chain of Step Functions Data Science SDK steps, from the kit's
# step factories: first the core (build, train, model, evaluate, endpoint), then the optional
# stages and a step of your own. Draw it, validate it, and run it: in `local` mode on this
# machine through the SDK's own `Workflow.create()`, `execute()`, `get_output()` and
# `list_events()` against a local Step Functions API; in `aws` mode in your account. Then the
# progress of every state and the execution history.

# %% tags=["parameters"]
mode = "local"  # "local": everything on this machine; "aws": the configured AWS account
config_file = ""  # workflow.yaml; empty: $MLOPS_CONFIG, else ./workflow.yaml, else defaults
root = ""  # the local store; empty: local.root of the configuration
# Configuration keys; the defaults train the demo model of workflow.yaml (about 3 minutes on
# 2 cores) and gate it at local.gate_threshold. CI passes a tiny set with `--set`.
overrides = {"local.poll_seconds": 0}
approve = "auto"  # local approval: "auto" (when the gate metric passes) or "manual"
keep_endpoint = True  # leave the local endpoint running for notebook 03
add_step = True  # run the workflow with the extra step added below
commit = ""  # the commit to build; empty: git rev-parse HEAD
image_uri = ""  # an existing image instead of building one
timeout = 3600  # aws mode: seconds to follow the execution

# %%
from IPython.display import display
from stepfunctions.steps import Chain, Pass

from workflow import notebook as nb
from workflow.definition import WorkflowSteps, build_workflow
from workflow.notebook import viz

nb.setup_logging()
session = nb.start(mode, config_file=config_file, root=root, overrides=overrides)
print(f"mode={session.mode} store={session.root} config={session.config.source}")

# %% [markdown]
# ## The core chain
# `WorkflowSteps(config)` holds the kit's step factories. Each returns Data Science SDK steps
# with their retries and failure handling: the build `LambdaStep` and its wait loop, a
# `TrainingStep`, a `ModelStep`, the evaluation (`TransformStep`, then a `LambdaStep` that
# scores it), an `EndpointConfigStep`, and the `EndpointStep` that creates or updates the
# endpoint. `Chain([...])` links them in order. The configuration gives the settings (instance
# types, names, roles) and says which optional stages the machine has; here they are all
# switched off. Nothing calls AWS while building.

# %%
core_session = session.reconfigure(
    {
        "gate.enabled": False,
        "registry.enabled": False,
        "approval.enabled": False,
        "notification.enabled": False,
        "training.hyperparameters_ssm_parameter": None,
    }
)
core_kit = WorkflowSteps(core_session.config)
core = core_kit.workflow(
    Chain(
        [
            core_kit.image(),  # CheckImage: the given image, or the build Lambda step and its wait
            core_kit.training(),  # TrainingStep
            core_kit.model(),  # ModelStep
            core_kit.evaluation(),  # TransformStep -> the metrics LambdaStep
            core_kit.endpoint_config(),  # EndpointConfigStep
            core_kit.endpoint(),  # EndpointStep: create, or update blue/green; then wait
            core_kit.success(),
        ]
    )
)
names = nb.state_names(core)
print(f"core: {len(names)} states")
print(", ".join(name for name in names if not name.endswith("Failed")))

# %% [markdown]
# ## Add the optional stages and a step of your own
# The same chain with what this configuration switches on: the hyperparameters from SSM, the
# warm start from the last approved model, the quality gate, the model registry, the approval
# and the notifications. Any SDK state can be chained in between; here a `Pass` state records
# which model is evaluated. `kit.workflow(chain)` refuses a chain that lacks a stage the
# configuration switches on, or has one it switches off.


# %%
def record_model_step():
    return Pass(
        "RecordModel",
        parameters={"ModelName.$": "$.ModelName", "CommitId.$": "$.CommitId"},
        result_path="$.Record",
    )


def when(switched_on, factory):
    """The stage of `factory` when the configuration switches it on."""
    return [factory()] if switched_on else []


def authored_chain(kit, own_step):
    config = kit.config
    return Chain(
        [
            kit.image(),
            *when(config.training.hyperparameters_ssm_parameter, kit.hyperparameters),
            *when(config.warm_starts, kit.warm_start),
            kit.training(),
            kit.model(),
            *([record_model_step()] if own_step else []),
            *when(config.evaluation.enabled, kit.evaluation),
            *when(config.evaluation.enabled and config.gate.enabled, kit.gate),
            *when(config.registry.enabled, kit.registration),
            *when(config.approval.enabled, kit.approval),
            *when(config.registry.enabled, kit.approved_model),
            kit.endpoint_config(),
            kit.endpoint(),
            kit.success(),
        ]
    )


kit = WorkflowSteps(session.config)
workflow = kit.workflow(authored_chain(kit, add_step))
nb.compare_workflows(core, workflow)

# %% [markdown]
# The kit renders and deploys the same chain (`python -m workflow render`, `deploy`): against
# `build_workflow(config)` only the step added here differs.

# %%
nb.compare_workflows(build_workflow(session.config), workflow)

# %% [markdown]
# ## Reconfigure a step
# Settings come from the configuration, e.g. the training instance type; the ASL changes
# accordingly and nothing else needs editing.

# %%
variant = session.reconfigure({"training.instance_type": "ml.g5.2xlarge"})
nb.compare_workflows(build_workflow(session.config), build_workflow(variant.config))

# %% [markdown]
# ## Draw the graph (offline) and validate
# The same drawing as `python -m workflow render --graph FILE.png`. Validation checks the
# structure and every task's `Parameters` against botocore's service models.

# %%
graph = nb.graph_png(workflow, session.root / "notebooks" / "graphs")
display(viz.png_file(graph))
states = nb.check(workflow, source="the notebook's workflow")
print(f"valid: {len(states)} states")

# %% [markdown]
# ## Run it
# `local`: the local runtime (training and serving processes, Lambdas, approvals) behind a Step
# Functions API on 127.0.0.1; only the SDK's client points there. `aws`: the state machine is
# created or updated in the account and executed there (the data must be in
# `s3://<bucket>/<prefix>/data/`).

# %%
if session.local:
    with nb.LocalStepFunctions(session, approve=approve, keep_endpoint=keep_endpoint) as local:
        runnable = nb.with_client(workflow, local.client)
        state_machine_arn = runnable.create()
        inputs = local.execution_input(commit=commit, image_uri=image_uri)
        execution = runnable.execute(name=inputs["JobName"], inputs=inputs)
        output = execution.get_output(wait=True)
        events = execution.list_events(max_items=100000)
        status = execution.describe()["status"]
        endpoint_url = local.endpoint_url()
else:
    import boto3

    client = boto3.client("stepfunctions", region_name=session.config.region)
    runnable = nb.with_client(workflow, client)
    deployed = nb.deploy(runnable)
    print(f"{deployed.action}: {deployed.arn}")
    state_machine_arn = deployed.arn
    inputs = nb.aws_execution_input(session, commit=commit, image_uri=image_uri)
    execution = runnable.execute(name=inputs["JobName"], inputs=inputs)
    nb.follow(execution, poll_seconds=30, timeout=timeout)
    output = execution.get_output(wait=True)
    events = execution.list_events(max_items=100000)
    status = execution.describe()["status"]
    endpoint_url = None
print(f"{status}: {execution.execution_arn}")

# %% [markdown]
# ## Progress: states and durations

# %%
display(nb.state_rows(events))
viz.png(viz.timeline(nb.state_visits(events)))

# %% [markdown]
# ## Execution history

# %%
nb.history_rows(events)

# %% [markdown]
# ## Outcome
# The run is recorded in the store, so notebook 03 finds its endpoint and held-out data.

# %%
display(nb.run_summary(status, output))
record = nb.remember_run(session, execution.execution_arn, status, inputs, output, endpoint_url)
print(f"recorded: {record}")
nb.require_success(status, events)
