"""Training and validation data: decoded images and masks as torchvision detection samples.

The channel side lives in its own modules: `dataset_index` (what a validated channel is:
`DatasetIndex` and its records), `annotation_checks` (the checks of values and image files) and
`channels` (`load_channel`: COCO or PennFudan, validated without decoding pixels). This module
decodes (`decode_image`, `instance_rle`, `decode_rles`, `pennfudan_instances`), builds the COCO
ground truth for evaluation (`coco_ground_truth`) and the `MaskDataset` training iterates; it
re-exports the channel names, so `from mask_r_cnn.data import load_channel` keeps working.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from pycocotools import mask as mask_utils

from .channels import load_channel
from .dataset_index import (
    ANNOTATIONS_FILE,
    PENNFUDAN_IMAGES,
    PENNFUDAN_MASKS,
    Category,
    DatasetIndex,
    ImageRecord,
    Instance,
    Segmentation,
    check_compatible,
    labels_for,
)
from .errors import DataError
from .transforms import Target, boxes_from_masks, image_to_tensor


def decode_image(path: Path) -> Image.Image:
    """Decode an image file fully.

    Raises:
        DataError: the file is truncated or cannot be decoded.
    """
    try:
        with Image.open(path) as image:
            image.load()
            return image.copy()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(
            f"image {path} cannot be decoded ({exc}); replace it with a valid JPEG or PNG or "
            "remove it from the data set."
        ) from exc


def instance_rle(segmentation: Segmentation, height: int, width: int) -> dict[str, Any]:
    """Return the compressed RLE of a polygon list or an RLE segmentation."""
    if isinstance(segmentation, dict):
        counts = segmentation["counts"]
        if isinstance(counts, list):
            return mask_utils.frPyObjects(segmentation, height, width)  # type: ignore[no-any-return]
        return {"size": segmentation["size"], "counts": counts.encode("ascii")}
    return mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))  # type: ignore[no-any-return]


def decode_rles(rles: list[dict[str, Any]]) -> np.ndarray:
    """Decode RLEs to a `[H, W, N]` uint8 array."""
    with warnings.catch_warnings():
        # pycocotools 2.0.x calls np.array(copy=False) on NumPy 2; harmless, but noisy.
        warnings.simplefilter("ignore", DeprecationWarning)
        return mask_utils.decode(rles)  # type: ignore[no-any-return]


def pennfudan_instances(mask_path: Path) -> np.ndarray:
    """Return the instance masks `[N, H, W]` (bool) of a PennFudan mask file."""
    mask = np.asarray(decode_image(mask_path))
    if mask.ndim == 3:
        mask = mask[..., 0]
    ids = [v for v in np.unique(mask) if v != 0]
    if not ids:
        return np.zeros((0, *mask.shape), dtype=bool)
    return np.stack([mask == v for v in ids])


def coco_ground_truth(index: DatasetIndex) -> dict[str, Any]:
    """Return the COCO ground-truth dict of a channel (RLE masks), for pycocotools."""
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for record in index.images:
        images.append({"id": record.id, "width": record.width, "height": record.height})
        if record.mask_path is not None:
            masks = pennfudan_instances(record.mask_path)
            rles = [
                (
                    index.categories[0].id,
                    mask_utils.encode(np.asfortranarray(m.astype(np.uint8))),
                    False,
                )
                for m in masks
            ]
        else:
            rles = [
                (
                    inst.category_id,
                    instance_rle(inst.segmentation, record.height, record.width),
                    inst.iscrowd,
                )
                for inst in record.instances
            ]
        for category_id, rle, crowd in rles:
            area = float(mask_utils.area(rle))
            if area <= 0:
                continue
            box = [float(v) for v in mask_utils.toBbox(rle)]
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": record.id,
                    "category_id": category_id,
                    "segmentation": rle,
                    "area": area,
                    "bbox": box,
                    "iscrowd": int(crowd),
                }
            )
    categories = [{"id": c.id, "name": c.name} for c in index.categories]
    return {"images": images, "annotations": annotations, "categories": categories}


class MaskDataset(torch.utils.data.Dataset[tuple[torch.Tensor, Target]]):
    """Decoded samples of a `DatasetIndex` as torchvision detection `(image, target)` pairs.

    Crowd regions and instances whose mask is empty are left out of the training targets.
    """

    def __init__(
        self,
        index: DatasetIndex,
        label_of: dict[int, int],
        augment: Callable[[torch.Tensor, Target], tuple[torch.Tensor, Target]] | None = None,
    ) -> None:
        """Wrap `index`, mapping category ids through `label_of`, with optional `augment`."""
        self.index = index
        self.label_of = label_of
        self.augment = augment

    def __len__(self) -> int:
        """Number of images."""
        return len(self.index.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, Target]:
        """Decode image `i` and build its target."""
        record = self.index.images[i]
        image = image_to_tensor(decode_image(record.path))
        height, width = image.shape[-2:]
        if record.mask_path is not None:
            masks_np = pennfudan_instances(record.mask_path)
            labels = [self.label_of[self.index.categories[0].id]] * len(masks_np)
        else:
            kept = [inst for inst in record.instances if not inst.iscrowd]
            labels = [self.label_of[inst.category_id] for inst in kept]
            if kept:
                rles = [instance_rle(inst.segmentation, height, width) for inst in kept]
                masks_np = np.moveaxis(decode_rles(rles), -1, 0).astype(bool)
            else:
                masks_np = np.zeros((0, height, width), dtype=bool)
        masks = torch.from_numpy(np.ascontiguousarray(masks_np, dtype=np.uint8))
        boxes = boxes_from_masks(masks)
        keep = (boxes[:, 2] - boxes[:, 0] >= 1) & (boxes[:, 3] - boxes[:, 1] >= 1)
        target: Target = {
            "boxes": boxes[keep],
            "labels": torch.tensor(labels, dtype=torch.int64).reshape(-1)[keep],
            "masks": masks[keep],
            "image_id": record.id,
        }
        if self.augment is not None:
            image, target = self.augment(image, target)
        return image, target


def collate(
    batch: Sequence[tuple[torch.Tensor, Target]],
) -> tuple[tuple[torch.Tensor, ...], tuple[Target, ...]]:
    """Keep a batch as a tuple of images and a tuple of targets (images differ in size)."""
    images, targets = zip(*batch, strict=True)
    return tuple(images), tuple(targets)


__all__ = [
    "ANNOTATIONS_FILE",
    "PENNFUDAN_IMAGES",
    "PENNFUDAN_MASKS",
    "Category",
    "DatasetIndex",
    "ImageRecord",
    "Instance",
    "MaskDataset",
    "Segmentation",
    "check_compatible",
    "coco_ground_truth",
    "collate",
    "decode_image",
    "decode_rles",
    "instance_rle",
    "labels_for",
    "load_channel",
    "pennfudan_instances",
]
