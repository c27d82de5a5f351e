"""An untrained tiny Mask R-CNN written as the container's `train` writes its model."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from mask_r_cnn.model import ModelSpec, build_model

from helpers import TINY_ARCHITECTURE

TINY_SPEC = ModelSpec(
    backbone=TINY_ARCHITECTURE["backbone"],
    **{key: int(value) for key, value in TINY_ARCHITECTURE.items() if key != "backbone"},
    num_classes=4,
    min_size=64,
    max_size=96,
    fast=True,
    detections_per_image=5,
    norm_layer="batch_norm",
)
CATEGORIES = {1: "circle", 2: "square", 3: "triangle"}  # COCO id -> name, labels 1, 2, 3


def write_tiny_model(
    model_dir: Path,
    *,
    categories: dict[int, str] = CATEGORIES,
    source_commit: str = "abc1234",
    training_job_name: str = "unit-test",
) -> Path:
    """Write `model.pth` (seeded, so always the same weights) and `metadata.json` to `model_dir`."""
    model_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.save(build_model(TINY_SPEC).state_dict(), model_dir / "model.pth")
    metadata = {
        "format": 1,
        "model": TINY_SPEC.to_dict(),
        "categories": [
            {"id": category, "name": name, "label": label}
            for label, (category, name) in enumerate(categories.items(), start=1)
        ],
        "score_threshold": 0.5,
        "source_commit": source_commit,
        "training_job_name": training_job_name,
    }
    (model_dir / "metadata.json").write_text(json.dumps(metadata))
    return model_dir
