from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from mask_r_cnn.synthetic import generate, main


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_arguments_give_identical_files(tmp_path: Path) -> None:
    generate(tmp_path / "a", train=5, validation=2, test=2, size=64, seed=3)
    generate(tmp_path / "b", train=5, validation=2, test=2, size=64, seed=3)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    generate(tmp_path / "c", train=5, validation=2, test=2, size=64, seed=4)
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_data_set_has_the_promised_variety(tmp_path: Path) -> None:
    generate(tmp_path, train=20, validation=0, test=0, size=96, seed=0)
    doc = json.loads((tmp_path / "train" / "annotations.json").read_text())
    names = {i["file_name"].rsplit(".", 1)[1] for i in doc["images"]}
    assert names == {"jpg", "png"}
    assert len({(i["width"], i["height"]) for i in doc["images"]}) > 1
    forms = {type(a["segmentation"]).__name__ for a in doc["annotations"]}
    assert forms == {"list", "dict"}  # polygons and RLEs (partly hidden shapes)
    assert {a["category_id"] for a in doc["annotations"]} == {1, 2, 3}
    annotated = {a["image_id"] for a in doc["annotations"]}
    assert len(annotated) < len(doc["images"])  # some images have no annotations
    assert not (tmp_path / "validation").exists()


def test_cli_prints_a_json_summary_and_never_overwrites(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [str(tmp_path), "--train", "2", "--validation", "1", "--test", "1", "--size", "48"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["train"]["images"] == 2 and summary["test"]["images"] == 1
    before = _digest(tmp_path)
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "exists already and is never overwritten" in captured.err
    assert _digest(tmp_path) == before


def test_train_shapes_crowd_the_training_images_only(tmp_path: Path) -> None:
    generate(tmp_path / "a", train=30, validation=3, test=3, size=96, seed=0)
    generate(tmp_path / "b", train=30, validation=3, test=3, size=96, seed=0, train_shapes=(2, 5))
    for split in ("validation", "test"):  # the splits a model is judged on stay the same files
        assert _digest(tmp_path / "a" / split) == _digest(tmp_path / "b" / split)
    per_image: dict[int, int] = {}
    doc = json.loads((tmp_path / "b" / "train" / "annotations.json").read_text())
    for annotation in doc["annotations"]:
        per_image[annotation["image_id"]] = per_image.get(annotation["image_id"], 0) + 1
    # at most 5 each; a shape hidden all but a few pixels gets no annotation, so some hold fewer
    assert max(per_image.values()) == 5 and len(per_image) == 30
    default = json.loads((tmp_path / "a" / "train" / "annotations.json").read_text())
    assert len(doc["annotations"]) > 1.3 * len(default["annotations"])  # 98 against 68


def test_train_shapes_out_of_range_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(tmp_path / "out"), "--train-shapes", "5", "2"]) == 2
    assert "train shapes 5 to 2 are not a range within 0 to 8" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match=r"e\.g\. 2 5"):
        generate(tmp_path / "out", train=1, validation=0, test=0, train_shapes=(0, 9))
