"""The whole pipeline on the local runtime, on a tiny data set and model (marked e2e + slow).

One store is shared by the module, as `make run` keeps `.mlops/` across runs: the data set and
the image are built once and reused, and every run must leave the others' artifacts untouched.
Scenarios: a rejected approval, then its redrive deploying the model (endpoint, prediction PNG);
a second run of the same commit, warm-started from the approved model, failing the quality gate
without overwriting anything; a
training failure caught and notified; a training job stopped by MaxRuntimeInSeconds.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
import threading
from pathlib import Path
from typing import Any

import pytest
from helpers import TINY_LOCAL_HYPERPARAMETERS
from helpers.local_runs import outbox, reject_when_asked, run

from workflow.config import WorkflowConfig, load_config
from workflow.local.build import content_hash

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
COMMIT = "e2e0000000000000000000000000000000000001"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mlops")


def make_config(root: Path, **overrides: Any) -> WorkflowConfig:
    values: dict[str, Any] = {
        "local.root": str(root),
        "local.gate_threshold": "0.0",  # local runs are gated by it, not by gate.threshold
        "local.dataset.train": "4",
        "local.dataset.validation": "2",
        "local.dataset.test": "4",
        "local.dataset.size": "64",
        "local.hyperparameters": dict(TINY_LOCAL_HYPERPARAMETERS),
    }
    values.update(overrides)
    return load_config(None, environ={}, overrides=values)


def is_artifact(path: Path, root: Path) -> bool:
    """Objects, images and run results: what a later run must never change."""
    return (
        path.relative_to(root).parts[0] in ("s3", "images", "runs")
        and path.name != "last-failed.json"
    )


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_rejected_approval_then_redrive_deploys(root: Path) -> None:
    config = make_config(root)
    stop = threading.Event()
    reviewer = threading.Thread(target=reject_when_asked, args=(root, stop), daemon=True)
    reviewer.start()
    try:
        result, log = run(config, approve="manual", commit=COMMIT)
    finally:
        stop.set()
    summary = result.summary
    assert result.exit_code == 1, log
    assert summary["failed_state"] == "RequestApproval"
    assert summary["error"] == "Rejected" and summary["cause"] == "masks look wrong"
    assert "python -m workflow approve" in log and "> Train" in log
    assert "> ColdStartChannels" in log  # no approved model yet: from scratch
    subjects = [m["Subject"] for m in outbox(root)]
    assert any(s.startswith("Approve model") for s in subjects)
    assert subjects[-1].endswith("execution failed")
    assert "RequestApproval" in outbox(root)[-1]["Message"]
    model_tar = Path(config.local.root) / "s3" / summary["model_artifact"][len("s3://") :]
    assert model_tar.is_file()

    # the redrive resumes at the approval (auto this time) and deploys; Train is not run again
    result, log = run(config, approve="auto", redrive=True)
    summary = result.summary
    assert result.exit_code == 0, log
    assert summary["execution"] == result.summary["execution"]
    assert "redriven" in log and "> Train" not in log and "> RequestApproval" in log
    assert "> ColdStartChannels" not in log  # decided in the first attempt: nothing approved
    assert summary["endpoint_url"].startswith("http://127.0.0.1:")
    png = Path(summary["prediction_png"])
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    shapes = summary["prediction_shapes"]  # the picture's ground truth, scored
    assert (
        shapes["shapes"] >= 1
        and sum(shapes[k] for k in ("right", "wrong", "missed")) == shapes["shapes"]
    )
    history = json.loads(Path(summary["history"]).read_text())
    assert any(e["type"] == "ExecutionRedriven" for e in history)
    assert len(list((root / "sagemaker" / "training-jobs").glob("*.json"))) == 1
    assert outbox(root)[-1]["Subject"].endswith("model deployed")
    # the endpoint was stopped at the end of the run and its record removed
    assert not list((root / "sagemaker" / "endpoints").glob("*.json"))
    assert not (root / "runs" / "last-failed.json").exists()


def test_same_commit_again_fails_the_gate_and_overwrites_nothing(root: Path) -> None:
    before = {p: digest(p) for p in root.glob("*/**/*") if p.is_file() and is_artifact(p, root)}
    assert before, "runs after the first test of the module"
    source_hash = content_hash(REPO / "container")
    result, log = run(make_config(root, **{"local.gate_threshold": "1.0"}), commit=COMMIT)
    assert result.exit_code == 1, log
    assert result.summary["execution_error"] == "QualityGateFailed"
    record = json.loads(Path(result.summary["record"]).read_text())
    assert record["input"]["GateThreshold"] == 1.0  # the input carried local.gate_threshold
    assert "> QualityGate" in log and "> RequestApproval" not in log
    after = {p: digest(p) for p in root.glob("*/**/*") if p.is_file() and is_artifact(p, root)}
    assert {p: after.get(p) for p in before} == before  # nothing changed or disappeared
    assert len(after) > len(before)  # the new run wrote its own artifacts
    assert len(list((root / "s3").rglob("dataset.json"))) == 1  # the data set was reused
    if content_hash(REPO / "container") == source_hash:  # unless container/ was edited meanwhile
        # so was the image: each run's own tag links to the one snapshot of this content
        images = list((root / "images" / "mask-r-cnn").iterdir())
        assert len([p for p in images if not p.is_symlink()]) == 1
    assert "QualityGateFailed" in outbox(root)[-1]["Message"]
    # training.warm_start: last-approved (the default): the first test's run was approved, so
    # this run's training started from that model (its model.tar.gz as the pretrained channel)
    archive = Path(make_config(root).local.root) / "s3" / result.summary["model_artifact"][5:]
    with tarfile.open(archive) as packed:
        member = packed.extractfile("metadata.json")
        assert member is not None
        metadata = json.loads(member.read())
    warm = metadata["pretrained"]
    assert warm["file"] == "model.tar.gz" and warm["missing"] == 0, warm
    assert warm["training_job_name"] != metadata["training_job_name"]
    assert (root / "sagemaker" / "training-jobs" / f"{warm['training_job_name']}.json").is_file()
    assert "> FindWarmStart" in log and "> WarmStartChannels" in log


def test_training_failure_is_caught_and_notified(root: Path) -> None:
    config = make_config(
        root, **{"local.hyperparameters": {**TINY_LOCAL_HYPERPARAMETERS, "epochs": "zero"}}
    )
    result, log = run(config, commit=COMMIT)
    summary = result.summary
    assert result.exit_code == 1, log
    assert summary["failed_state"] == "Train"
    assert summary["error"] == "States.TaskFailed"
    assert "epochs" in summary["cause"] and "zero" in summary["cause"]
    message = json.loads(outbox(root)[-1]["Message"])
    assert message["State"] == "Train" and "zero" in message["Cause"]


def test_max_runtime_stops_the_training_job(root: Path) -> None:
    config = make_config(
        root,
        **{
            "training.max_runtime_seconds": "2",
            "local.hyperparameters": {**TINY_LOCAL_HYPERPARAMETERS, "epochs": "100"},
        },
    )
    result, log = run(config, commit=COMMIT)
    assert result.exit_code == 1, log
    assert result.summary["failed_state"] == "Train"
    assert result.summary["cause"].startswith("MaxRuntimeExceeded")
