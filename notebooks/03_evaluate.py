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
# # 3. Evaluate the endpoint
#
# Send the held-out images to the endpoint that notebook 02 deployed (the local `serve` process
# in `local` mode, the SageMaker endpoint in `aws` mode), draw the predicted masks and scores
# beside the ground truth, score them with pycocotools (bbox and segm mAP) and time the
# requests.

# %% tags=["parameters"]
mode = "local"  # "local": the local endpoint of the store; "aws": the SageMaker endpoint
config_file = ""  # workflow.yaml; empty: $MLOPS_CONFIG, else ./workflow.yaml, else defaults
root = ""  # the local store; empty: local.root of the configuration
overrides = {}  # configuration keys: the same as in 02
endpoint_name = ""  # empty: the endpoint of the last run of notebook 02
endpoint_url = ""  # local mode: a serve URL instead of the store's endpoint
test_data = ""  # empty: the held-out split of the last run; else a folder or s3:// prefix
images = 0  # held-out images to send (0: all)
score_threshold = 0.3  # the endpoint drops detections below it (lower it to see more)
samples = 3  # images drawn beside their ground truth
top = 5  # detections drawn per image, best first
latency_requests = 10  # timed requests for the latency figures
capture_requests = 10  # requests sent with invoke_endpoint before reading the data capture
capture_rows = 10  # captured invocations shown (the newest)
stop_endpoint = False  # local mode: stop the endpoint at the end

# %%
from IPython.display import display

from workflow import notebook as nb
from workflow.notebook import viz

nb.setup_logging()
session = nb.start(mode, config_file=config_file, root=root, overrides=overrides)
print(f"mode={session.mode} store={session.root} config={session.config.source}")

# %% [markdown]
# ## The endpoint and the held-out data
# Notebook 02 recorded its run in the store: the endpoint's name, the model and the test split,
# whose images the model never saw in training. In local mode, when that endpoint no longer
# runs (`python -m workflow notebooks` stops it at the end), the run's model is served here
# until the last cell.

# %%
run = {} if (endpoint_name and test_data) else nb.last_run(session)
name = endpoint_name or run.get("endpoint_name") or session.config.endpoint.name
test = nb.load_split(session, test_data or run["test_data"])
endpoint = None
if session.local and not endpoint_url:
    endpoint = nb.local_endpoint(session, name, model_data=nb.model_artifact(run) if run else "")
    endpoint_url = endpoint.url
invoke = nb.endpoint_invoker(session, name, endpoint_url)
nb.Table(
    ["", "value"],
    [
        ["endpoint", endpoint.name if endpoint else name],
        ["run", run.get("execution_arn", "-")],
        ["held-out split", test.location],
        ["images", len(test.images)],
        ["objects", len(test.annotations)],
    ],
)

# %% [markdown]
# ## Predictions beside the ground truth

# %%
results = nb.predict_split(invoke, test, limit=images, score_threshold=score_threshold)
viz.png(viz.prediction_grid(test, results, count=samples, top=top))

# %% [markdown]
# ## Metrics
# COCO mAP over IoU 0.50:0.95 (and at 0.50, 0.75), for boxes and for masks, over the images
# sent. The demo configuration (`make run`) finds the shapes (its scores are in bench/results,
# `demo_learning`); a model trained for one step (the CI parameters of notebook 02) detects
# nothing above the threshold and scores 0.

# %%
metrics = nb.coco_metrics(test, results)
display(nb.metrics_table(metrics))
viz.png(viz.metrics_chart(metrics))

# %% [markdown]
# ## Per-category AP
# The same COCO AP (IoU 0.50:0.95), one category at a time: which shapes the model finds well.

# %%
from mask_r_cnn.metrics import per_category_ap

sent = {r.image["id"] for r in results}
truth = {
    "images": [i for i in test.images if i["id"] in sent],
    "annotations": [{"iscrowd": 0, **a} for a in test.annotations if a["image_id"] in sent],
    "categories": list(test.document["categories"]),
}
per_category = per_category_ap(truth, nb.coco_detections(test, results))
nb.Table(
    ["category", "instances", "bbox AP", "segm AP"],
    [
        [r["name"], r["instances"], "-" if r["bbox_AP"] is None else round(r["bbox_AP"], 3),
         "-" if r["segm_AP"] is None else round(r["segm_AP"], 3)]
        for r in per_category
    ],
)  # fmt: skip

# %% [markdown]
# ## The learning curve
# Held-out (validation split) mAP against training seconds, read from the training job's
# `validation:` metric lines (the lines SageMaker's `MetricDefinitions` scrape). Local mode reads
# the job's log in the store; in aws mode the same lines are in CloudWatch
# (`/aws/sagemaker/TrainingJobs`) and in the job's metrics.

# %%
from mask_r_cnn.metrics import validation_curve

from workflow.local.report import find_key

job = find_key(run.get("output"), "TrainingJobName") if run else None
log_file = session.root / "jobs" / str(job) / "algo-1.log" if job else None
curve = (
    validation_curve(log_file.read_text(encoding="utf-8"))
    if session.local and log_file is not None and log_file.is_file()
    else []
)
if curve:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5, 3))
    axes = figure.subplots()
    trained = [p["train_seconds"] for p in curve]
    axes.plot(trained, [p["segm_mAP"] for p in curve], marker="o", label="segm mAP")
    axes.plot(trained, [p["bbox_mAP"] for p in curve], marker="s", ls="--", label="bbox mAP")
    axes.set(xlabel="training seconds", ylabel="held-out mAP", title=f"training job {job}")
    axes.grid(alpha=0.3)
    axes.legend()
    display(viz.png(figure))
else:
    print("no validation lines found (aws mode, or no validation channel in the training job)")

# %% [markdown]
# ## Latency
# Round trips of `latency_requests` requests (the held-out images in turn), measured here, so
# they include the HTTP and (in aws mode) the network time.

# %%
seconds = nb.time_requests(invoke, test, latency_requests, score_threshold=score_threshold)
display(nb.latency_summary(seconds))
viz.png(viz.latency_histogram(seconds))

# %%
if endpoint is not None and endpoint.server is not None:
    endpoint.close()
    print("stopped the model server this notebook started")
elif stop_endpoint and session.local:
    nb.stop_local_endpoint(session, name)
    print(f"stopped the local endpoint {name}")
elif session.local:
    print(
        f"the endpoint {name} keeps running; stop it with: python -m workflow endpoints stop {name}"
    )

# %% [markdown]
# ## The same call as on AWS
# `invoke_endpoint` with boto3, as code written for SageMaker calls it. In local mode the
# client points at the local AWS API (what `python -m workflow api` serves), which routes the
# request to the local endpoint of that name; in aws mode the same code calls SageMaker.

# %%
import json

from workflow.notebook.data import content_type

# local mode: the store's endpoint only (not a model this notebook served, nor an endpoint_url)
store_endpoint = endpoint is not None and endpoint.name == name
if session.local and (stop_endpoint or not store_endpoint):
    print(f"skipped: no local endpoint {name} of the store runs now")
else:
    with session.aws_api() as api:
        sagemaker_runtime = api.client("sagemaker-runtime")
        first = test.images[0]
        answer = sagemaker_runtime.invoke_endpoint(
            EndpointName=name,
            ContentType=content_type(str(first["file_name"])),
            Accept="application/json",
            Body=test.image_bytes(first),
        )
        prediction = json.loads(answer["Body"].read())
        print(f"{name} answered {answer['ContentType']}: {sorted(prediction)}")

# %% [markdown]
# ## What the endpoint received
# The endpoint configuration's data capture (`endpoint.data_capture.*`) samples requests and
# responses into JSON Lines under its `DestinationS3Uri`, as SageMaker Model Monitor reads them.
# This sends `capture_requests` more images with `invoke_endpoint` and reads the capture files
# back: in local mode from the store, in aws mode from S3 (where SageMaker uploads them within a
# few minutes, so the newest requests may not be there yet). Only a sample is kept: raise
# `endpoint.data_capture.sampling_percentage` to keep more.

# %%
if session.local and (stop_endpoint or not store_endpoint):
    print(f"skipped: no local endpoint {name} of the store runs now")
else:
    with session.aws_api() as api:
        destination = nb.capture_destination(api, name)
        if destination is None:
            print(f"the endpoint {name} captures nothing (endpoint.data_capture.enabled is off)")
        else:
            sagemaker_runtime = api.client("sagemaker-runtime")
            for image in (test.images * capture_requests)[:capture_requests]:
                sagemaker_runtime.invoke_endpoint(
                    EndpointName=name,
                    ContentType=content_type(str(image["file_name"])),
                    Accept="application/json",
                    Body=test.image_bytes(image),
                )
            captures = nb.read_captures(session, destination, name, limit=capture_rows)
            print(f"{len(captures)} captured invocations shown, from {destination}/{name}/")
            display(nb.capture_table(captures))
