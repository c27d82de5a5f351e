"""Image conversion and training augmentation shared by `train` and `serve`.

Both programs turn any decoded image (RGB, grayscale, palette, 16-bit, with alpha) into the same
float tensor `[3, H, W]` in `[0, 1]`, so a model sees the same pixels in training and serving.
The model itself normalises and resizes (torchvision's `GeneralizedRCNNTransform`).
"""

from __future__ import annotations

from typing import Any, TypedDict

import numpy as np
import torch
from PIL import Image
from pycocotools import mask as mask_utils


class Target(TypedDict):
    """A torchvision detection target for one image."""

    boxes: torch.Tensor  # float32 [N, 4], x1 y1 x2 y2 in pixels
    labels: torch.Tensor  # int64 [N], contiguous 1..K
    masks: torch.Tensor  # uint8 [N, H, W]
    image_id: int


def to_rgb(image: Image.Image) -> Image.Image:
    """Return `image` as 8-bit RGB (grayscale, palette, alpha and 16-bit images included).

    Args:
        image: a decoded PIL image.

    Returns:
        An RGB image of the same size.
    """
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if image.mode.startswith("I;16") else max(float(array.max()), 1.0)
        scaled = np.clip(array / peak * 255.0, 0, 255).astype(np.uint8)
        return Image.fromarray(scaled).convert("RGB")
    return image.convert("RGB")


def image_to_tensor(image: Image.Image) -> torch.Tensor:
    """Convert a PIL image to a float tensor `[3, H, W]` in `[0, 1]`."""
    array = np.array(to_rgb(image), dtype=np.uint8)  # writable copy for torch
    return torch.from_numpy(array).permute(2, 0, 1).to(torch.float32).div_(255.0)


def boxes_from_masks(masks: torch.Tensor) -> torch.Tensor:
    """Return the tight `[x1, y1, x2, y2]` box of each mask (`[N, H, W]` → `[N, 4]`)."""
    if masks.shape[0] == 0:
        return torch.zeros((0, 4), dtype=torch.float32)
    boxes = torch.zeros((masks.shape[0], 4), dtype=torch.float32)
    rows = masks.any(dim=2)
    cols = masks.any(dim=1)
    for i in range(masks.shape[0]):
        ys = torch.nonzero(rows[i]).flatten()
        xs = torch.nonzero(cols[i]).flatten()
        if len(xs) and len(ys):
            boxes[i] = torch.tensor(
                [xs[0].item(), ys[0].item(), xs[-1].item() + 1, ys[-1].item() + 1],
                dtype=torch.float32,
            )
    return boxes


def horizontal_flip(image: torch.Tensor, target: Target) -> tuple[torch.Tensor, Target]:
    """Flip an image tensor and its target left-right."""
    width = image.shape[-1]
    boxes = target["boxes"].clone()
    if boxes.numel():
        boxes[:, [0, 2]] = width - target["boxes"][:, [2, 0]]
    flipped: Target = {
        "boxes": boxes,
        "labels": target["labels"],
        "masks": target["masks"].flip(-1),
        "image_id": target["image_id"],
    }
    return image.flip(-1), flipped


class TrainAugment:
    """Random horizontal flip with probability `p`, drawn from a seeded generator."""

    def __init__(self, p: float = 0.5) -> None:
        """Create the augmentation; `p` is the flip probability."""
        self.p = p

    def __call__(
        self, image: torch.Tensor, target: Target, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, Target]:
        """Apply the augmentation to one sample."""
        if torch.rand((), generator=generator).item() < self.p:
            return horizontal_flip(image, target)
        return image, target


def masks_to_rles(masks: torch.Tensor, threshold: float = 0.5) -> list[dict[str, Any]]:
    """Encode soft masks `[N, 1, H, W]` (or `[N, H, W]`) as COCO RLEs with string counts.

    Args:
        masks: mask probabilities in image coordinates (torchvision's `masks` output).
        threshold: pixels above it belong to the object.

    Returns:
        One `{"size": [h, w], "counts": str}` per mask.
    """
    if masks.ndim == 4:
        masks = masks[:, 0]
    if masks.shape[0] == 0:
        return []
    binary = (masks > threshold).to(torch.uint8).cpu().numpy()
    # pycocotools wants [H, W, N] in Fortran order, which is [N, W, H] in C order: one copy.
    fortran = np.ascontiguousarray(binary.transpose(0, 2, 1)).T
    rles = mask_utils.encode(fortran)
    return [
        {"size": [int(s) for s in r["size"]], "counts": r["counts"].decode("ascii")} for r in rles
    ]
