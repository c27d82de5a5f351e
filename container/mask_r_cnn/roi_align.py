"""RoIAlign through `grid_sample` on CPU: torchvision's values, a faster backward pass.

torchvision's CPU `roi_align` backward walks every sampling point of every RoI in one thread;
measured on 2 cores it was a sixth of a training step of the demo model. The same bilinear
samples taken with `torch.nn.functional.grid_sample` (vectorised in both directions) give
torchvision's numbers (`aligned=False`, a fixed `sampling_ratio`) in about half the time.
`GridRoIAlign` is torchvision's `MultiScaleRoIAlign` with this path for CPU tensors; on other
devices, or with an adaptive `sampling_ratio` (0 or less), it is torchvision's unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.poolers import _convert_to_roi_format, _filter_input, _setup_scales


def _axis(
    start: torch.Tensor, length: torch.Tensor, bins: int, samples: int, size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sampling points of each RoI along one axis, as `grid_sample` coordinates, and a mask.

    torchvision's rule: a point beyond one pixel outside the map reads 0; one within it reads
    the nearest border row (grid_sample's border padding does that part).
    """
    steps = (torch.arange(bins * samples, dtype=start.dtype, device=start.device) + 0.5) / (
        bins * samples
    )
    points = start[:, None] + length[:, None] * steps[None]  # (rois, bins * samples)
    inside = ((points >= -1.0) & (points <= size)).to(start.dtype)
    scale = 2.0 / (size - 1) if size > 1 else 0.0  # align_corners=True: pixel k is at k
    return points * scale - (1.0 if size > 1 else 0.0), inside


def roi_align_grid(
    features: torch.Tensor,
    rois: torch.Tensor,
    output_size: tuple[int, int],
    spatial_scale: float,
    sampling_ratio: int,
) -> torch.Tensor:
    """torchvision's `roi_align(..., aligned=False)` for a fixed `sampling_ratio` > 0.

    Args:
        features: (N, C, H, W) feature maps.
        rois: (K, 5) rows of (image index, x1, y1, x2, y2) in image pixels.
        output_size: (height, width) bins.
        spatial_scale: feature map size / image size.
        sampling_ratio: sampling points per bin side.

    Returns:
        (K, C, height, width) pooled features, float32.
    """
    features = features.float()
    out_h, out_w = output_size
    count, channels = rois.shape[0], features.shape[1]
    height, width = features.shape[-2:]
    pooled = features.new_zeros((count, channels, out_h, out_w))
    boxes = rois[:, 1:].float() * spatial_scale
    for image in range(features.shape[0]):
        rows = torch.where(rois[:, 0] == image)[0]
        if rows.numel() == 0:
            continue
        x1, y1, x2, y2 = boxes[rows].unbind(1)
        gx, in_x = _axis(x1, (x2 - x1).clamp(min=1.0), out_w, sampling_ratio, width)
        gy, in_y = _axis(y1, (y2 - y1).clamp(min=1.0), out_h, sampling_ratio, height)
        k, ph, pw = rows.numel(), out_h * sampling_ratio, out_w * sampling_ratio
        grid = torch.stack([gx[:, None, :].expand(k, ph, pw), gy[:, :, None].expand(k, ph, pw)], -1)
        values = F.grid_sample(
            features[image : image + 1],
            grid.reshape(1, k * ph, pw, 2),
            mode="bilinear",
            padding_mode="border",
            align_corners=True,
        ).reshape(channels, k, ph, pw)
        values = values * (in_y[:, :, None] * in_x[:, None, :])[None]
        values = values.reshape(channels, k, out_h, sampling_ratio, out_w, sampling_ratio)
        pooled[rows] = values.mean(dim=(3, 5)).transpose(0, 1)
    return pooled


class GridRoIAlign(MultiScaleRoIAlign):  # type: ignore[misc]  # torchvision ships no types
    """torchvision's `MultiScaleRoIAlign` (same levels, scales and output), on CPU via
    `roi_align_grid`."""

    scales: list[float] | None  # set by torchvision on the first call
    map_levels: Callable[[list[torch.Tensor]], torch.Tensor] | None

    def forward(
        self,
        x: dict[str, torch.Tensor],
        boxes: list[torch.Tensor],
        image_shapes: list[tuple[int, int]],
    ) -> torch.Tensor:
        maps = _filter_input(x, self.featmap_names)
        if maps[0].device.type != "cpu" or self.sampling_ratio <= 0:
            torchvision_pooled: torch.Tensor = super().forward(x, boxes, image_shapes)
            return torchvision_pooled
        if self.scales is None or self.map_levels is None:
            self.scales, self.map_levels = _setup_scales(
                maps, image_shapes, self.canonical_scale, self.canonical_level
            )
        rois: torch.Tensor = _convert_to_roi_format(boxes)
        size = (self.output_size[0], self.output_size[1])
        levels = self.map_levels(boxes)
        result = maps[0].new_zeros((rois.shape[0], maps[0].shape[1], *size))
        for level, (features, scale) in enumerate(zip(maps, self.scales, strict=True)):
            rows = torch.where(levels == level)[0]
            if rows.numel():
                pooled = roi_align_grid(features, rois[rows], size, scale, self.sampling_ratio)
                result[rows] = pooled.to(result.dtype)
        pooled_all: torch.Tensor = result
        return pooled_all
