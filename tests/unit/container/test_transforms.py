from __future__ import annotations

import numpy as np
import pytest
import torch
from mask_r_cnn.transforms import (
    boxes_from_masks,
    horizontal_flip,
    image_to_tensor,
    masks_to_rles,
    to_rgb,
)
from PIL import Image
from pycocotools import mask as mask_utils


@pytest.mark.parametrize("mode", ["RGB", "L", "LA", "RGBA", "P", "I;16", "I", "1"])
def test_every_image_mode_becomes_rgb(mode: str) -> None:
    image = Image.new(mode, (5, 3))
    rgb = to_rgb(image)
    assert rgb.mode == "RGB" and rgb.size == (5, 3)


def test_16_bit_grayscale_is_scaled_not_clipped() -> None:
    array = np.full((2, 2), 65535, dtype=np.uint16)
    image = Image.fromarray(array)
    assert image.mode == "I;16"
    assert image_to_tensor(image).max().item() == pytest.approx(1.0)


def test_image_to_tensor_layout_and_range() -> None:
    pixels = np.zeros((3, 4, 3), dtype=np.uint8)
    pixels[1, 2] = (255, 0, 51)
    tensor = image_to_tensor(Image.fromarray(pixels))
    assert tensor.shape == (3, 3, 4) and tensor.dtype == torch.float32
    assert tensor[:, 1, 2].tolist() == pytest.approx([1.0, 0.0, 0.2])


def test_boxes_from_masks_are_tight() -> None:
    masks = torch.zeros((2, 10, 12), dtype=torch.uint8)
    masks[0, 2:5, 3:7] = 1
    masks[1, 0, 11] = 1
    assert boxes_from_masks(masks).tolist() == [[3, 2, 7, 5], [11, 0, 12, 1]]
    assert boxes_from_masks(torch.zeros((0, 4, 4))).shape == (0, 4)


def test_horizontal_flip_moves_boxes_with_masks() -> None:
    image = torch.zeros((3, 4, 10))
    masks = torch.zeros((1, 4, 10), dtype=torch.uint8)
    masks[0, 1:3, 0:3] = 1
    target = {
        "boxes": boxes_from_masks(masks),
        "labels": torch.tensor([1]),
        "masks": masks,
        "image_id": 1,
    }
    flipped_image, flipped = horizontal_flip(image, target)  # type: ignore[arg-type]
    assert flipped_image.shape == image.shape
    assert (
        flipped["boxes"].tolist() == boxes_from_masks(flipped["masks"]).tolist() == [[7, 1, 10, 3]]
    )


def test_masks_to_rles_round_trips_through_pycocotools() -> None:
    soft = torch.zeros((2, 1, 7, 9))
    soft[0, 0, 1:4, 2:8] = 0.9
    soft[1, 0, 5:, :3] = 0.6
    soft[1, 0, 0, 0] = 0.4  # below the threshold
    rles = masks_to_rles(soft)
    assert [r["size"] for r in rles] == [[7, 9], [7, 9]]
    assert all(isinstance(r["counts"], str) for r in rles)
    decoded = mask_utils.decode([{"size": r["size"], "counts": r["counts"].encode()} for r in rles])
    assert np.array_equal(decoded.transpose(2, 0, 1), (soft[:, 0] > 0.5).numpy().astype(np.uint8))
    assert masks_to_rles(torch.zeros((0, 1, 7, 9))) == []
