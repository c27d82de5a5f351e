"""`GridRoIAlign` gives torchvision's `MultiScaleRoIAlign` values and gradients on CPU."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from mask_r_cnn.roi_align import GridRoIAlign, roi_align_grid
from torchvision.ops import MultiScaleRoIAlign, roi_align

IMAGE = (96, 88)  # (height, width) of the batch after padding


def _maps(channels: int = 5) -> OrderedDict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return OrderedDict(
        (str(level), torch.randn(3, channels, 24 >> level, 22 >> level, generator=generator))
        for level in range(4)
    )


def _boxes() -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    corner = torch.rand(40, 2, generator=generator) * torch.tensor([80.0, 90.0])
    size = torch.rand(40, 2, generator=generator) * 60 + 0.3  # under a pixel to most of it
    boxes = torch.cat([corner, corner + size], dim=1)
    edge = torch.tensor([[0.0, 0.0, 88.0, 96.0], [85.0, 90.0, 88.0, 96.0], [2.0, 3.0, 2.5, 3.2]])
    # image 0: many boxes on every level; image 1: none; image 2: the image's edges, tiny boxes
    return [boxes, torch.zeros(0, 4), edge]


@pytest.mark.parametrize(("output", "sampling_ratio"), [(7, 1), (7, 2), (14, 1), (14, 2)])
def test_pooled_values_and_gradients_are_torchvisions(output: int, sampling_ratio: int) -> None:
    names = ["0", "1", "2", "3"]
    outputs, gradients = [], []
    # canonical_scale 24 spreads these boxes over all four levels (224 would put all on the first)
    for pool in (
        MultiScaleRoIAlign(names, output, sampling_ratio, canonical_scale=24),
        GridRoIAlign(names, output, sampling_ratio, canonical_scale=24),
    ):
        maps = OrderedDict((k, v.clone().requires_grad_()) for k, v in _maps().items())
        pooled = pool(maps, _boxes(), [IMAGE] * 3)
        weights = torch.linspace(-1, 1, pooled.numel()).reshape(pooled.shape)
        (pooled * weights).sum().backward()
        assert pool.map_levels is not None
        assert set(pool.map_levels(_boxes()).tolist()) == {0, 1, 2, 3}
        outputs.append(pooled.detach())
        # a level no RoI maps to gets no gradient here, zeros from torchvision: the same step
        gradients.append([torch.zeros_like(m) if m.grad is None else m.grad for m in maps.values()])
    assert outputs[0].shape == (43, 5, output, output)
    torch.testing.assert_close(outputs[1], outputs[0], rtol=1e-5, atol=1e-5)
    for grid_grad, torchvision_grad in zip(gradients[1], gradients[0], strict=True):
        torch.testing.assert_close(grid_grad, torchvision_grad, rtol=1e-4, atol=1e-4)


def test_points_outside_the_map_read_zero_as_torchvisions() -> None:
    features = torch.randn(1, 2, 6, 6)
    rois = torch.tensor([[0.0, -20.0, -20.0, 3.0, 3.0], [0.0, 4.0, 5.0, 30.0, 40.0]])
    expected = roi_align(features, rois, (3, 3), spatial_scale=1.0, sampling_ratio=2)
    found = roi_align_grid(features, rois, (3, 3), spatial_scale=1.0, sampling_ratio=2)
    assert (expected == 0).any()  # the test reaches outside the map
    torch.testing.assert_close(found, expected, rtol=1e-5, atol=1e-5)


def test_adaptive_sampling_ratio_is_torchvisions_own_path() -> None:
    maps, boxes = _maps(), _boxes()
    expected = MultiScaleRoIAlign(["0", "1"], 7, 0)(maps, boxes, [IMAGE] * 3)
    torch.testing.assert_close(GridRoIAlign(["0", "1"], 7, 0)(maps, boxes, [IMAGE] * 3), expected)
