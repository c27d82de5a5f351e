"""One failure-file test per input error: exit code 2 and one actionable sentence first."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mask_r_cnn.train import run

pytestmark = pytest.mark.integration


def _edited(
    synthetic_data: Path, tmp_path: Path, edit: Callable[[dict[str, Any], Path], None]
) -> Path:
    copy = tmp_path / "edited"
    shutil.copytree(synthetic_data / "train", copy)
    doc = json.loads((copy / "annotations.json").read_text())
    edit(doc, copy)
    (copy / "annotations.json").write_text(json.dumps(doc))
    return copy


def _polygon_annotation(doc: dict[str, Any]) -> dict[str, Any]:
    return next(a for a in doc["annotations"] if isinstance(a["segmentation"], list))


def _unknown_category(doc: dict[str, Any], root: Path) -> None:
    doc["annotations"][0]["category_id"] = 42


def _unknown_image(doc: dict[str, Any], root: Path) -> None:
    doc["annotations"][0]["image_id"] = 4242


def _malformed_polygon(doc: dict[str, Any], root: Path) -> None:
    _polygon_annotation(doc)["segmentation"] = [[10, 10, 20]]


def _unreadable_image(doc: dict[str, Any], root: Path) -> None:
    (root / doc["images"][1]["file_name"]).write_bytes(b"\x89PNG but not really")


def _truncated_image(doc: dict[str, Any], root: Path) -> None:
    path = root / doc["images"][0]["file_name"]
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


CASES = {
    "unknown category": (_unknown_category, "category_id 42, which is not in 'categories'"),
    "unknown image": (_unknown_image, "image_id 4242, which is not in 'images'"),
    "malformed polygon": (_malformed_polygon, "malformed polygon with 3 coordinates"),
    "unreadable image": (_unreadable_image, "cannot be read"),
    "truncated image": (_truncated_image, "cannot be decoded"),
}


def _assert_failed(base: Path, code: int, words: str) -> str:
    failure = base / "output" / "failure"
    assert code == 2, failure.read_text() if failure.exists() else "no failure file"
    first = failure.read_text().splitlines()[0]
    assert words in first
    assert "Traceback" not in failure.read_text()
    assert not (base / "model" / "model.pth").exists()
    return first


@pytest.mark.parametrize("case", sorted(CASES))
def test_data_error_reaches_the_failure_file(
    case: str, ml_tree: Callable[..., Path], synthetic_data: Path, tmp_path: Path
) -> None:
    edit, words = CASES[case]
    base = ml_tree(channels={"training": _edited(synthetic_data, tmp_path, edit)})
    first = _assert_failed(base, run({"SAGEMAKER_BASE_DIR": str(base)}), words)
    assert "fix" in first or "replace" in first


def test_missing_training_channel(ml_tree: Callable[..., Path], synthetic_data: Path) -> None:
    base = ml_tree(channels={"validation": synthetic_data / "validation"})
    first = _assert_failed(
        base, run({"SAGEMAKER_BASE_DIR": str(base)}), "channel 'training' is missing"
    )
    assert "pass the channel 'training'" in first


def test_empty_training_channel(ml_tree: Callable[..., Path]) -> None:
    base = ml_tree(channels={"training": None})
    _assert_failed(base, run({"SAGEMAKER_BASE_DIR": str(base)}), "there are no files in")


def test_dataset_without_images(
    ml_tree: Callable[..., Path], synthetic_data: Path, tmp_path: Path
) -> None:
    root = _edited(synthetic_data, tmp_path, lambda doc, _: doc.update(images=[], annotations=[]))
    base = ml_tree(channels={"training": root})
    _assert_failed(base, run({"SAGEMAKER_BASE_DIR": str(base)}), "contains no images")


def test_bad_hyperparameter(ml_tree: Callable[..., Path], tiny_hp: dict[str, str]) -> None:
    base = ml_tree({**tiny_hp, "lr": "fast"})
    _assert_failed(
        base, run({"SAGEMAKER_BASE_DIR": str(base)}), "hyperparameter lr = 'fast' is not valid"
    )


def test_unknown_hyperparameter(ml_tree: Callable[..., Path], tiny_hp: dict[str, str]) -> None:
    base = ml_tree({**tiny_hp, "learning_rate": "0.1"})
    _assert_failed(
        base, run({"SAGEMAKER_BASE_DIR": str(base)}), "unknown hyperparameter 'learning_rate'"
    )


def test_pretrained_that_does_not_fit(
    ml_tree: Callable[..., Path], synthetic_data: Path, tmp_path: Path
) -> None:
    (tmp_path / "pre").mkdir()
    (tmp_path / "pre" / "weights.pth").write_bytes(b"not a state dict")
    base = ml_tree(channels={"training": synthetic_data / "train", "pretrained": tmp_path / "pre"})
    _assert_failed(base, run({"SAGEMAKER_BASE_DIR": str(base)}), "cannot be loaded as a state_dict")


def test_internal_errors_exit_1_with_a_traceback_after_the_sentence(
    ml_tree: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import mask_r_cnn.train as train

    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(train, "fit", explode)
    base = ml_tree()
    assert run({"SAGEMAKER_BASE_DIR": str(base)}) == 1
    text = (base / "output" / "failure").read_text()
    assert text.splitlines()[0].startswith("training failed with an unexpected RuntimeError: boom;")
    assert "Traceback" in text


def test_data_error_in_a_loader_worker_keeps_its_sentence(
    ml_tree: Callable[..., Path], synthetic_data: Path, tmp_path: Path, tiny_hp: dict[str, str]
) -> None:
    root = _edited(synthetic_data, tmp_path, _truncated_image)
    base = ml_tree({**tiny_hp, "num_workers": "1"}, {"training": root})
    first = _assert_failed(base, run({"SAGEMAKER_BASE_DIR": str(base)}), "cannot be decoded")
    assert first.startswith("image ") and "Caught" not in first
