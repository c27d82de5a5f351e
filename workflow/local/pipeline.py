"""``run --local``: the whole state machine on this machine, from data set to prediction PNG.

Phases of :func:`run_pipeline`:

1. Data: the synthetic data set (``local.dataset``) is generated once into the store under
   ``s3://<bucket>/<prefix>/data/synthetic-<hash>/{train,validation,test}/``; the hash covers the
   settings and the generator's code, so later runs reuse it. The test split follows the
   layout of docs/architecture.md (``annotations.json`` + ``images/``).
2. Input: ``workflow.naming.execution_input`` with the local hyperparameters, poll interval and
   gate threshold (``local.gate_threshold``); the data URIs point at the synthetic data set.
3. Run: the ASL document ``render`` prints (``workflow.definition.render_json``) on the local
   engine, with live progress on stderr.
4. Results: the history and the execution record go to ``<root>/runs/<execution>/``; on success a
   held-out image is sent to the live endpoint and the prediction is drawn into ``prediction.png``.
   The endpoint is stopped at the end unless ``keep_endpoint``.

A failed run is recorded as the last failed run; :func:`run_pipeline` with ``redrive=True``
resumes it from the state that failed (see :func:`redrive_record`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workflow.config import WorkflowConfig
from workflow.errors import WorkflowError
from workflow.http import post_bytes
from workflow.local.orphans import RunSnapshots, finish_snapshot, reap_jobs, recover_run
from workflow.local.redrive import cut_at_failure, release_redriven_job
from workflow.local.report import (
    Progress,
    best_label_per_object,
    draw_prediction,
    print_summary,
    save_json,
    score_shapes,
    summarize,
)
from workflow.local.runtime import REPO_ROOT, LocalRuntime
from workflow.local.store import LocalStore, publish_dir, temporary_sibling, write_json_atomic

logger = logging.getLogger(__name__)

DATASET_MARKER = "dataset.json"
LAST_FAILED = "last-failed.json"
SYNTHETIC_MODULE = REPO_ROOT / "container" / "mask_r_cnn" / "synthetic.py"


class LocalRunError(WorkflowError):
    """The local run cannot start (no data set, nothing to redrive, ...)."""


@dataclass(frozen=True)
class RunResult:
    """What :func:`run_pipeline` returns."""

    status: str
    summary: dict[str, Any]

    @property
    def exit_code(self) -> int:
        """0 when the execution succeeded, else 1."""
        return 0 if self.status == "SUCCEEDED" else 1


# ---------------------------------------------------------------------------------------------
# 1. the data set
# ---------------------------------------------------------------------------------------------


def dataset_prefix(config: WorkflowConfig) -> str:
    """Return the content-addressed store prefix of the configured synthetic data set."""
    # every key of local.dataset, so a new one changes the prefix without being listed here
    settings = config.local.dataset.model_dump(mode="json")
    digest = hashlib.sha256()
    digest.update(json.dumps(settings, sort_keys=True).encode())
    if SYNTHETIC_MODULE.is_file():
        digest.update(SYNTHETIC_MODULE.read_bytes())
    return config.s3.uri("data", f"synthetic-{digest.hexdigest()[:12]}")


def synthetic_options(config: WorkflowConfig) -> list[str]:
    """``python -m mask_r_cnn.synthetic``'s options for ``local.dataset``, one per key.

    Each key is the option of its name (``train_shapes: [2, 5]`` -> ``--train-shapes 2 5``); a
    null key is left out, so the generator's own default applies.
    """
    options: list[str] = []
    for key, value in config.local.dataset.model_dump(mode="json").items():
        if value is not None:
            values = value if isinstance(value, list) else [value]
            options += [f"--{key.replace('_', '-')}", *(str(v) for v in values)]
    return options


def ensure_dataset(store: LocalStore, config: WorkflowConfig) -> dict[str, str]:
    """Generate the synthetic data set into the store unless it is there; return its URIs.

    Returns:
        ``{"TrainingData", "ValidationData", "TestData", "TestImages"}`` (``s3://`` prefixes
        ending in ``/``).
    """
    prefix = dataset_prefix(config)
    uris = {
        "TrainingData": prefix + "train/",
        "ValidationData": prefix + "validation/",
        "TestData": prefix + "test/",
        "TestImages": prefix + "test/images/",
    }
    target = store.path(prefix)
    if (target / DATASET_MARKER).is_file():
        return uris
    tmp = temporary_sibling(target)
    try:
        command = [
            sys.executable, "-m", "mask_r_cnn.synthetic", str(tmp / "gen"),
            *synthetic_options(config),
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise LocalRunError(
                f"generating the synthetic data set failed ({' '.join(command[1:4])}): "
                f"{result.stderr.strip()[-500:]}; check local.dataset in workflow.yaml."
            )
        for split in ("train", "validation", "test"):
            if (tmp / "gen" / split).is_dir():
                (tmp / "gen" / split).rename(tmp / split)
        if (tmp / "test").is_dir():
            move_images_into_subfolder(tmp / "test")
        shutil.rmtree(tmp / "gen", ignore_errors=True)
        write_json_atomic(
            tmp / DATASET_MARKER,
            {
                "generator": "mask_r_cnn.synthetic",
                "settings": config.local.dataset.model_dump(mode="json"),
                "prefix": prefix,
            },
        )
        try:
            publish_dir(tmp, target, prefix)
        except WorkflowError:
            logger.info("the data set %s appeared meanwhile; reusing it", prefix)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("synthetic data set ready at %s", prefix)
    return uris


def move_images_into_subfolder(split: Path, subfolder: str = "images") -> None:
    """Move a split's images into ``images/`` and rewrite their ``file_name``s to match."""
    annotations_path = split / "annotations.json"
    document = json.loads(annotations_path.read_text())
    (split / subfolder).mkdir(exist_ok=True)
    for image in document.get("images", []):
        name = str(image["file_name"])
        (split / name).rename(split / subfolder / Path(name).name)
        image["file_name"] = f"{subfolder}/{Path(name).name}"
    annotations_path.write_text(json.dumps(document, indent=1) + "\n")


@dataclass(frozen=True)
class HeldOutImage:
    """A held-out test image and its shapes (``{"category", "box", "mask"}``).

    A shape's box is ``[x1, y1, x2, y2]`` and its mask a bool array of the image's size;
    ``shapes`` is ``None`` when the image's annotations cannot be drawn.
    """

    path: Path
    shapes: list[dict[str, Any]] | None


def held_out_image(store: LocalStore, test_prefix: str) -> HeldOutImage | None:
    """Return the held-out test image with the most objects and its shapes, or ``None``."""
    try:
        document = store.get_json(test_prefix + "annotations.json")
    except (WorkflowError, ValueError):
        return None
    shapes: dict[Any, list[dict[str, Any]]] = {}
    for annotation in document.get("annotations", []):
        shapes.setdefault(annotation.get("image_id"), []).append(annotation)
    names = {c.get("id"): str(c.get("name")) for c in document.get("categories", [])}
    # the image with the most objects makes the most telling picture
    images = sorted(document.get("images", []), key=lambda i: -len(shapes.get(i.get("id"), [])))
    for image in images:
        path = store.path(test_prefix + str(image["file_name"]))
        if not path.is_file():
            continue
        try:
            truth = [_shape(a, image, names) for a in shapes.get(image.get("id"), [])]
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            # malformed annotations: the picture is drawn without its ground-truth panel
            logger.warning("the ground truth of %s cannot be drawn: %s", path.name, exc)
            return HeldOutImage(path, None)
        return HeldOutImage(path, truth)
    return None


def _shape(
    annotation: Mapping[str, Any], image: Mapping[str, Any], names: Mapping[Any, str]
) -> dict[str, Any]:
    from workflow.coco import annotation_mask

    x, y, w, h = (float(v) for v in annotation["bbox"])
    category = annotation.get("category_id")
    return {
        "category": names.get(category, str(category)),
        "box": [x, y, x + w, y + h],
        "mask": annotation_mask(annotation, int(image["height"]), int(image["width"])),
    }


# ---------------------------------------------------------------------------------------------
# 2. + 3. input and run
# ---------------------------------------------------------------------------------------------


def local_commit(environ: Mapping[str, str]) -> str:
    """Return the commit of the working tree (``local`` outside a git checkout)."""
    from workflow.errors import NamingError
    from workflow.naming import resolve_commit

    try:
        return resolve_commit(environ, cwd=REPO_ROOT)
    except NamingError:
        return "local"


def build_input(
    config: WorkflowConfig, commit: str, data: Mapping[str, str], image_uri: str | None = None
) -> dict[str, Any]:
    """Return the execution input of a local run.

    It differs from an AWS run's input only in values: ``local.hyperparameters`` merged over the
    training ones, ``local.poll_seconds`` and ``GateThreshold = local.gate_threshold`` (the demo
    model trains for seconds), and the data URIs of the synthetic data set.
    """
    from workflow.naming import execution_input

    document = execution_input(
        config,
        commit,
        image_uri=image_uri,
        hyperparameters=dict(config.local.hyperparameters),
        poll_seconds=config.local.poll_seconds,
        gate_threshold=config.local.gate_threshold,
    )
    return {**document, **data}


def wait(execution: Any, progress: Progress) -> None:
    """Wait for the execution; Ctrl-C stops it (ABORTED) and its jobs."""
    try:
        while not execution.done:
            execution.wait(0.5)
    except KeyboardInterrupt:
        progress.print("interrupted: stopping the execution and its local jobs")
        execution.stop("Interrupted", "stopped with Ctrl-C")
        execution.wait(60)


def run_dir(store: LocalStore, name: str) -> Path:
    """Return the folder of a run's results."""
    return store.folder("runs") / name


def save_run(store: LocalStore, execution: Any) -> dict[str, str]:
    """Save the history and the execution record (``-<n>`` suffixes for redrives)."""
    from workflow.local.engine import history_to_json

    folder = run_dir(store, execution.name)
    suffix = f"-redrive{execution.redrive_count}" if execution.redrive_count else ""
    history = save_json(folder / f"history{suffix}.json", history_to_json(execution.history()))
    record = save_json(folder / f"execution{suffix}.json", execution.to_record().to_dict())
    pointer = store.root / "runs" / LAST_FAILED
    if execution.status == "SUCCEEDED":
        if pointer.is_file() and json.loads(pointer.read_text()).get("name") == execution.name:
            pointer.unlink()
    else:
        write_json_atomic(pointer, {"name": execution.name, "record": str(record)})
    return {"history": str(history), "record": str(record)}


def redrive_record(store: LocalStore) -> Any:
    """Load the last failed run's record, set to restart at the state that failed.

    AWS's redrive restarts at the unsuccessful step, which for a failure caught by ``Catch`` and
    routed to ``NotifyFailure`` -> ``Fail`` is the Fail state (the run would just fail again).
    Locally the record is cut just after the failing task's attempt, so the redrive runs that
    task again with the input it had; the states that succeeded before it are not run again.

    Raises:
        LocalRunError: When no failed run is recorded.
    """
    from workflow.local.engine import ExecutionRecord

    pointer = store.root / "runs" / LAST_FAILED
    if not pointer.is_file():
        raise LocalRunError(
            f"there is no failed local run to redrive (no {pointer}); start one with "
            "'python -m workflow run --local'."
        )
    data = json.loads(pointer.read_text())
    record = ExecutionRecord.from_dict(json.loads(Path(data["record"]).read_text()))
    return dataclasses.replace(record, history=cut_at_failure(record.history))


# ---------------------------------------------------------------------------------------------
# 4. prediction
# ---------------------------------------------------------------------------------------------


LOW_THRESHOLD = 0.05
MAX_DRAWN = 5


def invoke_endpoint(url: str, image: Path, threshold: float | None, timeout: float) -> Any:
    """POST an image to an endpoint's /invocations and return the JSON answer."""
    content_type = "image/png" if image.suffix.lower() == ".png" else "image/jpeg"
    headers = {"Content-Type": content_type, "Accept": "application/json"}
    if threshold is not None:
        headers["X-Amzn-SageMaker-Custom-Attributes"] = f"score_threshold={threshold}"
    return json.loads(
        post_bytes(url.rstrip("/") + "/invocations", image.read_bytes(), headers, timeout)
    )


@dataclass(frozen=True)
class PredictionPicture:
    """What :func:`predict_png` drew.

    Attributes:
        path: The PNG.
        drawn: The predictions drawn (each object's best-scored label).
        hidden: Lower-scored predictions of an object already drawn with another label.
        lowered: The lowered threshold, when nothing reached the serving one.
        shapes: :func:`score_shapes` of the drawn predictions, when the ground truth is known.
    """

    path: Path
    drawn: int
    hidden: int
    lowered: float | None
    shapes: dict[str, int] | None


def predict_png(
    url: str,
    image: Path,
    out: Path,
    timeout: float = 60,
    ground_truth: list[dict[str, Any]] | None = None,
) -> PredictionPicture:
    """Send an image to an endpoint and draw its answer, beside the ground truth when given.

    Each object is drawn with its best-scored label (:func:`best_label_per_object`). When
    nothing scores above the serving threshold, the image is sent again with
    ``score_threshold`` lowered to 0.05 and the best detections are drawn, so the picture shows
    what the model sees (the summary says which threshold was used).
    """
    predictions = list(invoke_endpoint(url, image, None, timeout).get("predictions") or [])
    lowered = None
    if not predictions:
        lowered = LOW_THRESHOLD
        answer = invoke_endpoint(url, image, lowered, timeout)
        predictions = list(answer.get("predictions") or [])
    drawn, hidden = best_label_per_object(predictions)
    if lowered is not None:
        drawn = drawn[:MAX_DRAWN]
    path = draw_prediction(image, drawn, out, ground_truth)
    shapes = score_shapes(ground_truth, drawn) if ground_truth is not None else None
    return PredictionPicture(path, len(drawn), hidden, lowered, shapes)


# ---------------------------------------------------------------------------------------------
# the whole run
# ---------------------------------------------------------------------------------------------


def run_pipeline(
    config: WorkflowConfig,
    *,
    approve: str | None = None,
    keep_endpoint: bool = False,
    redrive: bool = False,
    commit: str | None = None,
    image_uri: str | None = None,
    root: Path | str | None = None,
    progress: Progress | None = None,
    environ: Mapping[str, str] | None = None,
    **runtime_options: Any,
) -> RunResult:
    """Run (or redrive) the state machine locally and return the summary.

    Args:
        config: The configuration.
        approve: ``auto`` or ``manual`` (default ``local.approve``).
        keep_endpoint: Leave the endpoint running at the end.
        redrive: Resume the last failed run instead of starting one.
        commit: The commit to build (default: ``git rev-parse HEAD``).
        image_uri: Skip the build and use this image.
        root: The store root (default ``local.root``).
        progress: Where progress goes (default: stderr).
        environ: Environment for the commit lookup (default ``os.environ``).
        **runtime_options: Passed to :class:`LocalRuntime` (tests: ``time_scale`` ...).
    """
    from workflow.definition import render_json

    progress = progress or Progress()
    runtime = LocalRuntime(
        config,
        root,
        approve=approve,
        log_sink=progress.log_sink,
        say=progress.print,
        **runtime_options,
    )
    unsubscribe = runtime.engine.on_event(progress)
    # A run killed mid-way stays redrivable (workflow.local.orphans).
    unsubscribe_snapshots = runtime.engine.on_event(RunSnapshots(runtime.store, runtime.engine))
    started = time.monotonic()
    execution = None
    try:
        runtime.install()
        # What a killed run left behind: its jobs are stopped, its record made redrivable.
        reap_jobs(runtime.sagemaker.records, runtime.sagemaker.settings.stop_grace_seconds)
        recover_run(runtime.store, LAST_FAILED)
        if redrive:
            record = redrive_record(runtime.store)
            release_redriven_job(runtime.sagemaker, record)
            execution = runtime.engine.redrive(record)
            test_prefix = str(record.input.get("TestData", ""))
        else:
            data = ensure_dataset(runtime.store, config)
            document = build_input(
                config,
                commit or local_commit(os.environ if environ is None else environ),
                data,
                image_uri,
            )
            test_prefix = data["TestData"]
            execution = runtime.engine.start_execution(
                render_json(config),
                document,
                name=document["JobName"],
                state_machine_name=config.name,
            )
        progress.start_heartbeat()
        wait(execution, progress)
        progress.stop_heartbeat()
        extra: dict[str, Any] = dict(save_run(runtime.store, execution))
        finish_snapshot(
            runtime.store, run_dir(runtime.store, execution.name), execution.redrive_count
        )
        extra["outbox"] = str(runtime.outbox.path)
        if execution.status == "SUCCEEDED":
            extra.update(_finish_success(runtime, execution, test_prefix, keep_endpoint))
        else:
            extra["hint"] = (
                "fix the cause, then resume from the failed state with "
                "'python -m workflow run --local --redrive'"
            )
        extra["seconds"] = round(time.monotonic() - started, 1)
        summary = summarize(execution, extra)
    finally:
        progress.stop_heartbeat()
        unsubscribe()
        unsubscribe_snapshots()
        runtime.close(keep_endpoints=keep_endpoint)
    print_summary(summary, progress.stream)
    save_json(
        run_dir(runtime.store, execution.name)
        / f"summary{'-redrive' + str(execution.redrive_count) if execution.redrive_count else ''}.json",
        summary,
    )
    return RunResult(execution.status, summary)


def _finish_success(
    runtime: LocalRuntime, execution: Any, test_prefix: str, keep_endpoint: bool
) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    name = runtime.config.endpoint.name
    url = runtime.endpoint_url(name)
    if url is None:
        return extra
    extra["endpoint_url"] = url if keep_endpoint else f"{url} (stopped at the end of the run)"
    held_out = held_out_image(runtime.store, test_prefix)
    if held_out is None:
        return extra
    out = run_dir(runtime.store, execution.name) / "prediction.png"
    try:
        picture = predict_png(url, held_out.path, out, ground_truth=held_out.shapes)
    except (OSError, ValueError, WorkflowError) as exc:
        extra["prediction_error"] = f"the endpoint did not answer the test image: {exc}"
        return extra
    extra["prediction_png"] = str(picture.path)
    extra["prediction_detections"] = picture.drawn
    extra["prediction_hidden"] = picture.hidden
    if picture.shapes is not None:
        extra["prediction_shapes"] = picture.shapes
    if picture.lowered is not None:
        extra["prediction_threshold"] = picture.lowered
    extra["prediction_image"] = str(held_out.path)
    return extra
