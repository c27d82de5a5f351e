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
# Build the state machine with the Step Functions Data Science SDK through the package's
# builder, change it (switch stages off, reconfigure a step, add a step), draw it, validate it,
# and run it: in `local` mode on this machine through the SDK's own `Workflow.create()`,
# `execute()`, `get_output()` and `list_events()` against a local Step Functions API; in `aws`
# mode in your account. Then the progress of every state and the execution history.

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

from workflow import notebook as nb
from workflow.definition import build_workflow
from workflow.notebook import viz

nb.setup_logging()
session = nb.start(mode, config_file=config_file, root=root, overrides=overrides)
print(f"mode={session.mode} store={session.root} config={session.config.source}")

# %% [markdown]
# ## Build the state machine with the SDK
# `build_workflow(config)` returns a `stepfunctions.workflow.Workflow`: every state is a Data
# Science SDK step (`TrainingStep`, `ModelStep`, `TransformStep`, `LambdaStep`, `Choice`, ...).
# Nothing calls AWS while building.

# %%
workflow = build_workflow(session.config)
names = nb.state_names(workflow)
print(f"{workflow.name}: {len(names)} states")
print(", ".join(name for name in names if not name.endswith("Failed")))

# %% [markdown]
# ## Remove or reconfigure steps through the configuration
# Optional stages switch off in the configuration (`approval.enabled`, `evaluation.enabled`,
# `gate.enabled`, `notification.enabled`), and steps are reconfigured the same way, e.g. the
# training instance type. The ASL changes accordingly; nothing else needs editing.

# %%
variant = session.reconfigure(
    {"approval.enabled": False, "training.instance_type": "ml.g5.2xlarge"}
)
nb.compare_workflows(workflow, build_workflow(variant.config))

# %% [markdown]
# ## Add a step with the SDK
# Any SDK state can be chained in. Here a `Pass` state records which model is evaluated;
# `insert_step_after` rewires the graph (`CreateModel -> RecordModel -> next`).


# %%
from stepfunctions.steps import Pass  # imported quietly by build_workflow above


def record_model_step():
    return Pass(
        "RecordModel",
        parameters={"ModelName.$": "$.ModelName", "CommitId.$": "$.CommitId"},
        result_path="$.Record",
    )


edited = nb.insert_step_after(build_workflow(session.config), "CreateModel", record_model_step())
nb.compare_workflows(workflow, edited)

# %% [markdown]
# ## Draw the graph (offline) and validate
# The same drawing as `python -m workflow render --graph FILE.png`. Validation checks the
# structure and every task's `Parameters` against botocore's service models.

# %%
shown = edited if add_step else workflow
graph = nb.graph_png(shown, session.root / "notebooks" / "graphs")
display(viz.png_file(graph))
states = nb.check(shown, source="the notebook's workflow")
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
        runnable = build_workflow(session.config, client=local.client)
        if add_step:
            runnable = nb.insert_step_after(runnable, "CreateModel", record_model_step())
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
    runnable = nb.with_client(shown, client)
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
