"""COCO bbox and segm mean average precision with pycocotools.

`coco_map(ground_truth, detections)` takes the COCO ground-truth dict of the validation channel
(`data.coco_ground_truth`) and detections in COCO result format (category ids, `[x, y, w, h]`
boxes, RLE masks) and returns `bbox_mAP`, `segm_mAP` and their AP50/AP75 variants.
pycocotools prints its tables on stdout; they are captured and logged at debug level instead.
"""

from __future__ import annotations

import contextlib
import io
import logging
from typing import Any

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

logger = logging.getLogger(__name__)

_STAT_NAMES = {0: "mAP", 1: "AP50", 2: "AP75"}


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
