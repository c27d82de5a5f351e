"""The demo configuration really learns: held-out predictions of the served model reach a floor.

The test trains the configuration `make run` trains (`local.dataset` and `local.hyperparameters`
of workflow.yaml), with the `max_seconds` budget dropped so that the step count, and with it the
result, does not depend on the machine's speed. It then serves the model as `serve` does
(`Predictor` rebuilt from `metadata.json`) and scores its predictions on the held-out test split
with pycocotools at the serving threshold. The floor sits well under what the demo reaches (see
bench/results), so only a regression in learning (model, recipe, data, anchors, serving rebuild)
fails it. About 940 steps: 2 minutes on 2 quiet cores.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mask_r_cnn.data import coco_ground_truth, decode_image, load_channel
from mask_r_cnn.metrics import coco_map
from mask_r_cnn.predictor import Predictor
from mask_r_cnn.synthetic import generate

from workflow.config import load_config

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[3]

SEGM_MAP_FLOOR = 0.3  # untrained: 0; make runs measure 0.61-0.64 (test split, threshold 0.3)
BBOX_AP50_FLOOR = 0.25  # the 200-image evaluation of the same configuration: about 0.5


def test_demo_configuration_learns_to_find_the_held_out_shapes(
    tmp_path: Path, processes: Any
) -> None:
    config = load_config(REPO_ROOT / "workflow.yaml", environ={})
    dataset = config.local.dataset
    hyperparameters = {  # as `run --local` merges them, without the time budget
        **config.training.hyperparameters,
        **config.local.hyperparameters,
        "max_seconds": "0",
        "log_interval": "50",
    }
    assert int(hyperparameters.get("max_steps", "0")) > 0, "the demo must cap its steps"
    data = tmp_path / "data"
    generate(data, **dataset.model_dump(mode="json"))  # its keys are generate's arguments
    base = tmp_path / "ml"
    (base / "input" / "config").mkdir(parents=True)
    (base / "input" / "config" / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    (base / "input" / "data").mkdir()
    for channel, split in (("training", "train"), ("validation", "validation")):
        (data / split).rename(base / "input" / "data" / channel)

    result = processes.run_train(base, timeout=900)

    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((base / "model" / "metrics.json").read_text())
    assert metrics["steps"] == int(hyperparameters["max_steps"])
    predictor = Predictor(base / "model")
    assert predictor.spec.anchor_sizes[0] < 32  # anchors fit the 10-60 px shapes
    test = load_channel(data / "test", "test")
    detections = []
    for record in test.images:
        for found in predictor.predict(decode_image(record.path), predictor.default_threshold):
            x1, y1, x2, y2 = found["box"]
            detections.append(
                {
                    "image_id": record.id,
                    "category_id": found["label"],  # serving answers with COCO category ids
                    "score": found["score"],
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "segmentation": found["mask"],
                }
            )
    scores = coco_map(coco_ground_truth(test), detections)
    assert scores["segm_mAP"] >= SEGM_MAP_FLOOR, (scores, metrics)
    assert scores["bbox_AP50"] >= BBOX_AP50_FLOOR, (scores, metrics)
