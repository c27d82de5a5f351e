from __future__ import annotations

from pathlib import Path

from bench import demo_learning

LOG = """\
2026-12-03 01:21:09,002 INFO epoch=1 step=50 train_loss=1.9106 epoch_seconds=67.9
2026-12-03 01:21:10,772 INFO validation: bbox_mAP=0.0276 segm_mAP=0.0192 bbox_AP50=0.0530 \
segm_AP50=0.0452 epoch=1 train_seconds=67.9
2026-12-03 01:23:02,522 INFO validation: bbox_mAP=0.1177 segm_mAP=0.1099 bbox_AP50=0.0825 \
segm_AP50=0.0508 epoch=2 train_seconds=135.1
"""


def test_learning_curve_reads_the_validation_lines() -> None:
    curve = demo_learning.learning_curve(LOG)
    assert curve == [
        {"epoch": 1, "train_seconds": 67.9, "segm_mAP": 0.0192, "bbox_mAP": 0.0276},
        {"epoch": 2, "train_seconds": 135.1, "segm_mAP": 0.1099, "bbox_mAP": 0.1177},
    ]


def test_demo_configuration_is_what_run_local_sends() -> None:
    hyperparameters, sizes = demo_learning.demo_configuration(Path(__file__).parents[3])
    assert hyperparameters["backbone"] == "resnet18_fpn"  # local over training.hyperparameters
    assert sizes["train"] >= 100
