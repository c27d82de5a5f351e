from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from bench import local_loop
from bench.common import BenchError
from workflow.local.store import LocalStore


def _event(kind: str, name: str, stamp: str) -> dict[str, Any]:
    key = "stateEnteredEventDetails" if kind.endswith("Entered") else "stateExitedEventDetails"
    return {"type": kind, key: {"name": name}, "timestamp": f"2026-11-21T20:00:{stamp}+00:00"}


def test_state_times_sum_re_entries() -> None:
    history = [
        {"type": "ExecutionStarted", "timestamp": "2026-11-21T20:00:00+00:00"},
        _event("TaskStateEntered", "Train", "00.500"),
        _event("TaskStateExited", "Train", "10.500"),
        _event("WaitStateEntered", "Poll", "11.000"),
        _event("WaitStateExited", "Poll", "12.000"),
        _event("WaitStateEntered", "Poll", "13.000"),
        _event("WaitStateExited", "Poll", "14.500"),
        {"type": "ExecutionSucceeded", "timestamp": "2026-11-21T20:00:15+00:00"},
    ]
    assert local_loop.state_times(history) == {
        "Train": {"seconds": 10.0, "entries": 1},
        "Poll": {"seconds": 2.5, "entries": 2},
    }
    assert local_loop.execution_seconds(history) == 15.0


def test_command_uses_the_cli_or_registers_run(tmp_path: Path) -> None:
    argv = local_loop.command(Path("."), tmp_path, ["gate.threshold=0"], registered=True)
    assert argv[1:5] == ["-m", "workflow", "run", "--local"]
    assert argv[-4:] == ["--set", f"local.root={tmp_path}", "--set", "gate.threshold=0"]
    shim = local_loop.command(Path("."), tmp_path, [], registered=False)
    assert (
        shim[1] == "-c" and "workflow.commands.run" in shim[2] and shim[3:5] == ["run", "--local"]
    )


def test_references_name_their_sources() -> None:
    for reference in local_loop.REFERENCES:
        assert reference["source"].startswith("https://github.com/")
        assert reference["seconds"] >= 120


def test_picture_figure_counts_the_runs_that_label_every_shape_right() -> None:
    right = {"shapes": 4, "right": 4, "wrong": 0, "missed": 0}
    one_wrong = {"shapes": 4, "right": 3, "wrong": 1, "missed": 0}
    figure = local_loop.picture_figure([right, one_wrong, None])
    assert (figure.result, figure.target, figure.verdict) == (1, "3 of 3", "missed")
    assert figure.note.endswith(": 4/4, 3/4, -/-")
    assert local_loop.picture_figure([right, right]).verdict == "met"


def _training_event(metrics: dict[str, float]) -> dict[str, Any]:
    job = {"FinalMetricDataList": [{"MetricName": k, "Value": v} for k, v in metrics.items()]}
    details = {"resource": "createTrainingJob.sync", "output": json.dumps(job)}
    return {"type": "TaskSucceeded", "taskSucceededEventDetails": details}


def test_training_metrics_reads_the_training_job_s_final_metrics() -> None:
    other = {"type": "TaskSucceeded", "taskSucceededEventDetails": {"resource": "invoke"}}
    history = [other, _training_event({"steps": 940.0, "train_seconds": 110.7})]
    assert local_loop.training_metrics(history) == {"steps": 940.0, "train_seconds": 110.7}
    assert local_loop.training_metrics([other]) == {}


def _artifact(tmp_path: Path, members: dict[str, bytes]) -> str:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    uri = "s3://bucket/models/job/output/model.tar.gz"
    LocalStore(tmp_path).put_bytes(uri, buffer.getvalue())
    return uri


def test_weights_digest_hashes_model_pth(tmp_path: Path) -> None:
    uri = _artifact(tmp_path, {"metadata.json": b"{}", "model.pth": b"weights"})
    digest = local_loop.weights_digest(tmp_path, uri)
    assert digest == "sha256:" + hashlib.sha256(b"weights").hexdigest()[:12]


def test_weights_digest_refuses_an_artifact_without_weights(tmp_path: Path) -> None:
    uri = _artifact(tmp_path, {"metadata.json": b"{}"})
    with pytest.raises(BenchError, match=r"model\.tar\.gz cannot be read"):
        local_loop.weights_digest(tmp_path, uri)
    with pytest.raises(BenchError, match="cannot be read"):
        local_loop.weights_digest(tmp_path, "s3://bucket/missing/model.tar.gz")


def test_training_finding_counts_the_runs_with_the_same_weights() -> None:
    runs = [
        {"steps": 940.0, "train_seconds": 110.7, "weights": "sha256:3cd908c4de03"},
        {"steps": 912.0, "train_seconds": 115.0, "weights": "sha256:aaaaaaaaaaaa"},
        {"steps": 940.0, "train_seconds": 102.1, "weights": "sha256:3cd908c4de03"},
    ]
    assert local_loop.training_finding(runs) == (
        "training: 940 steps in 110.7 s, 912 steps in 115.0 s, 940 steps in 102.1 s; "
        "weights sha256:3cd908c4de03 in 2 of 3 runs (2 distinct)."
    )


def test_training_finding_names_runs_that_all_share_or_all_differ() -> None:
    same = {"steps": 940.0, "train_seconds": 101.0, "weights": "sha256:3cd908c4de03"}
    assert local_loop.training_finding([same, same]) == (
        "training: 940 steps in 101.0 s, 940 steps in 101.0 s; "
        "the same weights sha256:3cd908c4de03 in all 2 runs."
    )
    other = {"steps": 907.0, "train_seconds": 115.0, "weights": "sha256:bbbbbbbbbbbb"}
    assert local_loop.training_finding([same, other]) == (
        "training: 940 steps in 101.0 s, 907 steps in 115.0 s; "
        "different weights in each of the 2 runs."
    )
