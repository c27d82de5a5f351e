"""COCO segmentations as masks: one decoder for the notebooks' figures and a local run's picture.

A COCO segmentation is a list of polygons, an uncompressed RLE (``counts`` a list) or a
compressed RLE (``counts`` bytes, or text as in JSON); the endpoint's predicted masks are
compressed RLEs with text counts.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


def annotation_mask(annotation: Mapping[str, Any], height: int, width: int) -> np.ndarray:
    """Decode an annotation's segmentation (polygons, RLE or compressed RLE) to a bool mask."""
    import numpy as np
    from pycocotools import mask as mask_utils

    segmentation = annotation.get("segmentation")
    if isinstance(segmentation, list):
        if not segmentation:
            return np.zeros((height, width), dtype=bool)
        rles = mask_utils.frPyObjects(segmentation, height, width)
        rle = mask_utils.merge(rles)
    elif isinstance(segmentation, Mapping) and isinstance(segmentation.get("counts"), list):
        rle = mask_utils.frPyObjects(dict(segmentation), height, width)
    elif isinstance(segmentation, Mapping):
        counts = segmentation["counts"]
        rle = {
            "size": list(segmentation["size"]),
            "counts": counts.encode() if isinstance(counts, str) else counts,
        }
    else:
        return np.zeros((height, width), dtype=bool)
    with warnings.catch_warnings():  # pycocotools' numpy-2 copy= deprecation
        warnings.simplefilter("ignore", DeprecationWarning)
        return np.asarray(mask_utils.decode(rle), dtype=bool)


__all__ = ["annotation_mask"]
