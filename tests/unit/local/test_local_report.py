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


def test_draw_prediction_and_never_overwrite(tmp_path: Path) -> None:
    from pycocotools import mask as mask_utils

    image = tmp_path / "x.png"
    Image.new("RGB", (32, 24), (255, 255, 255)).save(image)
    mask = np.zeros((24, 32), dtype=np.uint8, order="F")
    mask[5:15, 5:20] = 1
    rle = mask_utils.encode(mask)
    prediction = {
        "label": 1,
        "category": "square",
        "score": 0.9,
        "box": [5, 5, 20, 15],
        "mask": {"size": [24, 32], "counts": rle["counts"].decode()},
    }
    out = report.draw_prediction(image, [prediction], tmp_path / "out" / "p.png")
    drawn = np.asarray(Image.open(out))
    assert drawn.shape == (24 * 16, 32 * 16, 3)  # enlarged to a readable size
    assert tuple(drawn[10 * 16 + 8, 10 * 16 + 8]) != (255, 255, 255)  # the mask is tinted
    assert tuple(drawn[20 * 16 + 8, 28 * 16 + 8]) == (255, 255, 255)
    with pytest.raises(FileExistsError):
        report.draw_prediction(image, [], out)


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
