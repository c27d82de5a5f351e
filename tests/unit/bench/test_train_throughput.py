from __future__ import annotations

from pathlib import Path

import pytest
import torch
from mask_r_cnn.data import MaskDataset, collate, load_channel
from mask_r_cnn.model import ModelSpec, build_model
from mask_r_cnn.synthetic import generate
from torch.utils.data import DataLoader

from bench import train_throughput


def test_demo_hyperparameters_merge_local_over_training(repo_root: Path) -> None:
    hyperparameters, size, images = train_throughput.demo_hyperparameters(repo_root)
    assert hyperparameters["backbone"] == "resnet18_fpn"  # local
    assert hyperparameters["epochs"] == "100"  # local over training's 10
    assert "batch_size" in hyperparameters  # from training
    assert size >= 32 and images >= 1


def test_metric_logger_smooths_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    logger = train_throughput.MetricLogger()
    caplog.set_level("INFO", logger=train_throughput.__name__)
    seen = list(logger.log_every([1, 2, 3], print_freq=2, header="Epoch: [0]"))
    logger.update(loss=torch.tensor(2.0), lr=0.5)
    logger.update(loss=4.0)
    assert seen == [1, 2, 3]
    assert logger.meters["loss"].median == 3.0 and logger.meters["loss"].global_avg == 3.0
    assert str(logger.meters["lr"]) == "0.5000 (0.5000)"
    assert any("Epoch: [0] [0/3]" in r.message for r in caplog.records)


def test_reference_loop_trains_one_step(tmp_path: Path) -> None:
    generate(tmp_path, train=2, validation=0, test=0, size=64, seed=0)
    index = load_channel(tmp_path / "train", "training")
    loader = DataLoader(
        MaskDataset(index, index.label_of), batch_size=2, collate_fn=collate, num_workers=0
    )
    torch.manual_seed(0)
    model = build_model(
        ModelSpec(
            backbone="mobilenet_v3_large_fpn",
            num_classes=4,
            min_size=64,
            max_size=64,
            fast=True,
            norm_layer="batch_norm",
        )
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9)
    before = [p.detach().clone() for p in model.parameters() if p.requires_grad]
    logged = train_throughput.reference_train_one_epoch(
        model, optimizer, loader, "cpu", epoch=0, print_freq=20
    )
    after = [p for p in model.parameters() if p.requires_grad]
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
    assert logged.meters["loss"].count == 1
    assert {"loss_classifier", "loss_mask", "lr"} <= set(logged.meters)
