"""`anchor_sizes=auto`: anchor sizes derived from the training channel's object sizes.

The model resizes every image so that its shorter side is `min_size` (its longer side at most
`max_size`), so an object's size as the RPN sees it is its box side `sqrt(w * h)` times that
image's scale. The anchors double from one FPN level to the next, as the levels' strides do;
the smallest one is the 5th percentile of those sizes, raised when needed so that the largest
anchor reaches the 95th percentile. For the synthetic shapes at 96 px (10-60 px objects) this
gives 16-256 px, where torchvision's 32-512 px misses most objects (measured in issue 14: it
trained better on them than 8-128 px).
"""

from __future__ import annotations

import logging
import math

import numpy as np
from pycocotools import mask as mask_utils

from .data import DatasetIndex, instance_rle, pennfudan_instances
from .model import DEFAULT_ANCHOR_SIZES

logger = logging.getLogger(__name__)

LOW_PERCENTILE = 5
HIGH_PERCENTILE = 95
MIN_ANCHOR = 4


def object_sizes(index: DatasetIndex, min_size: int, max_size: int) -> list[float]:
    """Return `sqrt(w * h)` of every non-crowd box, in pixels after the model's resize."""
    sides: list[float] = []
    for record in index.images:
        scale = min(
            min_size / min(record.width, record.height), max_size / max(record.width, record.height)
        )
        if record.mask_path is not None:
            for mask in pennfudan_instances(record.mask_path):
                ys, xs = np.nonzero(mask)
                if len(xs):
                    area = (xs.max() - xs.min() + 1) * (ys.max() - ys.min() + 1)
                    sides.append(math.sqrt(float(area)) * scale)
            continue
        for instance in record.instances:
            if instance.iscrowd:
                continue
            rle = instance_rle(instance.segmentation, record.height, record.width)
            _, _, width, height = (float(v) for v in mask_utils.toBbox(rle))
            if width > 0 and height > 0:
                sides.append(math.sqrt(width * height) * scale)
    return sides


def derive_anchor_sizes(
    index: DatasetIndex, min_size: int, max_size: int, levels: int = len(DEFAULT_ANCHOR_SIZES)
) -> tuple[int, ...]:
    """Return `levels` doubling anchor sizes that cover the channel's objects.

    Args:
        index: the training channel.
        min_size: the model's `min_size`.
        max_size: the model's `max_size`.
        levels: number of sizes (one per FPN level).

    Returns:
        The sizes in pixels; torchvision's defaults when the channel has no boxes.
    """
    sides = object_sizes(index, min_size, max_size)
    if not sides:
        logger.warning("anchor_sizes=auto: no boxes in the training channel, using the defaults")
        return DEFAULT_ANCHOR_SIZES
    low, high = np.percentile(sides, [LOW_PERCENTILE, HIGH_PERCENTILE])
    smallest = max(float(low), float(high) / 2 ** (levels - 1), MIN_ANCHOR)
    sizes = tuple(round(smallest * 2**k) for k in range(levels))
    logger.info(
        "anchor_sizes=auto: %s (object sizes after resize: %d boxes, p%d %.1f px, p%d %.1f px)",
        ",".join(str(s) for s in sizes),
        len(sides),
        LOW_PERCENTILE,
        low,
        HIGH_PERCENTILE,
        high,
    )
    return sizes
