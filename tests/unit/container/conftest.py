"""Fixtures for the container's unit tests: tiny synthetic data sets and a tiny untrained model."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers.tiny_model import write_tiny_model
from mask_r_cnn.synthetic import generate
from PIL import Image


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic COCO data set: train 6, validation 3, test 3 images of at most 96 px."""
    root = tmp_path_factory.mktemp("synthetic")
    generate(root, train=6, validation=3, test=3, size=96, seed=0)
    return root


@pytest.fixture
def coco_channel(tmp_path: Path, synthetic_root: Path) -> Callable[..., Path]:
    """Factory: copy the synthetic training split, optionally editing its annotations.json."""

    def make(edit: Callable[[dict[str, Any]], None] | None = None) -> Path:
        target = tmp_path / "channel"
        target.mkdir()
        for path in (synthetic_root / "train").iterdir():
            (target / path.name).write_bytes(path.read_bytes())
        if edit is not None:
            doc = json.loads((target / "annotations.json").read_text())
            edit(doc)
            (target / "annotations.json").write_text(json.dumps(doc))
        return target

    return make


def write_pennfudan(root: Path, count: int = 2, size: tuple[int, int] = (80, 64)) -> Path:
    """Write a tiny PennFudan tree: PNGImages/FudanPedN.png and PedMasks/FudanPedN_mask.png."""
    (root / "PNGImages").mkdir(parents=True)
    (root / "PedMasks").mkdir()
    rng = np.random.default_rng(0)
    width, height = size
    for i in range(1, count + 1):
        pixels = rng.integers(0, 255, size=(height, width, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / "PNGImages" / f"FudanPed{i:05d}.png")
        mask = np.zeros((height, width), dtype=np.uint8)
        mask[5:40, 5:25] = 1
        mask[10:60, 40:70] = 2
        Image.fromarray(mask).save(root / "PedMasks" / f"FudanPed{i:05d}_mask.png")
    return root


@pytest.fixture
def pennfudan_tree() -> Callable[..., Path]:
    """Factory: `pennfudan_tree(root, count=2)` writes a tiny PennFudan tree."""
    return write_pennfudan


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model/ folder (untrained tiny network) as `train` writes it, for the predictor tests."""
    return write_tiny_model(
        tmp_path_factory.mktemp("model"), categories={1: "circle", 2: "square", 7: "triangle"}
    )
