from __future__ import annotations

import json
import re
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from helpers import TINY_ARCHITECTURE
from mask_r_cnn.contract import METRIC_DEFINITIONS
from mask_r_cnn.model import ModelSpec, build_model
from mask_r_cnn.train import run
from PIL import Image

pytestmark = pytest.mark.integration


def test_training_writes_everything_serve_needs(trained_model: Any) -> None:
    assert trained_model.returncode == 0, trained_model.log[-3000:]
    model_dir = trained_model.base / "model"
    assert sorted(p.name for p in model_dir.iterdir()) == [
        "metadata.json",
        "metrics.json",
        "model.pth",
    ]
    metadata = json.loads((model_dir / "metadata.json").read_text())
    assert [c["name"] for c in metadata["categories"]] == ["circle", "square", "triangle"]
    assert metadata["model"]["backbone"] == "resnet18_fpn"
    assert metadata["model"]["num_classes"] == 4
    assert (metadata["model"]["min_size"], metadata["model"]["max_size"]) == (64, 96)
    assert metadata["source_commit"] == "0123abc"
    assert metadata["training_job_name"] == "mrcnn-test-job"
    assert metadata["score_threshold"] == 0.3
    assert metadata["one_label_per_object"] is True
    assert {"torch", "torchvision", "python", "mask_r_cnn"} <= set(metadata["versions"])
    state = torch.load(model_dir / "model.pth", weights_only=True)
    build_model(ModelSpec.from_dict(metadata["model"])).load_state_dict(state)


def test_metrics_json_holds_loss_and_validation_map(trained_model: Any) -> None:
    metrics = json.loads((trained_model.base / "model" / "metrics.json").read_text())
    assert metrics["epochs"] == 1 and metrics["steps"] == 2
    assert np.isfinite(metrics["train_loss"]) and metrics["train_loss"] > 0
    for key in ("bbox_mAP", "segm_mAP", "bbox_AP50", "segm_AP50"):
        assert 0.0 <= metrics[key] <= 1.0


def test_log_lines_match_the_metric_definitions(trained_model: Any) -> None:
    log = trained_model.log
    assert re.search(r"epoch=1 step=1 loss=[0-9.]+ lr=[0-9.e-]+", log)
    assert re.search(r"epoch=1 step=2 train_loss=[0-9.]+", log)
    assert re.search(r"validation: bbox_mAP=[0-9.]+ segm_mAP=[0-9.]+", log)
    for definition in METRIC_DEFINITIONS:
        assert re.findall(definition["Regex"], log), definition["Name"]


def test_the_deployed_metric_definitions_scrape_a_real_training_log(trained_model: Any) -> None:
    """The state machine's `MetricDefinitions` ARE the container's: one definition, every regex
    finds its value in the log of a real training run (SageMaker reads the first group)."""
    from workflow.config import load_config
    from workflow.definition import render_definition

    document = render_definition(load_config(overrides={}))
    deployed = [
        state["Parameters"]["AlgorithmSpecification"]["MetricDefinitions"]
        for state in document["States"].values()
        if state.get("Resource", "").startswith("arn:aws:states:::sagemaker:createTrainingJob")
    ]
    assert deployed == [list(METRIC_DEFINITIONS)]
    for definition in deployed[0]:
        values = re.findall(definition["Regex"], trained_model.log)
        assert values, f"{definition['Name']} never matches the training log"
        assert all(v == "nan" or np.isfinite(float(v)) for v in values), definition["Name"]


def test_checkpoints_are_written_and_no_failure_file(trained_model: Any) -> None:
    assert [p.name for p in (trained_model.base / "checkpoints").iterdir()] == [
        "checkpoint-000000002.pth"
    ]
    assert not (trained_model.base / "output" / "failure").exists()


def test_an_existing_model_is_never_overwritten(trained_model: Any, tmp_path: Path) -> None:
    before = (trained_model.base / "model" / "model.pth").read_bytes()
    code = run({"SAGEMAKER_BASE_DIR": str(trained_model.base)})
    assert code == 2
    assert (trained_model.base / "model" / "model.pth").read_bytes() == before
    failure = (trained_model.base / "output" / "failure").read_text()
    assert "already exists from an earlier run and is never overwritten" in failure.splitlines()[0]
    (trained_model.base / "output" / "failure").unlink()


def _write_pretrained(path: Path, *, backbone_only: bool) -> dict[str, torch.Tensor]:
    torch.manual_seed(123)
    donor = build_model(
        ModelSpec(
            backbone="mobilenet_v3_large_fpn", num_classes=91, min_size=64, max_size=96, fast=True
        )
    )
    state = donor.backbone.state_dict() if backbone_only else donor.state_dict()
    path.mkdir(parents=True)
    torch.save(state, path / "weights.pth")
    return state


@pytest.mark.parametrize("backbone_only", [False, True], ids=["full-model", "backbone"])
def test_pretrained_state_dict_is_loaded(
    ml_tree: Callable[..., Path],
    synthetic_data: Path,
    tmp_path: Path,
    backbone_only: bool,
    capsys: pytest.CaptureFixture[str],
    tiny_hp: dict[str, str],
) -> None:
    state = _write_pretrained(tmp_path / "pretrained", backbone_only=backbone_only)
    # the donor's architecture: a MobileNet FPN with torchvision's head sizes
    mobilenet = {k: v for k, v in tiny_hp.items() if k not in TINY_ARCHITECTURE}
    base = ml_tree(
        {
            **mobilenet,
            "backbone": "mobilenet_v3_large_fpn",
            "max_steps": "1",
            "trainable_backbone_layers": "0",
        },
        {"training": synthetic_data / "train", "pretrained": tmp_path / "pretrained"},
    )
    assert run({"SAGEMAKER_BASE_DIR": str(base)}) == 0
    log = capsys.readouterr().err
    kind = "backbone" if backbone_only else "full_model"
    assert re.search(rf"pretrained=weights.pth kind={kind} loaded=\d+", log)
    metadata = json.loads((base / "model" / "metadata.json").read_text())
    assert metadata["model"]["norm_layer"] == "frozen_batch_norm"
    trained = torch.load(base / "model" / "model.pth", weights_only=True)
    prefix = "" if backbone_only else "backbone."
    key = "body.0.0.weight"  # the frozen MobileNet stem: it must equal the pretrained tensor
    assert torch.equal(trained[f"backbone.{key}"], state[f"{prefix}{key}"])


def test_warm_start_from_an_earlier_jobs_model_tar_gz(
    ml_tree: Callable[..., Path],
    synthetic_data: Path,
    tmp_path: Path,
    tiny_hp: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The first job trains from scratch; its model.tar.gz, as SageMaker packs it, is the second
    # job's pretrained channel (training.warm_start: last-approved), recorded in its metadata.
    hp = {**tiny_hp, "max_steps": "1"}
    first = ml_tree(hp, {"training": synthetic_data / "train"})
    env = {
        "SAGEMAKER_BASE_DIR": str(first),
        "TRAINING_JOB_NAME": "job-1",
        "SOURCE_COMMIT": "abc1234",
    }
    assert run(env) == 0
    assert json.loads((first / "model" / "metadata.json").read_text())["pretrained"] is None
    (tmp_path / "approved").mkdir()
    with tarfile.open(tmp_path / "approved" / "model.tar.gz", "w:gz") as archive:
        for path in sorted((first / "model").iterdir()):
            archive.add(path, arcname=path.name)
    second = ml_tree(
        hp, {"training": synthetic_data / "train", "pretrained": tmp_path / "approved"}, "ml2"
    )
    capsys.readouterr()
    assert run({"SAGEMAKER_BASE_DIR": str(second), "TRAINING_JOB_NAME": "job-2"}) == 0
    assert re.search(r"pretrained=model.tar.gz kind=full_model loaded=\d+ skipped=0 missing=0",
                     capsys.readouterr().err)  # fmt: skip
    recorded = json.loads((second / "model" / "metadata.json").read_text())["pretrained"]
    assert recorded["file"] == "model.tar.gz"
    assert recorded["training_job_name"] == "job-1"
    assert recorded["source_commit"] == "abc1234"
    assert recorded["loaded"] > 0 and recorded["skipped"] == recorded["missing"] == 0


def test_pennfudan_layout_trains(
    ml_tree: Callable[..., Path], tmp_path: Path, tiny_hp: dict[str, str]
) -> None:
    root = tmp_path / "penn"
    (root / "PNGImages").mkdir(parents=True)
    (root / "PedMasks").mkdir()
    rng = np.random.default_rng(1)
    for i in (1, 2):
        Image.fromarray(rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)).save(
            root / "PNGImages" / f"FudanPed{i:05d}.png"
        )
        mask = np.zeros((64, 80), dtype=np.uint8)
        mask[4:50, 6:30] = 1
        mask[10:60, 40:75] = 2
        Image.fromarray(mask).save(root / "PedMasks" / f"FudanPed{i:05d}_mask.png")
    base = ml_tree({**tiny_hp, "max_steps": "1"}, {"training": root, "validation": root})
    assert run({"SAGEMAKER_BASE_DIR": str(base)}) == 0
    metadata = json.loads((base / "model" / "metadata.json").read_text())
    assert metadata["categories"] == [{"id": 1, "name": "person", "label": 1}]
    assert "segm_mAP" in json.loads((base / "model" / "metrics.json").read_text())


def test_max_seconds_budget_stops_cleanly_with_checkpoint_model_and_metrics(
    ml_tree: Callable[..., Path], synthetic_data: Path, tiny_hp: dict[str, str]
) -> None:
    hyperparameters = {
        **tiny_hp,
        "epochs": "1000",  # only the budget can end this job
        "max_seconds": "0.5",
        "optimizer": "adamw",
        "lr": "0.001",
        "lr_schedule": "cosine",
        "anchor_sizes": "auto",
    }
    base = ml_tree(hyperparameters, {"training": synthetic_data / "train"})
    assert run({"SAGEMAKER_BASE_DIR": str(base)}) == 0
    metrics = json.loads((base / "model" / "metrics.json").read_text())
    assert metrics["train_seconds"] >= 0.5
    assert 1 <= metrics["steps"] < 1000 * 2  # stopped by the budget, not by the epochs
    assert list((base / "checkpoints").glob("checkpoint-*.pth"))
    assert not (base / "output" / "failure").exists()
    metadata = json.loads((base / "model" / "metadata.json").read_text())
    assert metadata["hyperparameters"]["max_seconds"] == "0.5"
    sizes = metadata["model"]["anchor_sizes"]  # resolved from the boxes, for serve to rebuild
    assert len(sizes) == 5 and sizes[0] < 32
