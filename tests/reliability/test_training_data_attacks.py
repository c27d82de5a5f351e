"""Hostile training data: the `train` program refuses it with exit 2 and one sentence.

Each case writes a channel (a copy of a tiny synthetic split) whose `annotations.json` or image
files were built to break the reader: JSON nested deeper than Python's recursion limit, integers
of thousands of digits or beyond a float, and `file_name` values or symlinks that leave the
channel folder. `mask_r_cnn.train.run` runs in-process on a temporary `/opt/ml` tree (the data
checks come before the model is built). "Broke" is any exit code but 2, a failure file whose
first line is not one sentence naming the problem, or an image outside the channel being read.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from reliability_kit import FAST_HYPERPARAMETERS, Tally

pytestmark = [pytest.mark.integration]

AREA = "training data, hostile files"
Attack = Callable[[Path, Path], None]  # (channel folder, a folder outside it)


def _raw(text: str) -> Attack:
    def write(channel: Path, outside: Path) -> None:
        (channel / "annotations.json").write_text(text)

    return write


def _edit(edit: Callable[[dict[str, Any], Path, Path], None]) -> Attack:
    def write(channel: Path, outside: Path) -> None:
        path = channel / "annotations.json"
        document = json.loads(path.read_text())
        edit(document, channel, outside)
        path.write_text(json.dumps(document))

    return write


def _polygon(value: Any) -> Callable[[dict[str, Any], Path, Path], None]:
    def edit(doc: dict[str, Any], channel: Path, outside: Path) -> None:
        annotation = next(a for a in doc["annotations"] if isinstance(a["segmentation"], list))
        annotation["segmentation"] = value

    return edit


def _image_field(key: str, value: Any) -> Callable[[dict[str, Any], Path, Path], None]:
    def edit(doc: dict[str, Any], channel: Path, outside: Path) -> None:
        doc["images"][0][key] = value

    return edit


def _file_name_outside(kind: str) -> Callable[[dict[str, Any], Path, Path], None]:
    def edit(doc: dict[str, Any], channel: Path, outside: Path) -> None:
        first = doc["images"][0]
        secret = outside / "secret.png"
        shutil.copy(channel / first["file_name"], secret)  # a readable image outside the channel
        if kind == "absolute":
            first["file_name"] = str(secret)
        elif kind == "dotdot":
            first["file_name"] = f"../{outside.name}/secret.png"
        elif kind == "symlink":
            (channel / first["file_name"]).unlink()
            (channel / first["file_name"]).symlink_to(secret)
        else:  # a symlinked folder
            (channel / "linked").symlink_to(outside, target_is_directory=True)
            first["file_name"] = "linked/secret.png"

    return edit


DEEP = 100_000
ATTACKS: dict[str, tuple[Attack, str]] = {
    "nested arrays (100000 deep)": (_raw("[" * DEEP + "]" * DEEP), "nests arrays or objects"),
    "nested objects (100000 deep)": (_raw('{"a":' * DEEP + "1" + "}" * DEEP), "nests"),
    "nested polygon (900 deep)": (_edit(_polygon(json.loads("[" * 900 + "]" * 900))), "polygon"),
    "integer of 5000 digits": (_raw('{"images": [{"id": ' + "9" * 5000 + "}]}"), "4300"),
    "polygon coordinate 10**400": (_edit(_polygon([[0, 0, 10**400, 0, 5, 5]])), "polygon"),
    "polygon coordinate inf": (_edit(_polygon([[0, 0, float("inf"), 0, 5, 5]])), "polygon"),
    "image id 10**30": (_edit(_image_field("id", 10**30)), "needs an integer 'id'"),
    "image width 10**300": (_edit(_image_field("width", 10**300)), "width"),
    "annotation image_id a list": (
        _edit(lambda d, c, o: d["annotations"][0].update(image_id=[1])),
        "names image_id",
    ),
    "file_name absolute": (_edit(_file_name_outside("absolute")), "leaves the channel folder"),
    "file_name with ..": (_edit(_file_name_outside("dotdot")), "leaves the channel folder"),
    "image symlinked outside": (_edit(_file_name_outside("symlink")), "outside the channel"),
    "folder symlinked outside": (_edit(_file_name_outside("folder")), "outside the channel"),
}


@pytest.mark.parametrize("kind", list(ATTACKS))
def test_hostile_training_data_exits_2_with_one_sentence(
    kind: str, tmp_path: Path, tiny_data: Path, tally: Tally
) -> None:
    from mask_r_cnn.train import run

    attack, expected = ATTACKS[kind]
    base = tmp_path / "ml"
    config = base / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(FAST_HYPERPARAMETERS))
    (config / "inputdataconfig.json").write_text(
        json.dumps({"training": {"TrainingInputMode": "File"}})
    )
    channel = base / "input" / "data" / "training"
    shutil.copytree(tiny_data / "train", channel)
    outside = tmp_path / "outside"
    outside.mkdir()
    attack(channel, outside)
    code = run({"SAGEMAKER_BASE_DIR": str(base)})
    failure = base / "output" / "failure"
    first = failure.read_text().splitlines()[0] if failure.is_file() else ""
    broke = code != 2 or expected not in first or "bug" in first or len(first) > 1024
    tally.row(AREA, "nested JSON, huge integers, file_name/symlinks outside").count(
        f"exit {code}", broke
    )
    assert not broke, f"{kind}: exit {code}: {first[:300]}"
    assert not (base / "model" / "model.pth").exists()
