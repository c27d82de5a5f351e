from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from mask_r_cnn.data import (
    MaskDataset,
    check_compatible,
    coco_ground_truth,
    collate,
    load_channel,
)
from mask_r_cnn.errors import ChannelError, DataError


def test_synthetic_coco_channel_loads_and_decodes(synthetic_root: Path) -> None:
    index = load_channel(synthetic_root / "train", "training")
    assert index.layout == "coco"
    assert [c.name for c in index.categories] == ["circle", "square", "triangle"]
    assert index.label_of == {1: 1, 2: 2, 3: 3}
    dataset = MaskDataset(index, index.label_of)
    assert len(dataset) == 6
    for i in range(len(dataset)):
        image, target = dataset[i]
        assert image.dtype == torch.float32 and image.shape[0] == 3
        assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0
        n = target["boxes"].shape[0]
        assert target["masks"].shape == (n, *image.shape[1:])
        assert target["labels"].shape == (n,)
        if n:
            assert bool((target["boxes"][:, 2:] > target["boxes"][:, :2]).all())
    images, targets = collate([dataset[0], dataset[1]])
    assert len(images) == len(targets) == 2


def test_images_without_annotations_give_empty_targets(coco_channel: Callable[..., Path]) -> None:
    root = coco_channel(lambda doc: doc.update(annotations=[]))
    index = load_channel(root, "training")
    image, target = MaskDataset(index, index.label_of)[0]
    assert target["boxes"].shape == (0, 4)
    assert target["masks"].shape == (0, *image.shape[1:])


def test_pennfudan_layout_loads(tmp_path: Path, pennfudan_tree: Callable[..., Path]) -> None:
    root = pennfudan_tree(tmp_path / "penn", count=3)
    index = load_channel(root, "training")
    assert index.layout == "pennfudan"
    assert [(c.id, c.name) for c in index.categories] == [(1, "person")]
    image, target = MaskDataset(index, index.label_of)[0]
    assert image.shape == (3, 64, 80)
    assert target["labels"].tolist() == [1, 1]
    assert target["boxes"].tolist() == [[5.0, 5.0, 25.0, 40.0], [40.0, 10.0, 70.0, 60.0]]
    truth = coco_ground_truth(index)
    assert len(truth["images"]) == 3 and len(truth["annotations"]) == 6


def test_ground_truth_of_coco_channel_keeps_areas(synthetic_root: Path) -> None:
    index = load_channel(synthetic_root / "validation", "validation")
    truth = coco_ground_truth(index)
    raw = json.loads((synthetic_root / "validation" / "annotations.json").read_text())
    assert len(truth["annotations"]) == len(raw["annotations"])
    for ours, theirs in zip(truth["annotations"], raw["annotations"], strict=True):
        assert ours["area"] == pytest.approx(theirs["area"], rel=0.2)


def test_missing_channel(tmp_path: Path) -> None:
    with pytest.raises(ChannelError, match=r"channel 'training' is missing: .* does not exist"):
        load_channel(tmp_path / "nope", "training")


def test_empty_channel(tmp_path: Path) -> None:
    (tmp_path / "training").mkdir()
    with pytest.raises(ChannelError, match="there are no files in"):
        load_channel(tmp_path / "training", "training")


def test_channel_without_any_layout(tmp_path: Path) -> None:
    (tmp_path / "training").mkdir()
    (tmp_path / "training" / "x.txt").write_text("x")
    with pytest.raises(ChannelError, match=r"holds neither annotations\.json"):
        load_channel(tmp_path / "training", "training")


def _first(doc: dict[str, Any], key: str) -> dict[str, Any]:
    return (
        next(a for a in doc["annotations"] if isinstance(a["segmentation"], list))
        if key == "poly"
        else doc[key][0]
    )


@pytest.mark.parametrize(
    ("edit", "pattern"),
    [
        (lambda d: d.update(images=[], annotations=[]), "contains no images"),
        (
            lambda d: d["annotations"][0].update(category_id=99),
            "names category_id 99, which is not in 'categories'",
        ),
        (
            lambda d: d["annotations"][0].update(image_id=999),
            "names image_id 999, which is not in 'images'",
        ),
        (
            lambda d: _first(d, "poly").update(segmentation=[[1, 2, 3, 4]]),
            "malformed polygon with 4 coordinates",
        ),
        (
            lambda d: _first(d, "poly").update(segmentation=[[1, 2, "x", 4, 5, 6]]),
            "malformed polygon",
        ),
        (lambda d: _first(d, "poly").update(segmentation=[]), "empty polygon list"),
        (lambda d: d["annotations"][0].update(segmentation=None), "no usable 'segmentation'"),
        (
            lambda d: d["annotations"][0].update(segmentation={"size": [1, 1], "counts": "x"}),
            "has an RLE of size",
        ),
        (
            lambda d: d["images"][0].update(file_name="missing.jpg"),
            "missing.jpg' but .* does not exist",
        ),
        (lambda d: d["images"][0].update(width=1000), "declares 1000x"),
        (lambda d: d.update(categories=[]), "has no 'categories'"),
        (lambda d: d["categories"].append({"id": 1, "name": "dup"}), "duplicated"),
        (lambda d: d["images"].append(dict(d["images"][0])), "appears twice"),
    ],
)
def test_data_errors_are_one_sentence_naming_the_problem(
    coco_channel: Callable[..., Path], edit: Callable[[dict[str, Any]], None], pattern: str
) -> None:
    root = coco_channel(edit)
    with pytest.raises((DataError, ChannelError), match=pattern) as info:
        load_channel(root, "training")
    assert "\n" not in str(info.value)


def test_unreadable_image_is_named(coco_channel: Callable[..., Path]) -> None:
    root = coco_channel()
    doc = json.loads((root / "annotations.json").read_text())
    (root / doc["images"][0]["file_name"]).write_bytes(b"this is not an image")
    with pytest.raises(DataError, match=rf"image .*{doc['images'][0]['file_name']} cannot be read"):
        load_channel(root, "training")


def test_truncated_image_fails_when_decoded(coco_channel: Callable[..., Path]) -> None:
    root = coco_channel()
    doc = json.loads((root / "annotations.json").read_text())
    path = root / doc["images"][0]["file_name"]
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    index = load_channel(root, "training")  # the header is fine
    with pytest.raises(DataError, match="cannot be decoded"):
        MaskDataset(index, index.label_of)[0]


def test_invalid_json_annotation_file(coco_channel: Callable[..., Path]) -> None:
    root = coco_channel()
    (root / "annotations.json").write_text("{")
    with pytest.raises(DataError, match=r"annotations\.json is not valid JSON"):
        load_channel(root, "training")


def test_validation_categories_must_match_training(
    synthetic_root: Path, tmp_path: Path, pennfudan_tree: Callable[..., Path]
) -> None:
    train = load_channel(synthetic_root / "train", "training")
    penn = load_channel(pennfudan_tree(tmp_path / "p"), "validation")
    with pytest.raises(DataError, match=r"validation category 1 \('person'\) does not match"):
        check_compatible(train, penn)
    check_compatible(train, load_channel(synthetic_root / "validation", "validation"))


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("[" * 100_000 + "]" * 100_000, "nests arrays or objects too deeply"),
        ('{"images": [{"id": ' + "9" * 5000 + "}]}", r"not valid JSON \(Exceeds the limit"),
    ],
)
def test_hostile_json_is_a_data_error(
    coco_channel: Callable[..., Path], text: str, pattern: str
) -> None:
    root = coco_channel()
    (root / "annotations.json").write_text(text)
    with pytest.raises(DataError, match=pattern):
        load_channel(root, "training")


@pytest.mark.parametrize(
    ("edit", "pattern"),
    [
        (lambda d: d["images"][0].update(file_name="/etc/hostname"), "leaves the channel folder"),
        (lambda d: d["images"][0].update(file_name="a/../../x.png"), "leaves the channel folder"),
        (lambda d: d["images"][0].update(width=10**300), "has width = 1000"),
        (lambda d: d["images"][0].update(id=2**63), "needs an integer 'id'"),
    ],
)
def test_file_names_outside_the_channel_and_huge_numbers_are_refused(
    coco_channel: Callable[..., Path], edit: Callable[[dict[str, Any]], None], pattern: str
) -> None:
    with pytest.raises(DataError, match=pattern):
        load_channel(coco_channel(edit), "training")


def test_symlink_out_of_the_channel_is_refused(
    coco_channel: Callable[..., Path], tmp_path: Path
) -> None:
    root = coco_channel()
    doc = json.loads((root / "annotations.json").read_text())
    image = root / doc["images"][0]["file_name"]
    inside = root / "originals" / image.name
    inside.parent.mkdir()
    image.rename(inside)
    image.symlink_to(inside)  # a link that stays inside the channel is followed
    assert load_channel(root, "training").images[0].path == image
    outside = tmp_path / "elsewhere.png"
    inside.rename(outside)
    image.unlink()
    image.symlink_to(outside)
    with pytest.raises(DataError, match="outside the channel folder"):
        load_channel(root, "training")
