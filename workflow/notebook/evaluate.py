"""Evaluate an endpoint from a notebook: send held-out images, score them, time the requests.

- :func:`endpoint_invoker` returns a function that sends one image to the endpoint: the local
  ``serve`` process of the store (local mode) or a SageMaker endpoint (aws mode, through
  ``sagemaker-runtime`` ``InvokeEndpoint``), and measures the round trip.
- :func:`predict_split` sends the images of a COCO split; :func:`coco_metrics` scores the answers
  with pycocotools (bbox and segm mAP, AP50, AP75); :func:`latency_summary` gives p50/p95.

The answers follow the serving contract (docs/architecture.md): ``{"predictions": [{"label",
"category", "score", "box": [x1, y1, x2, y2], "mask": {"size": [h, w], "counts": RLE}}]}``.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workflow.http import HttpError, post_bytes
from workflow.notebook.data import CocoSplit, content_type
from workflow.notebook.session import NotebookError, Session
from workflow.notebook.tables import Table

CUSTOM_ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"
# Answer = (the parsed JSON answer, seconds the request took).
EndpointInvoker = Callable[[bytes, str, "float | None"], "tuple[dict[str, Any], float]"]


@dataclass(frozen=True)
class Prediction:
    """The endpoint's answer for one image of a split."""

    image: Mapping[str, Any]
    predictions: list[dict[str, Any]]
    seconds: float


def local_endpoint_url(session: Session, name: str) -> str:
    """Return the URL of the running local endpoint ``name`` of the session's store.

    Raises:
        NotebookError: When it is not running.
    """
    from workflow.local.sagemaker import LocalSageMaker
    from workflow.local.sagemaker_endpoints import endpoint_records

    def no_images(uri: str) -> Any:
        raise NotebookError(f"image {uri} is not needed to find an endpoint")

    records = endpoint_records(
        LocalSageMaker(store=session.store(), resolve_image=no_images, log_sink=None)
    )
    for record in records:
        if record.get("EndpointName") == name and record.get("Running") and record.get("Url"):
            return str(record["Url"])
    known = [str(r.get("EndpointName")) for r in records if r.get("Running")]
    raise NotebookError(
        f"no local endpoint named {name!r} is running in {session.root} (running: "
        f"{known or 'none'}); run notebooks/02_workflow.py with keep_endpoint = True and the "
        "same root first, or pass endpoint_url."
    )


@dataclass
class LocalEndpoint:
    """A local endpoint for notebook 03: the store's running endpoint, or a model served here.

    Attributes:
        url: The base URL (``POST <url>/invocations``).
        name: The endpoint name, or ``model <uri>`` for a model served by this notebook.
        server: The ``serve`` process this notebook started (None for the store's endpoint).
    """

    url: str
    name: str
    server: Any = None
    folder: Path | None = None

    def close(self) -> None:
        """Stop the ``serve`` process this notebook started and remove its extracted model.

        The store's endpoint is left alone.
        """
        if self.server is not None:
            self.server.stop(5.0)
            self.server = None
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None


def local_endpoint(
    session: Session, name: str, model_data: str = "", timeout: float = 300.0
) -> LocalEndpoint:
    """Return the running local endpoint ``name``, else serve ``model_data`` locally.

    The fallback lets notebook 03 run after ``python -m workflow notebooks`` stopped the
    endpoint: the model of the recorded run is extracted into the store and served by the
    repository's ``serve`` program on 127.0.0.1 until :meth:`LocalEndpoint.close` (or the
    kernel's exit).

    Raises:
        NotebookError: When neither the endpoint runs nor a model is given, or the server does
            not answer ``/ping`` within ``timeout`` seconds.
    """
    try:
        return LocalEndpoint(url=local_endpoint_url(session, name), name=name)
    except NotebookError:
        if not model_data:
            raise
    import atexit
    import secrets

    from workflow.local.runtime import default_container_dir
    from workflow.local.sagemaker import SageMakerSettings, ServeProcess, extract_model

    base = (
        session.root
        / "notebooks"
        / "serve"
        / f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
    )
    try:
        extract_model(session.store(), model_data, base / "model")
    except Exception as exc:
        raise NotebookError(
            f"cannot serve {model_data} locally ({exc}); run notebooks/02_workflow.py again "
            "to train and deploy a model."
        ) from exc
    settings = SageMakerSettings(region=session.config.region, account_id=session.config.account_id)
    server = ServeProcess.start(settings, default_container_dir(), base, base / "serve.log")
    reason = server.wait_ready(timeout)
    if reason is not None:
        server.stop(5.0)
        raise NotebookError(f"the local model server did not start: {reason}")
    endpoint = LocalEndpoint(url=server.url, name=f"model {model_data}", server=server, folder=base)
    atexit.register(endpoint.close)
    return endpoint


def _post(url: str, body: bytes, kind: str, threshold: float | None, timeout: float) -> bytes:
    headers = {"Content-Type": kind, "Accept": "application/json"}
    if threshold is not None:
        headers[CUSTOM_ATTRIBUTES] = f"score_threshold={threshold}"
    try:
        return post_bytes(url.rstrip("/") + "/invocations", body, headers, timeout)
    except HttpError as exc:
        if exc.status is not None:
            raise NotebookError(
                f"the endpoint {url} answered HTTP {exc.status}: {exc.detail}; check the image "
                "and the endpoint's log (python -m workflow endpoints list)."
            ) from exc
        raise NotebookError(
            f"the endpoint {url} cannot be reached ({exc.detail}); check that it still runs "
            "(python -m workflow endpoints list)."
        ) from exc


def endpoint_invoker(
    session: Session, endpoint_name: str = "", endpoint_url: str = "", timeout: float = 120.0
) -> EndpointInvoker:
    """Return ``invoke(body, content_type, score_threshold) -> (answer, seconds)``.

    Args:
        session: The notebook session.
        endpoint_name: The endpoint (default: ``endpoint.name`` of the configuration).
        endpoint_url: Local mode only: a server URL to use instead of the store's endpoint.
        timeout: Seconds one request may take.

    Raises:
        NotebookError: In local mode, when no such endpoint runs.
    """
    name = endpoint_name or session.config.endpoint.name
    if session.local:
        url = endpoint_url or local_endpoint_url(session, name)

        def invoke_local(
            body: bytes, kind: str, threshold: float | None
        ) -> tuple[dict[str, Any], float]:
            started = time.perf_counter()
            raw = _post(url, body, kind, threshold, timeout)
            return json.loads(raw), time.perf_counter() - started

        return invoke_local

    import boto3

    runtime = boto3.client("sagemaker-runtime", region_name=session.config.region)

    def invoke_aws(body: bytes, kind: str, threshold: float | None) -> tuple[dict[str, Any], float]:
        request: dict[str, Any] = {
            "EndpointName": name,
            "Body": body,
            "ContentType": kind,
            "Accept": "application/json",
        }
        if threshold is not None:
            request["CustomAttributes"] = f"score_threshold={threshold}"
        started = time.perf_counter()
        response = runtime.invoke_endpoint(**request)
        raw = response["Body"].read()
        return json.loads(raw), time.perf_counter() - started

    return invoke_aws


def predict_split(
    invoke: EndpointInvoker,
    split: CocoSplit,
    limit: int = 0,
    score_threshold: float | None = None,
    warmup: int = 1,
) -> list[Prediction]:
    """Send the images of a split (the first ``limit``; 0: all) and collect the answers.

    Args:
        invoke: From :func:`endpoint_invoker`.
        split: The held-out split.
        limit: How many images to send (0: all).
        score_threshold: Sent as ``score_threshold`` (None: the model's default).
        warmup: Requests sent first and not timed (the first one loads lazily built parts).

    Raises:
        NotebookError: When the split has no images or an answer has no ``predictions``.
    """
    images = split.images[:limit] if limit > 0 else split.images
    if not images:
        raise NotebookError(
            f"the split {split.location} has no images to send; evaluate on a split with "
            "held-out images (the test split)."
        )
    for image in images[:warmup]:
        invoke(split.image_bytes(image), content_type(str(image["file_name"])), score_threshold)
    results = []
    for image in images:
        name = str(image["file_name"])
        answer, seconds = invoke(split.image_bytes(image), content_type(name), score_threshold)
        if not isinstance(answer, Mapping) or not isinstance(answer.get("predictions"), list):
            raise NotebookError(
                f"the answer for {name} has no 'predictions' list ({str(answer)[:200]}); the "
                "endpoint must run this project's serving container."
            )
        results.append(Prediction(image=image, predictions=answer["predictions"], seconds=seconds))
    return results


def coco_detections(split: CocoSplit, results: Sequence[Prediction]) -> list[dict[str, Any]]:
    """Convert endpoint answers to COCO results (category ids of the split, xywh boxes)."""
    by_name = {name: cid for cid, name in split.category_names.items()}
    detections = []
    for result in results:
        for prediction in result.predictions:
            category = by_name.get(str(prediction.get("category")))
            if category is None and prediction.get("label") in split.category_names:
                category = int(prediction["label"])
            if category is None:
                raise NotebookError(
                    f"a prediction for {result.image['file_name']} has label "
                    f"{prediction.get('label')!r} / category {prediction.get('category')!r}, "
                    f"which the split does not define ({sorted(by_name)}); evaluate on data with "
                    "the categories the model was trained on."
                )
            x1, y1, x2, y2 = (float(v) for v in prediction["box"])
            mask = prediction["mask"]
            detections.append(
                {
                    "image_id": result.image["id"],
                    "category_id": category,
                    "score": float(prediction["score"]),
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "segmentation": {"size": list(mask["size"]), "counts": mask["counts"]},
                }
            )
    return detections


def coco_metrics(split: CocoSplit, results: Sequence[Prediction]) -> dict[str, float]:
    """Return bbox and segm mAP, AP50 and AP75 of the answers over the images sent.

    Only the images in ``results`` count as ground truth; a metric with nothing to score is 0.
    """
    from mask_r_cnn.metrics import coco_map

    sent = {r.image["id"] for r in results}
    ground_truth = {
        "images": [i for i in split.images if i["id"] in sent],
        "annotations": [{"iscrowd": 0, **a} for a in split.annotations if a["image_id"] in sent],
        "categories": list(split.document["categories"]),
    }
    scores: dict[str, float] = coco_map(ground_truth, coco_detections(split, results))
    return scores


def metrics_table(metrics: Mapping[str, float], title: str = "COCO metrics") -> Table:
    """Return the metrics as a table with one row per IoU type (bbox, segm)."""
    rows = []
    for kind in ("bbox", "segm"):
        rows.append([kind, *(metrics.get(f"{kind}_{name}") for name in ("mAP", "AP50", "AP75"))])
    return Table(["IoU type", "mAP@[.5:.95]", "AP50", "AP75"], rows, title=title)


def percentile(values: Sequence[float], q: float) -> float:
    """Return the ``q`` percentile (0-100) with linear interpolation (numpy's default)."""
    if not values:
        raise ValueError("percentile of no values; send at least one request first")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def latency_summary(seconds: Sequence[float]) -> Table:
    """Return request count, mean, p50, p95 and max latency in milliseconds."""
    values = [s * 1000.0 for s in seconds]
    row = [
        len(values),
        round(sum(values) / len(values), 1),
        round(percentile(values, 50), 1),
        round(percentile(values, 95), 1),
        round(max(values), 1),
    ]
    return Table(
        ["requests", "mean (ms)", "p50 (ms)", "p95 (ms)", "max (ms)"], [row], title="latency"
    )


def time_requests(
    invoke: EndpointInvoker,
    split: CocoSplit,
    count: int,
    score_threshold: float | None = None,
) -> list[float]:
    """Send ``count`` requests (the split's images in turn) and return their durations (s).

    Raises:
        NotebookError: When ``count`` < 1 or the split has no images.
    """
    if count < 1 or not split.images:
        raise NotebookError(
            f"cannot time {count} requests over {len(split.images)} images of {split.location}; "
            "send at least one request to a split with images."
        )
    seconds = []
    for number in range(count):
        image = split.images[number % len(split.images)]
        body = split.image_bytes(image)
        _, took = invoke(body, content_type(str(image["file_name"])), score_threshold)
        seconds.append(took)
    return seconds


def stop_local_endpoint(session: Session, name: str = "") -> bool:
    """Stop a local endpoint of the session's store (as ``python -m workflow endpoints stop``).

    Returns:
        ``False`` when no such endpoint is recorded.
    """
    from workflow.local.sagemaker import LocalSageMaker
    from workflow.local.sagemaker_endpoints import stop_endpoint

    def no_images(uri: str) -> Any:
        raise NotebookError(f"image {uri} is not needed to stop an endpoint")

    sm = LocalSageMaker(store=session.store(), resolve_image=no_images, log_sink=None)
    return bool(stop_endpoint(sm, name or session.config.endpoint.name))
