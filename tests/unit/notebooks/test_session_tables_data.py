"""Session start, tables and COCO splits of the notebook helpers."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from workflow.coco import annotation_mask
from workflow.errors import ConfigError
from workflow.notebook import NotebookError, Table, class_counts, dataset_splits, load_split
from workflow.notebook.data import content_type, split_summary
from workflow.notebook.session import project_dir


def test_start_resolves_root_and_config_against_the_project(project, make_session):
    (project / "workflow.yaml").write_text("name: from-file\n")
    (project / "notebooks").mkdir()
    import os

    os.chdir(project / "notebooks")  # as Jupyter runs a notebook of notebooks/
    session = make_session(root="")
    assert session.project == project
    assert session.config.name == "from-file"
    assert session.root == project / ".mlops"
    assert session.local
    relative = make_session(root="elsewhere/store")
    assert relative.root == project / "elsewhere" / "store"


def test_start_rejects_an_unknown_mode_with_the_fix(make_session):
    with pytest.raises(
        NotebookError, match=r"mode = 'bogus' is not supported; set mode to 'local'"
    ):
        make_session("bogus")


def test_start_rejects_bad_overrides_and_a_missing_config_file(make_session):
    with pytest.raises(NotebookError, match=r"overrides = .* is not a mapping"):
        make_session(overrides=[("gate.threshold", 0)])
    with pytest.raises(NotebookError, match=r"config_file = 'nope\.yaml' does not exist"):
        make_session(config_file="nope.yaml")
    with pytest.raises(ConfigError, match=r"gate\.threshold"):
        make_session(overrides={"gate.threshold": "high"})


def test_reconfigure_keeps_the_notebook_overrides(make_session):
    session = make_session(overrides={"local.dataset.size": 64})
    variant = session.reconfigure({"approval.enabled": False})
    assert variant.config.local.dataset.size == 64
    assert variant.config.approval.enabled is False
    assert session.config.approval.enabled is True  # the original is unchanged


def test_project_dir_falls_back_to_the_start_folder(tmp_path):
    lonely = tmp_path / "a" / "b"
    lonely.mkdir(parents=True)
    found = project_dir(lonely)
    assert found == lonely


def test_table_renders_html_markdown_and_text():
    table = Table(["name", "value"], [["a<b", 0.123456], ["c|d", None]], title="t")
    html = table._repr_html_()
    assert "<caption>t</caption>" in html and "a&lt;b" in html and "<td>0.1235</td>" in html
    markdown = table._repr_markdown_()
    assert "| c\\|d | - |" in markdown
    text = str(table).splitlines()
    assert text[0] == "t" and text[1].startswith("name") and set(text[2]) <= {"-", " "}
    assert table.column("value") == [0.123456, None]
    with pytest.raises(KeyError, match="no column 'x'"):
        table.column("x")
    with pytest.raises(ValueError, match="row 0 has 1 cells but the table has 2 columns"):
        Table(["a", "b"], [[1]])


def test_load_split_from_a_folder_and_count_classes(make_session, coco_root):
    session = make_session()
    split = load_split(session, coco_root / "train")
    document = json.loads((coco_root / "train" / "annotations.json").read_text())
    assert len(split.images) == len(document["images"]) == 3
    counts = class_counts(split)
    assert sum(counts.column("instances")) == len(document["annotations"])
    assert counts.column("category") == ["circle", "square", "triangle"]
    for image in split.images:
        picture = split.load_image(image)
        assert picture.size == (image["width"], image["height"]) and picture.mode == "RGB"
    assert content_type("x.PNG") == "image/png" and content_type("y.jpg") == "image/jpeg"


def test_dataset_splits_of_a_root_and_of_one_split(make_session, coco_root):
    session = make_session()
    splits = dataset_splits(session, coco_root)
    assert list(splits) == ["train", "test"]  # validation has 0 images: not written
    single = dataset_splits(session, coco_root / "test")
    assert list(single) == ["data"]
    summary = split_summary(splits)
    assert summary.column("images") == [3, 2]


def test_dataset_splits_names_the_folder_without_annotations(make_session, tmp_path):
    session = make_session()
    with pytest.raises(NotebookError, match=r"has no annotations.json; point the data parameter"):
        dataset_splits(session, tmp_path)


def test_a_missing_image_is_named(make_session, coco_root, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(coco_root / "train", copy)
    split = load_split(make_session(), copy)
    (copy / split.images[0]["file_name"]).unlink()
    with pytest.raises(NotebookError, match="does not exist; the annotations of"):
        split.image_bytes(split.images[0])


def test_local_s3_uris_read_the_store(make_session, coco_root):
    session = make_session()
    store = session.store()
    store.put_tree("s3://bucket/data/test/", coco_root / "test")
    split = load_split(session, "s3://bucket/data/test")
    assert split.location == "s3://bucket/data/test/"
    assert (
        split.image_bytes(split.images[0])
        == (coco_root / "test" / split.images[0]["file_name"]).read_bytes()
    )


def test_annotation_masks_of_every_segmentation_form():
    from pycocotools import mask as mask_utils

    polygon = {"segmentation": [[2, 2, 10, 2, 10, 10, 2, 10]]}
    mask = annotation_mask(polygon, 16, 16)
    assert mask.dtype == bool and 50 <= mask.sum() <= 90
    truth = np.zeros((16, 16), dtype=np.uint8)
    truth[4:8, 5:9] = 1
    compressed = mask_utils.encode(np.asfortranarray(truth))
    rle = {"segmentation": {"size": compressed["size"], "counts": compressed["counts"].decode()}}
    assert (annotation_mask(rle, 16, 16) == truth.astype(bool)).all()
    column = truth.flatten(order="F")
    counts, value, run = [], 0, 0
    for pixel in column:
        if pixel != value:
            counts.append(run)
            value, run = pixel, 0
        run += 1
    counts.append(run)
    uncompressed = {"segmentation": {"size": [16, 16], "counts": counts}}
    assert (annotation_mask(uncompressed, 16, 16) == truth.astype(bool)).all()
    assert not annotation_mask({"segmentation": []}, 4, 4).any()
    assert not annotation_mask({}, 4, 4).any()
