from __future__ import annotations

import io
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from PIL import Image

from workflow.local import report
from workflow.local.pipeline import cut_at_failure, move_images_into_subfolder


def event(
    kind: str, state: str | None = None, duration: float | None = None, **details: Any
) -> Any:
    raw: dict[str, Any] = {"type": kind}
    raw.update(details)
    return SimpleNamespace(
        execution_arn="arn:exec",
        execution_name="run-1",
        event=raw,
        state_name=state,
        duration=duration,
    )


def test_progress_prints_states_failures_and_training_lines() -> None:
    out = io.StringIO()
    progress = report.Progress(stream=out)
    progress(event("ExecutionStarted"))
    progress(event("TaskStateEntered", "Train"))
    progress.log_sink("train", "INFO epoch=1 step=3 loss=0.5 lr=0.01")
    progress.log_sink("train", "some noise")
    progress(
        event("TaskFailed", taskFailedEventDetails={"error": "States.TaskFailed", "cause": "boom"})
    )
    progress(event("TaskStateExited", "Train", 12.34))
    progress(event("ExecutionFailed", duration=13.0))
    text = out.getvalue()
    assert "  > Train" in text and "  < Train (12.3 s)" in text
    assert "[train] INFO epoch=1 step=3" in text and "noise" not in text
    assert "! TaskFailed: States.TaskFailed: boom" in text
    assert "run-1: FAILED after 13.0 s" in text
    verbose = report.Progress(stream=io.StringIO(), verbose=True)
    verbose.log_sink("train", "some noise")
    assert "noise" in verbose.stream.getvalue()


def test_heartbeat_on_long_waits() -> None:
    out = io.StringIO()
    progress = report.Progress(stream=out, heartbeat_seconds=0.05)
    progress(event("TaskStateEntered", "Train"))
    progress.start_heartbeat()
    import time

    deadline = time.monotonic() + 5
    while "still in Train" not in out.getvalue() and time.monotonic() < deadline:
        time.sleep(0.05)
    progress.stop_heartbeat()
    assert "... still in Train" in out.getvalue()
    assert "arn:exec" in out.getvalue()


HISTORY = [
    {"type": "ExecutionStarted"},
    {"type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "Train"}},
    {
        "type": "TaskFailed",
        "taskFailedEventDetails": {"error": "States.TaskFailed", "cause": "bad"},
    },
    {"type": "TaskStateExited", "stateExitedEventDetails": {"name": "Train"}},
    {"type": "PassStateEntered", "stateEnteredEventDetails": {"name": "TrainFailed"}},
    {"type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "NotifyFailure"}},
    {"type": "TaskSucceeded"},
    {"type": "FailStateEntered", "stateEnteredEventDetails": {"name": "Failed"}},
    {"type": "ExecutionFailed", "executionFailedEventDetails": {"error": "X", "cause": "y"}},
]


def test_failing_state_is_the_first_task_failure() -> None:
    assert report.failing_state(HISTORY) == ("Train", "States.TaskFailed", "bad")
    assert report.failing_state(HISTORY[:1] + HISTORY[-1:]) == (None, "X", "y")


def test_cut_at_failure_keeps_the_failed_attempt() -> None:
    assert cut_at_failure(HISTORY) == HISTORY[:3]
    assert cut_at_failure(HISTORY[:2]) == HISTORY[:2]


def test_summary_and_metrics() -> None:
    output = {
        "Training": {"ModelArtifacts": {"S3ModelArtifacts": "s3://b/m.tar.gz"}},
        "Metrics": {"Payload": {"segm_mAP": 0.5, "bbox_mAP": 0.25}},
    }
    execution = SimpleNamespace(
        name="r",
        arn="arn",
        status="SUCCEEDED",
        output=output,
        error=None,
        cause=None,
        history=list,
    )
    summary = report.summarize(execution, {"endpoint_url": "http://127.0.0.1:1"})
    assert summary["model_artifact"] == "s3://b/m.tar.gz"
    assert summary["metrics"] == {"segm_mAP": 0.5, "bbox_mAP": 0.25}
    out = io.StringIO()
    report.print_summary(summary, out)
    assert "bbox_mAP=0.2500 segm_mAP=0.5000" in out.getvalue()
    assert "http://127.0.0.1:1" in out.getvalue()
    final = {"FinalMetricDataList": [{"MetricName": "train_loss", "Value": 1.5}]}
    assert report.metrics_of({"Training": final}) == {"train_loss": 1.5}


def white_image_and_square(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """A white 32x24 PNG and the RLE (text counts) of a 15x10 square on it."""
    from pycocotools import mask as mask_utils

    image = tmp_path / "x.png"
    Image.new("RGB", (32, 24), (255, 255, 255)).save(image)
    mask = np.zeros((24, 32), dtype=np.uint8, order="F")
    mask[5:15, 5:20] = 1
    rle = mask_utils.encode(mask)
    return image, {"size": [24, 32], "counts": rle["counts"].decode()}


def test_draw_prediction_and_never_overwrite(tmp_path: Path) -> None:
    image, rle = white_image_and_square(tmp_path)
    prediction = {
        "label": 1,
        "category": "square",
        "score": 0.9,
        "box": [5, 5, 20, 15],
        "mask": rle,
    }
    out = report.draw_prediction(image, [prediction], tmp_path / "out" / "p.png")
    drawn = np.asarray(Image.open(out))
    assert drawn.shape == (24 * 16, 32 * 16, 3)  # enlarged to a readable size
    assert tuple(drawn[10 * 16 + 8, 10 * 16 + 8]) != (255, 255, 255)  # the mask is tinted
    assert tuple(drawn[20 * 16 + 8, 28 * 16 + 8]) == (255, 255, 255)
    with pytest.raises(FileExistsError):
        report.draw_prediction(image, [], out)


def shape(category: str, box: list[float], score: float | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"category": category, "box": box, "mask": None}
    if score is not None:
        item["score"] = score
    return item


def test_best_label_per_object_keeps_the_best_scored_label_of_each_object() -> None:
    predictions = [
        shape("square", [0, 0, 10, 10], 0.4),
        shape("triangle", [1, 0, 11, 10], 0.9),  # the same object (IoU 0.82), scored higher
        shape("circle", [20, 20, 30, 30], 0.5),  # another object
        shape("circle", [0, 0, 4, 4], 0.3),  # inside the first but IoU 0.16: its own object
    ]
    kept, hidden = report.best_label_per_object(predictions)
    assert [(p["category"], p["score"]) for p in kept] == [
        ("triangle", 0.9),
        ("circle", 0.5),
        ("circle", 0.3),
    ]
    assert hidden == 1
    assert report.best_label_per_object([]) == ([], 0)


def test_score_shapes_counts_right_wrong_and_missed_shapes() -> None:
    truth = [
        shape("circle", [0, 0, 10, 10]),
        shape("square", [20, 0, 30, 10]),
        shape("triangle", [40, 0, 50, 10]),
    ]
    drawn = [
        shape("circle", [0, 0, 10, 11], 0.9),  # right
        shape("circle", [20, 0, 30, 10], 0.6),  # wrong: the square's best label is circle
        shape("square", [21, 0, 30, 10], 0.5),
        shape("triangle", [45, 5, 60, 20], 0.9),  # IoU 0.08 with the triangle: missed
    ]
    assert report.score_shapes(truth, drawn) == {"shapes": 3, "right": 1, "wrong": 1, "missed": 1}


def test_draw_prediction_puts_the_ground_truth_beside_the_prediction(tmp_path: Path) -> None:
    image, rle = white_image_and_square(tmp_path)
    truth = [
        {"category": "circle", "box": [0, 0, 2, 2]},
        {"category": "square", "box": [5, 5, 20, 15], "mask": rle},
    ]
    top, panel = report.TITLE_HEIGHT, 32 * 16
    right = panel + report.PANEL_GAP
    inside = top + 10 * 16 + 8, 10 * 16 + 8  # a pixel of the square's mask in the left panel

    alone = np.asarray(Image.open(report.draw_prediction(image, [], tmp_path / "a.png", truth)))
    assert alone.shape == (24 * 16 + top, 2 * panel + report.PANEL_GAP, 3)
    assert tuple(alone[inside]) != (255, 255, 255)  # the ground truth's mask
    assert tuple(alone[inside[0], right + inside[1]]) == (255, 255, 255)  # nothing predicted

    # the prediction is the first object on its side, yet a square has one colour on both
    square = {"category": "square", "score": 0.9, "box": [5, 5, 20, 15], "mask": rle}
    both = np.asarray(
        Image.open(report.draw_prediction(image, [square], tmp_path / "b.png", truth))
    )
    assert tuple(both[inside]) == tuple(both[inside[0], right + inside[1]]) != (255, 255, 255)


def test_the_summary_says_how_many_shapes_the_picture_labels_right() -> None:
    summary = {
        "status": "SUCCEEDED",
        "execution": "run-1",
        "prediction_png": "p.png",
        "prediction_detections": 4,
        "prediction_hidden": 2,
        "prediction_shapes": {"shapes": 4, "right": 3, "wrong": 1, "missed": 0},
    }
    out = io.StringIO()
    report.print_summary(summary, out)
    assert (
        "p.png (4 objects; 3 of 4 shapes labelled right (1 wrong); 2 lower-scored boxes of "
        "objects already labelled not drawn)" in out.getvalue()
    )


def test_held_out_image_is_the_one_with_most_shapes_with_its_ground_truth(tmp_path: Path) -> None:
    from pycocotools import mask as mask_utils

    from workflow.local.pipeline import HeldOutImage, held_out_image
    from workflow.local.store import LocalStore

    store = LocalStore(tmp_path)
    prefix = "s3://bucket/data/test/"
    hidden = np.zeros((20, 30), dtype=np.uint8, order="F")
    hidden[0:5, 10:16] = 1  # a shape partly hidden: its visible part as compressed RLE
    rle = mask_utils.encode(hidden)
    document = {
        "images": [
            {"id": 1, "file_name": "one.png", "width": 30, "height": 20},
            {"id": 2, "file_name": "two.png", "width": 30, "height": 20},
        ],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "bbox": [0, 0, 4, 4],
                "segmentation": [[0, 0, 4, 0, 4, 4, 0, 4]],
            },
            {
                "id": 2,
                "image_id": 2,
                "category_id": 1,
                "bbox": [0, 0, 4, 4],
                "segmentation": [[0, 0, 4, 0, 4, 4, 0, 4]],
            },
            {
                "id": 3,
                "image_id": 2,
                "category_id": 2,
                "bbox": [10, 0, 6, 5],
                "segmentation": {"size": [20, 30], "counts": rle["counts"].decode()},
            },
        ],
        "categories": [{"id": 1, "name": "circle"}, {"id": 2, "name": "square"}],
    }
    folder = store.path(prefix + "annotations.json").parent
    folder.mkdir(parents=True)
    (folder / "annotations.json").write_text(json.dumps(document))
    for name in ("one.png", "two.png"):
        Image.new("RGB", (30, 20)).save(folder / name)
    held_out = held_out_image(store, prefix)
    assert held_out is not None and held_out.path == folder / "two.png"
    assert [(s["category"], s["box"]) for s in held_out.shapes] == [
        ("circle", [0.0, 0.0, 4.0, 4.0]),
        ("square", [10.0, 0.0, 16.0, 5.0]),
    ]
    square = held_out.shapes[1]["mask"]  # the compressed RLE, decoded to the image's size
    assert square.shape == (20, 30) and np.array_equal(square, hidden.astype(bool))
    polygon = held_out.shapes[0]["mask"]
    assert polygon.shape == (20, 30) and polygon[:4, :4].all() and not polygon[:, 6:].any()

    # an annotation that cannot be drawn leaves the picture without its ground truth panel
    del document["annotations"][2]["bbox"]
    (folder / "annotations.json").write_text(json.dumps(document))
    assert held_out_image(store, prefix) == HeldOutImage(folder / "two.png", None)


def test_move_images_into_subfolder(tmp_path: Path) -> None:
    split = tmp_path / "test"
    split.mkdir()
    (split / "a.png").write_bytes(b"a")
    (split / "annotations.json").write_text(
        json.dumps({"images": [{"id": 1, "file_name": "a.png"}]})
    )
    move_images_into_subfolder(split)
    assert (split / "images" / "a.png").read_bytes() == b"a"
    assert (
        json.loads((split / "annotations.json").read_text())["images"][0]["file_name"]
        == "images/a.png"
    )


def test_save_json_refuses_to_overwrite(tmp_path: Path) -> None:
    report.save_json(tmp_path / "h.json", [1])
    with pytest.raises(FileExistsError):
        report.save_json(tmp_path / "h.json", [2])


def test_the_recorded_failure_names_the_deciding_state_not_an_earlier_caught_error() -> None:
    from workflow.local.report import recorded_failure

    # FindEndpoint's "endpoint missing" or EnsureModelPackageGroup's "group exists" are caught
    # and routed on; the run failed where its $.Failure record says.
    document = {
        "ModelPackageGroup": {"Error": "SageMaker.SageMakerException", "Cause": "exists"},
        "Failure": {"State": "CheckEndpoint", "Error": "DeploymentRolledBack", "Cause": "why"},
    }
    assert recorded_failure(document) == ("CheckEndpoint", "DeploymentRolledBack", "why")
    assert recorded_failure({"Failure": {"Error": "x"}}) is None  # not the kit's record
    assert recorded_failure(None) is None
