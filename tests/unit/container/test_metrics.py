from __future__ import annotations

import numpy as np
from mask_r_cnn.metrics import coco_map, per_category_ap, validation_curve
from pycocotools import mask as mask_utils


def _rle(y0: int, y1: int, x0: int, x1: int) -> dict[str, object]:
    mask = np.zeros((20, 20), dtype=np.uint8)
    mask[y0:y1, x0:x1] = 1
    rle = mask_utils.encode(np.asfortranarray(mask))
    return {"size": [20, 20], "counts": rle["counts"].decode()}


def _truth() -> dict[str, object]:
    annotations = [
        {
            "id": 1,
            "image_id": 1,
            "category_id": 1,
            "segmentation": _rle(2, 10, 2, 10),
            "area": 64.0,
            "bbox": [2, 2, 8, 8],
            "iscrowd": 0,
        },
        {
            "id": 2,
            "image_id": 1,
            "category_id": 2,
            "segmentation": _rle(12, 18, 5, 15),
            "area": 60.0,
            "bbox": [5, 12, 10, 6],
            "iscrowd": 0,
        },
    ]
    return {
        "images": [{"id": 1, "width": 20, "height": 20}],
        "annotations": annotations,
        "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
    }


def test_perfect_detections_score_one() -> None:
    truth = _truth()
    detections = [
        {
            "image_id": 1,
            "category_id": a["category_id"],
            "score": 0.9,
            "bbox": a["bbox"],
            "segmentation": a["segmentation"],
        }
        for a in truth["annotations"]  # type: ignore[union-attr]
    ]
    metrics = coco_map(truth, detections)
    assert metrics["bbox_mAP"] > 0.99 and metrics["segm_mAP"] > 0.99
    assert metrics["segm_AP50"] > 0.99


def test_wrong_class_scores_zero_and_no_detections_are_zero() -> None:
    truth = _truth()
    wrong = [
        {
            "image_id": 1,
            "category_id": 2,
            "score": 0.9,
            "bbox": [2, 2, 8, 8],
            "segmentation": _rle(2, 10, 2, 10),
        }
    ]
    assert coco_map(truth, wrong)["segm_mAP"] == 0.0
    assert coco_map(truth, []) == {k: 0.0 for k in coco_map(truth, [])}
    assert set(coco_map(truth, [])) == {
        f"{t}_{n}" for t in ("bbox", "segm") for n in ("mAP", "AP50", "AP75")
    }


def test_pycocotools_tables_do_not_reach_stdout(capsys: object) -> None:
    truth = _truth()
    det = [
        {
            "image_id": 1,
            "category_id": 1,
            "score": 0.5,
            "bbox": [2, 2, 8, 8],
            "segmentation": _rle(2, 10, 2, 10),
        }
    ]
    coco_map(truth, det)
    assert capsys.readouterr().out == ""  # type: ignore[attr-defined]


def test_per_category_ap_scores_each_category_on_its_own() -> None:
    truth = _truth()
    first = truth["annotations"][0]  # type: ignore[index]
    found_a_only = [
        {
            "image_id": 1,
            "category_id": 1,
            "score": 0.9,
            "bbox": first["bbox"],
            "segmentation": first["segmentation"],
        }
    ]
    rows = per_category_ap(truth, found_a_only)
    assert [(r["name"], r["instances"]) for r in rows] == [("a", 1), ("b", 1)]
    assert rows[0]["segm_AP"] > 0.99 and rows[0]["bbox_AP"] > 0.99
    assert rows[1]["segm_AP"] == 0.0 and rows[1]["bbox_AP"] == 0.0
    assert per_category_ap(truth, [])[0]["segm_AP"] == 0.0


def test_validation_curve_reads_the_training_log() -> None:
    log = (
        "2026-12-03 01:21:10,772 INFO validation: bbox_mAP=0.0276 segm_mAP=0.0192 "
        "bbox_AP50=0.0530 segm_AP50=0.0452 epoch=1 train_seconds=67.9\n"
        "2026-12-03 01:21:11,000 INFO epoch=2 step=60 loss=0.9 lr=0.001\n"
        "2026-12-03 01:23:02,522 INFO validation: bbox_mAP=0.1177 segm_mAP=0.1099 "
        "bbox_AP50=0.0825 segm_AP50=0.0508 epoch=2 train_seconds=135.1\n"
    )
    assert validation_curve(log) == [
        {"epoch": 1, "train_seconds": 67.9, "segm_mAP": 0.0192, "bbox_mAP": 0.0276},
        {"epoch": 2, "train_seconds": 135.1, "segm_mAP": 0.1099, "bbox_mAP": 0.1177},
    ]
