"""What a validated channel is: its categories, images and instances, nothing decoded.

`DatasetIndex` is what `channels.load_channel` returns and what training, the anchor check and
the COCO evaluation read; torch-free.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .errors import DataError

ANNOTATIONS_FILE = "annotations.json"
PENNFUDAN_IMAGES = "PNGImages"
PENNFUDAN_MASKS = "PedMasks"
PENNFUDAN_CATEGORY_ID = 1
PENNFUDAN_CATEGORY_NAME = "person"

# Ids become int64 tensors and COCO evaluation keys; sizes are pixels; coordinates become floats.
MAX_ID = 2**63 - 1
MAX_SIDE = 2**31 - 1
MAX_COORDINATE = 2.0**53

Segmentation = list[list[float]] | dict[str, Any]


@dataclass(frozen=True)
class Category:
    """A COCO category; `label` is its contiguous model label (1..K, 0 is background)."""

    id: int
    name: str


@dataclass(frozen=True)
class Instance:
    """One annotated object of an image."""

    category_id: int
    segmentation: Segmentation
    iscrowd: bool = False


@dataclass(frozen=True)
class ImageRecord:
    """One image of a channel and its instances (PennFudan images carry a mask file instead)."""

    id: int
    path: Path
    width: int
    height: int
    instances: tuple[Instance, ...] = ()
    mask_path: Path | None = None


@dataclass(frozen=True)
class DatasetIndex:
    """A validated channel: its categories and images, nothing decoded yet."""

    root: Path
    layout: Literal["coco", "pennfudan"]
    categories: tuple[Category, ...]
    images: tuple[ImageRecord, ...]
    label_of: dict[int, int] = field(default_factory=dict)

    @property
    def num_instances(self) -> int:
        """Number of annotated instances (PennFudan counts are only known after decoding)."""
        return sum(len(r.instances) for r in self.images)


def labels_for(categories: Sequence[Category]) -> dict[int, int]:
    """Map category ids to contiguous labels 1..K in ascending id order."""
    return {c.id: i + 1 for i, c in enumerate(sorted(categories, key=lambda c: c.id))}


def check_compatible(training: DatasetIndex, validation: DatasetIndex) -> None:
    """Make sure the validation categories are a subset of the training ones.

    Raises:
        DataError: a validation category id is unknown to training or has another name.
    """
    known = {c.id: c.name for c in training.categories}
    for cat in validation.categories:
        if known.get(cat.id) != cat.name:
            raise DataError(
                f"validation category {cat.id} ({cat.name!r}) does not match the training "
                f"categories {sorted(known.items())}; use the same category ids and names in "
                "both channels."
            )
