"""COCO bbox and segm mean average precision with pycocotools.

`coco_map(ground_truth, detections)` takes the COCO ground-truth dict of the validation channel
(`data.coco_ground_truth`) and detections in COCO result format (category ids, `[x, y, w, h]`
boxes, RLE masks) and returns `bbox_mAP`, `segm_mAP` and their AP50/AP75 variants;
`per_category_ap` splits the mAP by category. pycocotools prints its tables on stdout; they are
captured and logged at debug level instead. `validation_curve` reads the learning curve (held-out
mAP against training seconds) back from `train`'s `validation:` log lines.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

logger = logging.getLogger(__name__)

_STAT_NAMES = {0: "mAP", 1: "AP50", 2: "AP75"}
_VALIDATION_LINE = re.compile(
    r"validation: bbox_mAP=([0-9.]+) segm_mAP=([0-9.]+) .*?epoch=(\d+) train_seconds=([0-9.]+)"
)


def _coco(ground_truth: dict[str, Any]) -> COCO:
    coco = COCO()
    coco.dataset = ground_truth
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def coco_map(ground_truth: dict[str, Any], detections: list[dict[str, Any]]) -> dict[str, float]:
    """Compute COCO bbox and segm metrics.

    Args:
        ground_truth: a COCO dict with `images`, `annotations` (RLE segmentation, bbox, area,
            iscrowd) and `categories`.
        detections: COCO results: `image_id`, `category_id`, `score`, `bbox` `[x, y, w, h]`,
            `segmentation` (RLE with str counts).

    Returns:
        `{"bbox_mAP", "bbox_AP50", "bbox_AP75", "segm_mAP", "segm_AP50", "segm_AP75"}`; a
        metric that is undefined (no ground truth, no detections) is 0.0.
    """
    results = {f"{iou}_{name}": 0.0 for iou in ("bbox", "segm") for name in _STAT_NAMES.values()}
    if not detections or not ground_truth.get("annotations"):
        return results
    gt = _coco(ground_truth)
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        dt = gt.loadRes(detections)
        for iou_type in ("bbox", "segm"):
            evaluator = COCOeval(gt, dt, iouType=iou_type)
            evaluator.evaluate()
            evaluator.accumulate()
            evaluator.summarize()
            for index, name in _STAT_NAMES.items():
                results[f"{iou_type}_{name}"] = max(float(evaluator.stats[index]), 0.0)
    logger.debug("pycocotools:\n%s", log.getvalue())
    return results


def per_category_ap(
    ground_truth: dict[str, Any], detections: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Return each category's bbox and segm AP (IoU 0.50:0.95, all areas, 100 detections).

    Args:
        ground_truth: as for `coco_map`.
        detections: as for `coco_map`.

    Returns:
        `[{"category_id", "name", "instances", "bbox_AP", "segm_AP"}]` in category order; an AP
        is None where the category has no ground truth.
    """
    categories = sorted(ground_truth.get("categories", []), key=lambda c: c["id"])
    counts: dict[int, int] = {}
    for annotation in ground_truth.get("annotations", []):
        counts[annotation["category_id"]] = counts.get(annotation["category_id"], 0) + 1
    rows = [
        {
            "category_id": c["id"],
            "name": c["name"],
            "instances": counts.get(c["id"], 0),
            "bbox_AP": None if not counts.get(c["id"]) else 0.0,
            "segm_AP": None if not counts.get(c["id"]) else 0.0,
        }
        for c in categories
    ]
    if not detections or not ground_truth.get("annotations"):
        return rows
    gt = _coco(ground_truth)
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(detections)
        for iou_type in ("bbox", "segm"):
            evaluator = COCOeval(gt, dt, iouType=iou_type)
            evaluator.evaluate()
            evaluator.accumulate()
            # precision[T, R, K, A, M]: IoU thresholds, recall points, categories, area ranges
            # (0: all), max detections (-1: 100); -1 marks "no ground truth".
            precision = evaluator.eval["precision"][:, :, :, 0, -1]
            for k, category_id in enumerate(evaluator.params.catIds):
                values = precision[:, :, k]
                values = values[values > -1]
                for row in rows:
                    if row["category_id"] == category_id and row["instances"]:
                        row[f"{iou_type}_AP"] = float(np.mean(values)) if values.size else 0.0
    return rows


def validation_curve(log: str) -> list[dict[str, float]]:
    """Return `[{epoch, train_seconds, segm_mAP, bbox_mAP}]` from `train`'s validation lines."""
    points = []
    for match in _VALIDATION_LINE.finditer(log):
        bbox, segm, epoch, seconds = match.groups()
        points.append(
            {
                "epoch": int(epoch),
                "train_seconds": float(seconds),
                "segm_mAP": float(segm),
                "bbox_mAP": float(bbox),
            }
        )
    return points
