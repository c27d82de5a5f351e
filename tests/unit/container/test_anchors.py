from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from mask_r_cnn.anchors import derive_anchor_sizes, object_sizes
from mask_r_cnn.data import load_channel
from mask_r_cnn.hyperparams import parse_hyperparameters
from mask_r_cnn.model import DEFAULT_ANCHOR_SIZES
from mask_r_cnn.recipe import build_spec


def test_auto_anchors_double_per_level_and_cover_the_objects(synthetic_root: Path) -> None:
    index = load_channel(synthetic_root / "train", "training")
    sides = sorted(object_sizes(index, 96, 96))
    assert len(sides) == index.num_instances
    sizes = derive_anchor_sizes(index, 96, 96)
    assert len(sizes) == 5
    assert all(b == pytest.approx(2 * a, abs=1) for a, b in itertools.pairwise(sizes))
    # the synthetic shapes are 10-60 px: the smallest anchor fits them, not the 32 px default
    assert sides[0] * 0.5 <= sizes[0] <= sides[len(sides) // 2] < DEFAULT_ANCHOR_SIZES[0] * 2
    assert sizes[-1] >= sides[-1] * 0.9


def test_auto_anchors_scale_with_the_model_resize(synthetic_root: Path) -> None:
    index = load_channel(synthetic_root / "train", "training")
    small = derive_anchor_sizes(index, 96, 96)
    large = derive_anchor_sizes(index, 192, 192)
    assert large[0] == pytest.approx(2 * small[0], abs=1)


def test_spec_resolves_auto_anchors_and_norm(synthetic_root: Path) -> None:
    index = load_channel(synthetic_root / "train", "training")
    config = parse_hyperparameters(
        {"backbone": "resnet18_fpn", "anchor_sizes": "auto", "norm": "group_norm"}
    )
    spec = build_spec(config, index, pretrained=False)
    assert spec.anchor_sizes == derive_anchor_sizes(index, config.min_size, config.max_size)
    assert spec.norm_layer == "group_norm"
    default = build_spec(parse_hyperparameters({}), index, pretrained=False)
    assert default.anchor_sizes == DEFAULT_ANCHOR_SIZES
    assert default.norm_layer == "batch_norm"
