from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
import torch
from mask_r_cnn.errors import PretrainedError
from mask_r_cnn.model import (
    ModelSpec,
    build_model,
    find_state_dict,
    load_pretrained,
)

SPEC = ModelSpec(backbone="resnet18_fpn", num_classes=3, min_size=64, max_size=64, fast=True)


@pytest.mark.parametrize("backbone", ["resnet18_fpn", "mobilenet_v3_large_fpn"])
def test_light_backbones_train_and_predict_on_cpu(backbone: str) -> None:
    torch.manual_seed(0)
    model = build_model(
        ModelSpec(
            backbone=backbone,
            num_classes=3,
            min_size=64,
            max_size=64,
            fast=True,
            norm_layer="batch_norm",
        )
    )
    masks = torch.zeros((1, 64, 64), dtype=torch.uint8)
    masks[0, 10:30, 10:40] = 1
    target = {
        "boxes": torch.tensor([[10.0, 10.0, 40.0, 30.0]]),
        "labels": torch.tensor([2]),
        "masks": masks,
    }
    losses = model([torch.rand(3, 64, 64)], [target])
    assert {"loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness"} <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())
    model.eval()
    with torch.inference_mode():
        (out,) = model([torch.rand(3, 50, 70)])
    assert out["masks"].shape[1:] == (1, 50, 70)


def test_resnet50_has_the_torchvision_layout() -> None:
    model = build_model(ModelSpec(backbone="resnet50_fpn", num_classes=91))
    keys = set(model.state_dict())
    assert "backbone.body.layer4.2.conv3.weight" in keys
    assert model.roi_heads.mask_predictor.mask_fcn_logits.out_channels == 91


def test_spec_round_trips_through_a_dict() -> None:
    assert ModelSpec.from_dict({**SPEC.to_dict(), "unknown": 1}) == SPEC


def test_full_model_state_dict_loads_and_skips_class_heads(tmp_path: Path) -> None:
    torch.manual_seed(1)
    donor = build_model(ModelSpec(**{**SPEC.to_dict(), "num_classes": 5}))
    torch.save({"model": donor.state_dict()}, tmp_path / "full.pth")  # torchvision checkpoint form
    model = build_model(SPEC)
    counts = load_pretrained(model, tmp_path / "full.pth")
    assert counts["skipped"] == 6  # cls_score, bbox_pred and mask_fcn_logits weight + bias
    assert counts["loaded"] > 100
    key = "backbone.body.layer1.0.conv1.weight"
    assert torch.equal(model.state_dict()[key], donor.state_dict()[key])


def test_backbone_state_dict_loads_into_the_backbone(tmp_path: Path) -> None:
    torch.manual_seed(2)
    donor = build_model(SPEC)
    torch.save(donor.backbone.state_dict(), tmp_path / "backbone.pth")
    model = build_model(SPEC)
    counts = load_pretrained(model, tmp_path / "backbone.pth")
    assert counts["loaded"] == len(donor.backbone.state_dict())
    key = "fpn.layer_blocks.0.0.weight"
    assert torch.equal(model.backbone.state_dict()[key], donor.backbone.state_dict()[key])


def test_classifier_state_dict_loads_into_the_body(tmp_path: Path) -> None:
    import torchvision

    classifier = torchvision.models.resnet18(weights=None)
    torch.save(classifier.state_dict(), tmp_path / "resnet18.pth")
    model = build_model(SPEC)
    counts = load_pretrained(model, tmp_path / "resnet18.pth")
    assert counts["loaded"] > 50
    assert torch.equal(model.backbone.body.conv1.weight, classifier.conv1.weight)


def test_wrong_architecture_is_a_clear_error(tmp_path: Path) -> None:
    donor = build_model(ModelSpec(backbone="resnet50_fpn", num_classes=3))
    torch.save(donor.state_dict(), tmp_path / "r50.pth")
    with pytest.raises(PretrainedError, match=r"has shape .* saved for another backbone"):
        load_pretrained(build_model(SPEC), tmp_path / "r50.pth")


def test_unrelated_state_dict_matches_nothing(tmp_path: Path) -> None:
    torch.save({"foo.weight": torch.zeros(2)}, tmp_path / "x.pth")
    with pytest.raises(PretrainedError, match="matches none of the"):
        load_pretrained(build_model(SPEC), tmp_path / "x.pth")


def test_not_a_state_dict(tmp_path: Path) -> None:
    (tmp_path / "bad.pth").write_bytes(b"garbage")
    with pytest.raises(PretrainedError, match="cannot be loaded as a state_dict"):
        load_pretrained(build_model(SPEC), tmp_path / "bad.pth")


def test_pretrained_channel_needs_exactly_one_file(tmp_path: Path) -> None:
    with pytest.raises(PretrainedError, match="found none"):
        find_state_dict(tmp_path)
    (tmp_path / "a.pth").write_bytes(b"")
    assert find_state_dict(tmp_path) == tmp_path / "a.pth"
    (tmp_path / "b.pt").write_bytes(b"")
    with pytest.raises(PretrainedError, match=r"found a\.pth, b\.pt"):
        find_state_dict(tmp_path)


def test_a_model_tar_gz_is_a_warm_start(tmp_path: Path) -> None:
    model = build_model(SPEC)
    weights = tmp_path / "model.pth"
    torch.save(model.state_dict(), weights)
    metadata = tmp_path / "metadata.json"
    metadata.write_text(json.dumps({"training_job_name": "job-1", "source_commit": "abc1234"}))
    channel = tmp_path / "pretrained"
    channel.mkdir()
    with tarfile.open(channel / "model.tar.gz", "w:gz") as archive:
        archive.add(weights, arcname="model.pth")
        archive.add(metadata, arcname="metadata.json")
    archive_path = find_state_dict(channel)
    assert archive_path == channel / "model.tar.gz"
    counts = load_pretrained(build_model(SPEC), archive_path)
    assert counts["loaded"] > 0 and counts["missing"] == 0
    assert counts["training_job_name"] == "job-1" and counts["source_commit"] == "abc1234"
    plain = load_pretrained(build_model(SPEC), weights)
    assert set(plain) == {"loaded", "skipped", "missing"}  # a plain state_dict names no job


def test_a_warm_start_reads_its_model_tar_gz_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    weights = tmp_path / "model.pth"
    torch.save(build_model(SPEC).state_dict(), weights)
    (tmp_path / "metadata.json").write_text(json.dumps({"training_job_name": "job-2"}))
    with tarfile.open(tmp_path / "model.tar.gz", "w:gz") as archive:
        archive.add(tmp_path / "metadata.json", arcname="./metadata.json")
        archive.add(weights, arcname="./model.pth")
    opened = []
    real_open = tarfile.open

    def counting_open(*args: object, **kwargs: object) -> tarfile.TarFile:
        opened.append(args[0])
        return real_open(*args, **kwargs)  # type: ignore[call-overload,no-any-return]

    monkeypatch.setattr(tarfile, "open", counting_open)
    counts = load_pretrained(build_model(SPEC), tmp_path / "model.tar.gz")
    assert counts["training_job_name"] == "job-2" and counts["loaded"] > 0
    assert opened == [tmp_path / "model.tar.gz"]


def test_a_model_tar_gz_without_weights_is_refused(tmp_path: Path) -> None:
    (tmp_path / "metadata.json").write_text("{}")
    with tarfile.open(tmp_path / "model.tar.gz", "w:gz") as archive:
        archive.add(tmp_path / "metadata.json", arcname="metadata.json")
    with pytest.raises(PretrainedError, match=r"model.tar.gz in the pretrained channel holds no"):
        load_pretrained(build_model(SPEC), tmp_path / "model.tar.gz")
    (tmp_path / "broken.tar.gz").write_bytes(b"not gzip")
    with pytest.raises(PretrainedError, match=r"is not a readable \.tar\.gz"):
        load_pretrained(build_model(SPEC), tmp_path / "broken.tar.gz")


def test_cpu_fit_spec_builds_narrow_heads_group_norm_and_its_anchors() -> None:
    spec = ModelSpec(
        backbone="resnet18_fpn",
        num_classes=4,
        min_size=96,
        max_size=96,
        trainable_backbone_layers=5,
        norm_layer="group_norm",
        fpn_channels=64,
        box_head_channels=256,
        mask_head_channels=64,
        mask_head_layers=2,
        anchor_sizes=(8, 16, 32, 64, 128),
    )
    model = build_model(spec)
    assert model.backbone.out_channels == 64
    assert model.roi_heads.box_head.fc7.out_features == 256
    assert len(model.roi_heads.mask_head) == 2
    assert isinstance(model.backbone.body.bn1, torch.nn.GroupNorm)
    assert model.rpn.anchor_generator.sizes == ((8,), (16,), (32,), (64,), (128,))
    assert all(p.requires_grad for p in model.parameters())
    # serve rebuilds the same network from metadata.json (JSON turns tuples into lists)
    assert ModelSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    rebuilt = build_model(ModelSpec.from_dict(spec.to_dict()))
    rebuilt.load_state_dict(model.state_dict())


def test_default_spec_keeps_torchvision_heads_and_anchors() -> None:
    model = build_model(SPEC)
    assert model.backbone.out_channels == 256
    assert model.roi_heads.box_head.fc7.out_features == 1024
    assert len(model.roi_heads.mask_head) == 4
    assert model.rpn.anchor_generator.sizes == ((32,), (64,), (128,), (256,), (512,))


def test_half_width_resnet_with_one_roi_sample_trains_and_rebuilds_from_its_spec() -> None:
    torch.manual_seed(0)
    spec = ModelSpec(
        backbone="resnet18_fpn",
        num_classes=4,
        min_size=64,
        max_size=64,
        fast=True,
        norm_layer="batch_norm",
        backbone_width=32,
        fpn_channels=32,
        box_samples_per_image=16,
        rpn_train_proposals=50,
        roi_sampling_ratio=1,
    )
    model = build_model(spec)
    body = model.backbone.body
    # every stage half as wide as torchvision's ResNet-18 (64, 128, 256, 512)
    assert [getattr(body, f"layer{k}")[-1].conv2.out_channels for k in (1, 2, 3, 4)] == [
        32,
        64,
        128,
        256,
    ]
    assert body.conv1.out_channels == 32
    assert [block.out_channels for block in model.backbone.fpn.inner_blocks] == [32] * 4
    assert model.roi_heads.box_roi_pool.sampling_ratio == 1
    assert model.roi_heads.mask_roi_pool.sampling_ratio == 1
    assert model.roi_heads.fg_bg_sampler.batch_size_per_image == 16
    assert model.rpn._post_nms_top_n == {"training": 50, "testing": 100}  # fast's at inference
    assert model.rpn._pre_nms_top_n == {"training": 100, "testing": 300}
    masks = torch.zeros((1, 64, 64), dtype=torch.uint8)
    masks[0, 10:30, 10:40] = 1
    target = {"boxes": torch.tensor([[10.0, 10.0, 40.0, 30.0]]), "labels": torch.tensor([2])}
    losses = model([torch.rand(3, 64, 64)], [{**target, "masks": masks}])
    assert all(torch.isfinite(v) for v in losses.values())
    # serve rebuilds the same network from metadata.json
    rebuilt = build_model(ModelSpec.from_dict(json.loads(json.dumps(spec.to_dict()))))
    rebuilt.load_state_dict(model.state_dict())


def test_specs_written_before_the_width_and_sampling_fields_rebuild_torchvision_defaults() -> None:
    old = {
        k: v
        for k, v in SPEC.to_dict().items()
        if k
        not in {
            "backbone_width",
            "roi_sampling_ratio",
            "box_samples_per_image",
            "rpn_train_proposals",
        }
    }
    model = build_model(ModelSpec.from_dict(old))
    assert model.backbone.body.conv1.out_channels == 64
    assert model.roi_heads.box_roi_pool.sampling_ratio == 2
    assert model.roi_heads.fg_bg_sampler.batch_size_per_image == 128  # fast's
    assert model.rpn._post_nms_top_n["training"] == 300
